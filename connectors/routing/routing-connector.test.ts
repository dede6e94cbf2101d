/**
 * The routing connector against the Collector's documented behaviour (routingconnector README): the first
 * matching route wins, resource routes decide for all of a resource's spans, span routes per span, the
 * rest to the default pipelines or dropped and counted; a mixed batch is split so each pipeline receives
 * exactly its spans (decoded with protobufjs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { decodeRequest, fixtureRequest } from '../../test/helpers/ottl-fixture.js';
import { checkRoutingPipelines, routingConfigSchema } from './config.js';
import { RoutingConnector } from './routing-connector.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

function setup(config: unknown, ids = ['traces/acme', 'traces/globex', 'traces/default']) {
  const settings = processorSettings('routing');
  const sinks = new Map(ids.map((id) => [id, new RecordingConsumer()]));
  const c = new RoutingConnector(settings, parseOrThrow(routingConfigSchema, config), sinks);
  return { c, sinks, settings };
}

function request(): TraceBatch {
  return new TraceBatch(
    fixtureRequest([
      { attributes: { tenant: 'acme' }, scopes: [{ spans: [{ name: 'a1', attributes: { 'enduser.id': 'alice' } }, { name: 'a2', attributes: { 'enduser.id': 'bob' } }] }] },
      { attributes: { tenant: 'globex' }, scopes: [{ spans: [{ name: 'g1' }] }] },
      { attributes: { tenant: 'initech' }, scopes: [{ spans: [{ name: 'i1', attributes: { 'enduser.id': 'alice' } }] }] },
    ]),
  );
}

function received(sink: RecordingConsumer): string[] {
  return sink.received.flatMap((r) => decodeRequest(r.bytes).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.name as string))));
}

test('resource routes: each resource to the first matching route, the rest to the defaults; a mixed batch is split', async () => {
  const { c, sinks, settings } = setup({
    default_pipelines: ['traces/default'],
    table: [
      { statement: 'route() where resource.attributes["tenant"] == "acme"', pipelines: ['traces/acme'] },
      { condition: 'attributes["tenant"] == "globex"', pipelines: ['traces/globex'] },
      { condition: 'attributes["tenant"] != nil', pipelines: ['traces/acme', 'traces/globex'] },
    ],
  });
  await c.consume(request(), CTX);
  // initech matches the third route (the first that matches), so it goes to both of its pipelines.
  assert.deepEqual(received(sinks.get('traces/acme')!), ['a1', 'a2', 'i1']);
  assert.deepEqual(received(sinks.get('traces/globex')!), ['g1', 'i1']);
  assert.deepEqual(received(sinks.get('traces/default')!), []);
  assert.equal(sinks.get('traces/acme')!.received[0]!.spanCount, 3);
  assert.equal(await settings.telemetry.value('tracewarden_routing_spans_total', { pipeline: 'traces/acme' }), 3);
});

test('span routes decide per span; unmatched spans with no default are dropped and counted', async () => {
  const { c, sinks, settings } = setup({ table: [{ context: 'span', condition: 'attributes["enduser.id"] == "alice"', pipelines: ['traces/acme'] }] });
  await c.consume(request(), CTX);
  assert.deepEqual(received(sinks.get('traces/acme')!), ['a1', 'i1']);
  const out = decodeRequest(sinks.get('traces/acme')!.received[0]!.bytes);
  // The resources whose spans all went elsewhere are not in the split.
  assert.deepEqual(
    out.resourceSpans.map((r) => (r.resource!.attributes as { value: { stringValue: string } }[])[0]!.value.stringValue),
    ['acme', 'initech'],
  );
  assert.equal(sinks.get('traces/globex')!.received.length, 0);
  assert.equal(await settings.telemetry.value('tracewarden_dropped_spans_total', { component: 'routing', reason: 'unrouted' }), 2);
});

test('a batch that goes one way entirely is passed whole (the very bytes)', async () => {
  const { c, sinks } = setup({ default_pipelines: ['traces/default'], table: [{ condition: 'attributes["tenant"] == "nobody"', pipelines: ['traces/acme'] }] });
  const b = request();
  await c.consume(b, CTX);
  assert.equal(sinks.get('traces/default')!.received[0]!.bytes, b.bytes);
});

test('error modes: ignore sends what fails to the defaults; propagate refuses; a pipeline refusing is returned', async () => {
  const failing = 'Substring(attributes["tenant"], 0, 10) == "x"';
  const ign = setup({ error_mode: 'ignore', default_pipelines: ['traces/default'], table: [{ condition: failing, pipelines: ['traces/acme'] }] });
  await ign.c.consume(request(), CTX);
  assert.deepEqual(received(ign.sinks.get('traces/default')!), ['a1', 'a2', 'g1', 'i1']);
  const prop = setup({ table: [{ condition: failing, pipelines: ['traces/acme'] }] });
  await assert.rejects(prop.c.consume(request(), CTX), (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT');
  const refusing = setup({ default_pipelines: ['traces/default'], table: [{ condition: 'attributes["tenant"] == "acme"', pipelines: ['traces/acme'] }] });
  refusing.sinks.get('traces/acme')!.failWith = new PipelineError('UNAVAILABLE', 'down');
  await assert.rejects(refusing.c.consume(request(), CTX), /down/);
  assert.deepEqual(received(refusing.sinks.get('traces/default')!), ['g1', 'i1'], 'the other pipeline still got its spans');
});

test('config: route forms, contexts and pipelines are checked', () => {
  const ctx = new ParseContext();
  const cfg = routingConfigSchema.parse(
    {
      table: [
        { condition: 'attributes["a"] == 1', statement: 'route() where true', pipelines: ['traces/x'] },
        { pipelines: ['traces/x'] },
        { statement: 'set(attributes["a"], 1)', pipelines: ['traces/x'] },
        { context: 'request', condition: 'request["X-Tenant"] == "acme"', pipelines: ['traces/x'] },
        { context: 'log', condition: 'true', pipelines: ['traces/x'] },
        { condition: 'attributes["a"] == nam', pipelines: ['traces/x'] },
        { condition: 'true', pipelines: [] },
      ],
    },
    ['connectors', 'routing'],
    ctx,
  );
  assert.equal(cfg, undefined);
  const messages = ctx.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.deepEqual(messages, [
    'connectors.routing.table.6.pipelines: expected at least 1 item',
  ]);
  const ctx2 = new ParseContext();
  routingConfigSchema.parse(
    {
      table: [
        { condition: 'attributes["a"] == 1', statement: 'route() where true', pipelines: ['traces/x'] },
        { pipelines: ['traces/x'] },
        { statement: 'set(attributes["a"], 1)', pipelines: ['traces/x'] },
        { context: 'request', condition: 'request["X-Tenant"] == "acme"', pipelines: ['traces/x'] },
        { context: 'log', condition: 'true', pipelines: ['traces/x'] },
        { condition: 'attributes["a"] == nam', pipelines: ['traces/x'] },
      ],
    },
    ['connectors', 'routing'],
    ctx2,
  );
  const m2 = ctx2.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.match(m2[0]!, /^connectors\.routing\.table\.0: invalid route: both condition and statement provided$/);
  assert.match(m2[1]!, /^connectors\.routing\.table\.1: invalid route: no condition or statement provided$/);
  assert.match(m2[2]!, /^connectors\.routing\.table\.2\.statement: a routing statement must be route\(\) where <condition>$/);
  assert.match(m2[3]!, /^connectors\.routing\.table\.3\.context: the request context .* is not supported yet/);
  assert.match(m2[4]!, /^connectors\.routing\.table\.4\.context: expected resource or span/);
  assert.match(m2[5]!, /^connectors\.routing\.table\.5\.condition: invalid OTTL condition: unknown path nam in the resource context/);
  const config = parseOrThrow(routingConfigSchema, { default_pipelines: ['traces/z'], table: [{ condition: 'true', pipelines: ['traces/a', 'traces/b'] }] });
  assert.deepEqual(checkRoutingPipelines(config, ['traces/a']), [
    { path: ['default_pipelines', 0], message: 'pipeline "traces/z" does not list this connector under receivers (it feeds traces/a)' },
    { path: ['table', 0, 'pipelines', 1], message: 'pipeline "traces/b" does not list this connector under receivers (it feeds traces/a)' },
  ]);
});
