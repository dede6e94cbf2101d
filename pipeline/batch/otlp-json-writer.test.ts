/**
 * Protobuf to OTLP/JSON. Requests are encoded by protobufjs (an independent encoder) with every field of the
 * trace schema; the JSON is checked three ways: against protobufjs's own proto3 JSON rendering of the same
 * message (with the OTLP rule of hex ids), against the OTLP JSON rules directly (field names, ids, integers,
 * enums, bytes, special doubles), and by reading it back with the receiver's converter (otlp-json.ts) and
 * comparing what protobufjs decodes from both encodings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PipelineError } from '../service/errors.js';
import { TraceBatch } from './batch.js';
import { otlpJsonToProtobuf } from './otlp-json.js';
import { otlpProtobufToJson } from './otlp-json-writer.js';
import { otlpType } from './otlp-schema.js';
import { syntheticRequest } from '../../test/helpers/otlp.js';

type Obj = Record<string, unknown>;
const T = otlpType('ExportTraceServiceRequest');

const TRACE = Buffer.from('5b8efff798038103d269b633813fc60c', 'hex');
const SPAN = Buffer.from('eee19b7ec3c1b174', 'hex');
const PARENT = Buffer.from('0102030405060708', 'hex');

/** A request using every field of the trace schema, every AnyValue member and the edge values of each type. */
function richRequest(): Uint8Array {
  const attrs = (prefix: string): Obj[] => [
    { key: `${prefix}.s`, value: { stringValue: 'héllo "quoted" \\ \n\t\u0001 ✓ 𝄞' } },
    { key: `${prefix}.empty`, value: { stringValue: '' } },
    { key: `${prefix}.b`, value: { boolValue: true } },
    { key: `${prefix}.f`, value: { boolValue: false } },
    { key: `${prefix}.i`, value: { intValue: '9223372036854775807' } },
    { key: `${prefix}.neg`, value: { intValue: '-9223372036854775808' } },
    { key: `${prefix}.small`, value: { intValue: '-1' } },
    { key: `${prefix}.zero`, value: { intValue: '0' } },
    { key: `${prefix}.big53`, value: { intValue: '9007199254740993' } },
    { key: `${prefix}.d`, value: { doubleValue: 3.25 } },
    { key: `${prefix}.tiny`, value: { doubleValue: 5e-324 } },
    { key: `${prefix}.huge`, value: { doubleValue: 1.7976931348623157e308 } },
    { key: `${prefix}.nan`, value: { doubleValue: NaN } },
    { key: `${prefix}.inf`, value: { doubleValue: Infinity } },
    { key: `${prefix}.ninf`, value: { doubleValue: -Infinity } },
    { key: `${prefix}.nzero`, value: { doubleValue: -0 } },
    { key: `${prefix}.bytes`, value: { bytesValue: Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255]) } },
    { key: `${prefix}.ebytes`, value: { bytesValue: Buffer.alloc(0) } },
    {
      key: `${prefix}.arr`,
      value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }, {}, { arrayValue: { values: [{ boolValue: true }] } }, { arrayValue: {} }] } },
    },
    {
      key: `${prefix}.kv`,
      value: { kvlistValue: { values: [{ key: 'k1', value: { doubleValue: 1.5 } }, { key: 'k2' }, { key: 'k3', value: { kvlistValue: { values: [{ key: 'deep', value: { stringValue: 'x' } }] } } }, { key: 'k4', value: { kvlistValue: {} } }] } },
    },
    { key: `${prefix}.novalue` },
    { key: `${prefix}.emptyvalue`, value: {} },
  ];
  return T.encode(
    T.fromObject({
      resourceSpans: [
        {
          resource: {
            attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }, ...attrs('res')],
            droppedAttributesCount: 3,
            entityRefs: [{ schemaUrl: 'https://opentelemetry.io/schemas/1.30.0', type: 'service', idKeys: ['service.name', 'service.namespace'], descriptionKeys: ['service.version'] }],
          },
          schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
          scopeSpans: [
            {
              scope: { name: 'lib', version: '2.0', attributes: attrs('scope'), droppedAttributesCount: 1 },
              schemaUrl: 'https://scope/schema',
              spans: [
                {
                  traceId: TRACE,
                  spanId: SPAN,
                  traceState: 'vendor=value,other=1',
                  parentSpanId: PARENT,
                  flags: 0x301,
                  name: 'GET /checkout',
                  kind: 3,
                  startTimeUnixNano: '18446744073709551615',
                  endTimeUnixNano: '1700000000123456789',
                  attributes: attrs('span'),
                  droppedAttributesCount: 4294967295,
                  events: [
                    { timeUnixNano: '1700000000000000001', name: 'exception', attributes: attrs('event'), droppedAttributesCount: 2 },
                    { name: 'no-time' },
                  ],
                  droppedEventsCount: 5,
                  links: [
                    { traceId: TRACE, spanId: PARENT, traceState: 'k=v', attributes: attrs('link'), droppedAttributesCount: 6, flags: 0x100 },
                    { traceId: Buffer.alloc(16), spanId: Buffer.alloc(8), attributes: [{ key: 'invalid-context', value: { boolValue: true } }] },
                  ],
                  droppedLinksCount: 7,
                  status: { message: 'boom', code: 2 },
                },
                { traceId: TRACE, spanId: PARENT, name: 'minimal' },
                { traceId: TRACE, spanId: Buffer.from('0000000000000009', 'hex'), name: 'ok-status', status: { code: 1 }, kind: 5 },
              ],
            },
            { scope: {}, spans: [] },
          ],
        },
        { resource: {}, scopeSpans: [] },
        {},
      ],
    }),
  ).finish();
}

/** protobufjs's proto3 JSON rendering, with OTLP's hex ids in place of base64. */
function reference(bytes: Uint8Array): unknown {
  const o = T.toObject(T.decode(bytes), { longs: String, enums: Number, bytes: String, json: true });
  const hexIds = (v: unknown, inIds: boolean): unknown => {
    if (Array.isArray(v)) return v.map((x) => hexIds(x, inIds));
    if (v === null || typeof v !== 'object') return v;
    const out: Obj = {};
    for (const [k, x] of Object.entries(v as Obj)) {
      if (inIds && (k === 'traceId' || k === 'spanId' || k === 'parentSpanId') && typeof x === 'string') out[k] = Buffer.from(x, 'base64').toString('hex');
      else out[k] = hexIds(x, inIds || k === 'spans' || k === 'links');
    }
    return out;
  };
  return hexIds(o, false);
}

/** What protobufjs decodes, defaults filled in, so that absent and default read alike (proto3). */
function decoded(bytes: Uint8Array): unknown {
  return T.toObject(T.decode(bytes), { longs: String, enums: Number, bytes: String, defaults: true, arrays: true });
}

test('the JSON is proto3 JSON as protobufjs renders it, with hex trace and span ids', () => {
  const bytes = richRequest();
  assert.deepEqual(JSON.parse(otlpProtobufToJson(bytes)), reference(bytes));
  const plain = syntheticRequest(50, 6);
  assert.deepEqual(JSON.parse(otlpProtobufToJson(plain)), reference(plain));
});

test('protobuf to JSON (this module) to protobuf (the receiver converter) gives the same message', () => {
  for (const bytes of [richRequest(), syntheticRequest(200, 12), syntheticRequest(1, 0), T.encode(T.fromObject({})).finish()]) {
    const back = otlpJsonToProtobuf(otlpProtobufToJson(bytes));
    assert.deepEqual(decoded(back), decoded(bytes));
  }
  // An edited batch: what goes out is its encoding.
  const b = new TraceBatch(syntheticRequest(5, 3));
  b.dropSpan(1);
  b.setSpanString(0, new TextEncoder().encode('enduser.id'), 'alice');
  const edited = b.encode();
  const json = JSON.parse(otlpProtobufToJson(edited)) as { resourceSpans: { scopeSpans: { spans: { attributes: { key: string; value: Obj }[] }[] }[] }[] };
  const spans = json.resourceSpans[0]!.scopeSpans[0]!.spans;
  assert.equal(spans.length, 4);
  assert.deepEqual(spans[0]!.attributes.find((a) => a.key === 'enduser.id')?.value, { stringValue: 'alice' });
  assert.deepEqual(decoded(otlpJsonToProtobuf(JSON.stringify(json))), decoded(edited));
});

test('follows the OTLP JSON rules field by field', () => {
  const json = otlpProtobufToJson(richRequest());
  const doc = JSON.parse(json) as Obj;
  // Every key is lowerCamelCase: no snake_case anywhere.
  const keys = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v as Obj)) (keys.add(k), walk(x));
  };
  walk(doc);
  for (const k of keys) assert.match(k, /^[a-z][a-zA-Z]*$/, k);
  for (const k of ['resourceSpans', 'scopeSpans', 'droppedAttributesCount', 'entityRefs', 'idKeys', 'descriptionKeys', 'schemaUrl', 'traceState', 'parentSpanId', 'startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano', 'droppedEventsCount', 'droppedLinksCount', 'kvlistValue', 'arrayValue', 'bytesValue']) {
    assert.ok(keys.has(k), k);
  }
  const rs = (doc['resourceSpans'] as Obj[])[0]!;
  const span = ((rs['scopeSpans'] as Obj[])[0]!['spans'] as Obj[])[0]!;
  assert.equal(span['traceId'], '5b8efff798038103d269b633813fc60c');
  assert.equal(span['spanId'], 'eee19b7ec3c1b174');
  assert.equal(span['parentSpanId'], '0102030405060708');
  assert.equal(span['kind'], 3, 'enums are integers');
  assert.deepEqual(span['status'], { message: 'boom', code: 2 });
  assert.equal(span['flags'], 0x301);
  assert.equal(span['startTimeUnixNano'], '18446744073709551615', 'fixed64 as a decimal string, exact');
  assert.equal(span['droppedAttributesCount'], 4294967295, 'uint32 as a number');
  const attr = (key: string): unknown => (span['attributes'] as { key: string; value: unknown }[]).find((a) => a.key === key)?.value;
  assert.deepEqual(attr('span.i'), { intValue: '9223372036854775807' });
  assert.deepEqual(attr('span.neg'), { intValue: '-9223372036854775808' });
  assert.deepEqual(attr('span.small'), { intValue: '-1' });
  assert.deepEqual(attr('span.big53'), { intValue: '9007199254740993' });
  assert.deepEqual(attr('span.zero'), { intValue: '0' }, 'a oneof member is written even at its default');
  assert.deepEqual(attr('span.empty'), { stringValue: '' });
  assert.deepEqual(attr('span.f'), { boolValue: false });
  assert.deepEqual(attr('span.nan'), { doubleValue: 'NaN' });
  assert.deepEqual(attr('span.inf'), { doubleValue: 'Infinity' });
  assert.deepEqual(attr('span.ninf'), { doubleValue: '-Infinity' });
  assert.ok(Object.is((attr('span.nzero') as { doubleValue: number }).doubleValue, -0));
  assert.deepEqual(attr('span.tiny'), { doubleValue: 5e-324 });
  assert.deepEqual(attr('span.bytes'), { bytesValue: 'AAEC+vv8/f7/' }, 'bytes as standard base64');
  assert.deepEqual(attr('span.ebytes'), { bytesValue: '' });
  assert.equal(attr('span.novalue'), undefined);
  assert.deepEqual(attr('span.emptyvalue'), {});
  assert.deepEqual(attr('span.s'), { stringValue: 'héllo "quoted" \\ \n\t\u0001 ✓ 𝄞' });
  // Defaults are omitted: the minimal span has only its ids and name.
  const minimal = ((rs['scopeSpans'] as Obj[])[0]!['spans'] as Obj[])[1]!;
  assert.deepEqual(minimal, { traceId: '5b8efff798038103d269b633813fc60c', spanId: '0102030405060708', name: 'minimal' });
  // An all-zero link context (allowed on links) is written as it is.
  const link = (span['links'] as Obj[])[1]!;
  assert.equal(link['traceId'], '00000000000000000000000000000000');
  // Empty messages and empty lists.
  assert.deepEqual((doc['resourceSpans'] as Obj[]).slice(1), [{ resource: {} }, {}]);
  assert.equal(otlpProtobufToJson(new Uint8Array(0)), '{}');
});

// Hand-written wire bytes for what no encoder writes.
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
const len = (field: number, body: number[]): number[] => [...varint((field << 3) | 2), ...varint(body.length), ...body];
const str = (field: number, s: string): number[] => len(field, [...Buffer.from(s)]);
const request = (spanFields: number[]): Uint8Array => Uint8Array.from(len(1, len(2, len(2, spanFields))));
const ids = [...len(1, [...TRACE]), ...len(2, [...SPAN])];

test('refuses what has two readings, drops what the schema does not know', () => {
  const refused = (bytes: Uint8Array, pattern: RegExp): void => {
    assert.throws(
      () => otlpProtobufToJson(bytes),
      (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message),
    );
  };
  refused(request([...ids, ...str(5, 'first'), ...str(5, 'second')]), /Span.name occurs more than once/);
  refused(request([...ids, ...len(15, []), ...len(15, [])]), /Span.status occurs more than once/);
  const kv = len(9, [...str(1, 'k'), ...len(2, [...str(1, 'a'), 0x10, 1])]);
  refused(request([...ids, ...kv]), /AnyValue has more than one value/);
  refused(request([...ids, (5 << 3) | 0, 1]), /Span.name has wire type 0/);
  refused(request([...ids, ...str(5, 'x')].slice(0, -1)), /./);

  // Unknown fields (a future field in a span, one in an AnyValue, one at the top) are dropped.
  const withUnknown = Uint8Array.from([
    ...len(1, len(2, len(2, [...ids, ...str(5, 'op'), ...varint(100 << 3), 42, ...len(9, [...str(1, 'k'), ...len(2, [...str(1, 'v'), ...str(99, 'future')])])]))),
    ...varint((50 << 3) | 5), 1, 2, 3, 4,
  ]);
  assert.deepEqual(JSON.parse(otlpProtobufToJson(withUnknown)), {
    resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE.toString('hex'), spanId: SPAN.toString('hex'), name: 'op', attributes: [{ key: 'k', value: { stringValue: 'v' } }] }] }] }],
  });
  // List elements split by other fields (legal protobuf, though no encoder writes it) are still one list each.
  const span = (name: string): number[] => len(2, [...ids, ...str(5, name)]);
  const interleaved = Uint8Array.from(len(1, [...len(2, [...span('a'), ...str(3, 'https://schema'), ...span('b'), ...len(1, str(1, 'scope')), ...span('c')]), ...len(1, []), ...len(2, [])]));
  assert.deepEqual(JSON.parse(otlpProtobufToJson(interleaved)), reference(interleaved));
  assert.deepEqual(
    ((JSON.parse(otlpProtobufToJson(interleaved)) as { resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[] }).resourceSpans[0]!.scopeSpans[0]!.spans).map((x) => x.name),
    ['a', 'b', 'c'],
  );
  assert.deepEqual(decoded(otlpJsonToProtobuf(otlpProtobufToJson(interleaved))), decoded(interleaved));
  // Bytes that are not UTF-8 become U+FFFD: JSON text cannot carry them.
  const bad = request([...ids, ...len(5, [0x6f, 0x70, 0xff, 0xfe])]);
  assert.equal((JSON.parse(otlpProtobufToJson(bad)) as { resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[] }).resourceSpans[0]!.scopeSpans[0]!.spans[0]!.name, 'op\ufffd\ufffd');
  // Nesting is bounded as the scanner bounds it.
  let value = [...str(1, 'leaf')];
  for (let i = 0; i < 40; i++) value = len(5, len(1, value));
  refused(request([...ids, ...len(9, [...str(1, 'deep'), ...len(2, value)])]), /nested too deeply/);
});
