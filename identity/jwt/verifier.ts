/**
 * Verifies a compact JWS token against the configured issuers, with jose's semantics (see jws.ts) and one
 * addition: the issuer is chosen from the allowlist by the token's (unverified) `iss` before anything
 * else, so a token from an unlisted issuer is refused without any fetch, and keys only ever come from that
 * issuer's configured key source. Header parameters that point at keys (`jku`, `x5u`, `jwk`, `x5c`) are
 * never used. Every failure maps to one reason code; nothing about the token is put in a message.
 */
import type { FailureReason } from '../reasons.js';
import type { Issuer } from './issuer.js';
import { checkClaims, checkHeader, parseCompact, signatureVerifies, type JwsKeySet, type ParsedJws } from './jws.js';

export interface JwtVerified {
  ok: true;
  issuer: Issuer;
  claims: Record<string, unknown>;
  /** When the token stops being valid (ms since epoch). */
  expiresAtMs: number;
}

export interface JwtRejected {
  ok: false;
  reason: FailureReason;
  /** The configured issuer the token claimed, when it named one. */
  issuer: Issuer | null;
}

export type JwtResult = JwtVerified | JwtRejected;

export class JwtVerifier {
  private readonly byIssuer = new Map<string, Issuer>();

  constructor(
    issuers: readonly Issuer[],
    private readonly maxTokenBytes: number,
  ) {
    for (const i of issuers) this.byIssuer.set(i.issuer, i);
  }

  issuer(iss: string): Issuer | undefined {
    return this.byIssuer.get(iss);
  }

  async verify(token: string, nowMs: number): Promise<JwtResult> {
    if (token.length > this.maxTokenBytes) return reject('malformed', null);
    const jws = parseCompact(token);
    if (jws === null) return reject('malformed', null);
    const iss = jws.payload['iss'];
    if (typeof iss !== 'string') return reject('malformed', null);
    const issuer = this.byIssuer.get(iss);
    if (issuer === undefined) return reject('unknown_issuer', null);
    const checked = checkHeader(jws.header, issuer.algorithms);
    if (checked === 'malformed' || checked === 'algorithm_not_allowed' || checked === 'unknown_key' || checked === 'bad_signature') return reject(checked, issuer);
    const alg = checked;
    const rawKid = jws.header['kid'];
    // jose matches no key for a kid that is not a string; neither do we.
    if (rawKid !== undefined && typeof rawKid !== 'string') return reject('unknown_key', issuer);
    const kid = rawKid;

    let keys = issuer.keys.current();
    if (keys === null) {
      // Never loaded, or stale beyond the limit: one load may be tried (subject to the cooldown).
      keys = await issuer.keys.refreshForUnknownKid();
      if (keys === null) return reject('keys_unavailable', issuer);
    }
    let candidates = keys.candidates(alg, kid);
    if (candidates.length === 0) {
      // A key we do not have: the issuer may have rotated. Refresh, at most once per cooldown.
      const fresh = await issuer.keys.refreshForUnknownKid();
      if (fresh === null) return reject('keys_unavailable', issuer);
      candidates = fresh === keys ? candidates : fresh.candidates(alg, kid);
      if (candidates.length === 0) return reject('unknown_key', issuer);
    }
    // Several candidates (no kid during a rotation overlap): any one verifying is enough, as in jose.
    if (!candidates.some((c) => signatureVerifies(jws, alg, c.key))) return reject('bad_signature', issuer);
    return this.claims(jws, issuer, nowMs);
  }

  private claims(jws: ParsedJws, issuer: Issuer, nowMs: number): JwtResult {
    const failure = checkClaims(jws.payload, issuer, Math.floor(nowMs / 1000));
    if (failure !== null) return reject(failure, issuer);
    const exp = jws.payload['exp'];
    return { ok: true, issuer, claims: jws.payload, expiresAtMs: typeof exp === 'number' ? exp * 1000 : Number.POSITIVE_INFINITY };
  }
}

function reject(reason: FailureReason, issuer: Issuer | null): JwtRejected {
  return { ok: false, reason, issuer };
}

export type { JwsKeySet };
