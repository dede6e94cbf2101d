/**
 * The closed set of authentication results: metric label values and log fields. Each failure has one
 * fixed answer for the sender, which names the defect and never the credential.
 */
import { PipelineError } from '../../pipeline/service/errors.js';
import type { FailureReason } from '../../identity/reasons.js';

export const AUTH_RESULTS = [
  'ok',
  'missing',
  'wrong_scheme',
  'malformed',
  'ambiguous',
  'expired',
  'not_yet_valid',
  'bad_signature',
  'unknown_issuer',
  'unknown_key',
  'audience_mismatch',
  'algorithm_not_allowed',
  'username_missing',
  'keys_unavailable',
] as const;

export type AuthResult = (typeof AUTH_RESULTS)[number];
export type AuthFailure = Exclude<AuthResult, 'ok'>;

const MESSAGES: Record<AuthFailure, string> = {
  missing: 'missing bearer token',
  wrong_scheme: 'authorization scheme must be Bearer',
  malformed: 'malformed bearer token',
  ambiguous: 'more than one authorization value',
  expired: 'bearer token expired',
  not_yet_valid: 'bearer token not yet valid',
  bad_signature: 'bearer token signature is invalid',
  unknown_issuer: 'bearer token issuer is not accepted',
  unknown_key: 'bearer token signed with an unknown key',
  audience_mismatch: 'bearer token audience is not accepted',
  algorithm_not_allowed: 'bearer token algorithm is not allowed',
  username_missing: 'bearer token has no username claim',
  keys_unavailable: 'token issuer keys are unavailable; retry later',
};

/** A JWT verifier reason as an authentication result; reasons no JWT check produces count as malformed. */
export function fromJwtReason(reason: FailureReason): AuthFailure {
  return (AUTH_RESULTS as readonly string[]).includes(reason) && reason !== 'missing' ? (reason as AuthFailure) : 'malformed';
}

/**
 * The error answered for a failure. Unavailable keys are the daemon's problem, not the sender's: retryable,
 * so the sender keeps its spans and tries again.
 */
export function failureError(result: AuthFailure, retryAfterMs: number): PipelineError {
  if (result === 'keys_unavailable') return new PipelineError('UNAVAILABLE', MESSAGES[result], retryAfterMs);
  return new PipelineError('UNAUTHENTICATED', MESSAGES[result]);
}
