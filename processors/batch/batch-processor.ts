/**
 * Merges small batches into larger ones before they go on. Pending batches stay as the encoded bytes they
 * are: a concatenation of ExportTraceServiceRequest messages is itself one (resource_spans is a repeated
 * field), so merging is a byte copy and nothing is decoded. Only splitting at send_batch_max_size scans
 * the merged bytes.
 *
 * Sends are serialised (one in flight, in arrival order), as in the Collector's single export loop.
 * Backpressure: when a batch would push the pending spans past `holdLimit` while a send is in flight,
 * consume waits for that send to finish instead of refusing, so a slow downstream slows the senders
 * rather than losing or bouncing their data. The wait is bounded (`backpressureMs`): a downstream that
 * stays stuck gets the batch refused as QUEUE_FULL, so the sender retries later instead of hanging.
 *
 * Accounting: once consume resolves, the spans are this processor's. Any it then cannot pass on (next
 * refuses, or re-packing them fails) are counted in tracewarden_dropped_spans_total with a reason.
 */
import type { Histogram } from 'prom-client';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, Host, Processor, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import { PipelineError, asPipelineError, type PipelineErrorCode } from '../../pipeline/service/errors.js';
import { settlesBy } from '../../pipeline/service/deadline.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { zeroed, type DropReason, type Telemetry } from '../../pipeline/telemetry/telemetry.js';
import type { BatchConfig } from './config.js';

/** The Collector's buckets for otelcol_processor_batch_batch_send_size. */
const SEND_SIZE_BUCKETS = [
  10, 25, 50, 75, 100, 250, 500, 750, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 20000, 30000, 50000, 100000,
];

/** How many spans the processor may hold, in multiples of the largest batch it sends. */
const HOLD_FACTOR = 4;

/**
 * The longest a batch waits for room: a few send cycles, at least a second. Fixed rather than configured:
 * it only decides when a stuck downstream turns into QUEUE_FULL for the sender.
 */
export function backpressureWaitMs(timeoutMs: number): number {
  return Math.max(1000, 5 * timeoutMs);
}

/** The reason for spans lost to a failure of the processor itself rather than a refusal downstream. */
const INTERNAL_REASON: DropReason = 'internal_error';

type Trigger = 'size' | 'timeout';

export class BatchProcessor implements Processor {
  private readonly log: Logger;
  private readonly sendBatchSize: number;
  private readonly maxSize: number;
  private readonly timeoutMs: number;
  /** Pending spans above which consume waits for the in-flight send. */
  readonly holdLimit: number;
  /** How long consume waits for room before refusing with QUEUE_FULL. */
  readonly backpressureMs: number;
  /** Spans taken from pending by the current send and not yet passed on, refused or put back. */
  private unsent = 0;

  private pending: Uint8Array[] = [];
  private pendingSpans = 0;
  private pendingBytes = 0;
  private firstCtx: RequestContext | null = null;

  private timer: NodeJS.Timeout | null = null;
  private timerDue = false;
  private stopping = false;
  /** The drain loop while it runs; it never rejects. */
  private draining: Promise<void> | null = null;
  /** Settles when pending spans are taken for sending or the drain ends: what backpressured consumers wait on. */
  private room: Promise<void> | null = null;
  private releaseRoom: (() => void) | null = null;

  private readonly incoming: { inc(n: number): void };
  private readonly outgoing: { inc(n: number): void };
  private readonly sendSize: { observe(n: number): void };
  private readonly sizeTriggers: { inc(): void };
  private readonly timeoutTriggers: { inc(): void };
  private readonly droppedByReason = new Map<DropReason, { inc(n: number): void }>();
  private readonly onTimeout = (): void => {
    this.timer = null;
    this.timerDue = true;
    this.kick();
  };

  constructor(
    private readonly settings: ComponentSettings,
    config: BatchConfig,
    private readonly next: TracesConsumer,
  ) {
    this.log = settings.logger.child({ component: settings.id });
    this.sendBatchSize = config.send_batch_size;
    this.maxSize = config.send_batch_max_size;
    this.timeoutMs = config.timeout;
    this.holdLimit = HOLD_FACTOR * Math.max(config.send_batch_size, config.send_batch_max_size, 1);
    this.backpressureMs = backpressureWaitMs(config.timeout);
    const t: Telemetry = settings.telemetry;
    const id = settings.id;
    this.incoming = zeroed(t.processorIncoming.labels(id, 'traces'));
    this.outgoing = zeroed(t.processorOutgoing.labels(id, 'traces'));
    const sendSize: Histogram<'processor'> = t.histogram(
      'otelcol_processor_batch_batch_send_size',
      'Number of spans in each batch sent.',
      ['processor'],
      SEND_SIZE_BUCKETS,
    );
    this.sendSize = sendSize.labels(id);
    this.sizeTriggers = t
      .counter('otelcol_processor_batch_batch_size_trigger_send_total', 'Batches sent because they reached send_batch_size.', ['processor'])
      .labels(id);
    this.timeoutTriggers = t
      .counter('otelcol_processor_batch_timeout_trigger_send_total', 'Batches sent because the timeout expired.', ['processor'])
      .labels(id);
  }

  async start(_host: Host): Promise<void> {}

  /** Spans held and not yet passed on. */
  get pendingSpanCount(): number {
    return this.pendingSpans;
  }

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    if (this.stopping) throw new PipelineError('SHUTTING_DOWN', `${this.settings.id} is shutting down`);
    const sealed = batch.seal();
    const n = sealed.spanCount;
    if (n === 0) return;
    if (this.pendingSpans > 0 && this.pendingSpans + n > this.holdLimit && this.draining !== null) await this.waitForRoomOrRefuse(n);
    // Counted once accepted: a refused batch is still the sender's.
    this.incoming.inc(n);
    const bytes = sealed.bytes;
    if (this.pendingSpans === 0) {
      this.firstCtx = ctx;
      if (this.timeoutMs > 0 && this.timer === null) this.armTimer();
    }
    this.pending.push(bytes);
    this.pendingSpans += n;
    this.pendingBytes += bytes.length;
    if (this.timeoutMs === 0) this.timerDue = true;
    this.kick();
  }

  /**
   * Resolves when every span that was pending has been passed on (or counted as lost). For tests and
   * shutdown; it also resolves at once when nothing is due to be sent.
   */
  flushed(): Promise<void> {
    return this.draining ?? Promise.resolve();
  }

  async shutdown(deadline: number): Promise<void> {
    this.stopping = true;
    this.clearTimer();
    this.kick();
    const timedOut = !(await settlesBy(this.settleAll(), deadline));
    if (timedOut && this.pendingSpans > 0) {
      const lost = this.pendingSpans;
      this.pending = [];
      this.pendingSpans = 0;
      this.pendingBytes = 0;
      this.droppedFor('shutting_down').inc(lost);
      this.log.error('shutdown deadline passed before pending spans were sent; they are lost', { spans: lost });
    }
  }

  private async settleAll(): Promise<void> {
    // A drain may end while a batch that was waiting for room adds more; loop until nothing is left.
    for (let i = 0; i < 1_000_000 && (this.draining !== null || this.pendingSpans > 0); i++) {
      if (this.draining === null) this.kick();
      await this.draining;
    }
  }

  /**
   * Waits while the pending spans are over the hold limit and a send is in flight, at most
   * `backpressureMs`; then refuses with QUEUE_FULL, retryable, so the sender keeps the batch and retries.
   */
  private async waitForRoomOrRefuse(n: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, this.backpressureMs, false);
    });
    try {
      // Each wake-up follows a take (pending shrinks) or the end of the drain (the loop exits), so this ends.
      while (this.pendingSpans > 0 && this.pendingSpans + n > this.holdLimit && this.draining !== null) {
        const woken = await Promise.race([this.waitForRoom().then(roomMade), expired]);
        if (this.stopping) throw new PipelineError('SHUTTING_DOWN', `${this.settings.id} is shutting down`);
        if (!woken) {
          throw new PipelineError(
            'QUEUE_FULL',
            `${this.settings.id}: downstream has not taken pending spans for ${this.backpressureMs} ms; retry later`,
            Math.max(1000, this.timeoutMs),
          );
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private waitForRoom(): Promise<void> {
    if (this.room === null) {
      this.room = new Promise<void>((resolve) => {
        this.releaseRoom = resolve;
      });
    }
    return this.room;
  }

  private wakeWaiters(): void {
    if (this.releaseRoom !== null) {
      const release = this.releaseRoom;
      this.room = null;
      this.releaseRoom = null;
      release();
    }
  }

  private armTimer(): void {
    // Left referenced: pending spans keep the process alive for at most one timeout, until they are sent.
    this.timer = setTimeout(this.onTimeout, this.timeoutMs);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private due(): boolean {
    return this.pendingSpans > 0 && (this.pendingSpans >= this.sendBatchSize || this.timerDue || this.stopping);
  }

  private kick(): void {
    if (this.draining === null && this.due()) this.draining = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.due()) await this.sendPending();
    } catch (err) {
      // Only a bug gets here (the merged bytes are our own or already validated); never crash on it, and
      // count what it cost. Only the error's name is logged: its message may quote the data.
      const lost = this.unsent;
      this.unsent = 0;
      const reason: DropReason = err instanceof PipelineError ? (err.code.toLowerCase() as Lowercase<PipelineErrorCode>) : INTERNAL_REASON;
      if (lost > 0) this.droppedFor(reason).inc(lost);
      this.log.error('batch processor failed to send pending spans; they are lost', {
        spans: lost,
        reason,
        error: err instanceof Error ? err.name : typeof err,
      });
    } finally {
      this.draining = null;
      this.wakeWaiters();
    }
    // Something may have become due while the last send was settling.
    this.kick();
  }

  /** Takes everything pending and sends it, split at send_batch_max_size. */
  private async sendPending(): Promise<void> {
    const trigger: Trigger = this.pendingSpans >= this.sendBatchSize && !this.timerDue && !this.stopping ? 'size' : 'timeout';
    const chunks = this.pending;
    const spans = this.pendingSpans;
    const first = this.firstCtx!;
    const bytes = concat(chunks, this.pendingBytes);
    this.pending = [];
    this.pendingSpans = 0;
    this.pendingBytes = 0;
    this.firstCtx = null;
    this.timerDue = false;
    this.clearTimer();
    this.wakeWaiters();
    // From here until each piece is handed to send() (which accounts for it) or put back, a throw loses
    // these spans: drain() counts them.
    this.unsent = spans;
    const ctx: RequestContext = { receiver: first.receiver, transport: first.transport, peer: first.peer, auth: null };

    if (this.maxSize === 0 || spans <= this.maxSize) {
      this.unsent = 0;
      await this.send(bytes, spans, ctx, trigger);
      return;
    }
    const merged = new TraceBatch(bytes);
    const total = merged.spanCount;
    let sendTo = total;
    const tail = total % this.maxSize;
    if (trigger === 'size' && tail > 0 && tail < this.sendBatchSize) {
      // As in the Collector, a size-triggered send leaves a short tail to wait for company (or the timer).
      sendTo = total - tail;
      const rest = merged.encodeRange(sendTo, total);
      this.unsent -= tail;
      this.pending.unshift(rest);
      this.pendingSpans += tail;
      this.pendingBytes += rest.length;
      if (this.firstCtx === null) this.firstCtx = first;
      if (this.timeoutMs > 0 && this.timer === null) this.armTimer();
    }
    for (let from = 0; from < sendTo; from += this.maxSize) {
      const to = Math.min(from + this.maxSize, sendTo);
      const piece = merged.encodeRange(from, to);
      this.unsent -= to - from;
      await this.send(piece, to - from, ctx, trigger);
    }
  }

  private async send(bytes: Uint8Array, spans: number, ctx: RequestContext, trigger: Trigger): Promise<void> {
    this.sendSize.observe(spans);
    if (trigger === 'size') this.sizeTriggers.inc();
    else this.timeoutTriggers.inc();
    // Inside the try: a next stage that throws synchronously is a refusal like any other.
    try {
      await this.next.consume(TraceBatch.encoded(bytes, spans), ctx);
      this.outgoing.inc(spans);
    } catch (err) {
      const e = asPipelineError(err);
      this.droppedFor(e.code.toLowerCase() as Lowercase<PipelineErrorCode>).inc(spans);
      this.log.warn('next consumer refused a batch; its spans are lost', { spans, error: e });
    }
  }

  /** The counter child for a reason (a lower-case error code, or internal_error), bound on first use. */
  private droppedFor(reason: DropReason): { inc(n: number): void } {
    let c = this.droppedByReason.get(reason);
    if (c === undefined) {
      c = this.settings.telemetry.dropped(this.settings.id, reason);
      this.droppedByReason.set(reason, c);
    }
    return c;
  }
}

function roomMade(): boolean {
  return true;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}
