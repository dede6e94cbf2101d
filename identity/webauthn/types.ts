import type { KeyObject } from 'node:crypto';

/** Signature algorithms accepted for WebAuthn credentials (COSE -7, -257, -8). */
export type WebAuthnAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

/**
 * Closed set of failure codes; callers switch on them and they end up as span attribute values, so
 * they never carry assertion content.
 */
export type WebAuthnFailure =
  | 'malformed'
  | 'bad_signature'
  | 'unknown_key'
  | 'algorithm_not_allowed'
  | 'origin_mismatch'
  | 'rp_mismatch'
  | 'challenge_mismatch'
  | 'user_not_present'
  | 'user_not_verified'
  | 'replayed';

/** A credential public key from the configured JWKS; `kid` is the base64url credential id. */
export interface CredentialKey {
  readonly kid: string;
  readonly alg: WebAuthnAlgorithm;
  readonly key: KeyObject;
  /** The person the credential belongs to (`sub` or `user` of the JWK), if published. */
  readonly user?: string;
  /** The WebAuthn user handle registered with the credential (`user_handle` of the JWK), if published. */
  readonly userHandle?: string;
}
