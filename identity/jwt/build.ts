/** Builds issuers with their key sources from configuration: shared by the identity processor and the oidc extension. */
import type { KeysConfig } from '../keys/config.js';
import { KeySource, type KeySourceEvents } from '../keys/key-source.js';
import { discoveryLoader, fileLoader, urlLoader } from '../keys/locations.js';
import { parseJwks, type Issuer, type JwtAlgorithm } from './issuer.js';
import type { JwsKeySet } from './jws.js';

export interface IssuerSettings {
  issuer: string;
  jwks_uri?: string | undefined;
  jwks_file?: string | undefined;
  audiences: readonly string[];
  algorithms: readonly JwtAlgorithm[];
  clock_skew: number;
  required_claims: readonly string[];
  allow_insecure_http: boolean;
}

export type KeyTiming = KeysConfig;

export function keySourceTiming(k: KeyTiming) {
  return {
    refreshIntervalMs: k.refresh_interval,
    minRefreshIntervalMs: k.min_refresh_interval,
    maxRefreshIntervalMs: k.max_refresh_interval,
    unknownKidCooldownMs: k.unknown_kid_cooldown,
    maxStaleMs: k.max_stale,
  };
}

export function buildIssuer(c: IssuerSettings, k: KeyTiming, events: (issuer: string) => KeySourceEvents): Issuer {
  const limits = { timeoutMs: k.fetch_timeout, maxBytes: k.max_response_bytes, allowInsecureHttp: c.allow_insecure_http };
  const load = c.jwks_file !== undefined ? fileLoader(c.jwks_file) : c.jwks_uri !== undefined ? urlLoader(c.jwks_uri, limits) : discoveryLoader(c.issuer, limits);
  const keys = new KeySource<JwsKeySet>({ name: c.issuer, load, parse: parseJwks, timing: keySourceTiming(k), events: events(c.issuer) });
  return {
    issuer: c.issuer,
    audiences: c.audiences,
    algorithms: c.algorithms,
    clockSkewSec: Math.ceil(c.clock_skew / 1000),
    requiredClaims: c.required_claims,
    keys,
  };
}
