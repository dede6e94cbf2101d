/**
 * Compact JWS verification on node:crypto, synchronously, with jose's semantics: jose 6 verifies through
 * WebCrypto, which in Node is an asynchronous job costing several times the signature check itself
 * (measured in bench/identity.ts). Key selection follows jose's local JWKS rules; claims checks follow
 * jose's jwtVerify. The tests hold both to the same answers on the adversarial token set.
 */
import { createPublicKey, constants, verify, type KeyObject } from 'node:crypto';
import type { JwtAlgorithm } from './algorithms.js';

export type JwsFailure = 'malformed' | 'algorithm_not_allowed' | 'unknown_key' | 'bad_signature';

interface Algorithm {
  kty: 'RSA' | 'EC' | 'OKP';
  hash: string | null;
  /** EC curve or OKP subtype the key must have. */
  crv?: string;
  pss?: boolean;
  /** ECDSA signature length (r ‖ s) in bytes. */
  sigLength?: number;
}

const ALGORITHMS: Record<JwtAlgorithm, Algorithm> = {
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: true },
  PS384: { kty: 'RSA', hash: 'sha384', pss: true },
  PS512: { kty: 'RSA', hash: 'sha512', pss: true },
  ES256: { kty: 'EC', hash: 'sha256', crv: 'P-256', sigLength: 64 },
  ES384: { kty: 'EC', hash: 'sha384', crv: 'P-384', sigLength: 96 },
  ES512: { kty: 'EC', hash: 'sha512', crv: 'P-521', sigLength: 132 },
  EdDSA: { kty: 'OKP', hash: null, crv: 'Ed25519' },
};

interface Member {
  kid: string | undefined;
  kty: string;
  alg: string | undefined;
  crv: string | undefined;
  key: KeyObject;
}

/** The usable signing keys of one JWKS document. */
export class JwsKeySet {
  private constructor(
    private readonly members: readonly Member[],
    readonly skipped: number,
  ) {}

  /**
   * Imports every member that can verify signatures. A member that cannot (private-only use, wrong
   * `use`/`key_ops`, unsupported type, RSA under 2048 bits, invalid material) is skipped, not fatal,
   * so one bad key cannot take the issuer's others down. Throws when the document is not a JWKS.
   */
  static fromJwks(body: unknown): JwsKeySet {
    const set = body as { keys?: unknown } | null;
    if (set === null || typeof set !== 'object' || !Array.isArray(set.keys)) throw new Error('not a JSON Web Key Set: no keys array');
    const members: Member[] = [];
    let skipped = 0;
    for (const raw of set.keys as unknown[]) {
      const m = importMember(raw);
      if (m === null) skipped++;
      else members.push(m);
    }
    return new JwsKeySet(members, skipped);
  }

  get size(): number {
    return this.members.length;
  }

  /** Keys that may verify a token with this header, by jose's rules (kid, kty, alg, curve). */
  candidates(alg: JwtAlgorithm, kid: string | undefined): Member[] {
    const a = ALGORITHMS[alg];
    const out: Member[] = [];
    for (const m of this.members) {
      if (m.kty !== a.kty) continue;
      if (kid !== undefined && m.kid !== kid) continue;
      if (m.alg !== undefined && m.alg !== alg) continue;
      if (a.crv !== undefined && m.crv !== a.crv) continue;
      out.push(m);
    }
    return out;
  }
}

function importMember(raw: unknown): Member | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const j = raw as Record<string, unknown>;
  if (typeof j['kty'] !== 'string') return null;
  if (j['use'] !== undefined && j['use'] !== 'sig') return null;
  if (j['key_ops'] !== undefined && !(Array.isArray(j['key_ops']) && j['key_ops'].includes('verify'))) return null;
  if (j['kid'] !== undefined && typeof j['kid'] !== 'string') return null;
  if (j['alg'] !== undefined && typeof j['alg'] !== 'string') return null;
  let key: KeyObject;
  try {
    // Public members only: a private key published by mistake is still used only as its public half.
    const pub: Record<string, unknown> = { kty: j['kty'] };
    for (const k of ['n', 'e', 'crv', 'x', 'y']) if (j[k] !== undefined) pub[k] = j[k];
    key = createPublicKey({ key: pub as never, format: 'jwk' });
  } catch {
    return null;
  }
  if (j['kty'] === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return null;
  return { kid: j['kid'] as string | undefined, kty: j['kty'], alg: j['alg'] as string | undefined, crv: j['crv'] as string | undefined, key };
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export interface ParsedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** The signed input: ASCII of `header.payload`. */
  signingInput: Buffer;
  signature: Buffer;
}

/** Splits and decodes a compact JWS; null when it is not one (jose: JWSInvalid / JWTInvalid). */
export function parseCompact(token: string): ParsedJws | null {
  const a = token.indexOf('.');
  const b = a < 0 ? -1 : token.indexOf('.', a + 1);
  if (a <= 0 || b < 0 || token.indexOf('.', b + 1) !== -1) return null;
  const h = token.slice(0, a);
  const p = token.slice(a + 1, b);
  const s = token.slice(b + 1);
  if (!B64URL.test(h) || !B64URL.test(p) || !B64URL.test(s) || s.length % 4 === 1 || p.length % 4 === 1 || h.length % 4 === 1) return null;
  const headerBytes = Buffer.from(h, 'base64url');
  // The header's JSON must open at once (no blank first): so every credential starts `ey`/`ew` and is
  // recognisable wherever a copy of it turns up. Stricter than jose, which allows leading whitespace.
  if (headerBytes[0] !== 0x7b) return null;
  const header = jsonObject(headerBytes);
  const payload = jsonObject(Buffer.from(p, 'base64url'));
  if (header === null || payload === null) return null;
  const signature = Buffer.from(s, 'base64url');
  // Base64url's last character can carry unused bits: another spelling of the same signature would verify
  // as a different token string (a different cache entry and fingerprint). One spelling is accepted, the
  // canonical one, which every JWS library writes. Stricter than jose, which decodes leniently.
  if (signature.toString('base64url') !== s) return null;
  return { header, payload, signingInput: Buffer.from(token.slice(0, b), 'ascii'), signature };
}

function jsonObject(bytes: Buffer): Record<string, unknown> | null {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Checks a parsed JWS's signature with one key; false when it does not verify. */
export function signatureVerifies(jws: ParsedJws, alg: JwtAlgorithm, key: KeyObject): boolean {
  const a = ALGORITHMS[alg];
  try {
    if (a.kty === 'EC') {
      if (jws.signature.length !== a.sigLength) return false;
      return verify(a.hash, jws.signingInput, { key, dsaEncoding: 'ieee-p1363' }, jws.signature);
    }
    if (a.pss) return verify(a.hash, jws.signingInput, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, jws.signature);
    return verify(a.hash, jws.signingInput, key, jws.signature);
  } catch {
    return false;
  }
}

/**
 * Header checks jose makes before any key is used: `alg` present and allowed; `crit` understood (none
 * is, for a JWT: jose refuses every extension it does not implement, and `b64: false` is not a JWT).
 */
export function checkHeader(header: Record<string, unknown>, allowed: readonly string[]): JwsFailure | JwtAlgorithm {
  const alg = header['alg'];
  if (typeof alg !== 'string') return 'malformed';
  if (header['crit'] !== undefined) return 'malformed';
  if (!allowed.includes(alg) || !(alg in ALGORITHMS)) return 'algorithm_not_allowed';
  return alg as JwtAlgorithm;
}

export type ClaimsFailure = 'expired' | 'not_yet_valid' | 'audience_mismatch' | 'unknown_issuer' | 'malformed';

/** jose's validateClaimsSet for the options tracewarden uses. `now` in seconds. */
export function checkClaims(
  payload: Record<string, unknown>,
  opts: { issuer: string; audiences: readonly string[]; clockSkewSec: number; requiredClaims: readonly string[] },
  now: number,
): ClaimsFailure | null {
  for (const c of opts.requiredClaims) if (!(c in payload)) return 'malformed';
  if (payload['iss'] !== opts.issuer) return 'unknown_issuer';
  if (opts.audiences.length > 0) {
    const aud = payload['aud'];
    const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!list.some((x) => typeof x === 'string' && opts.audiences.includes(x))) return 'audience_mismatch';
  }
  for (const c of ['iat', 'nbf', 'exp']) if (payload[c] !== undefined && typeof payload[c] !== 'number') return 'malformed';
  const nbf = payload['nbf'] as number | undefined;
  if (nbf !== undefined && nbf > now + opts.clockSkewSec) return 'not_yet_valid';
  const exp = payload['exp'] as number | undefined;
  if (exp !== undefined && exp <= now - opts.clockSkewSec) return 'expired';
  return null;
}
