import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { discoveryLoader, fileLoader, urlLoader, type Loader } from './locations.js';
import { KeyFetchError, type FetchFailure } from './fetch-json.js';
import { DISCOVERY_PATH, JWKS_PATH, jwksOf, makeSigningKey, startJwksServer, type JwksServer } from '../../test/helpers/jwks-server.js';
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from '../../test/helpers/exporter-tls.js';

const HTTP_OK = { timeoutMs: 2_000, maxBytes: 64 * 1024, allowInsecureHttp: true };
const HTTPS_ONLY = { ...HTTP_OK, allowInsecureHttp: false };

async function withJwks(fn: (srv: JwksServer) => Promise<void>): Promise<void> {
  const srv = await startJwksServer({ keys: jwksOf(await makeSigningKey('ES256', 'disc-1')) });
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

async function loadFails(load: Loader, code: FetchFailure, message: RegExp): Promise<KeyFetchError> {
  try {
    await load();
  } catch (err) {
    assert.ok(err instanceof KeyFetchError, `expected a KeyFetchError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return err;
  }
  assert.fail('expected the load to fail');
}

function syncFails(fn: () => unknown, code: FetchFailure): void {
  assert.throws(fn, (err: unknown) => err instanceof KeyFetchError && err.code === code);
}

test('discovery of a JwksServer issuer loads the keys from its jwks_uri', async () => {
  await withJwks(async (srv) => {
    srv.setCacheControl('max-age=120');
    const load = discoveryLoader(srv.issuer, HTTP_OK);
    assert.equal(srv.requests(DISCOVERY_PATH), 0, 'building the loader fetches nothing');
    const got = await load();
    assert.deepEqual(
      (got.body as { keys: { kid: string }[] }).keys.map((k) => k.kid),
      ['disc-1'],
    );
    assert.equal(got.maxAgeMs, 120_000, 'max-age comes from the JWKS answer');
    assert.equal(srv.requests(DISCOVERY_PATH), 1);
    assert.equal(srv.requests(JWKS_PATH), 1);
    await load();
    assert.equal(srv.requests(DISCOVERY_PATH), 2, 'the document is re-read on each load');
  });
});

test('discovery follows a changed jwks_uri on the next load', async () => {
  await withJwks(async (srv) => {
    const other = await startJwksServer({ keys: jwksOf(await makeSigningKey('ES256', 'moved')) });
    try {
      const load = discoveryLoader(srv.issuer, HTTP_OK);
      await load();
      srv.setDiscovery({ issuer: srv.issuer, jwks_uri: other.jwksUri });
      const got = await load();
      assert.deepEqual(
        (got.body as { keys: { kid: string }[] }).keys.map((k) => k.kid),
        ['moved'],
      );
      assert.equal(other.requests(JWKS_PATH), 1);
    } finally {
      await other.stop();
    }
  });
});

test('an issuer configured with a trailing slash builds the discovery URL without a double slash', async () => {
  await withJwks(async (srv) => {
    srv.setDiscovery({ issuer: `${srv.issuer}/`, jwks_uri: srv.jwksUri });
    await discoveryLoader(`${srv.issuer}/`, HTTP_OK)();
    assert.equal(srv.requests(DISCOVERY_PATH), 1);
    assert.equal(srv.requests(JWKS_PATH), 1);
  });
});

test('a discovery document naming a different issuer is refused and its jwks_uri is not fetched', async () => {
  await withJwks(async (srv) => {
    const attacker = await startJwksServer({ keys: jwksOf(await makeSigningKey('ES256', 'evil')) });
    try {
      srv.setDiscovery({ issuer: 'https://other-issuer.example', jwks_uri: attacker.jwksUri });
      const err = await loadFails(discoveryLoader(srv.issuer, HTTP_OK), 'invalid_json', /does not match the configured issuer/);
      assert.ok(err.message.includes(srv.issuer));
      assert.equal(attacker.requests(JWKS_PATH), 0);
      assert.equal(srv.requests(JWKS_PATH), 0);

      // Exact comparison: a trailing slash is a different issuer (OpenID Connect Discovery 4.3).
      srv.setDiscovery({ issuer: `${srv.issuer}/`, jwks_uri: srv.jwksUri });
      await loadFails(discoveryLoader(srv.issuer, HTTP_OK), 'invalid_json', /does not match/);
      assert.equal(srv.requests(JWKS_PATH), 0);
    } finally {
      await attacker.stop();
    }
  });
});

test('discovery documents without a usable jwks_uri, broken or failing, are refused before any JWKS fetch', async () => {
  await withJwks(async (srv) => {
    srv.setDiscovery({ issuer: srv.issuer });
    await loadFails(discoveryLoader(srv.issuer, HTTP_OK), 'invalid_json', /no jwks_uri/);
    srv.setDiscovery({ issuer: srv.issuer, jwks_uri: 42 });
    await loadFails(discoveryLoader(srv.issuer, HTTP_OK), 'invalid_json', /no jwks_uri/);
    srv.setDiscovery(undefined);
    srv.failNext(DISCOVERY_PATH, 1, 'invalid-json');
    await loadFails(discoveryLoader(srv.issuer, HTTP_OK), 'invalid_json', /not valid JSON/);
    srv.failNext(DISCOVERY_PATH, 1, 500);
    await loadFails(discoveryLoader(srv.issuer, HTTP_OK), 'http_status', /HTTP 500/);
    assert.equal(srv.requests(JWKS_PATH), 0);
  });
});

test('http locations are refused when building the loader unless http is allowed', async () => {
  await withJwks(async (srv) => {
    syncFails(() => discoveryLoader(srv.issuer, HTTPS_ONLY), 'insecure_url');
    syncFails(() => urlLoader(srv.jwksUri, HTTPS_ONLY), 'insecure_url');
    syncFails(() => urlLoader('not a url', HTTP_OK), 'insecure_url');
    assert.equal(srv.requests(DISCOVERY_PATH) + srv.requests(JWKS_PATH), 0);
    const got = await urlLoader(srv.jwksUri, HTTP_OK)();
    assert.equal((got.body as { keys: unknown[] }).keys.length, 1);
  });
});

/** An https discovery endpoint (test CA) whose document the test sets. */
async function httpsDiscovery(doc: (issuer: string) => unknown): Promise<{ issuer: string; server: Server }> {
  const state = { issuer: '' };
  const server = createHttpsServer({ cert: TEST_SERVER_CERT_PEM, key: TEST_SERVER_KEY_PEM }, (_req, res) => {
    res.shouldKeepAlive = false;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc(state.issuer)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.issuer = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { issuer: state.issuer, server };
}

test('a jwks_uri in an https discovery document that points at http is refused when http is not allowed', async () => {
  // fetch() trusts only the system CAs; point its dispatcher at the test CA for this process only.
  const dispatcherKey = Symbol.for('undici.globalDispatcher.1');
  const g = globalThis as unknown as Record<symbol, { constructor: new (o: unknown) => { close(): Promise<void> } } | undefined>;
  await fetch('http://127.0.0.1:1/').catch(() => undefined);
  const previous = g[dispatcherKey];
  assert.ok(previous);
  const trusting = new previous.constructor({ connect: { ca: TEST_CA_PEM } });
  g[dispatcherKey] = trusting as never;
  await withJwks(async (plainJwks) => {
    const disc = await httpsDiscovery((issuer) => ({ issuer, jwks_uri: plainJwks.jwksUri }));
    try {
      const err = await loadFails(discoveryLoader(disc.issuer, HTTPS_ONLY), 'insecure_url', /must use https/);
      assert.ok(err.message.includes(plainJwks.jwksUri));
      assert.equal(plainJwks.requests(JWKS_PATH), 0, 'the http jwks_uri must not be contacted');
      // The same document is fine where http is allowed: only the https rule refused it.
      const got = await discoveryLoader(disc.issuer, HTTP_OK)();
      assert.equal((got.body as { keys: unknown[] }).keys.length, 1);
    } finally {
      await new Promise<void>((resolve) => disc.server.close(() => resolve()));
      g[dispatcherKey] = previous as never;
      await trusting.close();
    }
  });
});

test('the file loader reads a JWKS file; a missing or broken file is reported by path, never by contents', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tw-jwks-'));
  try {
    const jwks = jwksOf(await makeSigningKey('EdDSA', 'file-key'));
    const good = join(dir, 'keys.json');
    await writeFile(good, JSON.stringify(jwks));
    const got = await fileLoader(good)();
    assert.deepEqual(got.body, jwks);
    assert.equal(got.maxAgeMs, null);

    const missing = join(dir, 'nope.json');
    const err = await loadFails(fileLoader(missing), 'network', /ENOENT/);
    assert.ok(err.message.includes(missing), 'the message names the path');

    const secret = 'super-secret-private-material-0123456789';
    const broken = join(dir, 'broken.json');
    await writeFile(broken, `{"keys": [{"d": "${secret}"`);
    const bad = await loadFails(fileLoader(broken), 'invalid_json', /not valid JSON/);
    assert.ok(bad.message.includes(broken));
    assert.ok(!bad.message.includes(secret), 'the file contents must not appear in the message');

    const err2 = await loadFails(fileLoader(dir), 'network', /EISDIR/);
    assert.ok(err2.message.includes(dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
