import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  DISCOVERY_PATH,
  JWKS_PATH,
  jwksOf,
  makeSigningKey,
  signJwt,
  startJwksServer,
  validClaims,
  type JwksServer,
} from '../helpers/jwks-server.js';

async function withServer(opts: Parameters<typeof startJwksServer>[0], fn: (srv: JwksServer) => Promise<void>): Promise<void> {
  const srv = await startJwksServer(opts);
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

async function refusedCode(url: string): Promise<string | undefined> {
  try {
    await fetch(url);
    return undefined;
  } catch (e) {
    return ((e as Error & { cause?: { code?: string } }).cause ?? {}).code;
  }
}

test('serves the JWKS and a discovery document pointing at it; setKeys replaces what is served', async () => {
  const a = await makeSigningKey('ES256', 'a');
  const b = await makeSigningKey('EdDSA', 'b');
  await withServer({ keys: jwksOf(a) }, async (srv) => {
    assert.equal(srv.jwksUri, `${srv.issuer}${JWKS_PATH}`);
    const doc = (await (await fetch(srv.discoveryUrl)).json()) as Record<string, unknown>;
    assert.equal(doc.issuer, srv.issuer);
    assert.equal(doc.jwks_uri, srv.jwksUri);
    const first = (await (await fetch(srv.jwksUri)).json()) as { keys: { kid: string; d?: string }[] };
    assert.deepEqual(first.keys.map((k) => k.kid), ['a']);
    assert.equal(first.keys[0]!.d, undefined);
    srv.setKeys(jwksOf(a, b));
    const second = (await (await fetch(srv.jwksUri)).json()) as { keys: { kid: string }[] };
    assert.deepEqual(second.keys.map((k) => k.kid), ['a', 'b']);
    assert.equal(srv.requests(JWKS_PATH), 2);
    assert.equal(srv.requests(DISCOVERY_PATH), 1);
    assert.equal((await fetch(`${srv.issuer}/nope`)).status, 404);
    assert.equal(srv.requests('/nope'), 1);

    srv.setDiscovery({ issuer: 'https://elsewhere.example', jwks_uri: 'https://elsewhere.example/keys' });
    assert.equal(((await (await fetch(srv.discoveryUrl)).json()) as { issuer: string }).issuer, 'https://elsewhere.example');
    srv.setDiscovery(undefined);
    assert.equal(((await (await fetch(srv.discoveryUrl)).json()) as { issuer: string }).issuer, srv.issuer);
  });
});

test('Cache-Control is sent when set and absent when cleared', async () => {
  await withServer({ cacheControl: 'max-age=60' }, async (srv) => {
    assert.equal((await fetch(srv.jwksUri)).headers.get('cache-control'), 'max-age=60');
    assert.equal((await fetch(srv.discoveryUrl)).headers.get('cache-control'), 'max-age=60');
    srv.setCacheControl('no-store');
    assert.equal((await fetch(srv.jwksUri)).headers.get('cache-control'), 'no-store');
    srv.setCacheControl(undefined);
    assert.equal((await fetch(srv.jwksUri)).headers.get('cache-control'), null);
  });
});

test('signJwt tokens verify against the served JWKS for every supported algorithm', async () => {
  const keys = await Promise.all((['RS256', 'PS256', 'ES256', 'EdDSA'] as const).map((alg) => makeSigningKey(alg)));
  await withServer({ keys: jwksOf(...keys) }, async (srv) => {
    const remote = createRemoteJWKSet(new URL(srv.jwksUri));
    for (const key of keys) {
      const token = await signJwt(validClaims(srv.issuer, 'aud-1', { roles: ['r'] }), key);
      assert.equal(decodeProtectedHeader(token).kid, key.kid);
      const { payload, protectedHeader } = await jwtVerify(token, remote, { issuer: srv.issuer, audience: 'aud-1' });
      assert.equal(protectedHeader.alg, key.alg);
      assert.deepEqual(payload.roles, ['r']);
      assert.equal(payload.sub, 'user-1');
    }
    assert.equal(srv.requests(JWKS_PATH), 1);
    const local = createLocalJWKSet(jwksOf(keys[0]!));
    const overridden = await signJwt(validClaims(srv.issuer, 'aud-1'), keys[0]!, { kid: 'other' });
    await assert.rejects(jwtVerify(overridden, local), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });
});

test('fault: status and invalid JSON, n times then normal', async () => {
  const k = await makeSigningKey('ES256', 'k');
  await withServer({ keys: jwksOf(k) }, async (srv) => {
    srv.failNext(JWKS_PATH, 1, 429);
    assert.equal((await fetch(srv.jwksUri)).status, 429);
    srv.failNext(JWKS_PATH, 2, 'invalid-json');
    for (let i = 0; i < 2; i++) {
      const res = await fetch(srv.jwksUri);
      assert.equal(res.status, 200);
      await assert.rejects(res.json(), SyntaxError);
    }
    assert.equal((await fetch(srv.jwksUri)).status, 200);
    assert.equal(srv.requests(JWKS_PATH), 4);
    srv.failNext(DISCOVERY_PATH, 1, 'invalid-json');
    await assert.rejects((await fetch(srv.discoveryUrl)).json(), SyntaxError);
  });
});

test('fault: oversized body has exactly the requested size and is valid JSON', async () => {
  await withServer({}, async (srv) => {
    srv.failNext(JWKS_PATH, 1, { oversized: 2 * 1024 * 1024 });
    const buf = Buffer.from(await (await fetch(srv.jwksUri)).arrayBuffer());
    assert.equal(buf.length, 2 * 1024 * 1024);
    assert.deepEqual((JSON.parse(buf.toString()) as { keys: unknown[] }).keys, []);
  });
});

test('fault: slow drip sends headers at once and the body in many small chunks', async () => {
  const k = await makeSigningKey('ES256', 'drip');
  await withServer({ keys: jwksOf(k) }, async (srv) => {
    const full = JSON.stringify(jwksOf(k));
    srv.failNext(JWKS_PATH, 1, { drip: { intervalMs: 5, chunkBytes: 32 } });
    const res = await fetch(srv.jwksUri);
    assert.equal(res.status, 200);
    let chunks = 0;
    let text = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body!) {
      chunks++;
      text += decoder.decode(chunk, { stream: true });
    }
    assert.equal(text, full);
    assert.ok(chunks >= 3, `body arrived in ${chunks} chunks`);
  });
});

test('fault: hang never answers; a client timeout fires and the next request is served', async () => {
  const k = await makeSigningKey('ES256', 'h');
  await withServer({ keys: jwksOf(k) }, async (srv) => {
    srv.failNext(JWKS_PATH, 1, 'hang');
    await assert.rejects(fetch(srv.jwksUri, { signal: AbortSignal.timeout(100) }), { name: 'TimeoutError' });
    const token = await signJwt(validClaims(srv.issuer, 'a'), k);
    await jwtVerify(token, createRemoteJWKSet(new URL(srv.jwksUri)), { issuer: srv.issuer, audience: 'a' });
    assert.equal(srv.requests(JWKS_PATH), 2);
  });
});

test('down() refuses connections and cuts a dripping answer; up() serves again on the same port', async () => {
  const k = await makeSigningKey('ES256', 'd');
  await withServer({ keys: jwksOf(k) }, async (srv) => {
    const port = srv.port;
    srv.failNext(JWKS_PATH, 1, { drip: { intervalMs: 50, chunkBytes: 1 } });
    const res = await fetch(srv.jwksUri);
    const body = res.text().then(
      () => 'complete',
      () => 'cut',
    );
    await srv.down();
    assert.equal(await body, 'cut');
    assert.equal(await refusedCode(srv.jwksUri), 'ECONNREFUSED');
    await srv.up();
    assert.equal(srv.port, port);
    const keys = (await (await fetch(srv.jwksUri)).json()) as { keys: { kid: string }[] };
    assert.deepEqual(keys.keys.map((x) => x.kid), ['d']);
  });
});
