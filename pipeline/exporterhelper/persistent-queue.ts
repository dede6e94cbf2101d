/**
 * A sending queue on disk that survives the process, including kill -9. Batches are appended as framed,
 * checksummed records (queue-record.ts) to segment files; a batch is acknowledged to its sender once its
 * record is written (and, with fsync, on the disk itself). Delivered batches are noted in the segment's ack
 * file, and a segment whose batches are all delivered is deleted. At start every intact record of every
 * segment that is not acknowledged is queued again, oldest first: delivery is at least once, and a batch
 * delivered just before a crash (its ack not yet written) is delivered again.
 *
 *   <directory>/00000000000000000001.seg   records
 *   <directory>/00000000000000000001.ack   sequence numbers of its delivered records (12 bytes each)
 *
 * Writes are grouped: batches offered while a write is under way go out in the next write, with one fsync
 * for the group. Batch bytes stay in memory while the queue's in-memory share is under `memoryBytes`; the
 * rest are read back from the segment when a worker takes them, checksum checked again.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { PipelineError } from '../service/errors.js';
import type { Logger } from '../telemetry/logger.js';
import { RECORD_HEADER_BYTES, encodeRecordHeader, readRecordAt, scanSegment } from './queue-record.js';
import { queueFull, type QueuedBatch, type SendingQueue } from './sending-queue.js';

const writev = promisify(fs.writev);
const fdatasync = promisify(fs.fdatasync);
const ftruncate = promisify(fs.ftruncate);
const read = promisify(fs.read);
const close = promisify(fs.close);
const open = promisify(fs.open);

const ACK_BYTES = 12;
/** Records written by one writev: below IOV_MAX (1024) with two buffers each. */
const MAX_GROUP = 500;

export interface PersistentQueueOptions {
  /** This queue's own directory; created when missing. */
  directory: string;
  /** fdatasync each write before acknowledging it. */
  fsync: boolean;
  /** The most batches held. */
  capacity: number;
  /** The most bytes of undelivered records on disk. */
  maxBytes: number;
  /** A segment is closed and a new one started past this size. */
  segmentBytes: number;
  /** Batch bytes kept in memory beside the disk copy, so most deliveries need no read. */
  memoryBytes: number;
  owner: string;
  retryAfterMs: number;
  logger: Logger;
  /** Damaged records found (at start, or when a batch is read back). */
  onCorrupt: (records: number) => void;
  onAvailable: () => void;
}

class Segment {
  /** Undelivered records in it. */
  live = 0;
  size = 0;
  fd = -1;
  ackFd = -1;
  constructor(
    readonly id: number,
    readonly path: string,
    readonly ackPath: string,
  ) {}
}

class DiskBatch implements QueuedBatch {
  constructor(
    public bytes: Uint8Array | null,
    readonly spans: number,
    readonly seq: number,
    readonly segment: Segment,
    readonly offset: number,
    readonly length: number,
  ) {}
}

interface PendingWrite {
  header: Buffer;
  bytes: Uint8Array;
  spans: number;
  seq: number;
  resolve: () => void;
  reject: (err: PipelineError) => void;
}

export class PersistentQueue implements SendingQueue {
  readonly persistent = true;
  readonly capacity: number;
  private readonly queue: (DiskBatch | undefined)[] = [];
  private qHead = 0;
  private inFlight = 0;
  /** Batches offered and not yet written count as held, so bounds hold while a write is under way. */
  private writing = 0;
  private diskBytes = 0;
  private cachedBytes = 0;
  private heldSpans = 0;
  private nextSeq = 1;
  private active: Segment | null = null;
  private readonly segments = new Map<number, Segment>();
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | null = null;
  /** Reads in progress: close() waits for them, so no read ever meets a closed (or reused) descriptor. */
  private readonly loading = new Set<Promise<unknown>>();
  /** Set after a failed write: the next write starts a new segment rather than append after a torn tail. */
  private activeBroken = false;
  /** The highest segment id seen in the directory, segments and ack files alike: new ids go above it. */
  private lastSegmentId = 0;
  private closed = false;

  private constructor(private readonly o: PersistentQueueOptions) {
    this.capacity = o.capacity;
  }

  /** Opens the queue in its directory, queueing again whatever a previous process left undelivered. */
  static async open(o: PersistentQueueOptions): Promise<PersistentQueue> {
    const q = new PersistentQueue(o);
    await fs.promises.mkdir(o.directory, { recursive: true });
    await q.recover();
    await q.startSegment();
    return q;
  }

  get held(): number {
    return this.queue.length - this.qHead + this.inFlight + this.writing;
  }

  get waiting(): number {
    return this.queue.length - this.qHead;
  }

  offer(bytes: Uint8Array, spans: number): Promise<void> {
    if (this.closed) return Promise.reject(new PipelineError('SHUTTING_DOWN', `exporter ${this.o.owner} is shutting down`));
    const size = RECORD_HEADER_BYTES + bytes.byteLength;
    if (this.held >= this.capacity) return Promise.reject(queueFull(this.o.owner, `${this.capacity} batches`, this.o.retryAfterMs));
    if (this.diskBytes + size > this.o.maxBytes) {
      return Promise.reject(queueFull(this.o.owner, `${mib(this.diskBytes)} of ${mib(this.o.maxBytes)} MiB on disk`, this.o.retryAfterMs));
    }
    this.writing++;
    this.diskBytes += size;
    this.heldSpans += spans;
    const seq = this.nextSeq++;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ header: encodeRecordHeader(seq, spans, bytes), bytes, spans, seq, resolve, reject });
      if (this.flushing === null) this.flushing = this.flush();
    });
  }

  take(): DiskBatch | null {
    if (this.qHead === this.queue.length) return null;
    const b = this.queue[this.qHead]!;
    this.queue[this.qHead++] = undefined;
    // Compact the array now and then instead of shifting on every take.
    if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue.splice(0, this.qHead);
      this.qHead = 0;
    }
    this.inFlight++;
    return b;
  }

  /**
   * The batch's bytes; null when they could not be read back intact (counted as corrupt), or when the queue
   * was closed first (then the batch stays on disk for the next start).
   */
  load(batch: QueuedBatch): Promise<Uint8Array | null> {
    const b = batch as DiskBatch;
    if (b.bytes !== null) return Promise.resolve(b.bytes);
    if (this.closed) return Promise.resolve(null);
    const p = this.readBack(b);
    this.loading.add(p);
    void p.finally(() => this.loading.delete(p));
    return p;
  }

  private async readBack(b: DiskBatch): Promise<Uint8Array | null> {
    const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + b.length);
    try {
      const { bytesRead } = await read(b.segment.fd, buf, 0, buf.length, b.offset);
      const r = bytesRead === buf.length ? readRecordAt(buf, 0) : null;
      if (r !== null && r.seq === b.seq && r.length === b.length) return buf.subarray(RECORD_HEADER_BYTES);
    } catch (err) {
      this.o.logger.warn('persistent queue: a batch could not be read back', { segment: b.segment.path, error: err });
    }
    this.o.onCorrupt(1);
    return null;
  }

  /** Whether the queue was closed: a batch whose load returned null then stays for the next start. */
  get isClosed(): boolean {
    return this.closed;
  }

  settle(batch: QueuedBatch): void {
    // After close the files are closed: whatever was not settled stays on disk for the next start.
    if (this.closed) return;
    const b = batch as DiskBatch;
    this.inFlight--;
    this.heldSpans -= b.spans;
    this.diskBytes -= RECORD_HEADER_BYTES + b.length;
    if (b.bytes !== null) {
      this.cachedBytes -= b.bytes.byteLength;
      b.bytes = null;
    }
    const seg = b.segment;
    seg.live--;
    if (seg.live === 0 && seg !== this.active) {
      this.removeSegment(seg);
      return;
    }
    if (seg.ackFd < 0) return;
    const ack = Buffer.allocUnsafe(ACK_BYTES);
    ack.writeUInt32LE(b.seq % 0x1_0000_0000, 0);
    ack.writeUInt32LE(Math.floor(b.seq / 0x1_0000_0000), 4);
    ack.writeUInt32LE(crc32(ack.subarray(0, 8)), 8);
    // Written at once (a 12-byte append to the page cache, microseconds) so no ack is ever in flight when
    // its file is closed; not synced: a lost ack means one batch delivered again, never one lost.
    try {
      fs.writeSync(seg.ackFd, ack);
    } catch (err) {
      this.o.logger.warn('persistent queue: could not note a delivered batch', { file: seg.ackPath, error: err });
    }
  }

  async close(): Promise<{ batches: number; spans: number }> {
    this.closed = true;
    while (this.flushing !== null) await this.flushing;
    await Promise.allSettled([...this.loading]);
    const left = { batches: this.held, spans: this.heldSpans };
    for (const seg of this.segments.values()) {
      if (seg.live === 0) this.removeSegment(seg);
      else await closeSegment(seg);
    }
    this.active = null;
    return left;
  }

  // ---- writing ----

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const group = this.pending.length <= MAX_GROUP ? this.pending : this.pending.slice(0, MAX_GROUP);
      this.pending = this.pending.length <= MAX_GROUP ? [] : this.pending.slice(MAX_GROUP);
      let seg = this.active!;
      if (seg.size >= this.o.segmentBytes || this.activeBroken) {
        try {
          seg = await this.rotate();
        } catch (err) {
          this.refuse(group, err);
          continue;
        }
      }
      const buffers: Uint8Array[] = new Array(group.length * 2);
      let total = 0;
      for (let i = 0; i < group.length; i++) {
        buffers[2 * i] = group[i]!.header;
        buffers[2 * i + 1] = group[i]!.bytes;
        total += RECORD_HEADER_BYTES + group[i]!.bytes.byteLength;
      }
      try {
        const { bytesWritten } = await writev(seg.fd, buffers);
        if (bytesWritten !== total) throw Object.assign(new Error(`short write (${bytesWritten} of ${total} bytes)`), { code: 'ENOSPC' });
        if (this.o.fsync) await fdatasync(seg.fd);
      } catch (err) {
        // Records in it stay readable at their offsets; later ones go to a new segment, never after a
        // torn tail (and never into a file whose sync failed). The tail is cut when that is possible.
        await ftruncate(seg.fd, seg.size).catch(() => undefined);
        this.activeBroken = true;
        this.refuse(group, err);
        continue;
      }
      let offset = seg.size;
      seg.size += total;
      for (const w of group) {
        const keep = this.cachedBytes + w.bytes.byteLength <= this.o.memoryBytes;
        if (keep) this.cachedBytes += w.bytes.byteLength;
        this.queue.push(new DiskBatch(keep ? w.bytes : null, w.spans, w.seq, seg, offset, w.bytes.byteLength));
        offset += RECORD_HEADER_BYTES + w.bytes.byteLength;
        seg.live++;
        this.writing--;
        w.resolve();
        this.o.onAvailable();
      }
    }
    this.flushing = null;
  }

  private refuse(group: PendingWrite[], err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    this.o.logger.warn('persistent queue: batches could not be written; refused to their senders', { directory: this.o.directory, batches: group.length, error: err });
    for (const w of group) {
      this.writing--;
      this.diskBytes -= RECORD_HEADER_BYTES + w.bytes.byteLength;
      this.heldSpans -= w.spans;
      w.reject(new PipelineError('UNAVAILABLE', `exporter ${this.o.owner}: the persistent queue could not store the batch (${code})`, this.o.retryAfterMs));
    }
  }

  private async rotate(): Promise<Segment> {
    const old = this.active!;
    await this.startSegment();
    this.activeBroken = false;
    if (old.live === 0) this.removeSegment(old);
    return this.active!;
  }

  private async startSegment(): Promise<void> {
    const seg = this.segmentFor(++this.lastSegmentId);
    // A new file of its own ('x': never an old segment's), with an empty ack file (an old one is truncated).
    seg.fd = await open(seg.path, 'ax+');
    seg.ackFd = await open(seg.ackPath, 'w');
    if (this.o.fsync) await syncDirectory(this.o.directory);
    this.segments.set(seg.id, seg);
    this.active = seg;
  }

  private segmentFor(id: number): Segment {
    const name = String(id).padStart(20, '0');
    return new Segment(id, join(this.o.directory, `${name}.seg`), join(this.o.directory, `${name}.ack`));
  }

  /** Closes and deletes a segment whose batches are all delivered (syscalls of microseconds, done at once). */
  private removeSegment(seg: Segment): void {
    this.segments.delete(seg.id);
    for (const fd of [seg.fd, seg.ackFd]) if (fd >= 0) fs.closeSync(fd);
    seg.fd = -1;
    seg.ackFd = -1;
    // The ack file first: an ack file left without its segment is removed at the next start, while a
    // segment left without its ack file would only be delivered again.
    for (const p of [seg.ackPath, seg.path]) {
      try {
        fs.unlinkSync(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.o.logger.warn('persistent queue: could not remove a delivered segment', { file: p, error: err });
      }
    }
  }

  // ---- recovery ----

  private async recover(): Promise<void> {
    const files = await fs.promises.readdir(this.o.directory);
    const names = files.filter((n) => /^\d{20}\.seg$/.test(n)).sort();
    for (const n of files) {
      if (!/^\d{20}\.(seg|ack)$/.test(n)) continue;
      this.lastSegmentId = Math.max(this.lastSegmentId, Number(n.slice(0, 20)));
      // An ack file whose segment is gone (a crash between the two deletes) names nothing: remove it.
      if (n.endsWith('.ack') && !files.includes(n.replace(/\.ack$/, '.seg'))) await fs.promises.rm(join(this.o.directory, n), { force: true });
    }
    let corrupt = 0;
    let batches = 0;
    let spans = 0;
    for (const name of names) {
      const seg = this.segmentFor(Number(name.slice(0, 20)));
      const acked = await readAcks(seg.ackPath);
      for (const a of acked.seqs) if (a >= this.nextSeq) this.nextSeq = a + 1;
      const buf = await fs.promises.readFile(seg.path);
      const scan = scanSegment(buf);
      seg.size = buf.length;
      if (scan.corrupt > 0) {
        corrupt += scan.corrupt;
        this.o.logger.warn('persistent queue: damaged records skipped', { file: seg.path, records: scan.corrupt, intact: scan.records.length });
      }
      for (const r of scan.records) {
        if (r.seq >= this.nextSeq) this.nextSeq = r.seq + 1;
        if (acked.seqs.has(r.seq)) continue;
        this.queue.push(new DiskBatch(null, r.spans, r.seq, seg, r.offset, r.length));
        seg.live++;
        this.diskBytes += RECORD_HEADER_BYTES + r.length;
        this.heldSpans += r.spans;
        batches++;
        spans += r.spans;
      }
      this.segments.set(seg.id, seg);
      if (seg.live === 0) {
        this.removeSegment(seg);
        continue;
      }
      seg.fd = await open(seg.path, 'r');
      seg.ackFd = await open(seg.ackPath, 'a');
      // A crash can tear the last ack; later acks must start on an entry boundary to be read.
      if (acked.tornBytes > 0) await ftruncate(seg.ackFd, acked.length - acked.tornBytes);
    }
    if (corrupt > 0) this.o.onCorrupt(corrupt);
    if (batches > 0) this.o.logger.info('persistent queue: undelivered batches from the last run queued again', { directory: this.o.directory, batches, spans });
  }
}

/** The sequence numbers an ack file names; a torn or damaged entry is ignored (its batch goes again). */
async function readAcks(path: string): Promise<{ seqs: Set<number>; length: number; tornBytes: number }> {
  const seqs = new Set<number>();
  let buf: Buffer;
  try {
    buf = await fs.promises.readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { seqs, length: 0, tornBytes: 0 };
    throw err;
  }
  for (let at = 0; at + ACK_BYTES <= buf.length; at += ACK_BYTES) {
    if (crc32(buf.subarray(at, at + 8)) !== buf.readUInt32LE(at + 8)) continue;
    seqs.add(buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x1_0000_0000);
  }
  return { seqs, length: buf.length, tornBytes: buf.length % ACK_BYTES };
}

async function closeSegment(seg: Segment): Promise<void> {
  const fds = [seg.fd, seg.ackFd].filter((fd) => fd >= 0);
  seg.fd = -1;
  seg.ackFd = -1;
  await Promise.all(fds.map((fd) => close(fd).catch(() => undefined)));
}

/** Makes a new file's directory entry durable (fsync: true promises the disk, not only the page cache). */
async function syncDirectory(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await promisify(fs.fsync)(fd);
  } finally {
    await close(fd);
  }
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
