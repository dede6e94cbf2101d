/**
 * The identity processor's metrics. Labels come from config (processor ID, configured issuer) and from the
 * closed set of reason codes, never from a token. Per-span counts are summed per batch and added once.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import { zeroed, type Telemetry } from '../../pipeline/telemetry/telemetry.js';
import { FAILURE_REASONS, type FailureReason } from '../../identity/reasons.js';
import { SCRUB_KINDS } from '../../identity/scrub/sanitizer.js';

export const SPAN_RESULTS = ['verified', ...FAILURE_REASONS] as const;
export type SpanResult = (typeof SPAN_RESULTS)[number];

export class IdentityMetrics {
  readonly verifications: Counter<'processor' | 'issuer' | 'result'>;
  readonly latency: Histogram<'processor' | 'method'>;
  readonly keyFetches: Counter<'issuer' | 'outcome'>;
  readonly keysLoaded: Gauge<'issuer'>;
  readonly cacheHits: Counter.Internal;
  readonly cacheMisses: Counter.Internal;
  private readonly spans: Counter.Internal[];
  private readonly scrubbed: Counter.Internal[];
  /** Credentials and forged identity removed by the close look, per batch; indexed like SCRUB_KINDS. */
  readonly scrubTally = new Float64Array(SCRUB_KINDS.length);
  readonly cacheBytes: Gauge.Internal<'processor'>;
  /** Per-batch tallies, indexed like SPAN_RESULTS. */
  readonly tally = new Float64Array(SPAN_RESULTS.length);

  constructor(
    t: Telemetry,
    private readonly processor: string,
  ) {
    this.verifications = t.counter('tracewarden_identity_verifications_total', 'Credential verifications (cache misses) by configured issuer and result.', ['processor', 'issuer', 'result']);
    this.latency = t.histogram('tracewarden_identity_verification_seconds', 'Time to verify one credential, key fetches included.', ['processor', 'method'], [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]);
    this.keyFetches = t.counter('tracewarden_identity_key_fetches_total', 'Key set loads by configured issuer or credential set, and outcome.', ['issuer', 'outcome']);
    this.keysLoaded = t.gauge('tracewarden_identity_keys_loaded', 'Keys currently loaded per configured issuer or credential set.', ['issuer']);
    const cache = t.counter('tracewarden_identity_cache_total', 'Credential decision cache lookups by result.', ['processor', 'result']);
    this.cacheHits = zeroed(cache.labels(processor, 'hit'));
    this.cacheMisses = zeroed(cache.labels(processor, 'miss'));
    const spans = t.counter('tracewarden_identity_spans_total', 'Spans by identity result (verified, or the failure reason; missing = no credential).', ['processor', 'result']);
    this.spans = SPAN_RESULTS.map((r) => spans.labels(processor, r));
    zeroed(this.spans[0]!);
    const scrubbed = t.counter(
      'tracewarden_identity_scrubbed_total',
      'Values removed from spans besides the evidence: forged protected keys at any level, sensitive header values, secret URL parameters, JWT- and WebAuthn-shaped strings.',
      ['processor', 'kind'],
    );
    this.scrubbed = SCRUB_KINDS.map((k) => zeroed(scrubbed.labels(processor, k)));
    this.cacheBytes = t.gauge('tracewarden_identity_cache_bytes', 'Bytes held by the credential decision caches (bounded by cache.max_bytes each).', ['processor']).labels(processor);
  }

  private readonly bound = new Map<string, { count: Counter.Internal; latency: Histogram.Internal<"processor" | "method"> }>();

  verification(issuer: string, result: 'verified' | FailureReason, seconds: number, method: string): void {
    // Children bound once per (issuer, result, method): the label sets are few and fixed by config.
    const key = `${issuer}\u0000${result}\u0000${method}`;
    let b = this.bound.get(key);
    if (b === undefined) {
      b = { count: this.verifications.labels(this.processor, issuer, result), latency: this.latency.labels(this.processor, method) };
      this.bound.set(key, b);
    }
    b.count.inc();
    b.latency.observe(seconds);
  }

  /** Adds and clears the batch's tallies. */
  flush(): void {
    const s = this.scrubTally;
    for (let i = 0; i < s.length; i++) {
      if (s[i]! > 0) {
        this.scrubbed[i]!.inc(s[i]);
        s[i] = 0;
      }
    }
    const t = this.tally;
    for (let i = 0; i < t.length; i++) {
      if (t[i]! > 0) {
        this.spans[i]!.inc(t[i]);
        t[i] = 0;
      }
    }
  }
}

export function resultIndex(result: 'verified' | FailureReason): number {
  return (SPAN_RESULTS as readonly string[]).indexOf(result);
}
