/**
 * The sending machinery every network exporter composes (the Collector's exporterhelper): a bounded
 * queue (in memory, or on disk with a storage extension) drained by a fixed set of workers, retries with
 * exponential backoff and jitter that honour the peer's requested delay, the log lines that tell an operator
 * when delivery is in trouble, and the accounting that makes sure every span it accepted and could not
 * deliver is counted with a reason (what it refuses stays its caller's to count). It knows nothing about
 * transports: the concrete exporter supplies `send`, which turns bytes into an outcome.
 */
import { setMaxListeners } from 'node:events';
import type { TraceBatch } from '../batch/batch.js';
import { isStorageExtension, type ComponentSettings, type Host } from '../service/component.js';
import { settlesBy } from '../service/deadline.js';
import { PipelineError, asPipelineError } from '../service/errors.js';
import type { Logger } from '../telemetry/logger.js';
import { zeroed, type DropReason, type Telemetry } from '../telemetry/telemetry.js';
import { DEFAULT_MAX_STORAGE_MIB, type QueuedExporterConfig, type RetryConfig, type SendingQueueConfig } from './config.js';
import { DeliveryTrouble, statusOf } from './delivery-trouble.js';
import { PersistentQueue } from './persistent-queue.js';
import { MemoryQueue, type QueuedBatch, type SendingQueue } from './sending-queue.js';

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
  /** Where the batches go, for the log lines about delivery trouble: no credentials, no query. */
  endpoint: string;
  /** How often a lasting delivery failure is reported again (default 30 s). */
  troubleLogIntervalMs?: number;
}

/**
 * Drop reasons, as they appear in tracewarden_dropped_spans_total{reason}. Only spans this helper accepted
 * (queued, or answered as sent) and then lost are dropped here: a batch refused to the caller (queue full,
 * shutting down, or a failed send with the queue disabled) is still the caller's, and the caller counts it
 * if it cannot hand it back. A persistent queue drops nothing at shutdown: what is left stays on disk.
 */
type ExporterDropReason = Extract<DropReason, 'send_failed' | 'permanent' | 'partial_success' | 'shutdown' | 'queue_corrupt'>;

/** What the caller is told when the queue is disabled: fixed words, since the peer's text may quote data. */
const BACKEND_REFUSED = 'the backend refused the data';
const BACKEND_UNAVAILABLE = 'the backend is unavailable';
/** Batch bytes a persistent queue keeps in memory beside the disk copy, so most deliveries read nothing. */
const PERSISTENT_QUEUE_MEMORY_BYTES = 64 * 1024 * 1024;
const SEGMENT_BYTES = 32 * 1024 * 1024;

/**
 * Per-worker state: the batch being delivered and one timer, reused for every backoff sleep and idle
 * wait, so nothing allocates a timer per batch and shutdown can cut any wait short.
 */
class Worker {
  batch: QueuedBatch | null = null;
  bytes: Uint8Array | null = null;
  spans = 0;
  /** Attempts made for the current batch. */
  attempts = 0;
  /** Set when shutdown gave up on the current batch and accounted for it: a late outcome is ignored. */
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

export class ExporterHelper {
  /** A helper for an exporter component from its settings and config; `send` makes one attempt. */
  static forComponent(settings: ComponentSettings, config: QueuedExporterConfig, endpoint: string, send: SendFn): ExporterHelper {
    return new ExporterHelper({
      id: settings.id,
      telemetry: settings.telemetry,
      logger: settings.logger,
      queue: config.sending_queue,
      retry: config.retry_on_failure,
      timeoutMs: config.timeout,
      endpoint,
      send,
    });
  }

  private readonly id: string;
  private readonly logger: Logger;
  private readonly send: SendFn;
  private readonly retry: RetryConfig;
  private readonly queueConfig: SendingQueueConfig;
  private readonly timeoutMs: number;
  private readonly workerCount: number;
  private readonly trouble: DeliveryTrouble;
  /** In memory from the start; replaced by the persistent queue at start when storage is configured. */
  private queue: SendingQueue | null;

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
  private readonly onAvailable = (): void => {
    this.mQueueSize.set(this.queue!.held);
    this.idle.pop()?.wake(true);
  };

  // Metric children, bound once.
  private readonly telemetry: Telemetry;
  private readonly mSent;
  private readonly mSendFailed;
  private readonly mEnqueueFailed;
  private readonly mRetries;
  private readonly mQueueSize;
  private readonly dropped: Record<ExporterDropReason, { inc(n: number): void }>;

  constructor(opts: ExporterHelperOptions) {
    this.id = opts.id;
    this.logger = opts.logger;
    this.send = opts.send;
    this.retry = opts.retry;
    this.queueConfig = opts.queue;
    this.timeoutMs = opts.timeoutMs;
    this.workerCount = opts.queue.enabled ? opts.queue.num_consumers : 0;
    this.debugLog = opts.logger.enabled('debug');
    this.trouble = new DeliveryTrouble(opts.logger, opts.endpoint, opts.troubleLogIntervalMs ?? 30_000);
    // Every in-flight send listens on the shared signal; there are as many as workers, by design.
    setMaxListeners(0, this.abort.signal);

    const t = (this.telemetry = opts.telemetry);
    this.mSent = zeroed(t.exporterSent.labels(opts.id));
    this.mSendFailed = zeroed(t.exporterSendFailed.labels(opts.id));
    this.mEnqueueFailed = zeroed(t.exporterEnqueueFailed.labels(opts.id));
    this.mRetries = zeroed(t.exporterRetries.labels(opts.id));
    this.mQueueSize = t.exporterQueueSize.labels(opts.id);
    this.mQueueSize.set(0);
    t.exporterQueueCapacity.labels(opts.id).set(opts.queue.enabled ? opts.queue.queue_size : 0);
    this.dropped = {
      send_failed: t.dropped(opts.id, 'send_failed'),
      permanent: t.dropped(opts.id, 'permanent'),
      partial_success: t.dropped(opts.id, 'partial_success'),
      shutdown: t.dropped(opts.id, 'shutdown'),
      queue_corrupt: t.dropped(opts.id, 'queue_corrupt'),
    };
    this.queue =
      opts.queue.enabled && opts.queue.storage === undefined
        ? new MemoryQueue(opts.queue.queue_size, opts.id, opts.retry.initial_interval, this.onAvailable)
        : null;
  }

  /**
   * Opens the persistent queue when storage is configured (queueing again what a previous run left) and
   * starts the queue workers. Batches consumed before start wait in the memory queue.
   */
  async start(host?: Host): Promise<void> {
    if (this.started) return;
    const q = this.queueConfig;
    if (q.enabled && q.storage !== undefined) {
      const ext = host?.getExtension(q.storage);
      if (ext === undefined) throw new Error(`${this.id}: sending_queue.storage: extension ${q.storage} is not configured (it must be under extensions: and listed in service.extensions)`);
      if (!isStorageExtension(ext)) throw new Error(`${this.id}: sending_queue.storage: extension ${q.storage} is not a storage extension`);
      const where = ext.storageFor('exporter', this.id, 'traces');
      const corrupt = zeroed(this.telemetry.queueCorruptRecords.labels(this.id));
      this.queue = await PersistentQueue.open({
        directory: where.directory,
        fsync: where.fsync,
        capacity: q.queue_size,
        maxBytes: (q.max_storage_mib ?? DEFAULT_MAX_STORAGE_MIB) * 1024 * 1024,
        segmentBytes: SEGMENT_BYTES,
        memoryBytes: PERSISTENT_QUEUE_MEMORY_BYTES,
        owner: this.id,
        retryAfterMs: this.retry.initial_interval,
        logger: this.logger,
        onCorrupt: (n) => corrupt.inc(n),
        onAvailable: this.onAvailable,
      });
      this.mQueueSize.set(this.queue.held);
      this.logger.info('persistent sending queue opened', { directory: where.directory, fsync: where.fsync, batches: this.queue.held });
    }
    this.started = true;
    for (let i = 0; i < this.workerCount; i++) {
      const w = new Worker(false);
      this.workers.push(w);
      this.running.push(this.workerLoop(w));
    }
  }

  /** Batches held by the queue: waiting and being delivered. */
  get queueSize(): number {
    return this.queue?.held ?? 0;
  }

  /**
   * Queues the batch (resolving once it is held, on disk when the queue is persistent) or, with the queue
   * disabled, sends it and settles with the outcome. Rejects with QUEUE_FULL when the queue is full and
   * SHUTTING_DOWN after shutdown began; a refused batch counts as an enqueue failure, not as dropped, since
   * the caller still holds it.
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
    if (!this.queueConfig.enabled) return this.sendNow(bytes, spans);
    if (this.queue === null) {
      this.mEnqueueFailed.inc(spans);
      return Promise.reject(new PipelineError('UNAVAILABLE', `exporter ${this.id} is not started`));
    }
    return this.queue.offer(bytes, spans).catch((err: PipelineError) => {
      this.mEnqueueFailed.inc(spans);
      throw err;
    });
  }

  /**
   * Stops accepting, lets the workers drain the queue until `deadline` (epoch ms), then gives up on what is
   * left (in flight, backing off or queued): kept on disk for the next start with a persistent queue,
   * counted as dropped with reason "shutdown" otherwise. Each step is logged.
   */
  async shutdown(deadline: number): Promise<void> {
    if (!this.accepting) return;
    this.accepting = false;
    this.stopBy = deadline;
    const held = this.queue?.held ?? 0;
    if (held > 0) this.logger.info('draining the sending queue', { batches: held, within_ms: Math.max(0, deadline - Date.now()) });
    // Idle workers wake to find the queue empty and stop; busy ones stop after the queue drains.
    for (const w of this.idle.splice(0)) w.wake(false);
    // A worker backing off past the deadline gives up now rather than sleeping through it.
    for (const w of this.workers) if (w.waiting && w.bytes !== null && w.until > deadline) w.wake(false);

    const timedOut = !(await settlesBy(Promise.all([...this.running, ...this.callerSends]), deadline));
    // Batches can also be left over without a timeout: queued before a start that never happened.
    if (timedOut || (this.queue?.waiting ?? 0) > 0) this.expire();
    this.running = [];
    const left = (await this.queue?.close()) ?? { batches: 0, spans: 0 };
    this.mQueueSize.set(0);
    if (this.queue?.persistent && left.batches > 0) {
      this.logger.warn('undelivered batches stay in the persistent queue for the next start', { batches: left.batches, spans: left.spans });
    } else if (held > 0) {
      this.logger.info('sending queue drained', {});
    }
  }

  /** Shutdown's deadline passed: cancel sends and waits, and account for every batch still held. */
  private expire(): void {
    this.expired = true;
    this.abort.abort();
    const q = this.queue;
    for (const w of this.workers) {
      if (w.bytes !== null && !w.abandoned) this.abandon(w, 'shutdown deadline reached while sending');
      w.wake(false);
    }
    if (q === null || q.persistent) return;
    let left = 0;
    let batches = 0;
    for (let b = q.take(); b !== null; b = q.take()) {
      left += b.spans;
      batches++;
      q.settle(b);
    }
    if (left > 0) {
      this.dropped.shutdown.inc(left);
      this.logger.warn('shutdown deadline reached; queued spans dropped', { spans: left, batches });
    }
  }

  private async workerLoop(w: Worker): Promise<void> {
    const q = this.queue!;
    for (;;) {
      if (this.expired) return;
      const b = q.take();
      if (b === null) {
        if (!this.accepting) return;
        this.idle.push(w);
        await w.wait(-1);
        continue;
      }
      this.mQueueSize.set(q.held);
      w.batch = b;
      w.spans = b.spans;
      w.attempts = 0;
      w.abandoned = false;
      w.bytes = b.bytes ?? (await q.load(b));
      if (w.bytes === null && (this.expired || q.isClosed)) {
        // Shutdown closed the queue during the read: the batch stays on disk for the next start.
        w.batch = null;
        return;
      }
      if (w.bytes === null) {
        // Damaged on disk since it was written: counted as corrupt by the queue, and lost here.
        this.dropped.queue_corrupt.inc(b.spans);
        this.logger.warn('a queued batch was damaged on disk; spans dropped', { spans: b.spans });
      } else {
        await this.deliver(w);
      }
      // A batch abandoned at shutdown stays held: on disk for the next start, or already counted.
      if (!(w.abandoned && q.persistent)) q.settle(b);
      w.batch = null;
      w.bytes = null;
      this.mQueueSize.set(q.held);
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
    for (;;) {
      if (this.expired || w.abandoned) return this.shutdownError(w);
      const now = Date.now();
      let deadline = now + this.timeoutMs;
      if (deadline > this.stopBy) deadline = this.stopBy;
      w.attempts++;
      let outcome: SendOutcome;
      try {
        outcome = await this.send(bytes, spans, deadline, this.abort.signal);
      } catch (err) {
        outcome = retryableOutcome(err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}` : 'send failed');
      }
      if (w.abandoned) return this.shutdownError(w);

      if (outcome.kind === 'ok') {
        this.trouble.delivered();
        const rejected = Math.min(spans, Math.max(0, outcome.rejectedSpans));
        this.mSent.inc(spans - rejected);
        if (rejected > 0) this.fail(w, rejected, 'partial_success', outcome.message);
        return null;
      }
      if (outcome.kind === 'permanent') {
        // The backend answered and refused this batch: bad data, not an exporter in trouble.
        this.fail(w, spans, 'permanent', outcome.message);
        return new PipelineError('INVALID_ARGUMENT', BACKEND_REFUSED);
      }
      if (this.expired) return this.shutdownError(w);
      if (!r.enabled) {
        this.trouble.failed(outcome.message, w.attempts, false);
        this.fail(w, spans, 'send_failed', outcome.message);
        return new PipelineError('UNAVAILABLE', BACKEND_UNAVAILABLE, outcome.retryAfterMs);
      }

      // Exponential backoff with jitter; the peer's requested delay is a floor, as in the Collector.
      let delay = interval * (1 + r.randomization_factor * (2 * Math.random() - 1));
      interval = Math.min(interval * r.multiplier, r.max_interval);
      if (outcome.retryAfterMs > delay) delay = outcome.retryAfterMs;
      delay = Math.ceil(delay);
      const after = Date.now() + delay;
      if (r.max_elapsed_time > 0 && after - started > r.max_elapsed_time) {
        this.trouble.failed(outcome.message, w.attempts, false);
        this.fail(w, spans, 'send_failed', `${outcome.message} (retries exhausted after ${w.attempts} attempts)`);
        return new PipelineError('UNAVAILABLE', BACKEND_UNAVAILABLE, outcome.retryAfterMs);
      }
      this.trouble.failed(outcome.message, w.attempts, true);
      if (after > this.stopBy) return this.shutdownError(w);
      this.mRetries.inc();
      if (this.debugLog) this.logger.debug('export failed; will retry', { status: statusOf(outcome.message), delay_ms: delay, attempt: w.attempts });
      w.until = after;
      const slept = await w.wait(delay);
      if (!slept && (this.expired || w.abandoned || w.until > this.stopBy)) return this.shutdownError(w);
    }
  }

  private shutdownError(w: Worker): PipelineError {
    if (!w.abandoned) this.abandon(w, 'shutdown deadline reached before the batch could be sent');
    return new PipelineError('SHUTTING_DOWN', `exporter ${this.id} is shutting down`);
  }

  /**
   * Shutdown gives up on the worker's batch. A persistent queue keeps it for the next start (it is still
   * on disk, not acknowledged); otherwise it is accounted for as any failure is.
   */
  private abandon(w: Worker, why: string): void {
    w.abandoned = true;
    if (!w.forCaller && this.queue?.persistent) return;
    this.fail(w, w.spans, 'shutdown', why);
  }

  /**
   * Accounts for spans that did not arrive, with one log line carrying the attempts made. A queued batch
   * (or the rejected part of a partial success, which the caller took as sent) is dropped here, and the log
   * keeps the peer's message for the operator. A batch sent for a waiting caller is refused to it instead:
   * not dropped, and only the peer's status is logged, since the caller answers its own sender and logs the
   * refusal itself.
   */
  private fail(w: Worker, spans: number, reason: ExporterDropReason, message: string): void {
    if (w.attempts > 0) this.mSendFailed.inc(spans);
    if (w.forCaller && reason !== 'partial_success') {
      this.logger.warn('export failed; batch refused to the caller', { reason, spans, status: statusOf(message), attempts: w.attempts });
      return;
    }
    this.dropped[reason].inc(spans);
    this.logger.warn('export failed; spans dropped', { reason, spans, error: message, attempts: w.attempts });
  }
}
