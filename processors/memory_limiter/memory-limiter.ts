/**
 * Refuses data while the process holds more memory than the soft limit (limit − spike), so receivers
 * answer "retry later" instead of the process running out of memory. Memory is sampled by one unref'd
 * interval timer, never per batch: consume only reads a boolean. Refused spans are not lost (the sender
 * retries them), so they are counted as refused, not dropped.
 *
 * "Held" is what the process actually holds: the V8 heap in use plus external memory (Buffers: request
 * bodies being received, batches, queues), as the Collector uses the Go heap. Not the resident set size:
 * Node rarely returns freed pages to the system, so after a burst RSS stays high and a limiter on RSS
 * would refuse long after the pressure ended. Over the soft limit the limiter collects garbage (at most
 * once per min_gc_interval_when_soft_limited; over the hard limit, per min_gc_interval_when_hard_limited)
 * before deciding, so garbage left by a burst does not keep it refusing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import type { ComponentSettings, Host, Processor, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import type { MemoryLimiterConfig } from './config.js';
import { totalMemoryBytes } from './total-memory.js';

const MIB = 1024 * 1024;
const DEFAULT_SPIKE_FRACTION = 0.2;

/** Bytes of memory the process uses now. */
export type MemoryReading = () => number;

export interface MemoryLimiterOptions {
  /** Defaults to the V8 heap in use plus external memory. */
  readMemory?: MemoryReading;
  /** Collects garbage now; defaults to V8's own (exposed once, when a limiter is built). */
  collectGarbage?: () => void;
  /** Defaults to total memory or the cgroup v2 limit; only used with limit_percentage. */
  totalMemory?: () => number;
}

export interface MemoryLimits {
  limitBytes: number;
  spikeBytes: number;
}

export function memoryLimits(config: MemoryLimiterConfig, totalMemory: () => number): MemoryLimits {
  if (config.limit_mib !== undefined) {
    const limitBytes = config.limit_mib * MIB;
    const spikeBytes = config.spike_limit_mib !== undefined ? config.spike_limit_mib * MIB : Math.floor(limitBytes * DEFAULT_SPIKE_FRACTION);
    return { limitBytes, spikeBytes };
  }
  const total = totalMemory();
  const limitBytes = Math.floor((total * config.limit_percentage!) / 100);
  const spikeBytes =
    config.spike_limit_percentage !== undefined
      ? Math.floor((total * config.spike_limit_percentage) / 100)
      : Math.floor(limitBytes * DEFAULT_SPIKE_FRACTION);
  return { limitBytes, spikeBytes };
}

export class MemoryLimiter implements Processor {
  private readonly log: Logger;
  private readonly readMemory: MemoryReading;
  private readonly intervalMs: number;
  readonly limitBytes: number;
  readonly softLimitBytes: number;
  private timer: NodeJS.Timeout | null = null;
  private refusing = false;
  /** One instance for every refusal: building an Error (and its stack) per refused batch is waste. */
  private readonly refusal: PipelineError;
  private readonly incoming: { inc(n: number): void };
  private readonly outgoing: { inc(n: number): void };
  private readonly refused: { inc(n: number): void };
  private readonly heldGauge: { set(v: number): void };
  private readonly rssGauge: { set(v: number): void };
  private readonly collectGarbage: (() => void) | null;
  private lastGc = -Infinity;
  private readonly softGcIntervalMs: number;
  private readonly hardGcIntervalMs: number;
  private readonly tick = (): void => {
    this.check();
  };

  constructor(
    settings: ComponentSettings,
    config: MemoryLimiterConfig,
    private readonly next: TracesConsumer,
    options: MemoryLimiterOptions = {},
  ) {
    this.log = settings.logger.child({ component: settings.id });
    this.readMemory = options.readMemory ?? heldMemory;
    this.collectGarbage = options.collectGarbage ?? (options.readMemory === undefined ? exposedGc() : null);
    this.softGcIntervalMs = config.min_gc_interval_when_soft_limited;
    this.hardGcIntervalMs = config.min_gc_interval_when_hard_limited;
    this.intervalMs = config.check_interval;
    const limits = memoryLimits(config, options.totalMemory ?? totalMemoryBytes);
    this.limitBytes = limits.limitBytes;
    this.softLimitBytes = limits.limitBytes - limits.spikeBytes;
    this.refusal = new PipelineError(
      'MEMORY_LIMIT',
      `memory usage is above the soft limit of ${mib(this.softLimitBytes)} MiB; retry later`,
      this.intervalMs,
    );
    const t = settings.telemetry;
    this.incoming = zeroed(t.processorIncoming.labels(settings.id, 'traces'));
    this.outgoing = zeroed(t.processorOutgoing.labels(settings.id, 'traces'));
    this.refused = t
      .counter('otelcol_processor_refused_spans_total', 'Spans refused by the processor; the sender may retry them.', ['processor'])
      .labels(settings.id);
    this.heldGauge = t
      .gauge('tracewarden_memory_limiter_held_bytes', 'Memory the process holds (V8 heap in use plus external), as the memory limiter last measured it; what it decides on.', ['processor'])
      .labels(settings.id);
    this.rssGauge = t
      .gauge('tracewarden_memory_limiter_rss_bytes', 'Resident set size at the memory limiter\'s last check (for comparison; not what it decides on).', ['processor'])
      .labels(settings.id);
  }

  /** Whether data is being refused (as of the last check). */
  get isRefusing(): boolean {
    return this.refusing;
  }

  async start(_host: Host): Promise<void> {
    this.check();
    this.timer = setInterval(this.tick, this.intervalMs);
    this.timer.unref();
  }

  async shutdown(_deadline: number): Promise<void> {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    let n: number;
    try {
      n = batch.liveSpanCount; // indexes the batch when no one has yet: malformed bytes throw here
    } catch (err) {
      return Promise.reject(err);
    }
    this.incoming.inc(n);
    if (this.refusing) {
      this.refused.inc(n);
      return Promise.reject(this.refusal);
    }
    this.outgoing.inc(n);
    return this.next.consume(batch, ctx);
  }

  /** Samples memory and updates the refusing state; runs on the timer (and from tests). */
  check(): void {
    let used: number;
    try {
      used = this.readMemory();
      if (used > this.softLimitBytes && this.collectGarbage !== null) {
        // Garbage from a burst is not memory held: collect it before refusing (rate-limited, as in the Collector).
        const now = Date.now();
        if (now - this.lastGc >= (used > this.limitBytes ? this.hardGcIntervalMs : this.softGcIntervalMs)) {
          this.lastGc = now;
          this.collectGarbage();
          used = this.readMemory();
        }
      }
    } catch (err) {
      this.log.warn('could not read memory usage; keeping the current state', { error: err });
      return;
    }
    this.heldGauge.set(used);
    this.rssGauge.set(process.memoryUsage.rss());
    const over = used > this.softLimitBytes;
    if (over === this.refusing) return;
    this.refusing = over;
    if (over) {
      this.log.warn('memory usage above the soft limit; refusing data until it drops', {
        used_mib: mib(used),
        soft_limit_mib: mib(this.softLimitBytes),
        limit_mib: mib(this.limitBytes),
      });
    } else {
      this.log.info('memory usage below the soft limit again; accepting data', { used_mib: mib(used), soft_limit_mib: mib(this.softLimitBytes) });
    }
  }
}

/** The V8 heap in use plus external memory (array buffers included). */
export function heldMemory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

let gc: (() => void) | null | undefined;

/** V8's garbage collector as a function (exposed once per process; null where V8 refuses). */
function exposedGc(): (() => void) | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const collect = runInNewContext('gc') as () => void;
      // One full collection finds dead Buffers; their backing stores (external memory) go at the next.
      gc = () => {
        collect();
        collect();
      };
    } catch {
      gc = null;
    }
  }
  return gc;
}

function mib(bytes: number): number {
  return Math.round(bytes / MIB);
}
