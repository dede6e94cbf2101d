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

/**
 * How long a verification failure may be reused. Failures that can change on their own are not cached
 * (keys come back, a rotated key gets published); the others briefly, so a flood of one bad credential
 * costs one check. Reasons outside this set (a component's own, such as a missing header) get `ttl`.
 */
export function failureCacheTtl(reason: string, ttl: number): number {
  switch (reason) {
    case 'keys_unavailable':
    case 'unknown_key':
      return 0;
    case 'not_yet_valid':
      return Math.min(ttl, 1000);
    default:
      return ttl;
  }
}
