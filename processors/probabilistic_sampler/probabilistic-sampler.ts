/**
 * The probabilistic sampler: the OpenTelemetry Collector's `probabilistic_sampler` for traces, decision for
 * decision and byte for byte in the trace state it writes. Each span is kept or dropped on its own
 * (dropped ones are counted as `sampled_out`); what becomes empty is not exported, and a batch left with no
 * span is not passed on.
 *
 * Per span, as the Collector's commonShouldSampleLogic:
 * 1. Randomness. hash_seed: an FNV-1a hash of the seed and the trace id (see sampling.ts); the span's
 *    trace state must then carry no `rv` or `th` (an error otherwise). proportional and equalizing: the
 *    trace state's `rv`, else the trace id's last 56 bits. An all-zero trace id has none (an error). A
 *    trace state that does not parse is an error too.
 * 2. Consistency: a received `th` that the randomness does not pass is removed, and is an error.
 * 3. The threshold: on an error, never (fail_closed) or always; otherwise the mode's: hash_seed a fixed
 *    one (14 bits); equalizing the configured one or the received `th` if that is larger; proportional the
 *    received probability times the configured one, never when the product is below 2^-56.
 * 4. `sampling.priority` overrides: 0 never, above 0 always (see priority.ts).
 * 5. Kept when threshold <= randomness. A kept span's trace state gets the threshold it was kept with as
 *    `th` (unless it came with a larger one) and, in hash_seed mode, its randomness as `rv`.
 *
 * A sampling percentage of 0 (or, in hash_seed mode, one below 1/16384) samples nothing except what
 * `sampling.priority` keeps, and never reports missing randomness. Everything that depends only on the
 * configuration (mode, thresholds, ratio) is decided when the processor is built; a span costs a walk of
 * its fields, a trace state parse over its bytes and, when it is kept, one write.
 */
import type { Counter } from 'prom-client';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import { WireReader, writeLenHeader } from '../../pipeline/batch/wire.js';
import type { ComponentSettings, TracesConsumer } from '../../pipeline/service/component.js';
import { EditingProcessor } from '../../pipeline/service/editing-processor.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import type { ProbabilisticSamplerConfig } from './config.js';
import { PRIORITY_DEFER, PRIORITY_DROP, PRIORITY_KEEP, PRIORITY_KEY, foundPriority } from './priority.js';
import {
  ALL_RANDOMNESS_HI,
  ALL_RANDOMNESS_LO,
  ALWAYS_HI,
  HASH_BUCKETS,
  MIN_PROBABILITY,
  NEVER_HI,
  U56,
  fnvHash,
  hashBuckets,
  hashRandomness,
  le,
  probabilityToThreshold,
  thresholdProbability,
  traceIdEmpty,
  traceIdRandomness,
} from './sampling.js';
import { ABSENT, MAX_SERIALIZED, TraceState } from './tracestate.js';

export const MODE_NEVER = 0;
export const MODE_HASH_SEED = 1;
export const MODE_EQUALIZING = 2;
export const MODE_PROPORTIONAL = 3;

/** What the configuration decides, once: the mode in effect and its fixed numbers. */
export interface SamplerPlan {
  mode: typeof MODE_NEVER | typeof MODE_HASH_SEED | typeof MODE_EQUALIZING | typeof MODE_PROPORTIONAL;
  /** The percentage as the Collector holds it (float32, at most 100). */
  percentage: number;
  /** The ratio of the proportional mode (and the equalizing mode's source), in [2^-56, 1]. */
  ratio: number;
  precision: number;
  seed: number;
  failClosed: boolean;
  /** The fixed threshold: hash_seed's, equalizing's, and proportional's for spans without `th`. */
  threshold: U56;
}

/** The Collector's makeSampler, for traces. */
export function planSampler(config: ProbabilisticSamplerConfig): SamplerPlan {
  let pct = Math.fround(config.sampling_percentage);
  if (pct > 100) pct = 100;
  // For traces an unset mode is hash_seed, whether or not hash_seed is set (the logs-only rules aside).
  const mode = config.mode === '' ? 'hash_seed' : config.mode;
  const plan: SamplerPlan = {
    mode: MODE_NEVER,
    percentage: pct,
    ratio: 0,
    precision: config.sampling_precision,
    seed: config.hash_seed >>> 0,
    failClosed: config.fail_closed,
    threshold: new U56().set(NEVER_HI, 0),
  };
  if (pct === 0) return plan;
  plan.ratio = Math.max(pct / 100, MIN_PROBABILITY);
  switch (mode) {
    case 'equalizing':
      plan.mode = MODE_EQUALIZING;
      probabilityToThreshold(plan.ratio, plan.precision, plan.threshold);
      return plan;
    case 'proportional':
      plan.mode = MODE_PROPORTIONAL;
      probabilityToThreshold(plan.ratio, plan.precision, plan.threshold);
      return plan;
    case 'hash_seed': {
      const buckets = hashBuckets(pct);
      if (buckets === 0) return plan; // rounds to 0 of 16384: never
      plan.mode = MODE_HASH_SEED;
      plan.threshold.set((HASH_BUCKETS - buckets) << 14, 0); // (16384 - buckets) << 42
      return plan;
    }
  }
}

/** The Collector's `policy` attribute values of its spans-processed metric. */
const POLICIES = ['trace_id_hash', 'trace_id_w3c', 'sampling_randomness', 'sampling_priority', 'missing_randomness'] as const;
const P_HASH = 0;
const P_W3C = 1;
const P_RANDOMNESS = 2;
const P_PRIORITY = 3;
const P_MISSING = 4;

const ERR_MISSING = 'missing randomness';
const ERR_INCONSISTENT = 'inconsistent arriving threshold: item should not have been sampled';
const ERR_RANDOMNESS_IN_USE = 'item has sampling randomness, equalizing or proportional mode recommended';
const ERR_THRESHOLD_IN_USE = 'item has sampling threshold, equalizing or proportional mode recommended';

const TRACE_STATE_TAG = (3 << 3) | 2;
const ATTRIBUTE_TAG = (9 << 3) | 2;
const KEY_TAG = (1 << 3) | 2;
const EMPTY = new Uint8Array(0);

export class ProbabilisticSamplerProcessor extends EditingProcessor {
  readonly plan: SamplerPlan;
  private readonly logger: Logger;
  private readonly sampledOut: { inc(n?: number): void };
  /** Per policy: [not sampled, sampled]. */
  private readonly processed: Counter.Internal[];

  // Per-span scratch, reused.
  private readonly reader = new WireReader();
  private readonly kvReader = new WireReader();
  private readonly ts = new TraceState();
  private readonly rnd = new U56();
  private readonly th = new U56();
  private readonly out = new Uint8Array(MAX_SERIALIZED);
  private readonly field = new Uint8Array(MAX_SERIALIZED + 8);
  private readonly counts = new Float64Array(POLICIES.length * 2);
  private tsTag = -1;
  private tsStart = 0;
  private tsEnd = 0;
  /** The first `sampling.priority` attribute's field (tag offset), or -1. */
  private priorityAt = -1;
  private errors = 0;
  private firstError: string | null = null;

  constructor(settings: ComponentSettings, config: ProbabilisticSamplerConfig, next: TracesConsumer) {
    super(settings, next);
    this.plan = planSampler(config);
    this.logger = settings.logger;
    const t = settings.telemetry;
    this.sampledOut = zeroed(t.dropped(settings.id, 'sampled_out'));
    const processed = t.counter(
      'otelcol_processor_probabilistic_sampler_count_spans_processed_total',
      'Spans the probabilistic sampler decided on, by the source of randomness (policy) and whether they were sampled.',
      ['processor', 'policy', 'sampled'],
    );
    this.processed = [];
    for (const policy of POLICIES) this.processed.push(processed.labels(settings.id, policy, 'false'), processed.labels(settings.id, policy, 'true'));
  }

  protected get active(): boolean {
    return true;
  }

  /** Decides every span of a sealed batch (what earlier processors wrote, a priority or a trace state, is read). */
  protected process(b: TraceBatch): TraceBatch {
    const spans = b.spanCount;
    let dropped = 0;
    for (let span = 0; span < spans; span++) {
      if (!this.sampleSpan(b, span)) {
        b.dropSpan(span);
        dropped++;
      }
    }
    this.flushCounts();
    if (dropped > 0) this.sampledOut.inc(dropped);
    return b;
  }

  /** Decides one span; records a kept span's new trace state as an edit. True when it is kept. */
  private sampleSpan(b: TraceBatch, span: number): boolean {
    const plan = this.plan;
    const buf = b.bytes;
    const ts = this.ts;
    const rnd = this.rnd;
    const th = this.th;

    this.walkSpan(b, span);
    const parsed = this.tsTag < 0 ? ts.parse(buf, 0, 0) : ts.parse(buf, this.tsStart, this.tsEnd);
    const tid = b.traceIdOffset(span);
    const noTraceId = tid < 0 || traceIdEmpty(buf, tid);

    // 1. Randomness, and whether the trace state is written back (the Collector's "carrier").
    let policy = P_MISSING;
    let carrier = true;
    let err: string | null = null;
    rnd.set(ALL_RANDOMNESS_HI, ALL_RANDOMNESS_LO);
    if (plan.mode === MODE_NEVER) {
      // Randomness that is never used stands in, so nothing is missing; the state is kept even when it
      // did not parse (the Collector writes back what it parsed if a priority keeps the span).
      policy = P_PRIORITY;
      if (!parsed) err = ts.error;
    } else if (plan.mode === MODE_HASH_SEED) {
      if (!noTraceId) {
        policy = P_HASH;
        hashRandomness(fnvHash(plan.seed, buf, tid), rnd);
      }
      if (!parsed) {
        err = ts.error;
        carrier = false;
      } else if (ts.rvKind !== ABSENT) {
        err = ERR_RANDOMNESS_IN_USE;
        carrier = false;
      } else if (ts.thKind !== ABSENT) {
        err = ERR_THRESHOLD_IN_USE;
        carrier = false;
      } else {
        ts.setRandomness(rnd.hi, rnd.lo);
      }
    } else if (!parsed) {
      err = ts.error;
      carrier = false;
    } else if (ts.rvKind !== ABSENT) {
      policy = P_RANDOMNESS;
      rnd.copy(ts.rv);
    } else if (!noTraceId) {
      policy = P_W3C;
      traceIdRandomness(buf, tid, rnd);
    }

    // 2. Consistency of a received threshold.
    if (err === null) {
      if (policy === P_MISSING) {
        err = ERR_MISSING;
      } else if (carrier && ts.thKind !== ABSENT && !le(ts.th.hi, ts.th.lo, rnd.hi, rnd.lo)) {
        ts.clearThreshold();
        err = ERR_INCONSISTENT;
      }
    }

    // 3. The threshold.
    if (err !== null) {
      this.errors++;
      if (this.firstError === null) this.firstError = err;
      th.set(plan.failClosed ? NEVER_HI : ALWAYS_HI, 0);
    } else {
      switch (plan.mode) {
        case MODE_NEVER:
          th.set(NEVER_HI, 0);
          break;
        case MODE_HASH_SEED:
          th.copy(plan.threshold);
          break;
        case MODE_EQUALIZING:
          if (ts.thKind !== ABSENT && !le(ts.th.hi, ts.th.lo, plan.threshold.hi, plan.threshold.lo)) th.copy(ts.th);
          else th.copy(plan.threshold);
          break;
        case MODE_PROPORTIONAL:
          if (ts.thKind === ABSENT) th.copy(plan.threshold);
          else if (!probabilityToThreshold(thresholdProbability(ts.th.hi, ts.th.lo) * plan.ratio, plan.precision, th)) th.set(NEVER_HI, 0);
          break;
      }
    }

    // 4. sampling.priority
    const priority = this.priorityAt < 0 || !b.readAttributeAt(this.priorityAt) ? PRIORITY_DEFER : foundPriority(b);
    if (priority === PRIORITY_DROP) {
      th.set(NEVER_HI, 0);
      policy = P_PRIORITY;
    } else if (priority === PRIORITY_KEEP) {
      th.set(ALWAYS_HI, 0);
      policy = P_PRIORITY;
    }

    // 5. The decision.
    const sampled = le(th.hi, th.lo, rnd.hi, rnd.lo);
    if (sampled && carrier) {
      ts.updateThreshold(th.hi, th.lo);
      this.writeTraceState(b, span);
    }
    const k = policy * 2 + (sampled ? 1 : 0);
    this.counts[k] = this.counts[k]! + 1;
    return sampled;
  }

  /**
   * One walk over the span's fields: its trace_state field (tsTag is -1 when it has none) and its first
   * `sampling.priority` attribute (priorityAt, -1 when it has none; the first, as pdata's Map.Get finds).
   */
  private walkSpan(b: TraceBatch, span: number): void {
    const r = this.reader;
    const buf = b.bytes;
    const end = b.spanEnd(span);
    r.reset(buf, b.spanStart(span));
    this.tsTag = -1;
    this.priorityAt = -1;
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      if (tag === ATTRIBUTE_TAG) {
        const stop = r.lengthDelimitedEnd(end);
        if (this.priorityAt < 0 && this.isPriorityKey(buf, r.pos, stop)) this.priorityAt = tagPos;
        r.pos = stop;
      } else if (tag === TRACE_STATE_TAG) {
        const stop = r.lengthDelimitedEnd(end);
        this.tsTag = tagPos;
        this.tsStart = r.pos;
        this.tsEnd = stop;
        r.pos = stop;
      } else {
        r.skip(tag & 7, end);
      }
    }
  }

  /** Whether the KeyValue in buf[start, end) has the key `sampling.priority`. */
  private isPriorityKey(buf: Uint8Array, start: number, end: number): boolean {
    const key = PRIORITY_KEY;
    let ks: number;
    let ke: number;
    if (buf[start] === KEY_TAG && start + 1 < end && buf[start + 1]! < 0x80) {
      // Encoders write the key first, with a one-byte length: no walk needed.
      ks = start + 2;
      ke = ks + buf[start + 1]!;
    } else {
      const r = this.kvReader;
      r.reset(buf, start);
      ks = -1;
      ke = -1;
      while (r.pos < end) {
        const tag = r.uint32(end);
        if (tag === KEY_TAG) {
          ke = r.lengthDelimitedEnd(end);
          ks = r.pos;
          break;
        }
        r.skip(tag & 7, end);
      }
    }
    if (ke - ks !== key.length) return false;
    for (let i = 0; i < key.length; i++) if (buf[ks + i] !== key[i]) return false;
    return true;
  }

  /** Records the trace state as serialized now, unless it is the value the span arrived with. */
  private writeTraceState(b: TraceBatch, span: number): void {
    const out = this.out;
    const n = this.ts.serialize(out);
    if (this.ts.unchanged(out, n)) return;
    if (n === 0) {
      b.replaceInSpan(span, this.tsTag, this.tsEnd, EMPTY);
      return;
    }
    const field = this.field;
    const p = writeLenHeader(field, 0, 3, n);
    for (let i = 0; i < n; i++) field[p + i] = out[i]!;
    const bytes = field.subarray(0, p + n);
    if (this.tsTag >= 0) b.replaceInSpan(span, this.tsTag, this.tsEnd, bytes);
    else b.replaceInSpan(span, b.spanEnd(span), b.spanEnd(span), bytes);
  }

  private flushCounts(): void {
    const c = this.counts;
    for (let i = 0; i < c.length; i++) {
      if (c[i]! > 0) {
        this.processed[i]!.inc(c[i]);
        c[i] = 0;
      }
    }
    if (this.errors > 0) {
      if (this.logger.enabled('debug')) this.logger.debug('traces sampler', { spans_with_errors: this.errors, error: this.firstError });
      this.errors = 0;
      this.firstError = null;
    }
  }
}
