import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { syntheticRequest } from '../../test/helpers/otlp.js';
import { TraceBatch } from '../batch/batch.js';
import { PipelineError } from '../service/errors.js';
import {
  ExporterHelper,
  SENT,
  partialSuccessOutcome,
  permanentOutcome,
  retryableOutcome,
  type SendOutcome,
} from './exporter-helper.js';
import { retrySchema, sendingQueueSchema } from './config.js';
import { Logger, MemorySink } from '../telemetry/logger.js';
import { ParseContext, parseOrThrow } from '../config/schema.js';
import { Telemetry } from '../telemetry/telemetry.js';
import type { Host, StorageExtension } from '../service/component.js';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Attempt {
  bytes: Uint8Array;
  spans: number;
  at: number;
  deadline: number;
  signal: AbortSignal;
  settle: (o: SendOutcome) => void;
}

/**
 * The transport side of the helper, driven by the test: each attempt is recorded and answered either
 * from a script or, when `manual`, by the test calling `settle`. An aborted attempt answers retryable.
 */
class ScriptedTransport {
  readonly attempts: Attempt[] = [];
  readonly script: SendOutcome[] = [];
  manual = false;
  private waiters: { n: number; resolve: () => void }[] = [];

  readonly send = (bytes: Uint8Array, spans: number, deadline: number, signal: AbortSignal): Promise<SendOutcome> =>
    new Promise<SendOutcome>((resolve) => {
      const a: Attempt = { bytes, spans, at: Date.now(), deadline, signal, settle: resolve };
      this.attempts.push(a);
      signal.addEventListener('abort', () => resolve(retryableOutcome('aborted')), { once: true });
      for (const w of this.waiters.filter((w) => this.attempts.length >= w.n)) w.resolve();
      this.waiters = this.waiters.filter((w) => this.attempts.length < w.n);
      if (!this.manual) resolve(this.script.shift() ?? SENT);
    });

  waitForAttempts(n: number): Promise<void> {
    if (this.attempts.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

function setup(opts: { queue?: Record<string, unknown>; retry?: Record<string, unknown>; timeoutMs?: number; troubleLogIntervalMs?: number; telemetry?: Telemetry } = {}) {
  const telemetry = opts.telemetry ?? new Telemetry({ processMetrics: false });
  const sink = new MemorySink();
  const transport = new ScriptedTransport();
  const helper = new ExporterHelper({
    id: 'otlp/test',
    telemetry,
    logger: new Logger(sink, 'debug'),
    queue: parseOrThrow(sendingQueueSchema, opts.queue ?? {}),
    retry: parseOrThrow(retrySchema, { initial_interval: '5ms', max_interval: '20ms', ...opts.retry }),
    timeoutMs: opts.timeoutMs ?? 5000,
    send: transport.send,
    endpoint: 'backend.test:4317',
    troubleLogIntervalMs: opts.troubleLogIntervalMs,
  });
  const metric = (name: string, labels: Record<string, string> = {}) => telemetry.value(name, { ...labels });
  const dropped = (reason: string) => telemetry.value('tracewarden_dropped_spans_total', { component: 'otlp/test', reason });
  const logged = () => sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { helper, transport, telemetry, sink, metric, dropped, logged };
}

/** A host whose one extension is a storage in `dir`, as file_storage provides it. */
function storageHost(dir: string, id = 'file_storage'): Host {
  const storage: StorageExtension = {
    start: async () => {},
    shutdown: async () => {},
    storageFor: (kind, componentId, signal) => ({ directory: join(dir, `${kind}_${componentId.replace('/', '_')}_${signal}`), fsync: true }),
  };
  return { getExtension: (x) => (x === id ? storage : undefined), readiness: () => ({ ready: true, notReady: [] }) };
}

const batchOf = (spans: number) => new TraceBatch(syntheticRequest(spans, 2));

/** Polls an asynchronous metric condition, bounded: for outcomes with no event of their own to await. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setImmediate(r));
    if (i > 100) await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`condition not reached: ${what}`);
}

describe('ExporterHelper', () => {
  // Backoff timers are unref'd so they never hold a stopping process open; in a real process the
  // receivers' sockets keep the loop alive, here this interval stands in for them.
  let keepAlive: NodeJS.Timeout;
  before(() => {
    keepAlive = setInterval(() => {}, 1000);
  });
  after(() => clearInterval(keepAlive));

  it('queues a batch, sends its bytes unchanged and counts the spans sent', async () => {
    const { helper, transport, metric } = setup();
    helper.start();
    const b = batchOf(7);
    await helper.consume(b);
    await transport.waitForAttempts(1);
    assert.equal(transport.attempts[0]!.bytes, b.bytes);
    assert.equal(transport.attempts[0]!.spans, 7);
    await until(async () => (await metric('otelcol_exporter_sent_spans_total')) === 7, 'sent 7');
    assert.equal(await metric('otelcol_exporter_queue_capacity', { exporter: 'otlp/test' }), 1000);
    assert.equal(await metric('otelcol_exporter_queue_size', { exporter: 'otlp/test' }), 0);
    await helper.shutdown(Date.now() + 1000);
  });

  it('sends the edited bytes of an edited batch, and skips a batch with no live spans', async () => {
    const { helper, transport, metric } = setup();
    helper.start();
    const b = batchOf(3);
    b.dropSpan(1);
    await helper.consume(b);
    const empty = batchOf(1);
    empty.dropSpan(0);
    await helper.consume(empty);
    await helper.shutdown(Date.now() + 1000);
    assert.equal(transport.attempts.length, 1);
    assert.equal(transport.attempts[0]!.spans, 2);
    assert.deepEqual(transport.attempts[0]!.bytes, b.encode());
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 2);
  });

  it('retries retryable outcomes with backoff until success, losing nothing', async () => {
    const { helper, transport, metric } = setup();
    transport.script.push(retryableOutcome('UNAVAILABLE: down'), retryableOutcome('UNAVAILABLE: down'));
    helper.start();
    await helper.consume(batchOf(4));
    await helper.shutdown(Date.now() + 5000);
    assert.equal(transport.attempts.length, 3);
    for (const a of transport.attempts) assert.equal(a.bytes, transport.attempts[0]!.bytes);
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 4);
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 0);
  });

  it("waits at least the peer's requested delay before retrying", async () => {
    const { helper, transport, metric } = setup({ retry: { initial_interval: '1ms' } });
    transport.script.push(retryableOutcome('RESOURCE_EXHAUSTED', 150));
    helper.start();
    await helper.consume(batchOf(1));
    await transport.waitForAttempts(2);
    const gap = transport.attempts[1]!.at - transport.attempts[0]!.at;
    assert.ok(gap >= 150, `retried after ${gap} ms, peer asked for 150`);
    await helper.shutdown(Date.now() + 1000);
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 1);
  });

  it('does not retry a permanent failure; counts it failed and dropped, with one log line', async () => {
    const { helper, transport, metric, dropped, sink } = setup();
    transport.script.push(permanentOutcome('HTTP 400: bad data'));
    helper.start();
    await helper.consume(batchOf(5));
    await helper.shutdown(Date.now() + 1000);
    assert.equal(transport.attempts.length, 1);
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 5);
    assert.equal(await dropped('permanent'), 5);
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 0);
    const warns = sink.lines.map((l) => JSON.parse(l)).filter((l) => l.level === 'warn');
    assert.equal(warns.length, 1);
    assert.equal(warns[0].reason, 'permanent');
    assert.equal(warns[0].spans, 5);
  });

  it('gives up after max_elapsed_time and counts the spans as send_failed', async () => {
    const { helper, transport, metric, dropped } = setup({ retry: { initial_interval: '10ms', max_elapsed_time: '60ms' } });
    for (let i = 0; i < 100; i++) transport.script.push(retryableOutcome('UNAVAILABLE'));
    helper.start();
    await helper.consume(batchOf(3));
    await until(async () => (await dropped('send_failed')) === 3, 'dropped after retries');
    assert.ok(transport.attempts.length >= 2, `attempted ${transport.attempts.length} times`);
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 3);
    await helper.shutdown(Date.now() + 1000);
  });

  it('counts rejected spans of a partial success as failed, the rest as sent', async () => {
    const { helper, transport, metric, dropped } = setup();
    transport.script.push(partialSuccessOutcome(2, 'partial success: 2 spans too old'));
    helper.start();
    await helper.consume(batchOf(10));
    await helper.shutdown(Date.now() + 1000);
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 8);
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 2);
    assert.equal(await dropped('partial_success'), 2);
  });

  it('refuses with QUEUE_FULL when the queue is full (batches being delivered count), counting enqueue failures but no drop: the caller keeps the batch', async () => {
    const { helper, transport, metric } = setup({ queue: { num_consumers: 1, queue_size: 3 } });
    transport.manual = true;
    helper.start();
    await helper.consume(batchOf(1)); // taken by the worker
    await transport.waitForAttempts(1);
    assert.equal(await metric('otelcol_exporter_queue_size', { exporter: 'otlp/test' }), 1, 'the batch being delivered is held');
    await helper.consume(batchOf(2));
    await helper.consume(batchOf(3));
    assert.equal(await metric('otelcol_exporter_queue_size', { exporter: 'otlp/test' }), 3);
    await assert.rejects(helper.consume(batchOf(4)), (err: unknown) => err instanceof PipelineError && err.code === 'QUEUE_FULL' && err.retryable);
    assert.equal(await metric('otelcol_exporter_enqueue_failed_spans_total'), 4);
    assert.equal(await metric('tracewarden_dropped_spans_total'), 0, 'refused, not dropped');
    // Draining: answer each attempt as it comes.
    transport.attempts[0]!.settle(SENT);
    await transport.waitForAttempts(2);
    transport.attempts[1]!.settle(SENT);
    await transport.waitForAttempts(3);
    transport.attempts[2]!.settle(SENT);
    await helper.shutdown(Date.now() + 1000);
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 6);
  });

  it('drains the queue on shutdown before resolving', async () => {
    const { helper, transport, metric, dropped } = setup({ queue: { num_consumers: 2 } });
    helper.start();
    transport.script.push(retryableOutcome('UNAVAILABLE'));
    for (let i = 0; i < 20; i++) await helper.consume(batchOf(1 + (i % 3)));
    await helper.shutdown(Date.now() + 5000);
    let expected = 0;
    for (let i = 0; i < 20; i++) expected += 1 + (i % 3);
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), expected);
    assert.equal(await dropped('shutdown'), 0);
    await assert.rejects(helper.consume(batchOf(1)), (err: unknown) => err instanceof PipelineError && err.code === 'SHUTTING_DOWN');
    assert.equal(await metric('otelcol_exporter_enqueue_failed_spans_total'), 1, 'the refusal after shutdown is an enqueue failure');
    assert.equal(await metric('tracewarden_dropped_spans_total'), 0, 'and not a drop: the caller keeps the batch');
  });

  it('at the shutdown deadline, aborts what is in flight and counts it and the queue as dropped', async () => {
    const { helper, transport, metric, dropped, sink } = setup({ queue: { num_consumers: 1 } });
    transport.manual = true;
    helper.start();
    await helper.consume(batchOf(2));
    await helper.consume(batchOf(3));
    await helper.consume(batchOf(4));
    await transport.waitForAttempts(1);
    const t0 = Date.now();
    await helper.shutdown(t0 + 100);
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(transport.attempts[0]!.signal.aborted, 'in-flight send was aborted');
    assert.equal(await dropped('shutdown'), 9);
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 0);
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 2, 'only the attempted batch counts as a failed send');
    assert.equal(await metric('otelcol_exporter_queue_size', { exporter: 'otlp/test' }), 0);
    assert.match(sink.text, /queued spans dropped/);
  });

  it('cuts a backoff that would outlast the shutdown deadline', async () => {
    const { helper, transport, dropped } = setup({ retry: { initial_interval: '10s', max_interval: '10s' } });
    transport.script.push(retryableOutcome('UNAVAILABLE'));
    helper.start();
    await helper.consume(batchOf(3));
    await transport.waitForAttempts(1);
    const t0 = Date.now();
    await helper.shutdown(t0 + 3000);
    assert.ok(Date.now() - t0 < 1000, 'shutdown did not wait for the backoff');
    assert.equal(transport.attempts.length, 1);
    assert.equal(await dropped('shutdown'), 3);
  });

  it('with the queue disabled, consume settles with the outcome; a failure is refused to the caller, not dropped', async () => {
    const { helper, transport, metric, sink } = setup({ queue: { enabled: false }, retry: { enabled: false } });
    helper.start();
    await helper.consume(batchOf(2));
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 2);
    transport.script.push(permanentOutcome('HTTP 400: span attribute user.token=tok-SECRET-1 is invalid'));
    await assert.rejects(helper.consume(batchOf(3)), (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.equal(err.retryable, false);
      assert.equal(err.message, 'the backend refused the data');
      return true;
    });
    transport.script.push(retryableOutcome('UNAVAILABLE: upstream tok-SECRET-2 overloaded', 1000));
    await assert.rejects(helper.consume(batchOf(4)), (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      assert.equal(err.code, 'UNAVAILABLE');
      assert.equal(err.retryable, true);
      assert.equal(err.retryAfterMs, 1000);
      assert.equal(err.message, 'the backend is unavailable');
      return true;
    });
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 7);
    assert.equal(await metric('tracewarden_dropped_spans_total'), 0, 'the caller holds the refused batches');
    assert.equal(await metric('otelcol_exporter_queue_capacity', { exporter: 'otlp/test' }), 0);
    // One line per refused batch, with the peer's status and none of its words.
    const refusals = sink.lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'export failed; batch refused to the caller');
    assert.deepEqual(
      refusals.map((l) => [l.reason, l.spans, l.status]),
      [
        ['permanent', 3, 'HTTP 400'],
        ['send_failed', 4, 'UNAVAILABLE'],
      ],
    );
    assert.doesNotMatch(sink.text, /SECRET|overloaded|invalid/);
    await helper.shutdown(Date.now() + 100);
  });

  it('with the queue disabled and retries exhausted, the caller gets the fixed message and the peer text is logged nowhere', async () => {
    const { helper, transport, metric, sink } = setup({ queue: { enabled: false }, retry: { initial_interval: '1ms', max_interval: '1ms', max_elapsed_time: '20ms' } });
    for (let i = 0; i < 1000; i++) transport.script.push(retryableOutcome('HTTP 503: <html>tok-SECRET-3</html>'));
    helper.start();
    await assert.rejects(helper.consume(batchOf(2)), (err: unknown) => err instanceof PipelineError && err.code === 'UNAVAILABLE' && err.message === 'the backend is unavailable');
    assert.ok(transport.attempts.length >= 2);
    assert.equal(await metric('tracewarden_dropped_spans_total'), 0);
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 2);
    assert.doesNotMatch(sink.text, /SECRET|html/);
    assert.match(sink.text, /"status":"HTTP 503"/);
    await helper.shutdown(Date.now() + 100);
  });

  it('with the queue disabled, a send cut by the shutdown deadline is refused as SHUTTING_DOWN and not dropped', async () => {
    const { helper, transport, metric } = setup({ queue: { enabled: false } });
    transport.manual = true;
    helper.start();
    const pending = helper.consume(batchOf(3));
    await transport.waitForAttempts(1);
    await helper.shutdown(Date.now() + 20);
    await assert.rejects(pending, (err: unknown) => err instanceof PipelineError && err.code === 'SHUTTING_DOWN');
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 3);
    assert.equal(await metric('tracewarden_dropped_spans_total'), 0);
  });

  it('with the queue disabled, a partial success is still counted as dropped by the exporter', async () => {
    const { helper, transport, dropped } = setup({ queue: { enabled: false } });
    transport.script.push(partialSuccessOutcome(1, 'partial success: 1 span too old'));
    helper.start();
    await helper.consume(batchOf(4));
    assert.equal(await dropped('partial_success'), 1, 'the caller was told the batch was sent');
    await helper.shutdown(Date.now() + 100);
  });

  it('counts batches queued before a start that never came as dropped at shutdown', async () => {
    const { helper, transport, dropped } = setup();
    await helper.consume(batchOf(3));
    await helper.consume(batchOf(2));
    await helper.shutdown(Date.now() + 1000);
    assert.equal(transport.attempts.length, 0);
    assert.equal(await dropped('shutdown'), 5);
  });

  it('gives each attempt a deadline of timeout from its start', async () => {
    const { helper, transport } = setup({ timeoutMs: 1234 });
    helper.start();
    const before = Date.now();
    await helper.consume(batchOf(1));
    await transport.waitForAttempts(1);
    const d = transport.attempts[0]!.deadline - before;
    assert.ok(d >= 1234 && d < 1234 + 1000, `deadline ${d} ms ahead`);
    await helper.shutdown(Date.now() + 1000);
  });

  it("accepts Collector queue keys at the Collector's default with a warning, and refuses values that change meaning", () => {
    const ctx = new ParseContext();
    const ok = sendingQueueSchema.parse({ sizer: 'requests', block_on_overflow: false, blocking: false, wait_for_result: false, storage: null }, ['q'], ctx);
    assert.ok(ok);
    assert.equal(ok.queue_size, 1000);
    assert.deepEqual(
      ctx.issues.map((i) => [i.path.join('.'), i.warning === true]),
      [
        ['q.sizer', true],
        ['q.blocking', true],
        ['q.block_on_overflow', true],
        ['q.wait_for_result', true],
      ],
    );
    assert.throws(() => parseOrThrow(sendingQueueSchema, { sizer: 'items' }), /sizer: only sizer: requests is supported: the queue counts batches/);
    assert.throws(() => parseOrThrow(sendingQueueSchema, { sizer: 'bytes' }), /the queue counts batches/);
    assert.throws(() => parseOrThrow(sendingQueueSchema, { max_storage_mib: 10 }), /max_storage_mib bounds a persistent queue: set storage as well/);
    assert.equal(parseOrThrow(sendingQueueSchema, { storage: 'file_storage/q', max_storage_mib: 10 }).storage, 'file_storage/q');
    assert.throws(() => parseOrThrow(sendingQueueSchema, { block_on_overflow: true }), /block_on_overflow: true is not supported/);
    assert.throws(() => parseOrThrow(sendingQueueSchema, { blocking: true }), /blocking: true is not supported/);
    assert.throws(() => parseOrThrow(sendingQueueSchema, { wait_for_result: true }), /wait_for_result: true is not supported .*set enabled: false/);
    assert.throws(() => parseOrThrow(sendingQueueSchema, { batch: { max_size: 1000 } }), /batch: batching in the exporter is not supported.*batch processor/);
    assert.throws(() => parseOrThrow(sendingQueueSchema, { queue_sise: 10 }), /unknown key/);
    assert.deepEqual(parseOrThrow(sendingQueueSchema, {}), { enabled: true, num_consumers: 10, queue_size: 1000 });
  });
  it('reports a failing backend once at warn with its endpoint and cause, again at a bounded rate, and its recovery once', async () => {
    const { helper, transport, logged, metric } = setup({ retry: { initial_interval: '5ms', max_interval: '5ms', randomization_factor: 0 }, troubleLogIntervalMs: 60, queue: { num_consumers: 3 } });
    const refused = 'UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:4317 (2026-12-02T07:00:00.000Z)';
    for (let i = 0; i < 40; i++) transport.script.push(retryableOutcome(refused));
    helper.start();
    for (let i = 0; i < 3; i++) await helper.consume(batchOf(1));
    await transport.waitForAttempts(43);
    await until(async () => (await metric('otelcol_exporter_sent_spans_total')) === 3, 'delivered after the outage');
    await helper.shutdown(Date.now() + 1000);
    const lines = logged().filter((l) => String(l.msg).startsWith('exporter '));
    assert.deepEqual(lines[0], { ...lines[0], level: 'warn', msg: 'exporter cannot deliver', endpoint: 'backend.test:4317', cause: 'UNAVAILABLE (ECONNREFUSED)', attempt: 1, retrying: true });
    const again = lines.filter((l) => l.msg === 'exporter still cannot deliver');
    // 40 failures 5 ms apart over ~200 ms, reported again at most every 60 ms
    assert.ok(again.length >= 1 && again.length <= 4, `${again.length} reminders`);
    for (const l of again) assert.equal(l.cause, 'UNAVAILABLE (ECONNREFUSED)');
    const back = lines.filter((l) => l.msg === 'exporter delivers again');
    assert.equal(back.length, 1);
    assert.equal(back[0]!.level, 'info');
    assert.equal(back[0]!.failed_attempts, 40);
    assert.equal(lines.at(-1)!.msg, 'exporter delivers again', 'one episode: nothing after the recovery');
    assert.equal(await metric('tracewarden_exporter_retries_total', { exporter: 'otlp/test' }), 40);
  });

  it('every log line about a failed batch carries the attempts really made', async () => {
    const { helper, transport, logged } = setup({ retry: { initial_interval: '10ms', max_interval: '10ms', randomization_factor: 0, max_elapsed_time: '25ms' } });
    for (let i = 0; i < 10; i++) transport.script.push(retryableOutcome('HTTP 503: busy'));
    helper.start();
    await helper.consume(batchOf(2));
    await until(async () => logged().some((l) => l.msg === 'export failed; spans dropped'), 'given up');
    const drop = logged().find((l) => l.msg === 'export failed; spans dropped')!;
    assert.equal(drop.attempts, transport.attempts.length);
    assert.ok(transport.attempts.length >= 2, `${transport.attempts.length} attempts`);
    assert.match(String(drop.error), new RegExp(`retries exhausted after ${transport.attempts.length} attempts`));

    // at the shutdown deadline, a batch in backoff is counted with the attempts it had
    const s2 = setup({ retry: { initial_interval: '10ms', max_interval: '10ms', randomization_factor: 0, max_elapsed_time: 0 } });
    for (let i = 0; i < 1000; i++) s2.transport.script.push(retryableOutcome('UNAVAILABLE: down'));
    s2.helper.start();
    await s2.helper.consume(batchOf(4));
    await s2.transport.waitForAttempts(3);
    await s2.helper.shutdown(Date.now() + 30);
    const lost = s2.logged().find((l) => l.msg === 'export failed; spans dropped' && l.reason === 'shutdown')!;
    assert.ok(Number(lost.attempts) >= 3, `attempts ${lost.attempts}`);
    assert.equal(lost.attempts, s2.transport.attempts.length);
  });

  it('with storage, what shutdown could not deliver stays on disk, is not counted as dropped, and a new helper on the same storage delivers it', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'tw-helper-pq-'));
    try {
      const first = setup({ queue: { storage: 'file_storage', num_consumers: 2 }, retry: { initial_interval: '10ms', max_elapsed_time: 0 } });
      for (let i = 0; i < 1000; i++) first.transport.script.push(retryableOutcome('UNAVAILABLE: down'));
      await first.helper.start(storageHost(dir));
      const sent = [batchOf(1), batchOf(2), batchOf(3), batchOf(4)];
      for (const b of sent) await first.helper.consume(b);
      assert.equal(await first.metric('otelcol_exporter_queue_size', { exporter: 'otlp/test' }), 4);
      await first.transport.waitForAttempts(4);
      await first.helper.shutdown(Date.now() + 50);
      assert.equal(await first.metric('tracewarden_dropped_spans_total'), 0);
      assert.ok(first.logged().some((l) => l.msg === 'undelivered batches stay in the persistent queue for the next start' && l.batches === 4 && l.spans === 10));

      const second = setup({ queue: { storage: 'file_storage', num_consumers: 1 } });
      await second.helper.start(storageHost(dir));
      await until(async () => (await second.metric('otelcol_exporter_sent_spans_total')) === 10, 'delivered after the restart');
      assert.deepEqual(
        second.transport.attempts.map((a) => Buffer.from(a.bytes).toString('hex')),
        sent.map((b) => Buffer.from(b.bytes).toString('hex')),
        'the same bytes, in the order they were queued',
      );
      await second.helper.shutdown(Date.now() + 1000);
      assert.equal(await second.metric('otelcol_exporter_queue_size', { exporter: 'otlp/test' }), 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a storage that is not configured, or not a storage, is a start-up error naming it', async () => {
    const { helper } = setup({ queue: { storage: 'file_storage/missing' } });
    await assert.rejects(helper.start(storageHost('/nonexistent')), /sending_queue.storage: extension file_storage\/missing is not configured/);
    const notStorage: Host = { getExtension: () => ({ start: async () => {}, shutdown: async () => {} }), readiness: () => ({ ready: true, notReady: [] }) };
    const other = setup({ queue: { storage: 'health_check' } });
    await assert.rejects(other.helper.start(notStorage), /extension health_check is not a storage extension/);
  });
});
