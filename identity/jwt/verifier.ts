/**
 * Verifies a compact JWS token against the configured issuers, with jose's semantics and one addition:
 * the issuer is chosen from the allowlist by the token's (unverified) `iss` before anything else, so a
 * token from an unlisted issuer is refused without any fetch, and keys only ever come from that
 * issuer's configured key source. Header parameters that point at keys (`jku`, `x5u`, `jwk`, `x5c`) are
 * never used. Every failure maps to one reason code; nothing about the token is put in a message.
 */
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { FailureReason } from '../reasons.js';
import type { Issuer } from './issuer.js';

export interface JwtVerified {
  ok: true;
  issuer: Issuer;
  claims: JWTPayload;
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

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

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
    if (token.length > this.maxTokenBytes || !COMPACT_JWS.test(token)) return reject('malformed', null);
    let iss: unknown;
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
      iss = decodeJwt(token).iss;
    } catch {
      return reject('malformed', null);
    }
    if (typeof iss !== 'string') return reject('malformed', null);
    const issuer = this.byIssuer.get(iss);
    if (issuer === undefined) return reject('unknown_issuer', null);
    if (typeof alg !== 'string' || !(issuer.algorithms as readonly string[]).includes(alg)) return reject('algorithm_not_allowed', issuer);

    let keys = issuer.keys.current();
    if (keys === null) {
      // Never loaded, or stale beyond the limit: one load may be tried (subject to the cooldown).
      keys = await issuer.keys.refreshForUnknownKid();
      if (keys === null) return reject('keys_unavailable', issuer);
    }
    const firstKeys = keys;
    const getKey: JWTVerifyGetKey = async (header, tok) => {
      try {
        return await firstKeys(header, tok);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
        // A key we do not have: the issuer may have rotated. Refresh, at most once per cooldown.
        const fresh = await issuer.keys.refreshForUnknownKid();
        if (fresh === null || fresh === firstKeys) throw err;
        return fresh(header, tok);
      }
    };
    const options = {
      issuer: issuer.issuer,
      audience: issuer.audiences.length > 0 ? (issuer.audiences as string[]) : undefined,
      algorithms: issuer.algorithms as string[],
      clockTolerance: issuer.clockSkewSec,
      requiredClaims: issuer.requiredClaims as string[],
      currentDate: new Date(nowMs),
    };
    try {
      const { payload } = await jwtVerify(token, getKey, options);
      return verified(issuer, payload);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') return reject(reasonFor(err), issuer);
      // A token without a kid while the issuer publishes several keys of its type (a rotation overlap):
      // try each candidate, as jose documents; none verifying is a bad signature.
      let last: unknown = err;
      for await (const key of err as AsyncIterable<Parameters<typeof jwtVerify>[1] & object>) {
        try {
          const { payload } = await jwtVerify(token, key as never, options);
          return verified(issuer, payload);
        } catch (e) {
          last = e;
          if ((e as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') break;
        }
      }
      return reject((last as { code?: string }).code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' ? 'bad_signature' : reasonFor(last), issuer);
    }
  }
}

function verified(issuer: Issuer, payload: JWTPayload): JwtVerified {
  const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY;
  return { ok: true, issuer, claims: payload, expiresAtMs: exp };
}

function reject(reason: FailureReason, issuer: Issuer | null): JwtRejected {
  return { ok: false, reason, issuer };
}

/** jose error codes to reason codes. */
export function reasonFor(err: unknown): FailureReason {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return 'not_yet_valid';
      if (e.claim === 'aud') return 'audience_mismatch';
      if (e.claim === 'iss') return 'unknown_issuer';
      return 'malformed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm_not_allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknown_key';
    default:
      return 'malformed';
  }
}
