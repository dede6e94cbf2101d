/**
 * A small controllable JWKS + discovery server on loopback, independent of oidc-provider, for unit tests of
 * a key cache: what it serves, its Cache-Control, and its failures are all set by the test. Plus the signing
 * helpers tests use to mint tokens for the keys it publishes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTHeaderParameters, type JWTPayload } from 'jose';

export interface JsonWebKeySet {
  keys: JWK[];
}

/**
 * What the next matching requests get instead of the normal answer:
 * - 'hang': headers never sent; the socket stays open until down()/stop();
 * - a number: that HTTP status with a small JSON error body;
 * - 'invalid-json': 200 application/json whose body is not JSON;
 * - { oversized: n }: 200 application/json with a body of n bytes (a JWKS padded with a long string field);
 * - { drip: { intervalMs, chunkBytes } }: 200, headers at once, then the normal body chunkBytes at a time.
 */
export type JwksFault =
  | 'hang'
  | number
  | 'invalid-json'
  | { oversized: number }
  | { drip: { intervalMs: number; chunkBytes?: number } };

export interface JwksServer {
  /** http://127.0.0.1:PORT; also the issuer in the discovery document unless setDiscovery() says otherwise. */
  issuer: string;
  jwksUri: string;
  discoveryUrl: string;
  port: number;
  setKeys(jwks: JsonWebKeySet): void;
  /** Cache-Control on /jwks and discovery answers; undefined sends none. */
  setCacheControl(value: string | undefined): void;
  /** Replaces the discovery document (e.g. a different issuer or jwks_uri); undefined restores the default. */
  setDiscovery(doc: Record<string, unknown> | undefined): void;
  /** Requests seen by path ('/jwks', '/.well-known/openid-configuration', anything else). */
  requests(path: string): number;
  failNext(path: string, n: number, fault: JwksFault): void;
  /** Stops listening (connections refused, open sockets destroyed) / listens again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/jwks';

export async function startJwksServer(
  opts: { keys?: JsonWebKeySet; cacheControl?: string; port?: number } = {},
): Promise<JwksServer> {
  let jwks: JsonWebKeySet = opts.keys ?? { keys: [] };
  let cacheControl = opts.cacheControl;
  let discoveryOverride: Record<string, unknown> | undefined;
  const counts = new Map<string, number>();
  const faults = new Map<string, { left: number; fault: JwksFault }>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = opts.port ?? 0;
  let issuer = '';

  function discovery(): Record<string, unknown> {
    return (
      discoveryOverride ?? {
        issuer,
        jwks_uri: `${issuer}${JWKS_PATH}`,
        token_endpoint: `${issuer}/token`,
        id_token_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
      }
    );
  }

  function headers(length?: number): Record<string, string | number> {
    const h: Record<string, string | number> = { 'content-type': 'application/json' };
    if (cacheControl !== undefined) h['cache-control'] = cacheControl;
    if (length !== undefined) h['content-length'] = length;
    return h;
  }

  function drip(res: ServerResponse, body: Buffer, intervalMs: number, chunkBytes: number): void {
    res.writeHead(200, headers(body.length));
    res.flushHeaders();
    let offset = 0;
    const timer = setInterval(() => {
      if (res.destroyed) {
        clearInterval(timer);
        timers.delete(timer);
        return;
      }
      const end = Math.min(offset + chunkBytes, body.length);
      res.write(body.subarray(offset, end));
      offset = end;
      if (offset >= body.length) {
        clearInterval(timer);
        timers.delete(timer);
        res.end();
      }
    }, intervalMs);
    timers.add(timer);
  }

  function normalBody(path: string): Buffer | undefined {
    if (path === JWKS_PATH) return Buffer.from(JSON.stringify(jwks));
    if (path === DISCOVERY_PATH) return Buffer.from(JSON.stringify(discovery()));
    return undefined;
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    // No keep-alive: a client must not hold a pooled socket across down(), or its next request would fail
    // as a reset of that socket instead of the ECONNREFUSED an unreachable issuer gives.
    res.shouldKeepAlive = false;
    const f = faults.get(path);
    if (f && f.left > 0) {
      f.left--;
      const fault = f.fault;
      if (fault === 'hang') return;
      if (typeof fault === 'number') {
        res.writeHead(fault, headers()).end(JSON.stringify({ error: 'injected_fault', status: fault }));
        return;
      }
      if (fault === 'invalid-json') {
        res.writeHead(200, headers()).end('{"keys": [ {"kty": "RSA", ');
        return;
      }
      if ('oversized' in fault) {
        const prefix = '{"keys":[],"padding":"';
        const suffix = '"}';
        const fill = Math.max(0, fault.oversized - prefix.length - suffix.length);
        res.writeHead(200, headers()).end(prefix + 'A'.repeat(fill) + suffix);
        return;
      }
      drip(res, normalBody(path) ?? Buffer.from('{}'), fault.drip.intervalMs, fault.drip.chunkBytes ?? 1);
      return;
    }
    const body = normalBody(path);
    if (!body) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    res.writeHead(200, headers(body.length)).end(body);
  }

  function listen(): Promise<void> {
    const srv = createServer(onRequest);
    srv.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        srv.off('error', reject);
        port = (srv.address() as { port: number }).port;
        server = srv;
        resolve();
      });
    });
  }

  function close(): Promise<void> {
    for (const t of timers) clearInterval(t);
    timers.clear();
    const srv = server;
    server = undefined;
    if (!srv) return Promise.resolve();
    return new Promise((resolve) => {
      srv.close(() => resolve());
      for (const s of sockets) s.destroy();
      sockets.clear();
    });
  }

  await listen();
  issuer = `http://127.0.0.1:${port}`;

  return {
    issuer,
    jwksUri: `${issuer}${JWKS_PATH}`,
    discoveryUrl: `${issuer}${DISCOVERY_PATH}`,
    get port() {
      return port;
    },
    setKeys(next: JsonWebKeySet) {
      jwks = next;
    },
    setCacheControl(value: string | undefined) {
      cacheControl = value;
    },
    setDiscovery(doc: Record<string, unknown> | undefined) {
      discoveryOverride = doc;
    },
    requests(path: string) {
      return counts.get(path) ?? 0;
    },
    failNext(path: string, n: number, fault: JwksFault) {
      faults.set(path, { left: n, fault });
    },
    down: close,
    async up() {
      if (!server) await listen();
    },
    stop: close,
  };
}

export type SigningAlg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

export interface SigningKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  /** Public JWK with kid, alg and use 'sig', ready to publish. */
  publicJwk: JWK;
}

export async function makeSigningKey(alg: SigningAlg = 'RS256', kid = `k-${alg.toLowerCase()}-${Math.random().toString(36).slice(2, 10)}`): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk };
}

/** The JWKS publishing these keys' public halves. */
export function jwksOf(...keys: SigningKey[]): JsonWebKeySet {
  return { keys: keys.map((k) => k.publicJwk) };
}

/**
 * Signs `claims` exactly as given (no iat/exp added) with header { alg, kid, typ: 'JWT' } overridable by
 * `header` (e.g. a different kid, or extra fields like jku).
 */
export function signJwt(claims: JWTPayload, key: SigningKey, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header }).sign(key.privateKey);
}

/** Claims for a token valid now: iss, aud, sub, iat = now, exp = now + ttlSeconds, plus `extra`. */
export function validClaims(iss: string, aud: string, extra: JWTPayload = {}, ttlSeconds = 300): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { iss, aud, sub: 'user-1', iat: now, exp: now + ttlSeconds, ...extra };
}
