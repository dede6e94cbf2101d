/**
 * The transform processor against the Collector's documented behaviour (transformprocessor README):
 * groups by context in order, group conditions, statements inferred from their paths, each statement
 * seeing the previous ones' writes, error modes; output decoded with protobufjs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { attrs, decodeRequest, fixtureRequest } from '../../test/helpers/ottl-fixture.js';
import { transformConfigSchema } from './config.js';
import { TransformProcessor } from './transform-processor.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

function setup(config: unknown) {
  const settings = processorSettings('transform');
  const next = new RecordingConsumer();
  return { p: new TransformProcessor(settings, parseOrThrow(transformConfigSchema, config), next), next, settings };
}

function request(): TraceBatch {
  return new TraceBatch(
    fixtureRequest([
      {
        attributes: { 'service.name': 'checkout', 'k8s.pod.uid': 'abc', 'host.name': 'node-1' },
        scopes: [
          {
            spans: [
              { name: 'GET', attributes: { 'http.route': '/orders/{id}', 'http.request.header.authorization': ['Bearer x'], 'enduser.id': 'alice' }, events: [{ name: 'exception', attributes: { 'exception.message': 'user=bob failed' } }] },
              { name: 'POST', kind: 3, attributes: { 'http.route': '/pay' } },
            ],
          },
        ],
      },
    ]),
  );
}

test('the Collector README example: resource, then span statements with where clauses', async () => {
  const { p, next } = setup({
    error_mode: 'ignore',
    trace_statements: [
      { context: 'resource', statements: ['keep_keys(attributes, ["service.name", "service.namespace", "cloud.region", "process.command_line"])', 'limit(attributes, 100, [])', 'truncate_all(attributes, 4096)'] },
      {
        context: 'span',
        statements: [
          'set(status.code, 1) where attributes["http.path"] == "/health"',
          'set(name, attributes["http.route"])',
          'replace_match(attributes["http.target"], "/user/*/list/*", "/user/{userId}/list/{listId}")',
          'limit(attributes, 100, [])',
          'truncate_all(attributes, 4096)',
          'set(attributes["route.copy"], name) where kind == SPAN_KIND_SERVER',
        ],
      },
    ],
  });
  await p.consume(request(), CTX);
  const out = decodeRequest(next.received[0]!.bytes).resourceSpans[0]!;
  assert.deepEqual(attrs(out.resource!.attributes as never), { 'service.name': 'checkout' });
  const [a, b] = out.scopeSpans[0]!.spans;
  assert.equal(a!.name, '/orders/{id}');
  assert.equal(attrs(a!.attributes as never)['route.copy'], '/orders/{id}', 'a later statement reads the name an earlier one set');
  assert.equal(b!.name, '/pay');
  assert.ok(!('route.copy' in attrs(b!.attributes as never)), 'the where clause held: POST is a client span');
});

test('a group condition selects units; groups see what earlier groups wrote; inferred statements', async () => {
  const { p, next } = setup({
    trace_statements: [
      { context: 'span', conditions: ['attributes["enduser.id"] != nil'], statements: ['set(attributes["user.known"], true)'] },
      'set(span.attributes["service"], resource.attributes["service.name"])',
      { context: 'span', statements: ['set(attributes["seen"], attributes["user.known"])'] },
      'set(resource.attributes["processed.by"], "tracewarden")',
      { context: 'spanevent', statements: ['set(span.attributes["had.exception"], true) where name == "exception"'] },
    ],
  });
  await p.consume(request(), CTX);
  const out = decodeRequest(next.received[0]!.bytes).resourceSpans[0]!;
  const [a, b] = out.scopeSpans[0]!.spans.map((s) => attrs(s.attributes as never));
  assert.equal(a!['user.known'], true);
  assert.equal(a!.seen, true);
  assert.equal(a!.service, 'checkout');
  assert.equal(a!['had.exception'], true);
  assert.ok(!('user.known' in b!));
  assert.ok(!('seen' in b!), 'set with a nil value changes nothing');
  assert.equal(attrs(out.resource!.attributes as never)['processed.by'], 'tracewarden');
  // Everything not written is as it was.
  assert.deepEqual(a!['http.request.header.authorization'], ['Bearer x']);
});

test('error modes: propagate refuses the batch; ignore skips the failing statement and runs the rest', async () => {
  const failing = 'set(attributes["n"], Substring(name, 0, 50))';
  const prop = setup({ trace_statements: [{ context: 'span', statements: [failing] }] });
  await assert.rejects(prop.p.consume(request(), CTX), (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT');
  assert.equal(prop.next.received.length, 0);
  const ign = setup({ error_mode: 'propagate', trace_statements: [{ context: 'span', error_mode: 'ignore', statements: [failing, 'set(attributes["after"], 1)'] }] });
  await ign.p.consume(request(), CTX);
  const spans = decodeRequest(ign.next.received[0]!.bytes).resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => attrs(s.attributes as never));
  assert.deepEqual(
    spans.map((s) => s.after),
    [1n, 1n],
  );
  assert.equal(await ign.settings.telemetry.value('tracewarden_ottl_errors_total', { component: 'transform' }), 2);
});

test('no statements: the very bytes received pass', async () => {
  const { p, next } = setup({});
  const b = request();
  await p.consume(b, CTX);
  assert.equal(next.received[0]!.bytes, b.bytes);
});

test('config: statement errors at their YAML place with the column; unknown contexts; other signals warned', () => {
  const ctx = new ParseContext();
  transformConfigSchema.parse(
    {
      trace_statements: [
        { context: 'span', statements: ['set(attributes["a"], 1)', 'set(nme, "x")'], conditions: ['IsMatch(name)'] },
        { context: 'spanlink', statements: ['set(attributes["a"], 1)'] },
        'set(attributes["a"], 1)',
        { context: 'scope', statements: ['set(attributes["a"], 1)'] },
      ],
      log_statements: [],
    },
    ['processors', 'transform'],
    ctx,
  );
  const byPath = Object.fromEntries(ctx.issues.map((i) => [i.path.join('.'), i]));
  assert.match(byPath['processors.transform.trace_statements.0.statements.1']!.message, /invalid OTTL statement: unknown path nme in the span context .* at column 5/);
  assert.match(byPath['processors.transform.trace_statements.0.conditions.0']!.message, /IsMatch needs the argument pattern/);
  assert.match(byPath['processors.transform.trace_statements.1.context']!.message, /expected one of resource, scope, span, spanevent .* got "spanlink"/);
  assert.match(byPath['processors.transform.trace_statements.2']!.message, /cannot infer the context/);
  assert.match(byPath['processors.transform.trace_statements.3.statements.0']!.message, /the path attributes\["a"\] cannot be set here/);
  assert.equal(byPath['processors.transform.log_statements']!.warning, true);
});
