/** A configured token issuer at run time: its checks and its key source. */
import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import type { KeySource } from '../keys/key-source.js';

export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

export interface IssuerPolicy {
  issuer: string;
  audiences: readonly string[];
  algorithms: readonly JwtAlgorithm[];
  clockSkewSec: number;
  requiredClaims: readonly string[];
}

export interface Issuer extends IssuerPolicy {
  keys: KeySource<JWTVerifyGetKey>;
}

/** Parses a JWKS document into jose's key lookup; throws when it is not a JWKS. */
export function parseJwks(body: unknown): { keys: JWTVerifyGetKey; count: number } {
  const set = body as { keys?: unknown } | null;
  if (set === null || typeof set !== 'object' || !Array.isArray(set.keys)) throw new Error('not a JSON Web Key Set: no keys array');
  return { keys: createLocalJWKSet(set as Parameters<typeof createLocalJWKSet>[0]), count: set.keys.length };
}
