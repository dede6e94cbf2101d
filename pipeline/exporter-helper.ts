/**
 * The sending machinery every network exporter composes (the Collector's exporterhelper): a bounded
 * queue drained by a fixed set of workers, retries with exponential backoff and jitter that honour the
 * peer's requested delay, and the accounting that makes sure every span that does not arrive is counted
 * with a reason. It knows nothing about transports: the concrete exporter supplies `send`, which turns
 * bytes into an outcome.
 */
import { setMaxListeners } from 'node:events';
import type { TraceBatch } from './batch.js';
import { PipelineError, asPipelineError } from './errors.js';
import type { Logger } from './logger.js';
import { s, type Infer } from './schema.js';
import { zeroed, type Telemetry } from './telemetry.js';

// ---- configuration (Collector key names and defaults) ----

export const sendingQueueSchema = s.object(
  {
    enabled: s.bool().default(true),
    num_consumers: s.int({ min: 1, max: 1000 }).default(10),
    queue_size: s.int({ min: 1 }).default(1000),
  },
  {
    storage: 'the queue is held in memory; a persistent queue is not supported',
    blocking: 'a full queue refuses new batches (QUEUE_FULL) instead of blocking',
    block_on_overflow: 'a full queue refuses new batches (QUEUE_FULL) instead of blocking',
    sizer: 'queue_size always counts batches (requests)',
    wait_for_result: 'a batch is acknowledged once queued',
    batch: 'batching is done by the batch processor',
  },
);

export const retrySchema = s.object({
  enabled: s.bool().default(true),
  initial_interval: s.duration().default(5000),
  randomization_factor: s.number({ min: 0, max: 1 }).default(0.5),
  multiplier: s.number({ min: 1 }).default(1.5),
  max_interval: s.duration().default(30_000),
  /** 0 means retry until shutdown. */
  max_elapsed_time: s.duration().default(300_000),
});

export type SendingQueueConfig = Infer<typeof sendingQueueSchema>;
export type RetryConfig = Infer<typeof retrySchema>;

// ---- what a send attempt reports ----

export type OutcomeKind = 'ok' | 'retryable' | 'permanent';

export interface SendOutcome {
  kind: OutcomeKind;
  /** The delay the peer asked for (RetryInfo, Retry-After), 0 when none. */
  retryAfterMs: number;
  /** Spans the peer accepted the request but rejected (OTLP partial success); only with kind 'ok'. */
  rejectedSpans: number;
  /** For logs: a status and the peer's message. Never a header value or a token. */
  message: string;
}

export const SENT: SendOutcome = Object.freeze({ kind: 'ok', retryAfterMs: 0, rejectedSpans: 0, message: '' });

export function retryableOutcome(message: string, retryAfterMs = 0): SendOutcome {
  return { kind: 'retryable', retryAfterMs, rejectedSpans: 0, message };
}
export function permanentOutcome(message: string): SendOutcome {
  return { kind: 'permanent', retryAfterMs: 0, rejectedSpans: 0, message };
}
export function partialSuccessOutcome(rejectedSpans: number, message: string): SendOutcome {
  return { kind: 'ok', retryAfterMs: 0, rejectedSpans, message };
}

/**
 * One attempt to deliver an encoded ExportTraceServiceRequest. `deadline` (epoch ms) bounds the attempt;
 * `signal` aborts it when shutdown runs out of time. Should resolve, not reject: a rejection is treated as
 * a retryable failure with the error's message.
 */
export type SendFn = (bytes: Uint8Array, spanCount: number, deadline: number, signal: AbortSignal) => Promise<SendOutcome>;

export interface ExporterHelperOptions {
  id: string;
  telemetry: Telemetry;
  logger: Logger;
  queue: SendingQueueConfig;
  retry: RetryConfig;
  /** Per-attempt timeout in ms. */
  timeoutMs: number;
  send: SendFn;
}

/** Drop reasons, as they appear in tracewarden_dropped_spans_total{reason}. */
type DropReason = 'queue_full' | 'send_failed' | 'permanent' | 'partial_success' | 'shutdown';

/**
 * Per-worker state: the batch being delivered and one timer, reused for every backoff sleep and idle
 * wait, so nothing allocates a timer per batch and shutdown can cut any wait short.
 */
class Worker {
  bytes: Uint8Array | null = null;
  spans = 0;
  /** Whether the current batch has been offered to the peer at least once. */
  attempted = false;
  /** Set when shutdown gave up on the current batch and counted it: the worker's late outcome is ignored. */
  abandoned = false;
  /** When the current backoff ends (epoch ms), so shutdown can cut short only the waits that outlast it. */
  until = 0;
  timer: NodeJS.Timeout | null = null;
  private resolve: ((completed: boolean) => void) | null = null;
  private readonly onTimer = (): void => this.wake(true);

  /** Resolves true after `ms`, or false when woken early. `ms < 0` waits until woken. */
  wait(ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.resolve = resolve;
      if (ms >= 0) {
        this.timer = setTimeout(this.onTimer, ms);
        // A backoff must not keep a stopping process alive.
        this.timer.unref();
      }
    });
  }

  wake(completed: boolean): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const r = this.resolve;
    if (r !== null) {
      this.resolve = null;
      r(completed);
    }
  }

  get waiting(): boolean {
    return this.resolve !== null;
  }
}

export class ExporterHelper {
  private readonly id: string;
  private readonly logger: Logger;
  private readonly send: SendFn;
  private readonly retry: RetryConfig;
  private readonly timeoutMs: number;
  private readonly queued: boolean;
  private readonly capacity: number;
  private readonly workerCount: number;

  // Ring buffer of batches waiting to be sent.
  private readonly qBytes: (Uint8Array | null)[];
  private readonly qSpans: Int32Array;
  private qHead = 0;
  private qLen = 0;

  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private running: Promise<void>[] = [];
  private started = false;
  private accepting = true;
  /** Epoch ms by which shutdown must finish; Infinity while running. */
  private stopBy = Infinity;
  /** Set when shutdown's deadline has passed: nothing more is attempted. */
  private expired = false;
  private readonly abort = new AbortController();
  private readonly debugLog: boolean;

  // Metric children, bound once.
  private readonly mSent;
  private readonly mSendFailed;
  private readonly mEnqueueFailed;
  private readonly mQueueSize;
  private readonly dropped: Record<DropReason, { inc(n: number): void }>;

  constructor(opts: ExporterHelperOptions) {
    this.id = opts.id;
    this.logger = opts.logger;
    this.send = opts.send;
    this.retry = opts.retry;
    this.timeoutMs = opts.timeoutMs;
    this.queued = opts.queue.enabled;
    this.capacity = opts.queue.enabled ? opts.queue.queue_size : 0;
    this.workerCount = opts.queue.enabled ? opts.queue.num_consumers : 0;
    this.qBytes = new Array<Uint8Array | null>(this.capacity).fill(null);
    this.qSpans = new Int32Array(this.capacity);
    this.debugLog = opts.logger.enabled('debug');
    // Every in-flight send listens on the shared signal; there are as many as workers, by design.
    setMaxListeners(0, this.abort.signal);

    const t = opts.telemetry;
    this.mSent = zeroed(t.exporterSent.labels(opts.id));
    this.mSendFailed = zeroed(t.exporterSendFailed.labels(opts.id));
    this.mEnqueueFailed = zeroed(t.exporterEnqueueFailed.labels(opts.id));
    this.mQueueSize = t.exporterQueueSize.labels(opts.id);
    this.mQueueSize.set(0);
    t.exporterQueueCapacity.labels(opts.id).set(this.capacity);
    this.dropped = {
      queue_full: t.droppedSpans.labels(opts.id, 'queue_full'),
      send_failed: t.droppedSpans.labels(opts.id, 'send_failed'),
      permanent: t.droppedSpans.labels(opts.id, 'permanent'),
      partial_success: t.droppedSpans.labels(opts.id, 'partial_success'),
      shutdown: t.droppedSpans.labels(opts.id, 'shutdown'),
    };
  }

  /** Starts the queue workers. Batches consumed before start wait in the queue. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < this.workerCount; i++) {
      const w = new Worker();
      this.workers.push(w);
      this.running.push(this.workerLoop(w));
    }
  }

  /** Batches waiting in the queue (not counting those being sent). */
  get queueSize(): number {
    return this.qLen;
  }

  /**
   * Queues the batch (resolving once queued) or, with the queue disabled, sends it and settles with the
   * outcome. Rejects with QUEUE_FULL when the queue is full and SHUTTING_DOWN after shutdown began.
   */
  consume(batch: TraceBatch): Promise<void> {
    let sealed: TraceBatch;
    let spans: number;
    try {
      sealed = batch.seal();
      spans = sealed.liveSpanCount;
    } catch (err) {
      // Receivers validate; this only guards the promise contract against bytes that never were.
      return Promise.reject(asPipelineError(err));
    }
    if (spans === 0) return Promise.resolve();
    if (!this.accepting) {
      this.mEnqueueFailed.inc(spans);
      this.dropped.shutdown.inc(spans);
      return Promise.reject(new PipelineError('SHUTTING_DOWN', `exporter ${this.id} is shutting down`));
    }
    const bytes = sealed.encode();
    if (!this.queued) return this.sendNow(bytes, spans);
    if (this.qLen === this.capacity) {
      this.mEnqueueFailed.inc(spans);
      this.dropped.queue_full.inc(spans);
      return Promise.reject(new PipelineError('QUEUE_FULL', `exporter ${this.id}: sending queue is full (${this.capacity} batches)`, this.retry.initial_interval));
    }
    const slot = (this.qHead + this.qLen) % this.capacity;
    this.qBytes[slot] = bytes;
    this.qSpans[slot] = spans;
    this.qLen++;
    this.mQueueSize.set(this.qLen);
    const w = this.idle.pop();
    if (w !== undefined) w.wake(true);
    return Promise.resolve();
  }

  /**
   * Stops accepting, lets the workers drain the queue until `deadline` (epoch ms), then abandons what is
   * left (in flight, backing off or queued), counting every span as dropped with reason "shutdown".
   */
  async shutdown(deadline: number): Promise<void> {
    if (!this.accepting) return;
    this.accepting = false;
    this.stopBy = deadline;
    // Idle workers wake to find the queue empty and stop; busy ones stop after the queue drains.
    for (const w of this.idle.splice(0)) w.wake(false);
    // A worker backing off past the deadline gives up now rather than sleeping through it.
    for (const w of this.workers) if (w.waiting && w.bytes !== null && w.until > deadline) w.wake(false);

    const all = Promise.all(this.running);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), true);
      }),
    ]);
    clearTimeout(timer);
    // Batches can also be left over without a timeout: queued before a start that never happened.
    if (timedOut || this.qLen > 0) this.expire();
    this.running = [];
  }

  /** Shutdown's deadline passed: cancel sends and waits, and count every span still held. */
  private expire(): void {
    this.expired = true;
    this.abort.abort();
    for (const w of this.workers) {
      if (w.bytes !== null && !w.abandoned) {
        w.abandoned = true;
        this.fail(w.spans, 'shutdown', w.attempted, 'shutdown deadline reached while sending');
      }
      w.wake(false);
    }
    let left = 0;
    let batches = 0;
    while (this.qLen > 0) {
      left += this.qSpans[this.qHead]!;
      batches++;
      this.take();
    }
    if (left > 0) {
      this.dropped.shutdown.inc(left);
      this.logger.warn('shutdown deadline reached; queued spans dropped', { spans: left, batches });
    }
  }

  private take(): Uint8Array {
    const bytes = this.qBytes[this.qHead]!;
    this.qBytes[this.qHead] = null;
    this.qHead = (this.qHead + 1) % this.capacity;
    this.qLen--;
    this.mQueueSize.set(this.qLen);
    return bytes;
  }

  private async workerLoop(w: Worker): Promise<void> {
    for (;;) {
      if (this.expired) return;
      if (this.qLen === 0) {
        if (!this.accepting) return;
        this.idle.push(w);
        await w.wait(-1);
        continue;
      }
      const spans = this.qSpans[this.qHead]!;
      w.bytes = this.take();
      w.spans = spans;
      w.attempted = false;
      w.abandoned = false;
      await this.deliver(w);
      w.bytes = null;
    }
  }

  private async sendNow(bytes: Uint8Array, spans: number): Promise<void> {
    const w = new Worker();
    w.bytes = bytes;
    w.spans = spans;
    this.workers.push(w);
    try {
      const err = await this.deliver(w);
      if (err !== null) throw err;
    } finally {
      w.bytes = null;
      const i = this.workers.indexOf(w);
      if (i >= 0) this.workers.splice(i, 1);
    }
  }

  /**
   * Sends the worker's batch until it succeeds, fails permanently, runs out of retries or shutdown runs
   * out of time, and accounts for the result. Returns the error for synchronous callers, null on success.
   */
  private async deliver(w: Worker): Promise<PipelineError | null> {
    const bytes = w.bytes!;
    const spans = w.spans;
    const r = this.retry;
    const started = Date.now();
    let interval = r.initial_interval;
    let attempts = 0;
    for (;;) {
      if (this.expired || w.abandoned) return this.shutdownError(w);
      const now = Date.now();
      let deadline = now + this.timeoutMs;
      if (deadline > this.stopBy) deadline = this.stopBy;
      attempts++;
      w.attempted = true;
      let outcome: SendOutcome;
      try {
        outcome = await this.send(bytes, spans, deadline, this.abort.signal);
      } catch (err) {
        outcome = retryableOutcome(err instanceof Error ? err.message : String(err));
      }
      if (w.abandoned) return this.shutdownError(w);

      if (outcome.kind === 'ok') {
        const rejected = Math.min(spans, Math.max(0, outcome.rejectedSpans));
        this.mSent.inc(spans - rejected);
        if (rejected > 0) this.fail(rejected, 'partial_success', true, outcome.message);
        return null;
      }
      if (outcome.kind === 'permanent') {
        this.fail(spans, 'permanent', true, outcome.message, attempts);
        return new PipelineError('INVALID_ARGUMENT', `exporter ${this.id}: ${outcome.message}`);
      }
      if (this.expired) return this.shutdownError(w);
      if (!r.enabled) {
        this.fail(spans, 'send_failed', true, outcome.message, attempts);
        return new PipelineError('UNAVAILABLE', `exporter ${this.id}: ${outcome.message}`, outcome.retryAfterMs);
      }

      // Exponential backoff with jitter; the peer's requested delay is a floor, as in the Collector.
      let delay = interval * (1 + r.randomization_factor * (2 * Math.random() - 1));
      interval = Math.min(interval * r.multiplier, r.max_interval);
      if (outcome.retryAfterMs > delay) delay = outcome.retryAfterMs;
      delay = Math.ceil(delay);
      const after = Date.now() + delay;
      if (r.max_elapsed_time > 0 && after - started > r.max_elapsed_time) {
        this.fail(spans, 'send_failed', true, `${outcome.message} (retries exhausted after ${attempts} attempts)`, attempts);
        return new PipelineError('UNAVAILABLE', `exporter ${this.id}: retries exhausted: ${outcome.message}`, outcome.retryAfterMs);
      }
      if (after > this.stopBy) return this.shutdownError(w);
      if (this.debugLog) this.logger.debug('export failed; will retry', { error: outcome.message, delay_ms: delay, attempt: attempts });
      w.until = after;
      const slept = await w.wait(delay);
      if (!slept && (this.expired || w.abandoned || w.until > this.stopBy)) return this.shutdownError(w);
    }
  }

  private shutdownError(w: Worker): PipelineError {
    if (!w.abandoned) {
      w.abandoned = true;
      this.fail(w.spans, 'shutdown', w.attempted, 'shutdown deadline reached before the batch could be sent');
    }
    return new PipelineError('SHUTTING_DOWN', `exporter ${this.id} is shutting down`);
  }

  private fail(spans: number, reason: DropReason, attempted: boolean, message: string, attempts = 0): void {
    if (attempted) this.mSendFailed.inc(spans);
    this.dropped[reason].inc(spans);
    this.logger.warn('export failed; spans dropped', { reason, spans, error: message, attempts });
  }
}
