/**
 * The span processor against the Collector's README examples: the name from attributes, attributes from
 * the name, status, include/exclude; output decoded with protobufjs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { attrs, decodeRequest, fixtureRequest } from '../../test/helpers/ottl-fixture.js';
import { spanConfigSchema } from './config.js';
import { SpanProcessor } from './span-processor.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

async function run(config: unknown, spans: { name: string; attributes?: Record<string, unknown>; status?: { code: number; message?: string } }[]) {
  const next = new RecordingConsumer();
  await new SpanProcessor(processorSettings('span'), parseOrThrow(spanConfigSchema, config), next).consume(new TraceBatch(fixtureRequest([{ attributes: { 'service.name': 'banks' }, scopes: [{ spans }] }])), CTX);
  return decodeRequest(next.received[0]!.bytes).resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => ({ name: s.name as string, attributes: attrs(s.attributes as never), status: s.status }));
}

test('name from attributes: all present, joined by the separator, values as the Collector writes them', async () => {
  const out = await run({ name: { from_attributes: ['db.svc', 'operation', 'id'], separator: '::' } }, [
    { name: 'x', attributes: { 'db.svc': 'location', operation: 'get', id: 1234 } },
    { name: 'kept', attributes: { 'db.svc': 'location', operation: 'get' } },
    { name: 'y', attributes: { 'db.svc': true, operation: 2.5, id: ['a'] } },
  ]);
  assert.deepEqual(
    out.map((s) => s.name),
    ['location::get::1234', 'kept', 'true::2.5::<unknown-attribute-type>'],
  );
});

test('attributes from the name: named groups extracted, the name rewritten, rules applied in turn', async () => {
  const [a, b] = await run({ name: { to_attributes: { rules: ['^\\/api\\/v1\\/document\\/(?P<documentId>.*)\\/update$', '^\\/api\\/(?P<version>v\\d)\\/'] } } }, [{ name: '/api/v1/document/12345678/update' }, { name: '/other' }]);
  assert.equal(a!.name, '/api/{version}/document/{documentId}/update');
  assert.deepEqual(a!.attributes, { documentId: '12345678', version: 'v1' });
  assert.equal(b!.name, '/other');
  const [k] = await run({ name: { to_attributes: { rules: ['^\\/api\\/v1\\/document\\/(?P<documentId>.*)\\/update$'], keep_original_name: true } } }, [{ name: '/api/v1/document/42/update' }]);
  assert.equal(k!.name, '/api/v1/document/42/update');
  assert.deepEqual(k!.attributes, { documentId: '42' });
  const [br] = await run({ name: { to_attributes: { rules: ['(?P<first>\\w+)$', '^(?P<second>\\w+)'], break_after_match: true } } }, [{ name: 'a/b' }]);
  assert.deepEqual(br!.attributes, { first: 'b' });
});

test('status: Error with its description, Ok and Unset clear the message; include limits which spans', async () => {
  const out = await run({ status: { code: 'Error', description: 'some additional error description' }, include: { match_type: 'strict', span_names: ['bad'] } }, [
    { name: 'bad', status: { code: 1, message: 'x' } },
    { name: 'good', status: { code: 1 } },
  ]);
  assert.deepEqual(out[0]!.status, { code: 2, message: 'some additional error description' });
  assert.deepEqual(out[1]!.status, { code: 1 });
  const ok = await run({ status: { code: 'Ok', description: 'ignored' } }, [{ name: 'x', status: { code: 2, message: 'boom' } }]);
  assert.deepEqual(ok[0]!.status, { code: 1 });
});
