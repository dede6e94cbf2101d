/** A configured token issuer at run time: its checks and its key source. */
import type { KeySource } from '../keys/key-source.js';
import { JwsKeySet } from './jws.js';

import type { JwtAlgorithm } from './algorithms.js';

export { ASYMMETRIC_ALGORITHMS, type JwtAlgorithm } from './algorithms.js';

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
