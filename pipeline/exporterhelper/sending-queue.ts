/**
 * The contract between the exporter helper's workers and where queued batches are kept: in memory, or on
 * disk (persistent-queue.ts). A batch is held from `offer` until `settle`, whatever happened to it; the
 * queue's size and bounds count what it holds, waiting or being delivered.
 */
import { PipelineError } from '../service/errors.js';

export interface QueuedBatch {
  /** The encoded request when it is in memory; null when it has to be read back with `load`. */
  bytes: Uint8Array | null;
  readonly spans: number;
}

export interface SendingQueue {
  /** The most batches held at once. */
  readonly capacity: number;
  /** Whether what is held survives a restart. */
  readonly persistent: boolean;
  /** Batches held: waiting and being delivered. */
  readonly held: number;
  /** Batches waiting for a worker. */
  readonly waiting: number;
  /**
   * Holds the batch. Resolves once it is held as durably as configured, rejects with QUEUE_FULL when a bound
   * is reached and UNAVAILABLE when it cannot be stored. `onAvailable` runs for each batch that can be taken.
   */
  offer(bytes: Uint8Array, spans: number): Promise<void>;
  /** The oldest waiting batch, now being delivered; null when none waits. */
  take(): QueuedBatch | null;
  /**
   * The batch's bytes, read back when not in memory; null when they could not be read intact, or when the
   * queue was closed first (`isClosed`).
   */
  load(batch: QueuedBatch): Promise<Uint8Array | null>;
  readonly isClosed: boolean;
  /** The batch is done with (delivered, or given up and counted by the caller): it is held no more. */
  settle(batch: QueuedBatch): void;
  /** Stops storing; returns what is still held (kept for the next start when persistent, lost otherwise). */
  close(): Promise<{ batches: number; spans: number }>;
}

export function queueFull(owner: string, why: string, retryAfterMs: number): PipelineError {
  return new PipelineError('QUEUE_FULL', `exporter ${owner}: sending queue is full (${why})`, retryAfterMs);
}

/** Batches in memory, in a ring: nothing survives the process. */
export class MemoryQueue implements SendingQueue {
  readonly persistent = false;
  private readonly ring: (QueuedBatch | null)[];
  private head = 0;
  private count = 0;
  private inFlight = 0;
  private heldSpans = 0;

  constructor(
    readonly capacity: number,
    private readonly owner: string,
    private readonly retryAfterMs: number,
    private readonly onAvailable: () => void,
  ) {
    this.ring = new Array<QueuedBatch | null>(capacity).fill(null);
  }

  get held(): number {
    return this.count + this.inFlight;
  }

  get waiting(): number {
    return this.count;
  }

  offer(bytes: Uint8Array, spans: number): Promise<void> {
    if (this.held >= this.capacity) return Promise.reject(queueFull(this.owner, `${this.capacity} batches`, this.retryAfterMs));
    this.ring[(this.head + this.count) % this.capacity] = { bytes, spans };
    this.count++;
    this.heldSpans += spans;
    this.onAvailable();
    return Promise.resolve();
  }

  take(): QueuedBatch | null {
    if (this.count === 0) return null;
    const b = this.ring[this.head]!;
    this.ring[this.head] = null;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    this.inFlight++;
    return b;
  }

  load(batch: QueuedBatch): Promise<Uint8Array | null> {
    return Promise.resolve(batch.bytes);
  }

  readonly isClosed = false;

  settle(batch: QueuedBatch): void {
    this.inFlight--;
    this.heldSpans -= batch.spans;
    batch.bytes = null;
  }

  close(): Promise<{ batches: number; spans: number }> {
    return Promise.resolve({ batches: this.held, spans: this.heldSpans });
  }
}
