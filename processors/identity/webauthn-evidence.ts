/**
 * WebAuthn evidence: a passkey or security key assertion on a span, verified against the credential
 * public keys published as a JWKS (kid = credential id). Decisions are cached by the assertion text; a
 * cached decision is reused only on the span it was made for (challenge binding `span`), and with
 * binding `none` a second span carrying the same assertion is `replayed`. Signature counters are
 * remembered per credential to flag cloned authenticators.
 */
import { LRUCache } from 'lru-cache';
import { KeySource, type KeySourceEvents } from '../../identity/keys/key-source.js';
import { fileLoader, urlLoader } from '../../identity/keys/locations.js';
import { keySourceTiming, type KeyTiming } from '../../identity/jwt/build.js';
import { MAX_ASSERTION_BYTES, parseAssertion } from '../../identity/webauthn/assertion.js';
import { credentialKeysFromJwks } from '../../identity/webauthn/credential-keys.js';
import { assertionFingerprint, ReplayGuard, SignCountStore } from '../../identity/webauthn/replay.js';
import type { CredentialKey } from '../../identity/webauthn/types.js';
import { rpIdHash, spanChallenge, verifyAssertion, type AssertionPolicy } from '../../identity/webauthn/verify.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import type { FailureReason } from '../../identity/reasons.js';
import type { WebAuthnConfig } from './config.js';
import type { Decision, DecisionBuilder } from './decision.js';
import { entryBytes } from './credential-cache.js';

interface Cached {
  decision: Decision;
  /** The span (trace id + span id, hex) the decision was made on. */
  span: string;
}

export class WebAuthnEvidence {
  readonly keys: KeySource<Map<string, CredentialKey>>;
  /** For metrics and `identity.issuer`: the relying party the assertions are for. */
  readonly label: string;
  private readonly policy: AssertionPolicy;
  private readonly cache: LRUCache<string, Cached>;
  private readonly counts: SignCountStore;
  private readonly replays: ReplayGuard;
  private readonly oversized: Decision;

  constructor(
    private readonly config: WebAuthnConfig,
    timing: KeyTiming,
    private readonly builder: () => DecisionBuilder,
    cacheEntries: number,
    cacheBytes: number,
    private readonly ttl: { success: number; failure: number },
    events: KeySourceEvents,
    logger: Logger,
  ) {
    this.label = config.rp_id;
    const limits = { timeoutMs: timing.fetch_timeout, maxBytes: timing.max_response_bytes, allowInsecureHttp: config.allow_insecure_http };
    const load = config.credentials_jwks_file !== undefined ? fileLoader(config.credentials_jwks_file) : urlLoader(config.credentials_jwks_uri!, limits);
    this.keys = new KeySource({
      name: `webauthn:${config.rp_id}`,
      load,
      parse: (body) => {
        const set = credentialKeysFromJwks(body);
        if (set.keys.size === 0 && set.problems.length > 0) throw new Error(`no usable credential key: ${set.problems[0]}`);
        for (const p of set.problems) logger.warn('credential key skipped', { rp_id: config.rp_id, problem: p });
        return { keys: set.keys, count: set.keys.size };
      },
      timing: keySourceTiming(timing),
      events,
    });
    this.policy = {
      rpIdHash: rpIdHash(config.rp_id),
      origins: new Set(config.origins),
      allowCrossOrigin: config.allow_cross_origin,
      allowedTopOrigins: config.top_origins ? new Set(config.top_origins) : undefined,
      requireUserVerification: config.user_verification === 'required',
      allowedAlgorithms: new Set(config.algorithms),
    };
    this.cache = new LRUCache({ max: cacheEntries, maxSize: cacheBytes, sizeCalculation: (c, text) => entryBytes(c.decision, text) });
    this.counts = new SignCountStore(config.max_credentials);
    this.replays = new ReplayGuard(config.max_replay_entries, config.replay_window);
    this.oversized = this.builder().failure('malformed', 'webauthn', this.label, null, Number.POSITIVE_INFINITY);
  }

  /** Bytes the decision cache holds. */
  get cacheBytes(): number {
    return this.cache.calculatedSize;
  }

  /** A cached decision for this assertion on this span, or null when it must be verified. */
  cached(text: string, span: string, nowMs: number): Decision | null {
    // Oversized: refused without being verified or cached (the cache is bounded in entries, not bytes).
    if (text.length > MAX_ASSERTION_BYTES) return this.oversized;
    const c = this.cache.get(text);
    if (c === undefined || c.decision.validUntilMs <= nowMs) return null;
    if (c.span === span) return c.decision;
    // The same assertion on another span. A success made elsewhere settles it: with span binding the
    // challenge cannot match this span, without it this is a copy. A failure made elsewhere says nothing
    // about this span (a copy may arrive before the original): verify again.
    if (c.decision.ok) return this.failure(this.config.challenge === 'span' ? 'challenge_mismatch' : 'replayed', text, nowMs);
    return this.config.challenge === 'span' ? null : c.decision;
  }

  /** Verifies an assertion found on the span with these ids (null when the span has none). */
  async verify(text: string, traceId: Uint8Array | null, spanId: Uint8Array | null, span: string, nowMs: number): Promise<Decision> {
    const d = await this.check(text, traceId, spanId, span, nowMs);
    // Outcomes that depend on the span are not cached: they must not answer for the assertion's own span.
    if (d.validUntilMs > nowMs && d.reason !== 'challenge_mismatch' && d.reason !== 'replayed') this.cache.set(text, { decision: d, span });
    return d;
  }

  private async check(text: string, traceId: Uint8Array | null, spanId: Uint8Array | null, span: string, nowMs: number): Promise<Decision> {
    const parsed = parseAssertion(text);
    if (!parsed.ok) return this.failure('malformed', text, nowMs);
    const a = parsed.assertion;
    let keys = this.keys.current();
    let key = keys?.get(a.id);
    if (key === undefined) {
      // Unknown credential: it may have been registered since the last load (at most one load per cooldown).
      keys = await this.keys.refreshForUnknownKid();
      if (keys === null) return this.failure('keys_unavailable', a.id, nowMs, 0);
      key = keys.get(a.id);
      if (key === undefined) return this.failure('unknown_key', a.id, nowMs, 0);
    }
    // Without ids the assertion can be bound to nothing, and a copy could not be told from the original.
    if (traceId === null || spanId === null) return this.failure('malformed', text, nowMs, 0);
    const expected = this.config.challenge === 'span' ? spanChallenge(traceId, spanId) : null;
    const r = verifyAssertion(a, key, this.policy, expected);
    if (!r.ok) return this.failure(r.reason, text, nowMs);
    // Only after the signature verified: a forger must not be able to move the remembered state.
    if (this.config.challenge === 'none' && this.replays.seen(assertionFingerprint(a), nowMs, span)) return this.failure('replayed', text, nowMs);
    const regression = this.counts.observe(a.id, r.signCount) === 'regression';
    if (regression && this.config.on_counter_regression === 'fail') return this.failure('counter_regression', text, nowMs);
    // Who is authenticating comes from our own records (WebAuthn L3 §7.2 step 6): the userHandle is not
    // signed, so it only counts when the credential's published user_handle vouches for it.
    if (a.userHandle !== null && key.userHandle !== undefined && a.userHandle !== key.userHandle) return this.failure('malformed', text, nowMs);
    const user = key.user ?? (key.userHandle !== undefined && a.userHandle === key.userHandle ? a.userHandle : null);
    return this.builder().webauthnSuccess(this.config.rp_id, a.id, user, r.userVerified, regression, nowMs + this.ttl.success);
  }

  private failure(reason: FailureReason, credential: string, nowMs: number, ttl = this.ttl.failure): Decision {
    return this.builder().failure(reason, 'webauthn', this.label, credential, nowMs + ttl);
  }
}
