import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { Host, RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { memoryLimiterConfigSchema } from './config.js';
import { factory } from './index.js';
import { MemoryLimiter, heldMemory, memoryLimits, type MemoryLimiterOptions } from './memory-limiter.js';
import { totalMemoryBytes } from './total-memory.js';

const MIB = 1024 * 1024;
const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: '127.0.0.1:1', auth: null };
const HOST: Host = { getExtension: () => undefined, readiness: () => ({ ready: true, notReady: [] }) };

function make(config: Record<string, unknown>, options: MemoryLimiterOptions = {}) {
  const settings = processorSettings('memory_limiter');
  const next = new RecordingConsumer();
  const limiter = new MemoryLimiter(settings, parseOrThrow(memoryLimiterConfigSchema, config), next, options);
  return { limiter, next, t: settings.telemetry, sink: settings.sink };
}

test('config: exactly one limit, spike below the limit, positive check interval', () => {
  assert.deepEqual(parseOrThrow(memoryLimiterConfigSchema, { limit_mib: 512 }), { check_interval: 1000, limit_mib: 512, min_gc_interval_when_soft_limited: 10_000, min_gc_interval_when_hard_limited: 0 });
  assert.equal(parseOrThrow(memoryLimiterConfigSchema, { limit_percentage: 80, spike_limit_percentage: 20, check_interval: '5s' }).check_interval, 5000);
  assert.throws(() => parseOrThrow(memoryLimiterConfigSchema, {}), /exactly one of limit_mib or limit_percentage/);
  assert.throws(() => parseOrThrow(memoryLimiterConfigSchema, { limit_mib: 512, limit_percentage: 50 }), /exactly one of limit_mib or limit_percentage/);
  assert.throws(() => parseOrThrow(memoryLimiterConfigSchema, { limit_mib: 512, spike_limit_mib: 512 }), /spike_limit_mib \(512\) must be less than limit_mib \(512\)/);
  assert.throws(() => parseOrThrow(memoryLimiterConfigSchema, { limit_percentage: 50, spike_limit_percentage: 60 }), /must be less than limit_percentage/);
  assert.throws(() => parseOrThrow(memoryLimiterConfigSchema, { limit_percentage: 50, spike_limit_mib: 10 }), /spike_limit_mib goes with limit_mib/);
  assert.throws(() => parseOrThrow(memoryLimiterConfigSchema, { limit_mib: 512, check_interval: 0 }), /check_interval: must be greater than 0/);
  assert.throws(() => parseOrThrow(memoryLimiterConfigSchema, { limit_percentage: 101 }), /at most 100/);
  assert.equal(factory.type, 'memory_limiter');
});

test('limits: spike defaults to 20% of the limit; percentages are of total memory', () => {
  assert.deepEqual(memoryLimits(parseOrThrow(memoryLimiterConfigSchema, { limit_mib: 1000 }), () => 0), { limitBytes: 1000 * MIB, spikeBytes: 200 * MIB });
  assert.deepEqual(memoryLimits(parseOrThrow(memoryLimiterConfigSchema, { limit_mib: 1000, spike_limit_mib: 100 }), () => 0), {
    limitBytes: 1000 * MIB,
    spikeBytes: 100 * MIB,
  });
  const total = () => 4000 * MIB;
  assert.deepEqual(memoryLimits(parseOrThrow(memoryLimiterConfigSchema, { limit_percentage: 50 }), total), { limitBytes: 2000 * MIB, spikeBytes: 400 * MIB });
  assert.deepEqual(memoryLimits(parseOrThrow(memoryLimiterConfigSchema, { limit_percentage: 50, spike_limit_percentage: 5 }), total), {
    limitBytes: 2000 * MIB,
    spikeBytes: 200 * MIB,
  });
});

test('total memory: the cgroup v2 limit when set and lower, else the machine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-cgroup-'));
  try {
    const file = join(dir, 'memory.max');
    writeFileSync(file, `${256 * MIB}\n`);
    assert.equal(totalMemoryBytes(file), 256 * MIB);
    writeFileSync(file, 'max\n');
    assert.equal(totalMemoryBytes(file), totalmem());
    writeFileSync(file, `${totalmem() * 2}\n`);
    assert.equal(totalMemoryBytes(file), totalmem());
    assert.equal(totalMemoryBytes(join(dir, 'absent')), totalmem());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('above the soft limit it refuses with a retryable error; below it passes batches through', async () => {
  let used = 900 * MIB; // limit 1000, spike 200 → soft limit 800
  let reads = 0;
  const { limiter, next, t, sink } = make(
    { limit_mib: 1000, check_interval: '250ms' },
    {
      readMemory: () => {
        reads++;
        return used;
      },
    },
  );
  await limiter.start(HOST);
  assert.equal(limiter.isRefusing, true);
  const bytes = syntheticRequest(7, 3);
  await assert.rejects(limiter.consume(new TraceBatch(bytes), CTX), (e: unknown) => {
    assert.ok(e instanceof PipelineError);
    assert.equal(e.code, 'MEMORY_LIMIT');
    assert.equal(e.retryable, true);
    assert.equal(e.retryAfterMs, 250);
    return true;
  });
  await assert.rejects(limiter.consume(new TraceBatch(bytes), CTX), PipelineError);
  assert.equal(next.attempts, 0, 'nothing refused reaches the next stage');
  assert.equal(await t.value('otelcol_processor_refused_spans_total', { processor: 'memory_limiter' }), 14);
  assert.equal(await t.value('tracewarden_dropped_spans_total'), 0, 'refused is not dropped: the sender retries');
  assert.equal(reads, 1, 'memory is sampled by the check, never per batch');

  limiter.check(); // still above: no second log line
  used = 700 * MIB;
  limiter.check();
  assert.equal(limiter.isRefusing, false);
  await limiter.consume(new TraceBatch(bytes), CTX);
  assert.equal(next.received.length, 1);
  assert.equal(next.received[0]!.bytes, bytes, 'passed through untouched');
  assert.equal(decodeSpans(next.received[0]!.bytes).length, 7);
  assert.equal(await t.value('otelcol_processor_incoming_items_total', { processor: 'memory_limiter' }), 21);
  assert.equal(await t.value('otelcol_processor_outgoing_items_total', { processor: 'memory_limiter' }), 7);

  const logs = sink.lines.map((l) => JSON.parse(l) as { level: string; msg: string; used_mib?: number });
  assert.equal(logs.filter((l) => l.msg.startsWith('memory usage above')).length, 1, 'one line on entering');
  assert.equal(logs.filter((l) => l.msg.startsWith('memory usage below')).length, 1, 'one line on leaving');
  assert.equal(logs[0]!.used_mib, 900);
  await limiter.shutdown(Date.now() + 1000);
});

test('the interval timer samples memory on its own', async () => {
  let used = 10 * MIB;
  let onRead: (() => void) | null = null;
  const { limiter } = make(
    { limit_mib: 100, check_interval: '5ms' },
    {
      readMemory: () => {
        onRead?.();
        return used;
      },
    },
  );
  await limiter.start(HOST);
  assert.equal(limiter.isRefusing, false);
  used = 95 * MIB;
  // The limiter's timer is unref'd; this one keeps the process alive and fails the test if no tick comes.
  const guard = setTimeout(() => assert.fail('no memory check within 5 s'), 5000);
  await new Promise<void>((resolve) => (onRead = resolve)); // the next timer tick
  await new Promise<void>((resolve) => (onRead = resolve)); // and one that certainly saw 95 MiB
  clearTimeout(guard);
  assert.equal(limiter.isRefusing, true);
  await limiter.shutdown(Date.now() + 1000);
});

test('a failing memory reading keeps the current state and is logged', async () => {
  const { limiter, next, sink } = make({ limit_mib: 100 }, { readMemory: () => { throw new Error('EACCES'); } });
  await limiter.start(HOST);
  await limiter.consume(new TraceBatch(syntheticRequest(1, 1)), CTX);
  assert.equal(next.received.length, 1);
  assert.match(sink.text, /could not read memory usage/);
  await limiter.shutdown(Date.now() + 1000);
});

test('with the real memory reading and a generous limit, batches pass', async () => {
  const { limiter, next } = make({ limit_mib: 64 * 1024 });
  await limiter.start(HOST);
  assert.equal(limiter.isRefusing, false);
  await limiter.consume(new TraceBatch(syntheticRequest(3, 2)), CTX);
  assert.equal(next.spanTotal, 3);
  await limiter.shutdown(Date.now() + 1000);
});

test('with the real memory reading and a limit below current usage, it refuses', async () => {
  const heldMib = Math.ceil(heldMemory() / MIB);
  const { limiter, next } = make({ limit_mib: Math.max(2, Math.floor(heldMib / 2)) });
  await limiter.start(HOST);
  assert.equal(limiter.isRefusing, true);
  await assert.rejects(limiter.consume(new TraceBatch(syntheticRequest(3, 2)), CTX), /soft limit/);
  assert.equal(next.attempts, 0);
  await limiter.shutdown(Date.now() + 1000);
});

test('malformed bytes are a rejected promise with INVALID_ARGUMENT, not a throw', async () => {
  const { limiter, next } = make({ limit_mib: 64 * 1024 });
  await limiter.start(HOST);
  const p = limiter.consume(new TraceBatch(Uint8Array.of(0x0a, 0x05, 0x01)), CTX);
  await assert.rejects(p, (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT');
  assert.equal(next.attempts, 0);
  await limiter.shutdown(Date.now() + 1000);
});

test('it decides on memory held, not RSS: after a burst is released it accepts again at the next check', async () => {
  // A burst of external memory (what request bodies are) above the soft limit, then released. RSS would
  // stay high; held memory drops once the limiter's own garbage collection frees the buffers.
  const base = heldMemory();
  const { limiter, t } = make({ limit_mib: Math.ceil((base + 48 * MIB) / MIB), spike_limit_mib: 1, check_interval: '1h', min_gc_interval_when_soft_limited: 0 });
  await limiter.start(HOST);
  assert.equal(limiter.isRefusing, false);
  let burst: Buffer[] | null = Array.from({ length: 8 }, () => Buffer.alloc(16 * MIB, 1));
  limiter.check();
  assert.equal(limiter.isRefusing, true, `refuses while ${burst.length * 16} MiB are held`);
  assert.ok((await t.value('tracewarden_memory_limiter_held_bytes', { processor: 'memory_limiter' })) > base + 100 * MIB);
  assert.ok((await t.value('tracewarden_memory_limiter_rss_bytes', { processor: 'memory_limiter' })) > 0);
  burst = null;
  limiter.check();
  assert.equal(limiter.isRefusing, false, 'accepts again at the first check after the burst is released');
  assert.ok((await t.value('tracewarden_memory_limiter_held_bytes', { processor: 'memory_limiter' })) < base + 48 * MIB);
  await limiter.shutdown(Date.now() + 1000);
  void burst;
});

test('garbage collection before refusing is rate-limited by min_gc_interval_when_soft_limited', async () => {
  let used = 900 * MIB;
  let collections = 0;
  const { limiter } = make(
    { limit_mib: 1000, spike_limit_mib: 200, check_interval: '1h', min_gc_interval_when_soft_limited: '1h', min_gc_interval_when_hard_limited: 0 },
    { readMemory: () => used, collectGarbage: () => collections++ },
  );
  await limiter.start(HOST);
  limiter.check();
  limiter.check();
  assert.equal(collections, 1, 'over the soft limit: once per interval');
  used = 1100 * MIB;
  limiter.check();
  limiter.check();
  assert.equal(collections, 3, 'over the hard limit: every check');
  await limiter.shutdown(Date.now() + 1000);
});
