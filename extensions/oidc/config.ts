/**
 * `oidc` extension configuration, in the shape of the Collector's oidcauthextension: one provider written
 * flat at the top (`issuer_url`, `audience`, ...) and/or a `providers:` list (the flat one comes first, as
 * in the Collector), plus tracewarden's own options (key locations, algorithms, clock skew, cache, key
 * timing).
 */
import { ASYMMETRIC_ALGORITHMS, type JwtAlgorithm } from '../../identity/jwt/issuer.js';
import { s, type Infer, type Schema } from '../../pipeline/config/schema.js';
import { keysSchema } from '../../identity/keys/config.js';

const DEFAULT_USERNAME_CLAIM = 'sub';

/**
 * A key fetch trusts Node's CA store only (global fetch has no per-request CA), so a private CA cannot be
 * honoured per provider: refusing beats silently verifying against a different trust store.
 */
export const ISSUER_CA_PATH_UNSUPPORTED =
  'issuer_ca_path is not supported yet: key fetches trust the system CA store only; add the CA with NODE_EXTRA_CA_CERTS=<file> and remove issuer_ca_path';

/**
 * The per-provider keys. Everything is optional here so the same shape serves the flat form, where an
 * absent issuer_url means "providers are listed instead"; defaults are applied by resolveProviders().
 */
const providerShape = {
  issuer_url: s.string({ nonEmpty: true }).optional(),
  issuer_ca_path: s.string({ nonEmpty: true }).optional(),
  audience: s.string({ nonEmpty: true }).optional(),
  /** Collector key: accept any audience. Off by default; set it only when the issuer's audiences are meaningless. */
  ignore_audience: s.bool().optional(),
  username_claim: s.string({ nonEmpty: true }).optional(),
  groups_claim: s.string({ nonEmpty: true }).optional(),
  jwks_uri: s.string({ nonEmpty: true }).optional(),
  jwks_file: s.string({ nonEmpty: true }).optional(),
  /** The Collector's name for a local JWKS file (no discovery); the same as jwks_file. */
  public_keys_file: s.string({ nonEmpty: true }).optional(),
  algorithms: s.array(s.enum(...ASYMMETRIC_ALGORITHMS), { minItems: 1 }).optional(),
  clock_skew: s.duration().optional(),
  /** Plain-http discovery and JWKS URLs: for loopback tests and labs only. */
  allow_insecure_http: s.bool().optional(),
};

type ProviderInput = { [K in keyof typeof providerShape]: Infer<(typeof providerShape)[K]> };

const providerSchema: Schema<ProviderInput> = s.object(providerShape).refine((p) => (p.issuer_url === undefined ? 'issuer_url is required for each provider' : null));

export const oidcSchema = s
  .object({
    ...providerShape,
    providers: s.array(providerSchema, { minItems: 1 }).optional(),
    /** The request header carrying `Bearer <token>` (Collector key). */
    attribute: s.string({ nonEmpty: true }).default('authorization'),
    max_token_bytes: s.int({ min: 256, max: 1_048_576 }).default(16_384),
    cache: s.object({
      max_entries: s.int({ min: 16 }).default(10_000),
      /** Bytes each of the verified and failed tables may hold. */
      max_bytes: s.int({ min: 65_536 }).default(16 * 1_048_576),
      /** A verified token is reused until its exp, but never for longer than this. */
      max_ttl: s.duration().default(600_000),
      failure_ttl: s.duration().default(30_000),
    }),
    keys: keysSchema,
  })
  .refine((c) => {
    const flatKeys = (Object.keys(providerShape) as (keyof ProviderInput)[]).filter((k) => c[k] !== undefined);
    if (flatKeys.length > 0 && c.issuer_url === undefined) return `issuer_url is required: the flat provider keys (${flatKeys.join(', ')}) describe a provider`;
    if (c.providers === undefined && c.issuer_url === undefined) return 'issuer_url (or a providers list) is required';
    return null;
  })
  .refine((c) => {
    const seen = new Set<string>();
    for (const p of providerInputs(c)) {
      const problem = checkProvider(p);
      if (problem !== null) return problem;
      if (seen.has(p.issuer_url!)) return `issuer_url ${p.issuer_url} is listed twice`;
      seen.add(p.issuer_url!);
    }
    return null;
  });

export type OidcConfig = Infer<typeof oidcSchema>;
export type KeysConfig = OidcConfig['keys'];

/** One provider with every default applied. */
export interface ProviderConfig {
  issuer_url: string;
  audience: string | undefined;
  ignore_audience: boolean;
  username_claim: string;
  groups_claim: string | undefined;
  jwks_uri: string | undefined;
  jwks_file: string | undefined;
  algorithms: readonly JwtAlgorithm[];
  clock_skew: number;
  allow_insecure_http: boolean;
}

/** The flat provider (when issuer_url is set at the top) first, then the listed ones, as the Collector orders them. */
function providerInputs(c: OidcConfig): ProviderInput[] {
  return [...(c.issuer_url !== undefined ? [c] : []), ...(c.providers ?? [])];
}

export function resolveProviders(c: OidcConfig): ProviderConfig[] {
  return providerInputs(c).map((p) => ({
    issuer_url: p.issuer_url!,
    audience: p.audience,
    ignore_audience: p.ignore_audience ?? false,
    username_claim: p.username_claim ?? DEFAULT_USERNAME_CLAIM,
    groups_claim: p.groups_claim,
    jwks_uri: p.jwks_uri,
    jwks_file: p.jwks_file ?? p.public_keys_file,
    algorithms: p.algorithms ?? [...ASYMMETRIC_ALGORITHMS],
    clock_skew: p.clock_skew ?? 60_000,
    allow_insecure_http: p.allow_insecure_http ?? false,
  }));
}

function checkProvider(p: ProviderInput): string | null {
  const name = `provider ${p.issuer_url}`;
  if (p.issuer_ca_path !== undefined) return `${name}: ${ISSUER_CA_PATH_UNSUPPORTED}`;
  if (p.audience === undefined && p.ignore_audience !== true) return `${name}: audience is required (or ignore_audience: true)`;
  if (p.audience !== undefined && p.ignore_audience === true) return `${name}: set audience or ignore_audience, not both`;
  const locations = (['jwks_uri', 'jwks_file', 'public_keys_file'] as const).filter((k) => p[k] !== undefined);
  if (locations.length > 1) return `${name}: set only one of ${locations.join(', ')}`;
  const insecureOk = p.allow_insecure_http === true;
  if (p.jwks_uri !== undefined) return urlProblem(p.jwks_uri, insecureOk, `${name}: jwks_uri`);
  if (locations.length === 1) return null;
  return urlProblem(p.issuer_url!, insecureOk, `${name}: issuer_url (used for OIDC discovery)`);
}

function urlProblem(url: string, insecureOk: boolean, what: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${what} is not a URL`;
  }
  if (u.protocol === 'https:' || (u.protocol === 'http:' && insecureOk)) return null;
  return `${what} must be an https URL (plain http only with allow_insecure_http: true)`;
}
