/**
 * A real OpenID provider (panva/oidc-provider) on loopback that issues real JWT access tokens through its
 * token endpoint (client_credentials grant), for testing the identity processor and the oidc extension
 * against the same software an operator would run. Requests go through our own node:http server so tests
 * can count fetches per path, inject faults, and take the issuer down and up on the same port.
 *
 * Quirks of oidc-provider 9 this helper works around:
 * - Per-request options (claims, audience, TTL) cannot travel as extra token-endpoint parameters (the
 *   endpoint strips unknown ones), so each token() call registers its options under a one-off resource
 *   indicator `urn:tracewarden:test:req:N`; getResourceServerInfo and extraTokenClaims look them up.
 * - extraTokenClaims cannot override the registered claims (jti, sub, iat, exp, scope, client_id, iss, aud):
 *   the provider spreads them before its own. `sub` is overridden afterwards by the JWT format customizer;
 *   the other registered claims always come from the provider.
 * - The signing keystore is fixed when a Provider is built, so rotateKeys() builds a new Provider behind the
 *   same server; issuer, port and counters stay.
 * - Access tokens carry header typ 'at+jwt' (RFC 9068) and an http:// loopback issuer is accepted as is.
 * - The provider's /jwks answer has no Cache-Control; cache-policy tests belong on jwks-server.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import Provider, { type Adapter, type AdapterPayload, type Configuration, type JWK as OidcJwk, type KoaContextWithOIDC } from 'oidc-provider';
import type { SigningKey } from './jwks-server.js';

export type IdpAlg = 'RS256' | 'ES256' | 'PS256' | 'EdDSA';

export interface TokenOptions {
  /** Extra claims (amr, acr, roles, groups, nested objects...). `sub` replaces the client id as subject. */
  claims?: Record<string, unknown>;
  /** The token's `aud`; defaults to the IdP's audience. */
  audience?: string;
  /** Lifetime in whole seconds (>= 1); defaults to 300. */
  ttlSeconds?: number;
}

export interface TestIdp {
  /** http://127.0.0.1:PORT, no trailing slash; discovery at /.well-known/openid-configuration. */
  issuer: string;
  jwksUri: string;
  tokenEndpoint: string;
  port: number;
  /** The audience tokens carry unless token() says otherwise. */
  audience: string;
  clientId: string;
  clientSecret: string;
  /** A real JWT access token from the token endpoint (client_credentials, HTTP POST), signed with the current key. */
  token(opts?: TokenOptions): Promise<string>;
  /** Generates a new signing key and makes it the one that signs; `keepOld` (default true) keeps the previous public key published. */
  rotateKeys(opts?: { keepOld?: boolean }): Promise<void>;
  /** Stops listening (connections refused) / starts again on the SAME port with the same keys. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Requests seen by path ('/jwks', '/.well-known/openid-configuration', '/token'...). */
  requests(path: string): number;
  /** The next n requests to `path` hang (never answered until down()/stop()) or get the given HTTP status. */
  failNext(path: string, n: number, mode: 'hang' | number): void;
  currentKid(): string;
  /**
   * The current private signing key, for minting tokens the token endpoint will not issue (expired,
   * not-yet-valid, wrong iss/aud) but that carry a genuine signature from this issuer.
   */
  signingKey(): Promise<SigningKey>;
  stop(): Promise<void>;
}

interface PendingRequest {
  audience: string;
  ttl: number;
  claims: Record<string, unknown>;
}

const REQUEST_RESOURCE_PREFIX = 'urn:tracewarden:test:req:';
const DEFAULT_TTL_SECONDS = 300;

/**
 * Per-IdP in-memory storage. The provider's built-in one works too but warns on every construction; JWT
 * client-credentials tokens are barely stored anyway.
 */
function memoryAdapter(): (name: string) => Adapter {
  const store = new Map<string, AdapterPayload>();
  return (name: string): Adapter => {
    const key = (id: string): string => `${name}:${id}`;
    const findBy = async (field: 'userCode' | 'uid', value: string): Promise<AdapterPayload | undefined> => {
      for (const [k, p] of store) if (k.startsWith(`${name}:`) && p[field] === value) return p;
      return undefined;
    };
    return {
      upsert: async (id, payload) => void store.set(key(id), payload),
      find: async (id) => store.get(key(id)),
      findByUserCode: (userCode) => findBy('userCode', userCode),
      findByUid: (uid) => findBy('uid', uid),
      consume: async (id) => {
        const p = store.get(key(id));
        if (p) p.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => void store.delete(key(id)),
      revokeByGrantId: async (grantId) => {
        for (const [k, p] of store) if (p.grantId === grantId) store.delete(k);
      },
    };
  };
}

async function newPrivateJwk(alg: IdpAlg, kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid, alg, use: 'sig' };
}

export async function startTestIdp(opts: { alg?: IdpAlg; audience?: string; port?: number } = {}): Promise<TestIdp> {
  const alg: IdpAlg = opts.alg ?? 'RS256';
  const defaultAudience = opts.audience ?? 'tracewarden';
  const clientId = 'tracewarden-test-client';
  const clientSecret = 'tracewarden-test-secret-0123456789abcdef';

  let keyCounter = 0;
  const nextKid = (): string => `idp-${alg.toLowerCase()}-${++keyCounter}-${Date.now().toString(36)}`;
  // Newest first: the first key is the one that signs, the rest are only published.
  let keys: JWK[] = [await newPrivateJwk(alg, nextKid())];

  const counts = new Map<string, number>();
  const faults = new Map<string, { left: number; mode: 'hang' | number }>();
  const pending = new Map<string, PendingRequest>();
  let requestCounter = 0;
  const adapter = memoryAdapter();

  let server: Server | undefined;
  const sockets = new Set<Socket>();
  let port = opts.port ?? 0;
  let issuer = '';
  let provider: Provider | undefined;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  function lookup(identifier: string | undefined): PendingRequest | undefined {
    return identifier === undefined ? undefined : pending.get(identifier);
  }

  function buildProvider(): void {
    const signingKid = keys[0]!.kid!;
    const configuration: Configuration = {
      adapter,
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: keys as OidcJwk[] },
      clientDefaults: { id_token_signed_response_alg: alg },
      enabledJWA: { idTokenSigningAlgValues: [alg] },
      features: {
        clientCredentials: { enabled: true },
        devInteractions: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => `${REQUEST_RESOURCE_PREFIX}default`,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, resourceIndicator) => {
            const req = lookup(resourceIndicator);
            return {
              scope: 'api',
              audience: req?.audience ?? defaultAudience,
              accessTokenFormat: 'jwt',
              accessTokenTTL: req?.ttl ?? DEFAULT_TTL_SECONDS,
              jwt: { sign: { alg, kid: signingKid } },
            };
          },
        },
      },
      extraTokenClaims: (_ctx, token) => {
        const req = lookup(token.resourceServer?.identifier());
        if (!req) return undefined;
        const { sub: _sub, ...rest } = req.claims;
        return rest;
      },
      formats: {
        customizers: {
          jwt: (_ctx, token, parts) => {
            const req = lookup(token.resourceServer?.identifier());
            if (req && typeof req.claims.sub === 'string') parts.payload.sub = req.claims.sub;
          },
        },
      },
      ttl: {
        ClientCredentials: (_ctx: KoaContextWithOIDC, token) => token.resourceServer?.accessTokenTTL ?? DEFAULT_TTL_SECONDS,
      },
    };
    provider = new Provider(issuer, configuration);
    handler = provider.callback();
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    // No keep-alive: a client must not hold a pooled socket across down(), or its next request would fail
    // as a reset of that socket instead of the ECONNREFUSED an unreachable issuer gives.
    res.shouldKeepAlive = false;
    const fault = faults.get(path);
    if (fault && fault.left > 0) {
      fault.left--;
      if (fault.mode === 'hang') return; // answered by nobody; the socket is destroyed on down()/stop()
      res.writeHead(fault.mode, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'injected_fault', status: fault.mode }));
      return;
    }
    handler!(req, res);
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
  buildProvider();

  const tokenEndpoint = `${issuer}/token`;
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;

  const idp: TestIdp = {
    issuer,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint,
    get port() {
      return port;
    },
    audience: defaultAudience,
    clientId,
    clientSecret,

    async token(o: TokenOptions = {}) {
      const ttl = o.ttlSeconds ?? DEFAULT_TTL_SECONDS;
      if (!Number.isInteger(ttl) || ttl < 1) throw new TypeError('ttlSeconds must be a whole number >= 1');
      const resource = `${REQUEST_RESOURCE_PREFIX}${++requestCounter}`;
      pending.set(resource, { audience: o.audience ?? defaultAudience, ttl, claims: o.claims ?? {} });
      try {
        const res = await fetch(tokenEndpoint, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'api' }).toString(),
        });
        const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
        if (!res.ok || typeof body.access_token !== 'string') {
          throw new Error(`token endpoint answered ${res.status}: ${body.error ?? ''} ${body.error_description ?? ''}`);
        }
        return body.access_token;
      } finally {
        pending.delete(resource);
      }
    },

    async rotateKeys(o: { keepOld?: boolean } = {}) {
      const fresh = await newPrivateJwk(alg, nextKid());
      keys = o.keepOld === false ? [fresh] : [fresh, ...keys];
      buildProvider();
    },

    down: close,

    async up() {
      if (server) return;
      await listen();
    },

    requests(path: string) {
      return counts.get(path) ?? 0;
    },

    failNext(path: string, n: number, mode: 'hang' | number) {
      faults.set(path, { left: n, mode });
    },

    currentKid() {
      return keys[0]!.kid!;
    },

    async signingKey() {
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = keys[0]!;
      const privateKey = (await importJWK(keys[0]!, alg)) as CryptoKey;
      return { alg, kid: keys[0]!.kid!, privateKey, publicJwk };
    },

    async stop() {
      await close();
      provider = undefined;
      handler = undefined;
    },
  };
  return idp;
}
