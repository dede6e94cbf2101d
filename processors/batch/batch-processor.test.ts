import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TraceBatch, encodeKey } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { buildRequest, decodeSpans } from '../../test/helpers/otlp.js';
import { RecordingConsumer, histogramStats, processorSettings } from '../../test/helpers/processor-recorder.js';
import { BatchProcessor } from './batch-processor.js';
import { batchConfigSchema } from './config.js';
import { factory } from './index.js';

const CTX_A: RequestContext = {
  receiver: 'otlp',
  transport: 'grpc',
  peer: '127.0.0.1:5000',
  auth: { authenticator: 'bearer', subject: 'svc-a', issuer: 'idp', groups: [], claims: {} },
};
const CTX_B: RequestContext = { receiver: 'otlp/other', transport: 'http', peer: '127.0.0.1:6000', auth: null };

let seq = 0;
/** A request with `n` spans named `<tag>-<i>`, so order and completeness can be checked after merging. */
function request(tag: string, n: number, service = 'checkout'): { bytes: Uint8Array; names: string[] } {
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(`${tag}-${i}`);
  const bytes = buildRequest([
    { attributes: { 'service.name': service }, scopes: [{ spans: names.map((name) => ({ name, attributes: { seq: seq++, 'http.route': '/pay' } })) }] },
  ]);
  return { bytes, names };
}

function make(config: Record<string, unknown>, id = 'batch') {
  const settings = processorSettings(id);
  const next = new RecordingConsumer();
  const p = new BatchProcessor(settings, parseOrThrow(batchConfigSchema, config), next);
  return { p, next, t: settings.telemetry, sink: settings.sink };
}

function receivedNames(next: RecordingConsumer): string[] {
  return next.received.flatMap((r) => decodeSpans(r.bytes).map((s) => s.name));
}

test('config: Collector defaults, metadata keys accepted with a warning, max below size refused', () => {
  assert.deepEqual(parseOrThrow(batchConfigSchema, {}), { send_batch_size: 8192, timeout: 200, send_batch_max_size: 0 });
  assert.deepEqual(parseOrThrow(batchConfigSchema, { timeout: '1s', send_batch_size: 100, send_batch_max_size: 100 }), {
    send_batch_size: 100,
    timeout: 1000,
    send_batch_max_size: 100,
  });
  const ctx = new ParseContext();
  assert.ok(batchConfigSchema.parse({ metadata_keys: ['tenant'], metadata_cardinality_limit: 10 }, ['batch'], ctx));
  assert.equal(ctx.issues.length, 2);
  assert.ok(ctx.issues.every((i) => i.warning === true));
  assert.throws(() => parseOrThrow(batchConfigSchema, { send_batch_size: 100, send_batch_max_size: 50 }), /send_batch_max_size \(50\) must be at least send_batch_size \(100\)/);
  assert.throws(() => parseOrThrow(batchConfigSchema, { send_batch_size: -1 }), /at least 0/);
  assert.throws(() => parseOrThrow(batchConfigSchema, { timout: '1s' }), /unknown key/);
  assert.equal(factory.type, 'batch');
  assert.equal(factory.kind, 'processor');
});

test('size trigger: merges pending batches by concatenation into one request, in order', async () => {
  const { p, next, t } = make({ send_batch_size: 10, timeout: '10s' });
  const reqs = [request('a', 3), request('b', 3, 'payments'), request('c', 3), request('d', 3)];
  await p.consume(new TraceBatch(reqs[0]!.bytes), CTX_A);
  await p.consume(new TraceBatch(reqs[1]!.bytes), CTX_B);
  await p.consume(new TraceBatch(reqs[2]!.bytes), CTX_B);
  assert.equal(next.received.length, 0, 'nine spans stay pending below send_batch_size');
  assert.equal(p.pendingSpanCount, 9);
  await p.consume(new TraceBatch(reqs[3]!.bytes), CTX_B);
  await p.flushed();
  assert.equal(next.received.length, 1);
  const out = next.received[0]!;
  assert.equal(out.spanCount, 12);
  const all = reqs.flatMap((r) => r.bytes);
  assert.deepEqual(Buffer.from(out.bytes), Buffer.concat(all.map((b) => Buffer.from(b))), 'merged bytes are the plain concatenation');
  const spans = decodeSpans(out.bytes);
  assert.deepEqual(spans.map((s) => s.name), reqs.flatMap((r) => r.names));
  assert.deepEqual(spans.slice(3, 6).map((s) => s.resource['service.name']), ['payments', 'payments', 'payments']);
  assert.deepEqual(out.ctx, { receiver: 'otlp', transport: 'grpc', peer: '127.0.0.1:5000', auth: null }, 'first receiver, no sender identity');
  assert.equal(await t.value('otelcol_processor_batch_batch_size_trigger_send_total', { processor: 'batch' }), 1);
  assert.equal(await t.value('otelcol_processor_batch_timeout_trigger_send_total', { processor: 'batch' }), 0);
  assert.deepEqual(await histogramStats(t, 'otelcol_processor_batch_batch_send_size', { processor: 'batch' }), { count: 1, sum: 12 });
  assert.equal(await t.value('otelcol_processor_incoming_items_total', { processor: 'batch' }), 12);
  assert.equal(await t.value('otelcol_processor_outgoing_items_total', { processor: 'batch' }), 12);
  assert.equal(p.pendingSpanCount, 0);
  await p.shutdown(Date.now() + 1000);
  assert.equal(next.received.length, 1, 'nothing left to flush');
});

test('timeout trigger: one timer for the processor sends what is pending', async () => {
  const { p, next, t } = make({ send_batch_size: 1000, timeout: '30ms' });
  const a = request('a', 2);
  const b = request('b', 5);
  await p.consume(new TraceBatch(a.bytes), CTX_B);
  await p.consume(new TraceBatch(b.bytes), CTX_A);
  assert.equal(next.received.length, 0);
  await next.answered(1);
  assert.equal(next.received.length, 1);
  assert.deepEqual(receivedNames(next), [...a.names, ...b.names]);
  assert.equal(next.received[0]!.ctx.receiver, 'otlp/other');
  assert.equal(await t.value('otelcol_processor_batch_timeout_trigger_send_total', { processor: 'batch' }), 1);
  assert.equal(await t.value('otelcol_processor_batch_batch_size_trigger_send_total', { processor: 'batch' }), 0);
  // The timer is re-armed by the next batch after a send.
  const c = request('c', 1);
  await p.consume(new TraceBatch(c.bytes), CTX_A);
  await next.answered(2);
  assert.deepEqual(receivedNames(next), [...a.names, ...b.names, ...c.names]);
  assert.equal(await t.value('otelcol_processor_batch_timeout_trigger_send_total', { processor: 'batch' }), 2);
  await p.shutdown(Date.now() + 1000);
});

test('timeout 0 sends every batch as it arrives', async () => {
  const { p, next } = make({ timeout: 0 });
  const a = request('a', 2);
  await p.consume(new TraceBatch(a.bytes), CTX_A);
  await p.flushed();
  assert.equal(next.received.length, 1);
  assert.equal(next.received[0]!.bytes, a.bytes, 'a lone unedited batch passes on as the very bytes');
  await p.shutdown(Date.now() + 1000);
});

test('edits made upstream are applied before merging', async () => {
  const { p, next } = make({ send_batch_size: 4, timeout: '10s' });
  const a = request('a', 2);
  const b = request('b', 2);
  const edited = new TraceBatch(a.bytes);
  edited.removeSpanAttribute(0, encodeKey('http.route'));
  edited.dropSpan(1);
  await p.consume(edited, CTX_A);
  await p.consume(new TraceBatch(b.bytes), CTX_A);
  assert.equal(p.pendingSpanCount, 3, 'the dropped span is not counted');
  await p.shutdown(Date.now() + 1000);
  const spans = decodeSpans(next.received[0]!.bytes);
  assert.deepEqual(spans.map((s) => s.name), ['a-0', 'b-0', 'b-1']);
  assert.equal(spans[0]!.attributes['http.route'], undefined);
  assert.equal(spans[1]!.attributes['http.route'], '/pay');
});

test('send_batch_max_size splits; a size-triggered short tail waits for company or the timer', async () => {
  const { p, next, t } = make({ send_batch_size: 8, send_batch_max_size: 10, timeout: '10s' });
  const reqs = [request('a', 7), request('b', 7), request('c', 7)];
  await p.consume(new TraceBatch(reqs[0]!.bytes), CTX_A);
  await p.consume(new TraceBatch(reqs[1]!.bytes), CTX_A); // 14 → sends 10, keeps 4
  await p.flushed();
  assert.deepEqual(next.received.map((r) => r.spanCount), [10]);
  assert.equal(p.pendingSpanCount, 4);
  await p.consume(new TraceBatch(reqs[2]!.bytes), CTX_A); // 11 → sends 10, keeps 1
  await p.flushed();
  assert.deepEqual(next.received.map((r) => r.spanCount), [10, 10]);
  assert.equal(p.pendingSpanCount, 1);
  await p.shutdown(Date.now() + 1000); // flushes the last span
  assert.deepEqual(next.received.map((r) => r.spanCount), [10, 10, 1]);
  for (const r of next.received) assert.equal(decodeSpans(r.bytes).length, r.spanCount);
  assert.deepEqual(receivedNames(next), reqs.flatMap((r) => r.names), 'every span once, in arrival order');
  assert.equal(await t.value('otelcol_processor_batch_batch_size_trigger_send_total', { processor: 'batch' }), 2);
  assert.equal(await t.value('otelcol_processor_batch_timeout_trigger_send_total', { processor: 'batch' }), 1);
  assert.deepEqual(await histogramStats(t, 'otelcol_processor_batch_batch_send_size', { processor: 'batch' }), { count: 3, sum: 21 });
});

test('one oversized batch is split into max-size pieces; the timer sends the tail', async () => {
  const { p, next, t } = make({ send_batch_size: 10, send_batch_max_size: 10, timeout: '20ms' });
  const big = request('big', 25);
  await p.consume(new TraceBatch(big.bytes), CTX_A);
  await next.answered(3);
  assert.deepEqual(next.received.map((r) => r.spanCount), [10, 10, 5]);
  assert.deepEqual(receivedNames(next), big.names);
  assert.equal(await t.value('otelcol_processor_batch_batch_size_trigger_send_total', { processor: 'batch' }), 2);
  assert.equal(await t.value('otelcol_processor_batch_timeout_trigger_send_total', { processor: 'batch' }), 1);
  await p.shutdown(Date.now() + 1000);
});

test('a refusal downstream is counted as dropped with its reason and logged without data', async () => {
  const { p, next, t, sink } = make({ send_batch_size: 3, timeout: '10s' });
  next.failWith = new PipelineError('QUEUE_FULL', 'sending queue is full', 100);
  const a = request('secret-span-name', 4);
  await p.consume(new TraceBatch(a.bytes), CTX_A); // accepted: queued counts as accepted
  await next.answered(1);
  await p.flushed();
  assert.equal(next.received.length, 0);
  assert.equal(await t.value('tracewarden_dropped_spans_total', { component: 'batch', reason: 'queue_full' }), 4);
  assert.equal(await t.value('otelcol_processor_outgoing_items_total', { processor: 'batch' }), 0);
  const lines = sink.lines.filter((l) => l.includes('refused'));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /"code":"QUEUE_FULL"/);
  assert.doesNotMatch(sink.text, /secret-span-name|\/pay/);
  // A plain Error is an unavailable downstream.
  next.failWith = new Error('socket hang up');
  await p.consume(new TraceBatch(request('x', 3).bytes), CTX_A);
  await next.answered(2);
  await p.flushed();
  assert.equal(await t.value('tracewarden_dropped_spans_total', { component: 'batch', reason: 'unavailable' }), 3);
  await p.shutdown(Date.now() + 1000);
});

test('shutdown flushes everything pending and waits for next to accept; later batches are refused', async () => {
  const { p, next } = make({ send_batch_size: 1000, timeout: '10s' });
  const reqs = [request('a', 5), request('b', 6), request('c', 7)];
  for (const r of reqs) await p.consume(new TraceBatch(r.bytes), CTX_A);
  next.hold();
  const done = p.shutdown(Date.now() + 5000);
  let finished = false;
  void done.then(() => (finished = true));
  await nextTurn();
  assert.equal(finished, false, 'shutdown waits for next to accept');
  next.release();
  await done;
  assert.equal(next.spanTotal, 18);
  assert.deepEqual(receivedNames(next), reqs.flatMap((r) => r.names));
  await assert.rejects(p.consume(new TraceBatch(request('late', 1).bytes), CTX_A), (e: unknown) => {
    assert.ok(e instanceof PipelineError);
    assert.equal(e.code, 'SHUTTING_DOWN');
    assert.equal(e.retryable, true);
    return true;
  });
});

test('shutdown past its deadline counts what it could not send', async () => {
  const { p, next, t } = make({ send_batch_size: 5, timeout: '10s' });
  next.hold();
  await p.consume(new TraceBatch(request('a', 5).bytes), CTX_A); // in flight, held
  await p.consume(new TraceBatch(request('b', 2).bytes), CTX_A); // pending behind it
  await p.shutdown(Date.now() + 20);
  assert.equal(await t.value('tracewarden_dropped_spans_total', { component: 'batch', reason: 'shutting_down' }), 2);
  next.release();
  await p.flushed();
  assert.equal(next.spanTotal, 5, 'the send already in flight still completes');
});

test('backpressure: past the hold limit, consume waits for the in-flight send', async () => {
  const { p, next } = make({ send_batch_size: 10, timeout: '10s' });
  assert.equal(p.holdLimit, 40);
  next.hold();
  await p.consume(new TraceBatch(request('first', 10).bytes), CTX_A); // taken at once and held downstream
  for (let i = 0; i < 4; i++) await p.consume(new TraceBatch(request(`p${i}`, 10).bytes), CTX_A);
  assert.equal(p.pendingSpanCount, 40);
  let accepted = false;
  const blocked = p.consume(new TraceBatch(request('over', 10).bytes), CTX_A).then(() => (accepted = true));
  await nextTurn();
  await nextTurn();
  assert.equal(accepted, false, 'the batch over the limit waits');
  assert.equal(p.pendingSpanCount, 40);
  next.release();
  await blocked;
  assert.equal(accepted, true);
  await p.shutdown(Date.now() + 1000);
  assert.equal(next.spanTotal, 60);
});

test('backpressure is bounded: a batch waits at most max(1 s, 5 × timeout), then is refused as retryable QUEUE_FULL', async () => {
  const { p, next, t } = make({ send_batch_size: 10, timeout: '10ms' });
  assert.equal(p.backpressureMs, 1000);
  next.hold();
  await p.consume(new TraceBatch(request('first', 10).bytes), CTX_A); // taken at once and held downstream
  for (let i = 0; i < 4; i++) await p.consume(new TraceBatch(request(`p${i}`, 10).bytes), CTX_A);
  assert.equal(p.pendingSpanCount, 40);
  const t0 = Date.now();
  let guard: NodeJS.Timeout | undefined;
  const unbounded = new Promise<never>((_, reject) => {
    guard = setTimeout(() => reject(new Error('the backpressure wait did not end within 5 s')), 5000);
  });
  try {
    await assert.rejects(Promise.race([p.consume(new TraceBatch(request('over', 10).bytes), CTX_A), unbounded]), (e: unknown) => {
      assert.ok(e instanceof PipelineError, String(e));
      assert.equal(e.code, 'QUEUE_FULL');
      assert.equal(e.retryable, true);
      assert.equal(e.retryAfterMs, 1000);
      return true;
    });
  } finally {
    clearTimeout(guard);
  }
  const waited = Date.now() - t0;
  assert.ok(waited >= 990 && waited < 4000, `waited ${waited} ms`);
  assert.equal(p.pendingSpanCount, 40, 'the refused batch was not taken');
  assert.equal(await t.value('otelcol_processor_incoming_items_total', { processor: 'batch' }), 50, 'a refused batch is not incoming');
  assert.equal(await t.value('tracewarden_dropped_spans_total'), 0, 'refused, not dropped: the sender keeps it');
  next.release();
  await p.shutdown(Date.now() + 2000);
  assert.equal(next.spanTotal, 50);
  assert.ok(!receivedNames(next).some((n) => n.startsWith('over-')), 'the refused batch never went on');
});

test('spans lost when pending bytes cannot be re-packed are counted as dropped with a reason, and the processor carries on', async () => {
  const { p, next, t, sink } = make({ send_batch_size: 5, send_batch_max_size: 5, timeout: '10s' });
  // A batch an upstream stage mis-encoded: its span count is trusted, so the fault shows only when the
  // merged bytes are split, after consume accepted them.
  await p.consume(TraceBatch.encoded(Uint8Array.of(0x0a, 0x7f, 0x01), 3), CTX_A);
  await p.consume(new TraceBatch(request('secret-span', 4).bytes), CTX_A);
  await p.flushed();
  assert.equal(next.attempts, 0);
  assert.equal(await t.value('tracewarden_dropped_spans_total', { component: 'batch', reason: 'invalid_argument' }), 7);
  assert.equal(p.pendingSpanCount, 0);
  const lines = sink.lines.filter((l) => l.includes('they are lost'));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /"spans":7/);
  assert.doesNotMatch(sink.text, /secret-span/);
  // Still working.
  await p.consume(new TraceBatch(request('ok', 5).bytes), CTX_A);
  await p.flushed();
  assert.deepEqual(receivedNames(next), ['ok-0', 'ok-1', 'ok-2', 'ok-3', 'ok-4']);
  await p.shutdown(Date.now() + 1000);
});

test('a next stage that throws synchronously loses only its batch, counted with a reason; the message is not logged', async () => {
  const settings = processorSettings('batch');
  let calls = 0;
  const throwing = {
    consume(): Promise<void> {
      calls++;
      throw new TypeError('cannot read secret-attr-value');
    },
  };
  const p = new BatchProcessor(settings, parseOrThrow(batchConfigSchema, { send_batch_size: 3, timeout: 0 }), throwing);
  await p.consume(new TraceBatch(request('a', 3).bytes), CTX_A);
  await p.flushed();
  assert.equal(calls, 1);
  assert.equal(await settings.telemetry.value('tracewarden_dropped_spans_total', { component: 'batch', reason: 'unavailable' }), 3);
  assert.doesNotMatch(settings.sink.text, /secret-attr-value/);
  assert.match(settings.sink.text, /"message":"internal error"/);
  await p.consume(new TraceBatch(request('b', 2).bytes), CTX_A);
  await p.flushed();
  assert.equal(calls, 2);
  assert.equal(await settings.telemetry.value('tracewarden_dropped_spans_total', { component: 'batch' }), 5);
  await p.shutdown(Date.now() + 1000);
});

test('an empty request is accepted and sends nothing', async () => {
  const { p, next } = make({ send_batch_size: 1, timeout: 0 });
  await p.consume(new TraceBatch(new Uint8Array(0)), CTX_A);
  await p.shutdown(Date.now() + 1000);
  assert.equal(next.attempts, 0);
});

test('malformed bytes are refused as invalid argument and cost only themselves', async () => {
  const { p, next } = make({ send_batch_size: 1000, timeout: '10s' });
  await p.consume(new TraceBatch(request('ok', 2).bytes), CTX_A);
  await assert.rejects(p.consume(new TraceBatch(Uint8Array.of(0x0a, 0x7f, 0x01)), CTX_A), (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT');
  await p.shutdown(Date.now() + 1000);
  assert.equal(next.spanTotal, 2);
});
