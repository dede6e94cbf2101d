/**
 * Why a credential was not accepted: the closed set of codes written to `identity.failure`, used as metric
 * label values and in audit lines. Operators alert on these, so they never change meaning.
 */
export const FAILURE_REASONS = [
  'missing',
  'expired',
  'not_yet_valid',
  'bad_signature',
  'unknown_issuer',
  'unknown_key',
  'audience_mismatch',
  'algorithm_not_allowed',
  'malformed',
  'policy',
  'keys_unavailable',
  // WebAuthn
  'origin_mismatch',
  'rp_mismatch',
  'challenge_mismatch',
  'user_not_present',
  'user_not_verified',
  'replayed',
  'counter_regression',
] as const;

export type FailureReason = (typeof FAILURE_REASONS)[number];
