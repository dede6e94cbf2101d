/**
 * The filter processor against the Collector's documented behaviour (filterprocessor README): spans and
 * span events for which any condition is true are dropped, empty resources and scopes go with them, a
 * batch left empty is not passed on, and error_mode decides what a failing condition does. Output decoded
 * with protobufjs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { attrs, decodeRequest, fixtureRequest } from '../../test/helpers/ottl-fixture.js';
import { filterConfigSchema } from './config.js';
import { FilterProcessor } from './filter-processor.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

function setup(config: unknown) {
  const settings = processorSettings('filter');
  const next = new RecordingConsumer();
  const p = new FilterProcessor(settings, parseOrThrow(filterConfigSchema, config), next);
  return { p, next, settings };
}

function request(): TraceBatch {
  return new TraceBatch(
    fixtureRequest([
      {
        attributes: { 'service.name': 'checkout' },
        scopes: [
          {
            spans: [
              { name: 'GET /health', attributes: { 'http.route': '/health' } },
              { name: 'POST /pay', attributes: { 'http.route': '/pay', 'enduser.id': 'alice' }, events: [{ name: 'retry', attributes: { attempt: 1 } }, { name: 'exception', attributes: { 'exception.type': 'Timeout' } }] },
            ],
          },
        ],
      },
      { attributes: { 'service.name': 'healthcheck' }, scopes: [{ spans: [{ name: 'ping' }] }] },
    ]),
  );
}

function names(bytes: Uint8Array): string[][] {
  return decodeRequest(bytes).resourceSpans.map((r) => r.scopeSpans.flatMap((s) => s.spans.map((sp) => sp.name as string)));
}

test('spans matching any condition are dropped; an emptied resource is not exported; drops are counted', async () => {
  const { p, next, settings } = setup({
    error_mode: 'ignore',
    traces: { span: ['attributes["http.route"] == "/health"', 'resource.attributes["service.name"] == "healthcheck"'] },
  });
  await p.consume(request(), CTX);
  assert.equal(next.received.length, 1);
  assert.deepEqual(names(next.received[0]!.bytes), [['POST /pay']]);
  assert.equal(next.received[0]!.spanCount, 1);
  assert.equal(await settings.telemetry.value('tracewarden_dropped_spans_total', { component: 'filter', reason: 'filtered' }), 2);
  assert.equal(await settings.telemetry.value('otelcol_processor_incoming_items_total', { processor: 'filter' }), 3);
  assert.equal(await settings.telemetry.value('otelcol_processor_outgoing_items_total', { processor: 'filter' }), 1);
});

test('span events matching a condition are removed, their span stays with its other events', async () => {
  const { p, next, settings } = setup({ traces: { spanevent: ['name == "retry"', 'attributes["exception.type"] == "Nope"'] } });
  await p.consume(request(), CTX);
  const spans = decodeRequest(next.received[0]!.bytes).resourceSpans[0]!.scopeSpans[0]!.spans;
  assert.equal(spans.length, 2);
  const events = spans[1]!.events as { name: string; attributes: never }[];
  assert.deepEqual(
    events.map((e) => e.name),
    ['exception'],
  );
  assert.deepEqual(attrs(events[0]!.attributes), { 'exception.type': 'Timeout' });
  assert.equal(await settings.telemetry.value('tracewarden_filter_span_events_removed_total', { processor: 'filter' }), 1);
});

test('a batch with every span dropped is not passed on', async () => {
  const { p, next } = setup({ traces: { span: ['true'] } });
  await p.consume(request(), CTX);
  assert.equal(next.received.length, 0);
});

test('no conditions: the batch passes as the very bytes received', async () => {
  const { p, next } = setup({});
  const b = request();
  await p.consume(b, CTX);
  assert.equal(next.received[0]!.bytes, b.bytes);
});

test('error_mode: propagate refuses the batch as bad data; ignore logs once and keeps the span; silent keeps it quietly', async () => {
  const failing = 'Substring(name, 0, 100) == "x"';
  const prop = setup({ traces: { span: [failing] } });
  await assert.rejects(prop.p.consume(request(), CTX), (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT' && !e.retryable && /invalid range for Substring/.test(e.message));
  assert.equal(prop.next.received.length, 0);

  const ign = setup({ error_mode: 'ignore', traces: { span: [failing, 'name == "ping"'] } });
  await ign.p.consume(request(), CTX);
  await ign.p.consume(request(), CTX);
  assert.deepEqual(names(ign.next.received[0]!.bytes), [['GET /health', 'POST /pay']]);
  const warnings = ign.settings.sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => String(r.msg).startsWith('OTTL failed'));
  assert.equal(warnings.length, 1, 'one line per 10 s, not one per span');
  assert.equal(warnings[0]!.statement, failing);
  assert.equal(warnings[0]!.level, 'warn');
  assert.equal(await ign.settings.telemetry.value('tracewarden_ottl_errors_total', { component: 'filter' }), 6);

  const sil = setup({ error_mode: 'silent', traces: { span: [failing] } });
  await sil.p.consume(request(), CTX);
  assert.equal(sil.next.received[0]!.spanCount, 3);
  assert.ok(!sil.settings.sink.text.includes('OTTL failed'));
});

test('the legacy include/exclude form: spans include does not match, or exclude matches, are dropped', async () => {
  const { p, next } = setup({ spans: { include: { match_type: 'strict', services: ['checkout'] }, exclude: { match_type: 'regexp', span_names: ['^GET'] } } });
  await p.consume(request(), CTX);
  assert.deepEqual(names(next.received[0]!.bytes), [['POST /pay']]);
});

test('config: a bad condition is reported at its place with the column; the legacy form and other signals are named', () => {
  const ctx = new ParseContext();
  filterConfigSchema.parse(
    {
      traces: { span: ['name == "a"', 'attributes["x"] == nam'], spanevent: ['span.nope == 1'] },
      spans: { include: { match_type: 'stricter', services: ['a'] } },
      logs: { log_record: ['true'] },
    },
    ['processors', 'filter'],
    ctx,
  );
  const byPath = Object.fromEntries(ctx.issues.map((i) => [i.path.join('.'), i]));
  assert.match(byPath['processors.filter.traces.span.1']!.message, /^invalid OTTL condition: unknown path nam in the span context .* at column 20 of "attributes\[\\"x\\"\] == nam"$/);
  assert.match(byPath['processors.filter.traces.spanevent.0']!.message, /unknown path span\.nope in the span context/);
  assert.match(byPath['processors.filter.spans.include.match_type']!.message, /expected one of strict, regexp/);
  assert.equal(byPath['processors.filter.logs']!.warning, true);
  assert.equal(ctx.issues.filter((i) => !i.warning).length, 3);
});
