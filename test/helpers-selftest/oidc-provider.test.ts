import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { startTestIdp, type IdpAlg, type TestIdp } from '../helpers/oidc-provider.js';

const ASYMMETRIC = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const DISCOVERY = '/.well-known/openid-configuration';

async function withIdp(opts: Parameters<typeof startTestIdp>[0], fn: (idp: TestIdp) => Promise<void>): Promise<void> {
  const idp = await startTestIdp(opts);
  try {
    await fn(idp);
  } finally {
    await idp.stop();
  }
}

function remoteKeys(idp: TestIdp, opts: Parameters<typeof createRemoteJWKSet>[1] = {}): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(idp.jwksUri), opts);
}

async function jwksKids(idp: TestIdp): Promise<string[]> {
  const res = await fetch(idp.jwksUri);
  const body = (await res.json()) as { keys: { kid: string; d?: string }[] };
  for (const k of body.keys) assert.equal(k.d, undefined, 'the JWKS must publish public keys only');
  return body.keys.map((k) => k.kid);
}

async function connectionRefused(url: string): Promise<string | undefined> {
  try {
    await fetch(url);
    return undefined;
  } catch (e) {
    return ((e as Error & { cause?: { code?: string } }).cause ?? {}).code;
  }
}

test('discovery document names the issuer, jwks_uri and token endpoint on loopback http', async () => {
  await withIdp({}, async (idp) => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(idp.issuer, `http://127.0.0.1:${idp.port}`);
    const res = await fetch(`${idp.issuer}${DISCOVERY}`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Record<string, unknown>;
    assert.equal(doc.issuer, idp.issuer);
    assert.equal(doc.jwks_uri, idp.jwksUri);
    assert.equal(doc.jwks_uri, `${idp.issuer}/jwks`);
    assert.equal(doc.token_endpoint, `${idp.issuer}/token`);
    assert.ok((doc.grant_types_supported as string[]).includes('client_credentials'));
    assert.equal(idp.requests(DISCOVERY), 1);
  });
});

for (const alg of ['RS256', 'ES256', 'PS256', 'EdDSA'] as IdpAlg[]) {
  test(`${alg}: token() is a real at+jwt that verifies against the remote JWKS with iss, aud and claims`, async () => {
    await withIdp({ alg, audience: 'tracewarden-api' }, async (idp) => {
      const token = await idp.token({
        claims: { amr: ['hwk', 'pwd'], acr: 'phr', roles: ['reader', 'writer'], groups: ['ops'], org: { id: 7, unit: { name: 'x' } } },
      });
      const header = decodeProtectedHeader(token);
      assert.equal(header.alg, alg);
      assert.equal(header.kid, idp.currentKid());
      assert.equal(header.typ, 'at+jwt');
      const { payload } = await jwtVerify(token, remoteKeys(idp), { issuer: idp.issuer, audience: 'tracewarden-api', algorithms: ASYMMETRIC });
      assert.equal(payload.sub, idp.clientId);
      assert.equal(payload.client_id, idp.clientId);
      assert.deepEqual(payload.amr, ['hwk', 'pwd']);
      assert.equal(payload.acr, 'phr');
      assert.deepEqual(payload.roles, ['reader', 'writer']);
      assert.deepEqual(payload.groups, ['ops']);
      assert.deepEqual(payload.org, { id: 7, unit: { name: 'x' } });
      assert.equal(payload.exp! - payload.iat!, 300);
      assert.equal(idp.requests('/token'), 1);
      assert.equal(idp.requests('/jwks'), 1);
    });
  });
}

test('token() overrides sub, audience and lifetime per request', async () => {
  await withIdp({}, async (idp) => {
    const a = await idp.token({ claims: { sub: 'alice@example.com' }, audience: 'other-api', ttlSeconds: 42 });
    const b = await idp.token();
    const keys = remoteKeys(idp);
    const { payload: pa } = await jwtVerify(a, keys, { issuer: idp.issuer, audience: 'other-api', algorithms: ASYMMETRIC });
    assert.equal(pa.sub, 'alice@example.com');
    assert.equal(pa.exp! - pa.iat!, 42);
    const { payload: pb } = await jwtVerify(b, keys, { issuer: idp.issuer, audience: idp.audience, algorithms: ASYMMETRIC });
    assert.equal(pb.sub, idp.clientId, 'per-request options must not leak into the next token');
    assert.equal(pb.aud, 'tracewarden');
    assert.equal(pb.exp! - pb.iat!, 300);
    await assert.rejects(idp.token({ ttlSeconds: 0 }), TypeError);
  });
});

test('rotateKeys(): new tokens carry the new kid and verify; old key stays published unless keepOld is false', async () => {
  await withIdp({}, async (idp) => {
    const firstKid = idp.currentKid();
    const oldToken = await idp.token();
    // cooldownDuration 0 lets jose refetch on an unknown kid immediately, as a key cache should after rotation.
    const keys = remoteKeys(idp, { cooldownDuration: 0 });
    await jwtVerify(oldToken, keys, { issuer: idp.issuer, audience: idp.audience });
    assert.deepEqual(await jwksKids(idp), [firstKid]);

    await idp.rotateKeys();
    const secondKid = idp.currentKid();
    assert.notEqual(secondKid, firstKid);
    assert.deepEqual(await jwksKids(idp), [secondKid, firstKid]);
    const newToken = await idp.token();
    assert.equal(decodeProtectedHeader(newToken).kid, secondKid);
    const fetchesBefore = idp.requests('/jwks');
    await jwtVerify(newToken, keys, { issuer: idp.issuer, audience: idp.audience });
    assert.equal(idp.requests('/jwks'), fetchesBefore + 1, 'an unknown kid made the verifier refetch once');
    await jwtVerify(oldToken, keys, { issuer: idp.issuer, audience: idp.audience });

    await idp.rotateKeys({ keepOld: false });
    const thirdKid = idp.currentKid();
    assert.deepEqual(await jwksKids(idp), [thirdKid]);
    const third = await idp.token();
    assert.equal(decodeProtectedHeader(third).kid, thirdKid);
    const fresh = remoteKeys(idp);
    await jwtVerify(third, fresh, { issuer: idp.issuer, audience: idp.audience });
    await assert.rejects(jwtVerify(oldToken, fresh, { issuer: idp.issuer, audience: idp.audience }), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });
});

test('down() refuses connections; up() serves again on the same port with the same keys', async () => {
  await withIdp({}, async (idp) => {
    const port = idp.port;
    const kidsBefore = await jwksKids(idp);
    const token = await idp.token();
    await idp.down();
    assert.equal(await connectionRefused(idp.jwksUri), 'ECONNREFUSED');
    assert.equal(await connectionRefused(`${idp.issuer}${DISCOVERY}`), 'ECONNREFUSED');
    await idp.up();
    assert.equal(idp.port, port);
    assert.deepEqual(await jwksKids(idp), kidsBefore);
    await jwtVerify(token, remoteKeys(idp), { issuer: idp.issuer, audience: idp.audience });
    const after = await idp.token();
    assert.equal(decodeProtectedHeader(after).kid, kidsBefore[0]);
  });
});

test('a fixed port is honoured', async () => {
  const probe = await startTestIdp();
  const port = probe.port;
  await probe.stop();
  await withIdp({ port }, async (idp) => {
    assert.equal(idp.port, port);
    assert.equal(idp.issuer, `http://127.0.0.1:${port}`);
    assert.equal((await fetch(idp.jwksUri)).status, 200);
  });
});

test('failNext: status answers n times then recovers; counts include failed requests', async () => {
  await withIdp({}, async (idp) => {
    idp.failNext('/jwks', 2, 503);
    assert.equal((await fetch(idp.jwksUri)).status, 503);
    assert.equal((await fetch(idp.jwksUri)).status, 503);
    assert.equal((await fetch(idp.jwksUri)).status, 200);
    assert.equal(idp.requests('/jwks'), 3);

    idp.failNext(DISCOVERY, 1, 500);
    assert.equal((await fetch(`${idp.issuer}${DISCOVERY}`)).status, 500);
    assert.equal((await fetch(`${idp.issuer}${DISCOVERY}`)).status, 200);
    assert.equal(idp.requests(DISCOVERY), 2);

    // What jose reports for an outage answered with a status: the lead maps this to keys_unavailable.
    idp.failNext('/jwks', 1, 503);
    const token = await idp.token();
    await assert.rejects(jwtVerify(token, remoteKeys(idp)), { code: 'ERR_JOSE_GENERIC' });
  });
});

test('failNext hang: the request never answers, a client timeout fires, the next request is served', async () => {
  await withIdp({}, async (idp) => {
    const token = await idp.token();
    idp.failNext('/jwks', 1, 'hang');
    await assert.rejects(jwtVerify(token, remoteKeys(idp, { timeoutDuration: 150 })), { code: 'ERR_JWKS_TIMEOUT' });
    assert.equal(idp.requests('/jwks'), 1);
    await jwtVerify(token, remoteKeys(idp), { issuer: idp.issuer, audience: idp.audience });
    assert.equal(idp.requests('/jwks'), 2);

    // A request still hanging when the IdP goes down is cut, not left open.
    idp.failNext('/jwks', 1, 'hang');
    const pending = fetch(idp.jwksUri).then(
      () => 'answered',
      () => 'cut',
    );
    for (let i = 0; i < 10_000 && idp.requests('/jwks') < 3; i++) await new Promise((r) => setImmediate(r));
    assert.equal(idp.requests('/jwks'), 3);
    await idp.down();
    assert.equal(await pending, 'cut');
  });
});
