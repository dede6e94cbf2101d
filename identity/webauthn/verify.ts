/**
 * Verification of a parsed WebAuthn assertion against a credential key and a relying-party policy,
 * following the order of WebAuthn Level 3 §7.2 (client data, then authenticator data, then signature),
 * so the reason reported is the first step that fails.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import type { ParsedAssertion } from './assertion.js';
import type { CredentialKey, WebAuthnAlgorithm, WebAuthnFailure } from './types.js';

export interface AssertionPolicy {
  /** SHA-256 of the RP ID, computed once at start-up (see rpIdHash()). */
  readonly rpIdHash: Buffer;
  readonly origins: ReadonlySet<string>;
  /** Whether a ceremony inside a cross-origin iframe is acceptable at all. */
  readonly allowCrossOrigin: boolean;
  /** When cross-origin is allowed, the top-level origins accepted; absent means any. */
  readonly allowedTopOrigins?: ReadonlySet<string>;
  readonly requireUserVerification: boolean;
  /** Algorithms accepted; absent means all supported ones. */
  readonly allowedAlgorithms?: ReadonlySet<WebAuthnAlgorithm>;
}

export type VerifyResult =
  | {
      readonly ok: true;
      readonly userVerified: boolean;
      readonly backupEligible: boolean;
      readonly backupState: boolean;
      readonly signCount: number;
    }
  | { readonly ok: false; readonly reason: WebAuthnFailure };

function fail(reason: WebAuthnFailure): VerifyResult {
  return FAILURES[reason];
}

const FAILURES: Readonly<Record<WebAuthnFailure, VerifyResult>> = Object.freeze({
  malformed: Object.freeze({ ok: false, reason: 'malformed' }),
  bad_signature: Object.freeze({ ok: false, reason: 'bad_signature' }),
  unknown_key: Object.freeze({ ok: false, reason: 'unknown_key' }),
  algorithm_not_allowed: Object.freeze({ ok: false, reason: 'algorithm_not_allowed' }),
  origin_mismatch: Object.freeze({ ok: false, reason: 'origin_mismatch' }),
  rp_mismatch: Object.freeze({ ok: false, reason: 'rp_mismatch' }),
  challenge_mismatch: Object.freeze({ ok: false, reason: 'challenge_mismatch' }),
  user_not_present: Object.freeze({ ok: false, reason: 'user_not_present' }),
  user_not_verified: Object.freeze({ ok: false, reason: 'user_not_verified' }),
  replayed: Object.freeze({ ok: false, reason: 'replayed' }),
} satisfies Record<WebAuthnFailure, VerifyResult>);

const KEY_TYPE: Readonly<Record<WebAuthnAlgorithm, string>> = { ES256: 'ec', RS256: 'rsa', EdDSA: 'ed25519' };

/** SHA-256 of an RP ID, for AssertionPolicy.rpIdHash. */
export function rpIdHash(rpId: string): Buffer {
  return createHash('sha256').update(rpId, 'utf8').digest();
}

/**
 * The challenge a span-bound assertion must carry: base64url(SHA-256(traceId ‖ spanId)), binding the
 * approval to the one span it was made for.
 */
export function spanChallenge(traceId: Uint8Array, spanId: Uint8Array): string {
  return createHash('sha256').update(traceId).update(spanId).digest('base64url');
}

/**
 * Verifies `a` with `key` (already looked up by credential id). `expectedChallenge` null means the
 * challenge is not bound to anything this daemon can know.
 */
export function verifyAssertion(
  a: ParsedAssertion,
  key: CredentialKey,
  policy: AssertionPolicy,
  expectedChallenge: string | null,
): VerifyResult {
  if (key.kid !== a.id) return fail('unknown_key');
  if (policy.allowedAlgorithms !== undefined && !policy.allowedAlgorithms.has(key.alg)) return fail('algorithm_not_allowed');
  // A key of another type would be verified under the wrong scheme; refuse rather than guess.
  if (key.key.asymmetricKeyType !== KEY_TYPE[key.alg]) return fail('algorithm_not_allowed');

  // §7.2 steps 11-14: client data.
  const c = a.clientData;
  if (c.type !== 'webauthn.get') return fail('malformed');
  if (expectedChallenge !== null && c.challenge !== expectedChallenge) return fail('challenge_mismatch');
  if (!policy.origins.has(c.origin)) return fail('origin_mismatch');
  if (c.crossOrigin === true && !policy.allowCrossOrigin) return fail('origin_mismatch');
  if (c.topOrigin !== undefined) {
    // topOrigin is only ever set for a cross-origin ceremony.
    if (c.crossOrigin !== true || !policy.allowCrossOrigin) return fail('origin_mismatch');
    if (policy.allowedTopOrigins !== undefined && !policy.allowedTopOrigins.has(c.topOrigin)) return fail('origin_mismatch');
  } else if (c.crossOrigin === true && policy.allowedTopOrigins !== undefined) {
    // A list of top origins cannot be honoured when the client (pre-Level 3) does not say which it was.
    return fail('origin_mismatch');
  }

  // Steps 15-18: authenticator data.
  const authData = a.authenticatorData;
  if (policy.rpIdHash.length !== 32 || policy.rpIdHash.compare(authData, 0, 32, 0, 32) !== 0) return fail('rp_mismatch');
  if (!a.userPresent) return fail('user_not_present');
  if (policy.requireUserVerification && !a.userVerified) return fail('user_not_verified');
  if (a.backupState && !a.backupEligible) return fail('malformed');

  // Steps 21-22: signature over authenticatorData ‖ SHA-256(clientDataJSON).
  const signed = Buffer.concat([authData, createHash('sha256').update(a.clientDataJSON).digest()]);
  let valid: boolean;
  try {
    // ES256 signatures arrive DER-encoded, Node's default for EC keys; RS256 is PKCS#1 v1.5, the RSA
    // default; Ed25519 takes no digest.
    valid = cryptoVerify(key.alg === 'EdDSA' ? null : 'sha256', signed, key.key, a.signature);
  } catch {
    valid = false;
  }
  if (!valid) return fail('bad_signature');
  return {
    ok: true,
    userVerified: a.userVerified,
    backupEligible: a.backupEligible,
    backupState: a.backupState,
    signCount: a.signCount,
  };
}
