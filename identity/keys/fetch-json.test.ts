import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { fetchJson, KeyFetchError, type FetchFailure, type FetchLimits } from './fetch-json.js';
import { jwksOf, makeSigningKey, startJwksServer, type JwksServer } from '../../test/helpers/jwks-server.js';
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from '../../test/helpers/exporter-tls.js';

const HTTP_OK: FetchLimits = { timeoutMs: 2_000, maxBytes: 64 * 1024, allowInsecureHttp: true };

interface Plain {
  url: string;
  requests: number;
  stop(): Promise<void>;
}

/** A bare loopback server whose handler the test writes; counts every request it gets. */
async function plainServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  server: Server = createServer(),
  scheme: 'http' | 'https' = 'http',
): Promise<Plain> {
  const state = { requests: 0 };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    state.requests++;
    res.shouldKeepAlive = false;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function failure(p: Promise<unknown>): Promise<KeyFetchError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KeyFetchError, `expected a KeyFetchError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the fetch to fail');
}

async function assertFails(p: Promise<unknown>, code: FetchFailure, message?: RegExp): Promise<KeyFetchError> {
  const err = await failure(p);
  assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
  if (message) assert.match(err.message, message);
  return err;
}

async function withJwks(fn: (srv: JwksServer) => Promise<void>): Promise<void> {
  const key = await makeSigningKey('ES256', 'k1');
  const srv = await startJwksServer({ keys: jwksOf(key) });
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

test('a JWKS over allowed http is read with its body', async () => {
  await withJwks(async (srv) => {
    const got = await fetchJson(srv.jwksUri, HTTP_OK);
    const body = got.body as { keys: { kid: string }[] };
    assert.deepEqual(
      body.keys.map((k) => k.kid),
      ['k1'],
    );
    assert.equal(got.maxAgeMs, null, 'no Cache-Control header means no max-age');
    assert.equal(srv.requests('/jwks'), 1);
  });
});

test('plain http is refused with insecure_url and no request is made', async () => {
  await withJwks(async (srv) => {
    const err = await assertFails(fetchJson(srv.jwksUri, { ...HTTP_OK, allowInsecureHttp: false }), 'insecure_url', /must use https/);
    assert.match(err.message, /allow_insecure_http/);
    assert.equal(srv.requests('/jwks'), 0, 'an insecure URL must be refused before any connection');
  });
});

test('URLs that are not http(s) or not URLs at all are refused as insecure_url', async () => {
  for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/jwks', 'not a url', 'data:application/json,{"keys":[]}']) {
    await assertFails(fetchJson(url, HTTP_OK), 'insecure_url');
  }
});

test('a redirect is not followed: it is an error and the target gets no request', async () => {
  const target = await plainServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}'));
  const redirector = await plainServer((_req, res) => res.writeHead(302, { location: `${target.url}/jwks` }).end());
  try {
    const err = await failure(fetchJson(`${redirector.url}/jwks`, HTTP_OK));
    assert.equal(err.code, 'network', `a redirect should fail as a network error, got ${err.code}: ${err.message}`);
    assert.match(err.message, /redirect/);
    assert.equal(redirector.requests, 1);
    assert.equal(target.requests, 0, 'the redirect target must never be contacted');
  } finally {
    await redirector.stop();
    await target.stop();
  }
});

test('a hanging server gives timeout', async () => {
  await withJwks(async (srv) => {
    srv.failNext('/jwks', 1, 'hang');
    await assertFails(fetchJson(srv.jwksUri, { ...HTTP_OK, timeoutMs: 200 }), 'timeout', /200 ms/);
    assert.equal(srv.requests('/jwks'), 1);
  });
});

test('a body that arrives too slowly gives timeout too', async () => {
  await withJwks(async (srv) => {
    // Headers at once, then one byte every 100 ms: the timeout covers reading the body, not just the headers.
    srv.failNext('/jwks', 1, { drip: { intervalMs: 100, chunkBytes: 1 } });
    await assertFails(fetchJson(srv.jwksUri, { ...HTTP_OK, timeoutMs: 200 }), 'timeout');
  });
});

test('a declared Content-Length over the limit gives too_large without reading the body', async () => {
  await withJwks(async (srv) => {
    const small = { ...HTTP_OK, maxBytes: 50 };
    await assertFails(fetchJson(srv.jwksUri, small), 'too_large', /over the 50-byte limit/);
    // Dripping with Content-Length set: refused on the header, long before the drip could finish (~1 byte/50 ms).
    srv.failNext('/jwks', 1, { drip: { intervalMs: 50, chunkBytes: 1 } });
    await assertFails(fetchJson(srv.jwksUri, { ...small, timeoutMs: 1_000 }), 'too_large');
  });
});

test('an oversized body without Content-Length gives too_large', async () => {
  await withJwks(async (srv) => {
    srv.failNext('/jwks', 1, { oversized: 200_000 });
    await assertFails(fetchJson(srv.jwksUri, { ...HTTP_OK, maxBytes: 100_000 }), 'too_large');
  });
});

test('a chunked stream without Content-Length is cut off once over the limit (the reading stops)', async () => {
  const total = 4 * 1024 * 1024;
  const state = { written: 0, closedEarly: false };
  let closed!: () => void;
  const whenClosed = new Promise<void>((resolve) => (closed = resolve));
  const srv = await plainServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"keys":[],"padding":"');
    const chunk = 'A'.repeat(1024);
    const timer = setInterval(() => {
      if (state.written >= total) {
        clearInterval(timer);
        res.end('"}');
        return;
      }
      res.write(chunk);
      state.written += chunk.length;
    }, 1);
    res.on('close', () => {
      clearInterval(timer);
      state.closedEarly = state.written < total;
      closed();
    });
  });
  try {
    await assertFails(fetchJson(`${srv.url}/jwks`, { ...HTTP_OK, maxBytes: 8 * 1024, timeoutMs: 10_000 }), 'too_large');
    const guard = setTimeout(() => closed(), 5_000);
    await whenClosed;
    clearTimeout(guard);
    assert.ok(state.closedEarly, 'the client must close the connection instead of reading the rest of the body');
    assert.ok(state.written < 1024 * 1024, `the server could write ${state.written} bytes after the limit was hit`);
  } finally {
    await srv.stop();
  }
});

test('a body that is not JSON gives invalid_json', async () => {
  await withJwks(async (srv) => {
    srv.failNext('/jwks', 1, 'invalid-json');
    await assertFails(fetchJson(srv.jwksUri, HTTP_OK), 'invalid_json', /not valid JSON/);
  });
});

test('any status other than 200 gives http_status naming the status', async () => {
  await withJwks(async (srv) => {
    for (const status of [500, 503, 401, 204]) {
      srv.failNext('/jwks', 1, status);
      await assertFails(fetchJson(srv.jwksUri, HTTP_OK), 'http_status', new RegExp(`HTTP ${status}`));
    }
    await assertFails(fetchJson(`${srv.issuer}/nothing-here`, HTTP_OK), 'http_status', /HTTP 404/);
  });
});

test('a refused connection gives network', async () => {
  const srv = await startJwksServer();
  const url = srv.jwksUri;
  await srv.stop();
  await assertFails(fetchJson(url, HTTP_OK), 'network', /ECONNREFUSED/);
});

test('Cache-Control: max-age is returned in ms; no-store and no-cache mean 0; anything else null', async () => {
  await withJwks(async (srv) => {
    const cases: [string | undefined, number | null][] = [
      ['max-age=300', 300_000],
      ['public, max-age=60, must-revalidate', 60_000],
      ['max-age="120"', 120_000],
      ['MAX-AGE=5', 5_000],
      ['max-age=0', 0],
      ['no-store', 0],
      ['no-cache', 0],
      ['max-age=3600, no-store', 0],
      ['private', null],
      [undefined, null],
    ];
    for (const [header, expected] of cases) {
      srv.setCacheControl(header);
      const got = await fetchJson(srv.jwksUri, HTTP_OK);
      assert.equal(got.maxAgeMs, expected, `Cache-Control ${String(header)}`);
    }
  });
});

test('https is accepted without allow_insecure_http, and an https redirect down to http is not followed', async () => {
  // fetch() trusts only the system CAs; point its dispatcher at the test CA for this process only.
  const dispatcherKey = Symbol.for('undici.globalDispatcher.1');
  const g = globalThis as unknown as Record<symbol, { constructor: new (o: unknown) => { close(): Promise<void> } } | undefined>;
  await fetch('http://127.0.0.1:1/').catch(() => undefined);
  const previous = g[dispatcherKey];
  assert.ok(previous, 'the built-in fetch dispatcher exists');
  const trusting = new previous.constructor({ connect: { ca: TEST_CA_PEM } });
  g[dispatcherKey] = trusting as never;
  const plain = await plainServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}'));
  const tls = await plainServer((req, res) => {
    if (req.url === '/down') res.writeHead(301, { location: `${plain.url}/jwks` }).end();
    else res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=10' }).end('{"keys":[]}');
  }, createHttpsServer({ cert: TEST_SERVER_CERT_PEM, key: TEST_SERVER_KEY_PEM }), 'https');
  try {
    assert.match(tls.url, /^https:/);
    const strict: FetchLimits = { ...HTTP_OK, allowInsecureHttp: false };
    const got = await fetchJson(`${tls.url}/jwks`, strict);
    assert.deepEqual(got.body, { keys: [] });
    assert.equal(got.maxAgeMs, 10_000);
    const err = await failure(fetchJson(`${tls.url}/down`, strict));
    assert.notEqual(err.code, 'insecure_url');
    assert.equal(plain.requests, 0, 'a downgrade redirect must never reach the http server');
  } finally {
    g[dispatcherKey] = previous as never;
    await trusting.close();
    await tls.stop();
    await plain.stop();
  }
});
