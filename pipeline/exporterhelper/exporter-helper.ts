/**
 * The sending machinery every network exporter composes (the Collector's exporterhelper): a bounded
 * queue drained by a fixed set of workers, retries with exponential backoff and jitter that honour the
 * peer's requested delay, and the accounting that makes sure every span it accepted and could not deliver
 * is counted with a reason (what it refuses stays its caller's to count). It knows nothing about
 * transports: the concrete exporter supplies `send`, which turns bytes into an outcome.
 *
 * Just over 500 lines: queue, workers, retry and accounting are one state machine; the persistent queue
 * (issue 8) will come in a module of its own beside it.
 */
import { setMaxListeners } from 'node:events';
import type { TraceBatch } from '../batch/batch.js';
import type { ComponentSettings } from '../service/component.js';
import { settlesBy } from '../service/deadline.js';
import { PipelineError, asPipelineError } from '../service/errors.js';
import type { Logger } from '../telemetry/logger.js';
import { Schema, s, type Infer, type ParseContext, type Path } from '../config/schema.js';
import { zeroed, type Telemetry } from '../telemetry/telemetry.js';

// ---- configuration (Collector key names and defaults) ----

/**
 * A Collector queue key this helper does not implement. At the Collector's default it changes nothing and
 * is accepted with a warning; any other value would silently change what the operator asked for (how the
 * queue is sized, whether data survives a restart, whether a full queue blocks), so it is an error.
 */
class CollectorDefaultOnly extends Schema<unknown> {
  constructor(
    private readonly isDefault: (v: unknown) => boolean,
    private readonly atDefault: string,
    private readonly otherwise: string,
  ) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): unknown {
    if (this.isDefault(v)) {
      ctx.warn(path, `accepted for OpenTelemetry Collector compatibility; ${this.atDefault}`);
    } else {
      ctx.error(path, this.otherwise);
    }
    return v;
  }
  describe(): string {
    return "the Collector's default";
  }
}

const isFalse = (v: unknown): boolean => v === false;
const refusesWhenFull = (key: string) =>
  new CollectorDefaultOnly(
    isFalse,
    'a full queue refuses new batches (QUEUE_FULL)',
    `${key}: true is not supported: a full queue refuses new batches (QUEUE_FULL) so the sender retries; remove ${key} or set it to false`,
  ).optional();

export const sendingQueueSchema = s.object({
  enabled: s.bool().default(true),
  num_consumers: s.int({ min: 1, max: 1000 }).default(10),
  queue_size: s.int({ min: 1 }).default(1000),
  sizer: new CollectorDefaultOnly(
    (v) => v === 'requests',
    'queue_size counts batches (requests)',
    'only sizer: requests is supported: the queue counts batches, so queue_size is a number of batches, not of items or bytes',
  ).optional(),
  storage: new CollectorDefaultOnly(
    () => false,
    '',
    'persistent queues are not supported yet: the sending queue is held in memory; remove storage',
  ).optional(),
  blocking: refusesWhenFull('blocking'),
  block_on_overflow: refusesWhenFull('block_on_overflow'),
  wait_for_result: new CollectorDefaultOnly(
    isFalse,
    'a batch is acknowledged once queued',
    'wait_for_result: true is not supported with the queue: a batch is acknowledged once queued; to answer senders only after the backend accepted their data, set enabled: false instead',
  ).optional(),
  batch: new CollectorDefaultOnly(
    () => false,
    '',
    'batching in the exporter is not supported: batches are sent as they arrive; use the batch processor (send_batch_size, send_batch_max_size, timeout) instead',
  ).optional(),
});

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

/**
 * Drop reasons, as they appear in tracewarden_dropped_spans_total{reason}. Only spans this helper accepted
 * (queued, or answered as sent) and then lost are dropped here: a batch refused to the caller (queue full,
 * shutting down, or a failed send with the queue disabled) is still the caller's, and the caller counts it
 * if it cannot hand it back.
 */
type DropReason = 'send_failed' | 'permanent' | 'partial_success' | 'shutdown';

/** What the caller is told when the queue is disabled: fixed words, since the peer's text may quote data. */
const BACKEND_REFUSED = 'the backend refused the data';
const BACKEND_UNAVAILABLE = 'the backend is unavailable';

/**
 * The status part of an outcome's message ("UNAVAILABLE", "HTTP 503", "ECONNREFUSED"): what precedes the
 * peer's own words, which exporters write after the first ": ". Bounded, for a message that has no status.
 */
export function statusOf(message: string): string {
  const colon = message.indexOf(': ');
  const status = colon < 0 ? message : message.slice(0, colon);
  return status.length > 40 ? status.slice(0, 40) + '…' : status;
}

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
  /**
   * Set for a send made for a waiting caller (queue disabled): a failure is refused to that caller, who
   * still holds the batch, instead of being counted as dropped here.
   */
  readonly forCaller: boolean;
  constructor(forCaller: boolean) {
    this.forCaller = forCaller;
  }
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

/** The keys every queued exporter's config has, under the Collector's names. */
export interface QueuedExporterConfig {
  sending_queue: SendingQueueConfig;
  retry_on_failure: RetryConfig;
  timeout: number;
}

export class ExporterHelper {
  /** A helper for an exporter component from its settings and config; `send` makes one attempt. */
  static forComponent(settings: ComponentSettings, config: QueuedExporterConfig, send: SendFn): ExporterHelper {
    return new ExporterHelper({
      id: settings.id,
      telemetry: settings.telemetry,
      logger: settings.logger,
      queue: config.sending_queue,
      retry: config.retry_on_failure,
      timeoutMs: config.timeout,
      send,
    });
  }

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
  /** Sends made for waiting callers (queue disabled): shutdown waits for them as for the workers. */
  private readonly callerSends = new Set<Promise<PipelineError | null>>();
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
      const w = new Worker(false);
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
   * outcome. Rejects with QUEUE_FULL when the queue is full and SHUTTING_DOWN after shutdown began; a
   * refused batch counts as an enqueue failure, not as dropped, since the caller still holds it.
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
    // Refusals: the caller keeps the batch, so they are enqueue failures, not drops.
    if (!this.accepting) {
      this.mEnqueueFailed.inc(spans);
      return Promise.reject(new PipelineError('SHUTTING_DOWN', `exporter ${this.id} is shutting down`));
    }
    const bytes = sealed.encode();
    if (!this.queued) return this.sendNow(bytes, spans);
    if (this.qLen === this.capacity) {
      this.mEnqueueFailed.inc(spans);
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

    const timedOut = !(await settlesBy(Promise.all([...this.running, ...this.callerSends]), deadline));
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
        this.fail(w, w.spans, 'shutdown', 'shutdown deadline reached while sending');
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
    const w = new Worker(true);
    w.bytes = bytes;
    w.spans = spans;
    this.workers.push(w);
    const delivery = this.deliver(w);
    this.callerSends.add(delivery);
    try {
      const err = await delivery;
      if (err !== null) throw err;
    } finally {
      this.callerSends.delete(delivery);
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
        outcome = retryableOutcome(err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}` : 'send failed');
      }
      if (w.abandoned) return this.shutdownError(w);

      if (outcome.kind === 'ok') {
        const rejected = Math.min(spans, Math.max(0, outcome.rejectedSpans));
        this.mSent.inc(spans - rejected);
        if (rejected > 0) this.fail(w, rejected, 'partial_success', outcome.message);
        return null;
      }
      if (outcome.kind === 'permanent') {
        this.fail(w, spans, 'permanent', outcome.message, attempts);
        return new PipelineError('INVALID_ARGUMENT', BACKEND_REFUSED);
      }
      if (this.expired) return this.shutdownError(w);
      if (!r.enabled) {
        this.fail(w, spans, 'send_failed', outcome.message, attempts);
        return new PipelineError('UNAVAILABLE', BACKEND_UNAVAILABLE, outcome.retryAfterMs);
      }

      // Exponential backoff with jitter; the peer's requested delay is a floor, as in the Collector.
      let delay = interval * (1 + r.randomization_factor * (2 * Math.random() - 1));
      interval = Math.min(interval * r.multiplier, r.max_interval);
      if (outcome.retryAfterMs > delay) delay = outcome.retryAfterMs;
      delay = Math.ceil(delay);
      const after = Date.now() + delay;
      if (r.max_elapsed_time > 0 && after - started > r.max_elapsed_time) {
        this.fail(w, spans, 'send_failed', `${outcome.message} (retries exhausted after ${attempts} attempts)`, attempts);
        return new PipelineError('UNAVAILABLE', BACKEND_UNAVAILABLE, outcome.retryAfterMs);
      }
      if (after > this.stopBy) return this.shutdownError(w);
      if (this.debugLog) this.logger.debug('export failed; will retry', { status: statusOf(outcome.message), delay_ms: delay, attempt: attempts });
      w.until = after;
      const slept = await w.wait(delay);
      if (!slept && (this.expired || w.abandoned || w.until > this.stopBy)) return this.shutdownError(w);
    }
  }

  private shutdownError(w: Worker): PipelineError {
    if (!w.abandoned) {
      w.abandoned = true;
      this.fail(w, w.spans, 'shutdown', 'shutdown deadline reached before the batch could be sent');
    }
    return new PipelineError('SHUTTING_DOWN', `exporter ${this.id} is shutting down`);
  }

  /**
   * Accounts for spans that did not arrive, with one log line. A queued batch (or the rejected part of a
   * partial success, which the caller took as sent) is dropped here, and the log keeps the peer's message
   * for the operator. A batch sent for a waiting caller is refused to it instead: not dropped, and only the
   * peer's status is logged, since the caller answers its own sender and logs the refusal itself.
   */
  private fail(w: Worker, spans: number, reason: DropReason, message: string, attempts = 0): void {
    if (w.attempted) this.mSendFailed.inc(spans);
    if (w.forCaller && reason !== 'partial_success') {
      this.logger.warn('export failed; batch refused to the caller', { reason, spans, status: statusOf(message), attempts });
      return;
    }
    this.dropped[reason].inc(spans);
    this.logger.warn('export failed; spans dropped', { reason, spans, error: message, attempts });
  }
}
