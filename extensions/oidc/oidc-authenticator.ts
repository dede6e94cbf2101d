/**
 * Authenticates OTLP senders by an OIDC bearer token, as the Collector's oidcauthextension does: the token
 * must be a JWT from one of the configured providers (chosen by its `iss`), for that provider's audience,
 * signed by a key from that provider's discovery document (or configured JWKS). Keys are shared machinery
 * with the identity processor (identity/jwt, identity/keys).
 *
 * A sender reuses one token for many requests, so each decision is cached: a success until the token's
 * exp (bounded by cache.max_ttl), a failure briefly, and concurrent requests with the same token share one
 * verification. The token is a cache key in memory only; it is never logged, counted or answered.
 */
import type { Counter } from 'prom-client';
import { LRUCache } from 'lru-cache';
import type { Authenticator, ComponentSettings, Host, SenderAuth } from '../../pipeline/service/component.js';
import type { PipelineError } from '../../pipeline/service/errors.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import { buildIssuer } from '../../identity/jwt/build.js';
import type { Issuer } from '../../identity/jwt/issuer.js';
import { JwtVerifier } from '../../identity/jwt/verifier.js';
import { failureCacheTtl } from '../../identity/reasons.js';
import { resolveProviders, type OidcConfig, type ProviderConfig } from './config.js';
import { AUTH_RESULTS, failureError, fromJwtReason, type AuthFailure, type AuthResult } from './results.js';

type Headers = Readonly<Record<string, string | string[] | undefined>>;

interface Decision {
  auth: SenderAuth | null;
  result: AuthResult;
  validUntilMs: number;
}

interface ProviderRuntime {
  config: ProviderConfig;
  issuer: Issuer;
}

// Blanks around the value are not part of it (RFC 9110 field values): HTTP/1.1 parsers drop them and
// HTTP/2 does not, so they are ignored here, the same for both transports.
const BEARER = /^[ \t]*bearer[ \t]+([^ \t]+)[ \t]*$/i;

export class OidcAuthenticator implements Authenticator {
  private readonly providers = new Map<string, ProviderRuntime>();
  private readonly verifier: JwtVerifier;
  /** Separate tables, so a flood of distinct bad tokens cannot evict the senders that are verified. */
  private readonly verified: LRUCache<string, Decision>;
  private readonly failures: LRUCache<string, Decision>;
  private readonly inflight = new Map<string, Promise<Decision>>();
  private readonly header: string;
  private readonly counters: Map<AuthResult, Counter.Internal>;
  private readonly errors: Map<AuthFailure, PipelineError>;
  private readonly logger: Logger;
  private readonly missing: Decision;
  private readonly wrongScheme: Decision;
  private readonly malformed: Decision;
  private readonly ambiguous: Decision;

  constructor(
    private readonly settings: ComponentSettings,
    private readonly config: OidcConfig,
  ) {
    const { id, telemetry } = settings;
    this.logger = settings.logger.child({ component: id });
    this.header = config.attribute.toLowerCase();
    const keyFetches = telemetry.counter('tracewarden_identity_key_fetches_total', 'Key set loads by configured issuer or credential set, and outcome.', ['issuer', 'outcome']);
    const keysLoaded = telemetry.gauge('tracewarden_identity_keys_loaded', 'Keys currently loaded per configured issuer or credential set.', ['issuer']);
    for (const p of resolveProviders(config)) {
      const issuer = buildIssuer(
        {
          issuer: p.issuer_url,
          jwks_uri: p.jwks_uri,
          jwks_file: p.jwks_file,
          audiences: p.audience === undefined ? [] : [p.audience],
          algorithms: p.algorithms,
          clock_skew: p.clock_skew,
          // Without exp a token would be good forever, and so would its cache entry.
          required_claims: ['exp'],
          allow_insecure_http: p.allow_insecure_http,
        },
        config.keys,
        (name) => ({
          fetched: (outcome, count) => {
            keyFetches.labels(name, outcome).inc();
            keysLoaded.labels(name).set(count);
            if (outcome !== 'ok') this.logger.warn('oidc provider keys could not be loaded', { issuer: name, outcome });
          },
        }),
      );
      this.providers.set(p.issuer_url, { config: p, issuer });
    }
    this.verifier = new JwtVerifier(
      [...this.providers.values()].map((p) => p.issuer),
      config.max_token_bytes,
    );
    // Bounded in bytes too: a flood of distinct 16 KiB bad tokens fills the failure table to its byte bound.
    const bytes = { maxSize: config.cache.max_bytes, sizeCalculation: (_: Decision, token: string) => token.length + 512 };
    this.verified = new LRUCache<string, Decision>({ max: config.cache.max_entries, ...bytes });
    this.failures = new LRUCache<string, Decision>({ max: config.cache.max_entries, ...bytes });

    const requests = telemetry.counter('tracewarden_auth_requests_total', 'Sender authentications by authenticator and result (ok or the failure reason).', ['authenticator', 'result']);
    this.counters = new Map(AUTH_RESULTS.map((r) => [r, requests.labels(id, r)]));
    zeroed(this.counters.get('ok')!);
    this.errors = new Map(
      AUTH_RESULTS.filter((r): r is AuthFailure => r !== 'ok').map((r) => [r, failureError(r, config.keys.unknown_kid_cooldown)]),
    );
    this.missing = failed('missing');
    this.wrongScheme = failed('wrong_scheme');
    this.malformed = failed('malformed');
    this.ambiguous = failed('ambiguous');
  }

  async start(_host: Host): Promise<void> {
    // Key sets load in the background: an unreachable provider never blocks start-up.
    for (const p of this.providers.values()) p.issuer.keys.start();
  }

  isReady(): boolean {
    for (const p of this.providers.values()) if (p.issuer.keys.state() === 'unavailable') return false;
    return true;
  }

  /** Resolves when every provider's first key load has settled (succeeded or failed): for tests and tools. */
  async keysSettled(): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => p.issuer.keys.whenSettled()));
  }

  async shutdown(_deadline: number): Promise<void> {
    for (const p of this.providers.values()) p.issuer.keys.stop();
  }

  async authenticate(headers: Headers): Promise<SenderAuth> {
    const d = await this.decide(headers[this.header]);
    this.counters.get(d.result)!.inc();
    if (d.auth !== null) return d.auth;
    if (this.logger.enabled('debug')) this.logger.debug('sender authentication failed', { result: d.result });
    throw this.errors.get(d.result as AuthFailure)!;
  }

  private async decide(value: string | string[] | undefined): Promise<Decision> {
    // A header may be sent twice (HTTP/1.1 and HTTP/2 alike); more than one credential is ambiguous, and
    // judging by either one would let [valid, forged] through: refused.
    if (Array.isArray(value)) {
      if (value.length > 1) return this.ambiguous;
      value = value[0];
    }
    if (value === undefined || value.trim().length === 0) return this.missing;
    const m = BEARER.exec(value);
    if (m === null) return /^[ \t]*bearer\b/i.test(value) ? this.malformed : this.wrongScheme;
    const token = m[1]!;

    const now = Date.now();
    const cached = this.verified.get(token) ?? this.failures.get(token);
    if (cached !== undefined) {
      if (cached.validUntilMs > now) return cached;
      (cached.auth !== null ? this.verified : this.failures).delete(token);
    }
    let pending = this.inflight.get(token);
    if (pending === undefined) {
      pending = this.verify(token, now).finally(() => this.inflight.delete(token));
      this.inflight.set(token, pending);
    }
    return pending;
  }

  private async verify(token: string, now: number): Promise<Decision> {
    const r = await this.verifier.verify(token, now);
    let d: Decision;
    if (r.ok) {
      const p = this.providers.get(r.issuer.issuer)!;
      const subject = r.claims[p.config.username_claim];
      if (typeof subject !== 'string' || subject.length === 0) {
        d = failed('username_missing', now + this.config.cache.failure_ttl);
      } else {
        const auth: SenderAuth = Object.freeze({
          authenticator: this.settings.id,
          subject,
          issuer: r.issuer.issuer,
          groups: Object.freeze(groupsOf(p.config.groups_claim === undefined ? undefined : r.claims[p.config.groups_claim])),
          claims: Object.freeze(r.claims),
        });
        d = { auth, result: 'ok', validUntilMs: Math.min(r.expiresAtMs, now + this.config.cache.max_ttl) };
      }
    } else {
      const result = fromJwtReason(r.reason);
      d = failed(result, now + failureCacheTtl(result, this.config.cache.failure_ttl));
    }
    if (d.validUntilMs > now) (d.auth !== null ? this.verified : this.failures).set(token, d);
    return d;
  }
}

function failed(result: AuthFailure, validUntilMs = 0): Decision {
  return { auth: null, result, validUntilMs };
}

/** The groups claim as a list of strings: one string, or the strings of a list (others ignored). */
export function groupsOf(v: unknown): string[] {
  if (typeof v === 'string') return v.length > 0 ? [v] : [];
  if (Array.isArray(v)) return v.filter((g): g is string => typeof g === 'string' && g.length > 0);
  return [];
}
