/**
 * `identity` processor configuration. Issuers are an allowlist; every key location is explicit.
 */
import { ASYMMETRIC_ALGORITHMS } from '../../identity/jwt/issuer.js';
import { s, type Infer } from '../../pipeline/config/schema.js';
import { keysSchema } from '../../identity/keys/config.js';
import { foldKey } from '../../pipeline/batch/key-matcher.js';
import { ATTR } from './attributes.js';

const issuerSchema = s
  .object({
    issuer: s.string({ nonEmpty: true }),
    jwks_uri: s.string({ nonEmpty: true }).optional(),
    jwks_file: s.string({ nonEmpty: true }).optional(),
    audiences: s.array(s.string({ nonEmpty: true })).default([]),
    /** Accept a token whatever its audience: must be said explicitly, as in the Collector's oidc auth. */
    ignore_audience: s.bool().default(false),
    algorithms: s.array(s.enum(...ASYMMETRIC_ALGORITHMS), { minItems: 1 }).default([...ASYMMETRIC_ALGORITHMS]),
    clock_skew: s.duration().default(60_000),
    required_claims: s.array(s.string({ nonEmpty: true })).default(['exp']),
    /** Plain-http discovery and JWKS URLs: for loopback tests and labs only. */
    allow_insecure_http: s.bool().default(false),
  })
  .refine((c) => (c.jwks_uri !== undefined && c.jwks_file !== undefined ? 'set jwks_uri or jwks_file, not both' : null))
  .refine((c) => {
    if (c.audiences.length === 0 && !c.ignore_audience) return `issuer ${c.issuer}: set audiences (a token issued to another client must not be accepted) or ignore_audience: true`;
    if (c.audiences.length > 0 && c.ignore_audience) return `issuer ${c.issuer}: set audiences or ignore_audience, not both`;
    return null;
  })
  .refine((c) => {
    if (c.jwks_uri !== undefined || c.jwks_file !== undefined) return null;
    try {
      const u = new URL(c.issuer);
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && c.allow_insecure_http)) return `issuer ${c.issuer} must be an https URL for OIDC discovery (or set jwks_uri or jwks_file)`;
    } catch {
      return `issuer ${c.issuer} is not a URL: set jwks_uri or jwks_file, or use an https issuer URL for OIDC discovery`;
    }
    return null;
  });


const evidenceSchema = s.object({
  key: s.string({ nonEmpty: true }),
  /** An auth scheme before the token ("Bearer"), matched case-insensitively; absent for a bare token. */
  scheme: s.string({ nonEmpty: true }).optional(),
});

const ruleSchema = s.object({
  name: s.string({ nonEmpty: true }),
  match: s.object({
    service_name: s.array(s.string()).optional(),
    span_name: s.array(s.string()).optional(),
    attributes: s.map(s.string()).optional(),
  }),
  require: s.object({
    verified: s.bool().default(true),
    phishing_resistant: s.bool().default(false),
    roles_any: s.array(s.string({ nonEmpty: true })).default([]),
    methods: s.array(s.enum('jwt', 'webauthn')).default([]),
    issuers: s.array(s.string({ nonEmpty: true })).default([]),
  }),
});

const claimPath = s.string({ nonEmpty: true });

const originSchema = s.string({ pattern: /^https?:\/\/[^/\s]+$/, patternHint: 'an origin such as https://app.example.com (scheme, host, optional port; no path)' });

export const webauthnSchema = s
  .object({
    /** The span attribute holding an AuthenticationResponseJSON. */
    attribute: s.string({ nonEmpty: true }).default('webauthn.assertion'),
    rp_id: s.string({ nonEmpty: true, pattern: /^[a-z0-9.-]+$/i, patternHint: 'a domain such as example.com' }),
    origins: s.array(originSchema, { minItems: 1 }),
    allow_cross_origin: s.bool().default(false),
    top_origins: s.array(originSchema).optional(),
    user_verification: s.enum('required', 'preferred').default('preferred'),
    /** span: the challenge must be base64url(SHA-256(traceId ‖ spanId)) of the carrying span. */
    challenge: s.enum('span', 'none').default('span'),
    /** A non-zero signature counter at or below the highest seen: flag the span, or fail it. */
    on_counter_regression: s.enum('tag', 'fail').default('tag'),
    algorithms: s.array(s.enum('ES256', 'RS256', 'EdDSA'), { minItems: 1 }).default(['ES256', 'RS256', 'EdDSA']),
    credentials_jwks_uri: s.string({ nonEmpty: true }).optional(),
    credentials_jwks_file: s.string({ nonEmpty: true }).optional(),
    allow_insecure_http: s.bool().default(false),
    max_credentials: s.int({ min: 1 }).default(100_000),
    replay_window: s.duration().default(600_000),
    max_replay_entries: s.int({ min: 1 }).default(100_000),
  })
  .refine((c) => {
    const n = (c.credentials_jwks_uri !== undefined ? 1 : 0) + (c.credentials_jwks_file !== undefined ? 1 : 0);
    return n === 1 ? null : 'set exactly one of credentials_jwks_uri or credentials_jwks_file';
  })
  .refine((c) => (c.top_origins !== undefined && !c.allow_cross_origin ? 'top_origins needs allow_cross_origin: true' : null));

export const identitySchema = s
  .object({
    jwt_attributes: s.array(evidenceSchema).default([
      { key: 'http.request.header.authorization', scheme: 'Bearer' },
      { key: 'http.request.header.x-pomerium-jwt-assertion', scheme: undefined },
    ]),
    max_token_bytes: s.int({ min: 256, max: 1_048_576 }).default(16_384),
    issuers: s.array(issuerSchema).default([]),
    webauthn: webauthnSchema.optional(),
    keys: keysSchema,
    /** Span attribute ← claim path (or a list of paths, the first present wins). Dotted paths reach nested claims. */
    claims: s.map(s.oneOrMany(claimPath)).default({ 'enduser.id': ['sub'], 'user.roles': ['roles', 'groups'] }),
    pseudonymize: s
      .object({
        key: s.string({ nonEmpty: true }).optional(),
        key_file: s.string({ nonEmpty: true }).optional(),
      })
      .refine((c) => (c.key !== undefined && c.key_file !== undefined ? 'set key or key_file, not both' : null))
      .optional(),
    on_missing: s.enum('pass', 'tag', 'drop').default('pass'),
    on_invalid: s.enum('drop', 'tag').default('drop'),
    on_keys_unavailable: s.enum('tag', 'refuse').default('tag'),
    /** How long a batch waits for keys to load; spans still undecided then take on_keys_unavailable. */
    max_key_wait: s.duration().default(500),
    /**
     * Credentials wherever they appear, removed on every span and replaced by a fingerprint: values of
     * sensitive headers (by the key's last dotted segment, any case, any level), secret query parameters
     * of URL attributes, and JWT- or WebAuthn-shaped values in any string.
     */
    scrub: s.object({
      enabled: s.bool().default(true),
      header_names: s
        .array(s.string({ nonEmpty: true }))
        .default(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'x-pomerium-jwt-assertion', 'lightstep-access-token']),
      url_attributes: s.array(s.string({ nonEmpty: true })).default(['url.full', 'url.query', 'url.original', 'http.url', 'http.target']),
      query_parameters: s.array(s.string({ nonEmpty: true })).default(['access_token', 'id_token', 'code', 'token']),
      tokens: s.bool().default(true),
    }),
    rules: s.array(ruleSchema).default([]),
    sender: s.object({ attributes: s.map(claimPath).default({}) }),
    cache: s.object({
      max_entries: s.int({ min: 16 }).default(10_000),
      /** Bytes the decision caches may hold (credentials and what was decided for them), all together. */
      max_bytes: s.int({ min: 65_536 }).default(32 * 1_048_576),
      max_ttl: s.duration().default(600_000),
      failure_ttl: s.duration().default(30_000),
    }),
    audit: s.object({ enabled: s.bool().default(true), max_per_second: s.int({ min: 1 }).default(20) }),
  })
  .refine((c) => (c.issuers.length === 0 && c.webauthn === undefined ? 'at least one issuer is required under issuers (or a webauthn section)' : null))
  .refine((c) => {
    // A claim written under one of the processor's own keys would sit beside (or stand in for) a fact the
    // processor proves; compared as the strip pass compares keys (case and surrounding blanks ignored).
    const own = new Map<string, string>(Object.values(ATTR).map((k) => [foldKey(k), k]));
    for (const k of Object.keys(c.sender.attributes)) own.set(foldKey(k), `sender attribute ${k}`);
    const bad = Object.keys(c.claims).filter((t) => own.has(foldKey(t)));
    return bad.length === 0 ? null : `claims: ${bad.map((t) => `${t} is the processor's own output (${own.get(foldKey(t))})`).join('; ')}; map claims to other attributes`;
  })
  .refine((c) => {
    const seen = new Set<string>();
    for (const i of c.issuers) {
      if (seen.has(i.issuer)) return `issuer ${i.issuer} is listed twice`;
      seen.add(i.issuer);
    }
    return null;
  });

export type IdentityConfig = Infer<typeof identitySchema>;
export type RuleConfig = IdentityConfig['rules'][number];
export type WebAuthnConfig = Infer<typeof webauthnSchema>;
