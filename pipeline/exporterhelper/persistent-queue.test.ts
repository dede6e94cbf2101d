import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { PipelineError } from '../service/errors.js';
import { Logger, MemorySink } from '../telemetry/logger.js';
import { prng } from '../../test/helpers/prng.js';
import { PersistentQueue, type PersistentQueueOptions } from './persistent-queue.js';
import { RECORD_HEADER_BYTES, encodeRecordHeader, scanSegment } from './queue-record.js';

const payload = (i: number, size = 100) => Buffer.alloc(size, i & 0xff);

function record(seq: number, spans: number, body: Buffer): Buffer {
  return Buffer.concat([encodeRecordHeader(seq, spans, body), body]);
}

describe('queue records', () => {
  test('intact records are read back with their sequence number, span count and offset', () => {
    const seqs = [1, 2, 0x1_0000_0001, 2 ** 52];
    const buf = Buffer.concat(seqs.map((s, i) => record(s, i + 1, payload(i, 10 + i))));
    const scan = scanSegment(buf);
    assert.equal(scan.corrupt, 0);
    assert.deepEqual(
      scan.records.map((r) => [r.seq, r.spans, r.length]),
      seqs.map((s, i) => [s, i + 1, 10 + i]),
    );
    assert.equal(scan.goodLength, buf.length);
  });

  test('a record cut anywhere at the end is counted once and the records before it are kept', () => {
    const whole = Buffer.concat([record(1, 1, payload(1)), record(2, 1, payload(2)), record(3, 1, payload(3))]);
    const third = 2 * (RECORD_HEADER_BYTES + 100);
    for (let cut = third + 1; cut < whole.length; cut += 7) {
      const scan = scanSegment(whole.subarray(0, cut));
      assert.deepEqual(scan.records.map((r) => r.seq), [1, 2], `cut at ${cut}`);
      assert.equal(scan.corrupt, 1, `cut at ${cut}`);
      assert.equal(scan.goodLength, third);
    }
  });

  test('any single flipped byte costs only its own record', () => {
    const parts = [1, 2, 3, 4].map((s) => record(s, s, payload(s, 50)));
    const whole = Buffer.concat(parts);
    const size = RECORD_HEADER_BYTES + 50;
    for (let at = 0; at < whole.length; at++) {
      const damaged = Buffer.from(whole);
      damaged[at]! ^= 0x40;
      const scan = scanSegment(damaged);
      const hit = Math.floor(at / size) + 1;
      assert.deepEqual(
        scan.records.map((r) => r.seq),
        [1, 2, 3, 4].filter((s) => s !== hit),
        `byte ${at}`,
      );
      assert.equal(scan.corrupt, 1, `byte ${at}`);
    }
  });

  test('garbage between records is stepped over; random bytes never yield a record', () => {
    const rand = prng(42);
    const junk = Buffer.from(Array.from({ length: 300 }, () => Math.floor(rand() * 256)));
    const scan = scanSegment(Buffer.concat([record(1, 1, payload(1)), junk, Buffer.from('TWQ1'), record(2, 1, payload(2))]));
    assert.deepEqual(scan.records.map((r) => r.seq), [1, 2]);
    assert.equal(scan.corrupt, 1);
    for (let i = 0; i < 50; i++) {
      const noise = Buffer.from(Array.from({ length: 2000 }, () => Math.floor(rand() * 256)));
      assert.equal(scanSegment(noise).records.length, 0);
    }
  });
});

describe('persistent queue', () => {
  let dir: string;
  let corrupt: number;
  let logs: MemorySink;
  beforeEach(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'tw-pq-'));
    corrupt = 0;
    logs = new MemorySink();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const open = (o: Partial<PersistentQueueOptions> = {}) =>
    PersistentQueue.open({
      directory: dir,
      fsync: false,
      capacity: 1000,
      maxBytes: 64 * 1024 * 1024,
      segmentBytes: 32 * 1024 * 1024,
      memoryBytes: 16 * 1024 * 1024,
      owner: 'otlp/test',
      retryAfterMs: 1000,
      logger: new Logger(logs, 'debug'),
      onCorrupt: (n) => (corrupt += n),
      onAvailable: () => {},
      ...o,
    });

  async function drain(q: PersistentQueue): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (let b = q.take(); b !== null; b = q.take()) {
      const bytes = await q.load(b);
      assert.ok(bytes !== null);
      out.push(Buffer.from(bytes));
      q.settle(b);
    }
    return out;
  }

  test('what was offered and not settled is queued again after reopening, in order; settled batches are not', async () => {
    const q = await open({ fsync: true });
    for (let i = 0; i < 10; i++) await q.offer(payload(i), i + 1);
    assert.equal(q.held, 10);
    for (let i = 0; i < 4; i++) q.settle(q.take()!);
    const inFlight = q.take()!; // taken, never settled: a crash mid-delivery
    assert.equal(inFlight.spans, 5);
    await q.close();

    const again = await open();
    assert.equal(again.held, 6);
    const bytes = await drain(again);
    assert.deepEqual(bytes.map((b) => b[0]), [4, 5, 6, 7, 8, 9]);
    await again.close();
    const third = await open();
    assert.equal(third.held, 0, 'everything delivered stays delivered');
    await third.close();
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.seg')), [], 'no segment is left once all is delivered');
  });

  test('batches not kept in memory are read back from the segment', async () => {
    const q = await open({ memoryBytes: 0 });
    for (let i = 0; i < 5; i++) await q.offer(payload(i, 1000 + i), 1);
    const got = await drain(q);
    assert.deepEqual(got.map((b) => [b.length, b[0]]), [0, 1, 2, 3, 4].map((i) => [1000 + i, i]));
    await q.close();
  });

  test('a byte flipped on disk after the write is found when the batch is read back, and counted', async () => {
    const q = await open({ memoryBytes: 0 });
    for (let i = 0; i < 3; i++) await q.offer(payload(i), 1);
    const seg = join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.seg'))!);
    const fd = fs.openSync(seg, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, RECORD_HEADER_BYTES + 100 + RECORD_HEADER_BYTES + 10);
    fs.closeSync(fd);
    const loads: (number | null)[] = [];
    for (let b = q.take(); b !== null; b = q.take()) {
      const bytes = await q.load(b);
      loads.push(bytes === null ? null : bytes[0]!);
      q.settle(b);
    }
    assert.deepEqual(loads, [0, null, 2]);
    assert.equal(corrupt, 1);
    await q.close();
  });

  test('a segment truncated in the middle of a record and one with a flipped byte: the rest is queued again and the damage counted', async () => {
    const q = await open({ segmentBytes: 5 * (RECORD_HEADER_BYTES + 100) });
    for (let i = 0; i < 15; i++) await q.offer(payload(i), 1);
    await q.close();
    const segs = fs.readdirSync(dir).filter((f) => f.endsWith('.seg')).sort();
    assert.equal(segs.length, 3);
    const size = RECORD_HEADER_BYTES + 100;
    // the first segment: flipped byte in its second record; the last: cut inside its fourth record
    const first = join(dir, segs[0]!);
    const b = fs.readFileSync(first);
    b[size + 40]! ^= 1;
    fs.writeFileSync(first, b);
    fs.truncateSync(join(dir, segs[2]!), 3 * size + 17);

    const again = await open();
    const got = await drain(again);
    assert.deepEqual(got.map((x) => x[0]), [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.equal(corrupt, 2);
    assert.ok(logs.text.includes('persistent queue: damaged records skipped'));
    await again.close();
  });

  test('bounded by count and by bytes on disk, refusing with a retryable QUEUE_FULL', async () => {
    const q = await open({ capacity: 3 });
    for (let i = 0; i < 3; i++) await q.offer(payload(i), 1);
    await assert.rejects(q.offer(payload(9), 1), (e: PipelineError) => e.code === 'QUEUE_FULL' && e.retryable && /3 batches/.test(e.message));
    q.settle(q.take()!);
    await q.offer(payload(3), 1);
    await q.close();

    fs.rmSync(dir, { recursive: true });
    const small = await open({ maxBytes: 3 * (RECORD_HEADER_BYTES + 100) });
    for (let i = 0; i < 3; i++) await small.offer(payload(i), 1);
    await assert.rejects(small.offer(payload(9), 1), (e: PipelineError) => e.code === 'QUEUE_FULL' && e.retryable && /MiB on disk/.test(e.message));
    await small.close();
  });

  test('concurrent offers are written together and each resolves once written', async () => {
    const q = await open({ fsync: true });
    await Promise.all(Array.from({ length: 200 }, (_, i) => q.offer(payload(i), 1)));
    assert.equal(q.held, 200);
    const got = await drain(q);
    assert.deepEqual(got.map((b) => b[0]), Array.from({ length: 200 }, (_, i) => i & 0xff));
    await q.close();
  });

  test('delivered segments are deleted as the queue moves on', async () => {
    const q = await open({ segmentBytes: 2 * (RECORD_HEADER_BYTES + 100) });
    for (let i = 0; i < 10; i++) await q.offer(payload(i), 1);
    assert.ok(fs.readdirSync(dir).filter((f) => f.endsWith('.seg')).length >= 4);
    await drain(q);
    await q.offer(payload(10), 1);
    await waitForFiles(dir, (segs) => segs.length === 1);
    await q.close();
  });

  test('a torn ack at the end is ignored (its batch goes again) and later acks are still read', async () => {
    const q = await open();
    for (let i = 0; i < 4; i++) await q.offer(payload(i), 1);
    q.settle(q.take()!);
    await q.close();
    const ack = join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.ack'))!);
    fs.appendFileSync(ack, Buffer.from([1, 2, 3, 4, 5])); // a crash in the middle of the next ack

    const again = await open();
    assert.equal(again.held, 3);
    again.settle(again.take()!); // acks batch 1 after the torn bytes
    await again.close();
    const third = await open();
    assert.deepEqual((await drain(third)).map((b) => b[0]), [2, 3]);
    await third.close();
  });
  test('an ack file left without its segment (a crash between the two deletes) hides nothing written later', async () => {
    const ack = Buffer.alloc(12 * 5);
    for (let seq = 1; seq <= 5; seq++) {
      ack.writeUInt32LE(seq, (seq - 1) * 12);
      ack.writeUInt32LE(crc32(ack.subarray((seq - 1) * 12, (seq - 1) * 12 + 8)), (seq - 1) * 12 + 8);
    }
    fs.writeFileSync(join(dir, '00000000000000000001.ack'), ack);
    const q = await open();
    for (let i = 0; i < 3; i++) await q.offer(payload(i), 1);
    await q.close();
    const again = await open();
    assert.deepEqual((await drain(again)).map((b) => b[0]), [0, 1, 2]);
    await again.close();
  });

  test('closing while a batch is being read back keeps it for the next start', async () => {
    const q = await open({ memoryBytes: 0 });
    await q.offer(payload(7, 5000), 3);
    const b = q.take()!;
    const loading = q.load(b);
    await q.close();
    await loading; // read before the descriptor closed, or refused: either way nothing is settled
    q.settle(b);
    assert.equal(corrupt, 0);
    const again = await open();
    assert.deepEqual((await drain(again)).map((x) => [x.length, x[0]]), [[5000, 7]]);
    await again.close();
  });
});

async function waitForFiles(dir: string, ok: (segs: string[]) => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (ok(fs.readdirSync(dir).filter((f) => f.endsWith('.seg')))) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`segments in ${dir}: ${fs.readdirSync(dir).join(', ')}`);
}
