import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { syntheticRequest } from '../test/helpers/otlp.js';
import { TraceBatch } from './batch.js';
import { PipelineError } from './errors.js';
import {
  ExporterHelper,
  SENT,
  partialSuccessOutcome,
  permanentOutcome,
  retrySchema,
  retryableOutcome,
  sendingQueueSchema,
  type SendOutcome,
} from './exporter-helper.js';
import { Logger, MemorySink } from './logger.js';
import { parseOrThrow } from './schema.js';
import { Telemetry } from './telemetry.js';

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

function setup(opts: { queue?: Record<string, unknown>; retry?: Record<string, unknown>; timeoutMs?: number } = {}) {
  const telemetry = new Telemetry({ processMetrics: false });
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
  });
  const metric = (name: string, labels: Record<string, string> = {}) => telemetry.value(name, { ...labels });
  const dropped = (reason: string) => telemetry.value('tracewarden_dropped_spans_total', { component: 'otlp/test', reason });
  return { helper, transport, telemetry, sink, metric, dropped };
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

  it('refuses with QUEUE_FULL when the queue is full, counting enqueue failures', async () => {
    const { helper, transport, metric, dropped } = setup({ queue: { num_consumers: 1, queue_size: 2 } });
    transport.manual = true;
    helper.start();
    await helper.consume(batchOf(1)); // taken by the worker
    await transport.waitForAttempts(1);
    await helper.consume(batchOf(2));
    await helper.consume(batchOf(3));
    assert.equal(await metric('otelcol_exporter_queue_size', { exporter: 'otlp/test' }), 2);
    await assert.rejects(helper.consume(batchOf(4)), (err: unknown) => err instanceof PipelineError && err.code === 'QUEUE_FULL' && err.retryable);
    assert.equal(await metric('otelcol_exporter_enqueue_failed_spans_total'), 4);
    assert.equal(await dropped('queue_full'), 4);
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

  it('with the queue disabled, consume settles with the outcome of the send', async () => {
    const { helper, transport, metric, dropped } = setup({ queue: { enabled: false }, retry: { enabled: false } });
    helper.start();
    await helper.consume(batchOf(2));
    assert.equal(await metric('otelcol_exporter_sent_spans_total'), 2);
    transport.script.push(permanentOutcome('HTTP 400'));
    await assert.rejects(helper.consume(batchOf(3)), (err: unknown) => err instanceof PipelineError && err.code === 'INVALID_ARGUMENT' && !err.retryable);
    transport.script.push(retryableOutcome('HTTP 503', 1000));
    await assert.rejects(
      helper.consume(batchOf(4)),
      (err: unknown) => err instanceof PipelineError && err.code === 'UNAVAILABLE' && err.retryable && err.retryAfterMs === 1000,
    );
    assert.equal(await metric('otelcol_exporter_send_failed_spans_total'), 7);
    assert.equal(await dropped('permanent'), 3);
    assert.equal(await dropped('send_failed'), 4);
    assert.equal(await metric('otelcol_exporter_queue_capacity', { exporter: 'otlp/test' }), 0);
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
});
