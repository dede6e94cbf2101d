/**
 * The attributes and resource processors against the Collector's documented behaviour (attributesprocessor
 * and resourceprocessor READMEs, coreinternal/attraction): each action, their order, include/exclude
 * matching; output decoded with protobufjs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { attrs, decodeRequest, fixtureRequest } from '../../test/helpers/ottl-fixture.js';
import { attributesConfigSchema } from './config.js';
import { AttributesProcessor } from './attributes-processor.js';
import { matchCondition } from '../../ottl/match-properties.js';
import { resourceConfigSchema } from '../resource/config.js';
import { ResourceProcessor } from '../resource/resource-processor.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

function request(): TraceBatch {
  return new TraceBatch(
    fixtureRequest([
      {
        attributes: { 'service.name': 'checkout', 'host.name': 'node-1', 'k8s.pod.uid': 'abc' },
        scopes: [
          {
            name: 'io.opentelemetry.http',
            spans: [
              {
                name: 'GET /orders',
                kind: 2,
                attributes: { 'db.table': 'orders', key_original: 'orig', account_email: 'a@example.com', 'http.url': 'https://shop.example.com/orders?id=7', 'http.status_code': '503', 'account_id': 1, 'user.password': 'x', 'user.token': 'y', ratio: 2.5 },
              },
              { name: 'internal', kind: 1, attributes: { 'db.table': 'users' } },
            ],
          },
        ],
      },
    ]),
  );
}

async function run(config: unknown): Promise<Record<string, unknown>[]> {
  const next = new RecordingConsumer();
  await new AttributesProcessor(processorSettings('attributes'), parseOrThrow(attributesConfigSchema, config), next).consume(request(), CTX);
  return decodeRequest(next.received[0]!.bytes).resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => attrs(s.attributes as never));
}

test('actions in order: delete, upsert, update from another attribute, insert, hash, extract, convert, delete by pattern', async () => {
  const [a, b] = await run({
    actions: [
      { key: 'db.table', action: 'delete' },
      { key: 'redacted_span', value: true, action: 'upsert' },
      { key: 'key_original', from_attribute: 'account_email', action: 'update' },
      { key: 'account_id', value: 2245, action: 'insert' },
      { key: 'new_id', value: 2245, action: 'insert' },
      { key: 'account_email', action: 'hash' },
      { key: 'http.url', pattern: '^(?P<http_protocol>.*):\\/\\/(?P<http_domain>[^/]*)\\/(?P<http_path>[^?]*)\\??(?P<http_query_params>.*)$', action: 'extract' },
      { key: 'http.status_code', action: 'convert', converted_type: 'int' },
      { key: 'ratio', action: 'convert', converted_type: 'string' },
      { pattern: '^user\\.', action: 'delete' },
      { key: 'missing', action: 'update', value: 'x' },
    ],
  });
  assert.deepEqual(a, {
    key_original: 'a@example.com',
    account_email: createHash('sha256').update('a@example.com').digest('hex'),
    'http.url': 'https://shop.example.com/orders?id=7',
    'http.status_code': 503n,
    account_id: 1n,
    ratio: '2.5',
    redacted_span: true,
    new_id: 2245n,
    http_protocol: 'https',
    http_domain: 'shop.example.com',
    http_path: 'orders',
    http_query_params: 'id=7',
  });
  assert.deepEqual(b, { redacted_span: true, account_id: 2245n, new_id: 2245n });
});

test('hash: ints and doubles as 8 little-endian bytes, bools as one byte', async () => {
  const [a] = await run({ actions: [{ key: 'account_id', action: 'hash' }, { key: 'ratio', action: 'hash' }] });
  const le = Buffer.alloc(8);
  le.writeBigInt64LE(1n);
  assert.equal(a!.account_id, createHash('sha256').update(le).digest('hex'));
  const d = Buffer.alloc(8);
  d.writeDoubleLE(2.5);
  assert.equal(a!.ratio, createHash('sha256').update(d).digest('hex'));
});

test('include and exclude: strict and regexp matching of services, names, attributes, libraries, kinds', async () => {
  const only = async (include: unknown, exclude?: unknown) => (await run({ actions: [{ key: 'hit', value: 1, action: 'insert' }], include, exclude })).map((s) => 'hit' in s);
  assert.deepEqual(await only({ match_type: 'strict', services: ['checkout'] }), [true, true]);
  assert.deepEqual(await only({ match_type: 'strict', services: ['cart'] }), [false, false]);
  assert.deepEqual(await only({ match_type: 'strict', span_names: ['GET /orders'] }), [true, false]);
  assert.deepEqual(await only({ match_type: 'regexp', span_names: ['^GET'] }), [true, false]);
  assert.deepEqual(await only({ match_type: 'strict', attributes: [{ key: 'db.table', value: 'users' }] }), [false, true]);
  assert.deepEqual(await only({ match_type: 'strict', attributes: [{ key: 'account_id', value: 1 }] }), [true, false]);
  assert.deepEqual(await only({ match_type: 'strict', attributes: [{ key: 'account_email' }] }), [true, false]);
  assert.deepEqual(await only({ match_type: 'regexp', attributes: [{ key: 'db.table', value: 'ord.*' }] }), [true, false]);
  assert.deepEqual(await only({ match_type: 'strict', resources: [{ key: 'host.name', value: 'node-1' }] }), [true, true]);
  assert.deepEqual(await only({ match_type: 'strict', libraries: [{ name: 'io.opentelemetry.http' }] }), [true, true]);
  assert.deepEqual(await only({ match_type: 'strict', span_kinds: ['SPAN_KIND_SERVER'] }), [true, false]);
  // All properties must match.
  assert.deepEqual(await only({ match_type: 'strict', services: ['checkout'], span_kinds: ['SPAN_KIND_INTERNAL'] }), [false, true]);
  assert.deepEqual(await only({ match_type: 'strict', services: ['checkout'] }, { match_type: 'strict', span_names: ['internal'] }), [true, false]);
  assert.equal(matchCondition(parseOrThrow((await import('../../ottl/match-properties.js')).matchPropertiesSchema, { match_type: 'strict', services: ['a', 'b'], attributes: [{ key: 'k', value: 1.5 }] })), '(resource.attributes["service.name"] == "a" or resource.attributes["service.name"] == "b") and attributes["k"] == 1.5');
});

test('resource processor: the same actions on every resource', async () => {
  const next = new RecordingConsumer();
  const config = parseOrThrow(resourceConfigSchema, {
    attributes: [
      { key: 'cloud.zone', value: 'zone-1', action: 'upsert' },
      { key: 'k8s.cluster.name', from_attribute: 'k8s-cluster', action: 'insert' },
      { key: 'redundant-attribute', action: 'delete' },
      { key: 'host.name', action: 'hash' },
      { pattern: '^k8s\\.pod', action: 'delete' },
    ],
  });
  await new ResourceProcessor(processorSettings('resource'), config, next).consume(request(), CTX);
  const out = decodeRequest(next.received[0]!.bytes).resourceSpans[0]!;
  assert.deepEqual(attrs(out.resource!.attributes as never), { 'service.name': 'checkout', 'host.name': createHash('sha256').update('node-1').digest('hex'), 'cloud.zone': 'zone-1' });
  assert.equal(out.scopeSpans[0]!.spans.length, 2);
});

test('config errors name the action and what is wrong', () => {
  const ctx = new ParseContext();
  attributesConfigSchema.parse(
    {
      actions: [
        { key: 'a', action: 'insert' },
        { action: 'upsert', value: 1 },
        { key: 'a', action: 'rename' },
        { key: 'a', action: 'extract', pattern: '(\\d+)' },
        { key: 'a', action: 'convert', converted_type: 'float' },
        { key: 'a', action: 'insert', value: 1, from_attribute: 'b' },
        { key: 'a', action: 'upsert', from_context: 'metadata.x' },
        { key: 'a', action: 'delete', pattern: '(' },
      ],
      include: { match_type: 'regexp', span_names: ['('] },
    },
    ['processors', 'attributes'],
    ctx,
  );
  const byPath = Object.fromEntries(ctx.issues.map((i) => [i.path.join('.'), i.message]));
  assert.equal(byPath['processors.attributes.actions.0'], 'action insert needs value or from_attribute');
  assert.equal(byPath['processors.attributes.actions.1'], 'action upsert needs key');
  assert.match(byPath['processors.attributes.actions.2']!, /unsupported action "rename"/);
  assert.equal(byPath['processors.attributes.actions.3'], 'the pattern of action extract has no named groups');
  assert.match(byPath['processors.attributes.actions.4']!, /converted_type must be int, double or string/);
  assert.equal(byPath['processors.attributes.actions.5'], 'action insert takes one of value and from_attribute, not both');
  assert.match(byPath['processors.attributes.actions.6.from_context']!, /from_context .* is not supported yet/);
  assert.match(byPath['processors.attributes.actions.7']!, /^pattern: /);
  assert.match(byPath['processors.attributes.include']!, /invalid regular expression "\("/);
});
