/** A configured token issuer at run time: its checks and its key source. */
import type { KeySource } from '../keys/key-source.js';
import { JwsKeySet } from './jws.js';

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
  keys: KeySource<JwsKeySet>;
}

/** Parses a JWKS document into the issuer's usable keys; throws when it is not a JWKS or has none. */
export function parseJwks(body: unknown): { keys: JwsKeySet; count: number } {
  const keys = JwsKeySet.fromJwks(body);
  if (keys.size === 0 && keys.skipped > 0) throw new Error(`no usable signing key among ${keys.skipped}`);
  return { keys, count: keys.size };
}
