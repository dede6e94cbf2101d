/**
 * OTLP/JSON to protobuf: strict as the OTLP specification and proto3's JSON mapping read, exact 64-bit
 * integers, JSON-path error messages that never quote the client, and the worker-thread path giving the
 * same bytes and the same errors. Produced bytes are decoded with protobufjs, an independent decoder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from './batch.js';
import { PipelineError } from '../service/errors.js';
import { MAX_JSON_DEPTH, otlpJsonToProtobuf } from './otlp-json.js';
import { INLINE_MAX_BYTES, otlpJsonToProtobufAsync } from './otlp-json-pool.js';
import { parseJson } from './json-reader.js';
import { otlpType } from './otlp-schema.js';

const TRACE = '5b8efff798038103d269b633813fc60c';
const SPAN = 'eee19b7ec3c1b174';
const SPAN0 = '$.resourceSpans[0].scopeSpans[0].spans[0]';
const ATTR0 = `${SPAN0}.attributes[0].value`;

type Obj = Record<string, unknown>;

/** A request of one span; `span` fields override the defaults. */
function request(span: Obj = {}): Obj {
  return { resourceSpans: [{ resource: {}, scopeSpans: [{ scope: { name: 's' }, spans: [{ traceId: TRACE, spanId: SPAN, name: 'op', ...span }] }] }] };
}

/** The same with one attribute whose AnyValue JSON is given as text (so numbers keep their exact spelling). */
function withValue(valueJson: string): string {
  return JSON.stringify(request({ attributes: [{ key: 'k', value: { placeholder: 1 } }] })).replace('{"placeholder":1}', valueJson);
}

/** The same with span fields given as JSON text, e.g. `"kind": 1e20`. */
function withSpanFields(fieldsJson: string): string {
  return JSON.stringify(request()).replace(`"name":"op"`, `"name":"op",${fieldsJson}`);
}

function decode(bytes: Uint8Array): Obj {
  const T = otlpType('ExportTraceServiceRequest');
  return T.toObject(T.decode(bytes), { longs: String, enums: Number, bytes: String, defaults: false }) as Obj;
}

function firstSpan(bytes: Uint8Array): Obj {
  const d = decode(bytes) as { resourceSpans: { scopeSpans: { spans: Obj[] }[] }[] };
  return d.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
}

function firstValue(bytes: Uint8Array): Obj {
  return ((firstSpan(bytes)['attributes'] as Obj[])[0]!['value'] as Obj) ?? {};
}

function convert(body: string | Obj): Uint8Array {
  return otlpJsonToProtobuf(typeof body === 'string' ? body : JSON.stringify(body));
}

/** Asserts the body is refused with INVALID_ARGUMENT and exactly this message. */
function refused(body: string | Obj, message: string): void {
  assert.throws(
    () => convert(body),
    (err: unknown) => {
      assert.ok(err instanceof PipelineError, `expected a PipelineError, got ${String(err)}`);
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.equal(err.message, message);
      return true;
    },
  );
}

test('64-bit integers are exact whether sent as JSON numbers or as strings', () => {
  const cases: [string, string][] = [
    ['9007199254740993', '9007199254740993'], // 2^53 + 1: JSON.parse reads 9007199254740992
    ['"9007199254740993"', '9007199254740993'],
    ['-9007199254740993', '-9007199254740993'],
    ['9223372036854775807', '9223372036854775807'],
    ['"9223372036854775807"', '9223372036854775807'],
    ['-9223372036854775808', '-9223372036854775808'],
    ['"-9223372036854775808"', '-9223372036854775808'],
    ['1234567890123456789', '1234567890123456789'],
    ['12345678901234567e2', '1234567890123456700'],
    ['"1e3"', '1000'],
    ['1.0', '1'],
    ['"-0"', '0'],
    ['90071992547409930e-1', '9007199254740993'],
    ['42', '42'],
    ['-7', '-7'],
  ];
  for (const [json, want] of cases) {
    const v = firstValue(convert(withValue(`{"intValue":${json}}`)));
    assert.equal(v['intValue'], want, `intValue ${json}`);
  }
  assert.deepEqual(firstValue(convert(withValue('{"intValue":0}'))), { intValue: '0' }, 'zero is still an int value (a oneof member is always written)');
});

test('fixed64 timestamps are exact up to 2^64-1, as numbers or strings', () => {
  for (const [json, want] of [
    ['18446744073709551615', '18446744073709551615'],
    ['"18446744073709551615"', '18446744073709551615'],
    ['1700000000123456789', '1700000000123456789'],
    ['"1700000000123456789"', '1700000000123456789'],
    ['9007199254740993', '9007199254740993'],
  ] as const) {
    const s = firstSpan(convert(withSpanFields(`"startTimeUnixNano":${json},"endTimeUnixNano":${json}`)));
    assert.equal(s['startTimeUnixNano'], want, json);
    assert.equal(s['endTimeUnixNano'], want, json);
  }
  const e = firstSpan(convert(withSpanFields('"events":[{"timeUnixNano":"18446744073709551615","name":"e"}]')));
  assert.equal((e['events'] as Obj[])[0]!['timeUnixNano'], '18446744073709551615');
});

test('integers that are not integers, or out of range for their field, are refused with the field path', () => {
  const intPath = `${ATTR0}.intValue`;
  for (const [json, message] of [
    ['9223372036854775808', `${intPath}: out of range for a signed 64-bit integer`],
    ['"9223372036854775808"', `${intPath}: out of range for a signed 64-bit integer`],
    ['-9223372036854775809', `${intPath}: out of range for a signed 64-bit integer`],
    ['1e400', `${intPath}: out of range for a signed 64-bit integer`],
    ['1e999999999999', `${intPath}: out of range for a signed 64-bit integer`],
    ['1.5', `${intPath}: expected an integer (a number or a decimal string)`],
    ['1.0000000000000001', `${intPath}: expected an integer (a number or a decimal string)`],
    ['1e-999999999999', `${intPath}: expected an integer (a number or a decimal string)`],
    ['""', `${intPath}: expected an integer (a number or a decimal string)`],
    ['"0x10"', `${intPath}: expected an integer (a number or a decimal string)`],
    ['" 1"', `${intPath}: expected an integer (a number or a decimal string)`],
    ['"+1"', `${intPath}: expected an integer (a number or a decimal string)`],
    ['"01"', `${intPath}: expected an integer (a number or a decimal string)`],
    ['"1_000"', `${intPath}: expected an integer (a number or a decimal string)`],
    ['true', `${intPath}: expected an integer (a number or a decimal string)`],
    ['{}', `${intPath}: expected an integer (a number or a decimal string)`],
  ] as const) {
    refused(withValue(`{"intValue":${json}}`), message);
  }
  const start = `${SPAN0}.startTimeUnixNano`;
  refused(withSpanFields('"startTimeUnixNano":18446744073709551616'), `${start}: out of range for an unsigned 64-bit integer`);
  refused(withSpanFields('"startTimeUnixNano":"-1"'), `${start}: out of range for an unsigned 64-bit integer`);
  refused(withSpanFields('"startTimeUnixNano":"soon"'), `${start}: expected an integer (a number or a decimal string)`);
  refused(withSpanFields('"events":[{"timeUnixNano":-5}]'), `${SPAN0}.events[0].timeUnixNano: out of range for an unsigned 64-bit integer`);
});

test('uint32 and fixed32 fields (dropped counts, flags) are range-checked', () => {
  const s = firstSpan(convert(withSpanFields('"droppedAttributesCount":4294967295,"droppedEventsCount":"7","droppedLinksCount":3e0,"flags":4294967295')));
  assert.equal(s['droppedAttributesCount'], 4294967295);
  assert.equal(s['droppedEventsCount'], 7);
  assert.equal(s['droppedLinksCount'], 3);
  assert.equal(s['flags'], 4294967295);
  refused(withSpanFields('"droppedAttributesCount":4294967296'), `${SPAN0}.droppedAttributesCount: out of range for an unsigned 32-bit integer`);
  refused(withSpanFields('"droppedEventsCount":-1'), `${SPAN0}.droppedEventsCount: out of range for an unsigned 32-bit integer`);
  refused(withSpanFields('"droppedLinksCount":1e20'), `${SPAN0}.droppedLinksCount: out of range for an unsigned 32-bit integer`);
  refused(withSpanFields('"flags":4294967296'), `${SPAN0}.flags: out of range for an unsigned 32-bit integer`);
  refused(withSpanFields('"flags":0.5'), `${SPAN0}.flags: expected an integer (a number or a decimal string)`);
  refused(withSpanFields(`"links":[{"traceId":"${TRACE}","spanId":"${SPAN}","flags":-1}]`), `${SPAN0}.links[0].flags: out of range for an unsigned 32-bit integer`);
  refused({ resourceSpans: [{ resource: { droppedAttributesCount: 2 ** 32 } }] }, '$.resourceSpans[0].resource.droppedAttributesCount: out of range for an unsigned 32-bit integer');
  refused({ resourceSpans: [{ scopeSpans: [{ scope: { droppedAttributesCount: '' } }] }] }, '$.resourceSpans[0].scopeSpans[0].scope.droppedAttributesCount: expected an integer (a number or a decimal string)');
  refused(withSpanFields('"events":[{"droppedAttributesCount":4294967296}]'), `${SPAN0}.events[0].droppedAttributesCount: out of range for an unsigned 32-bit integer`);
});

test('enums: in range or a name; anything else refused (kind 1e20 is not 1661992960)', () => {
  assert.equal(firstSpan(convert(withSpanFields('"kind":5,"status":{"code":2}')))['kind'], 5);
  assert.equal(firstSpan(convert(withSpanFields('"kind":"SPAN_KIND_SERVER"')))['kind'], 2);
  assert.equal((firstSpan(convert(withSpanFields('"status":{"code":"STATUS_CODE_ERROR","message":"m"}')))['status'] as Obj)['code'], 2);
  assert.equal(firstSpan(convert(withSpanFields('"kind":3e0')))['kind'], 3);
  const kind = `${SPAN0}.kind`;
  refused(withSpanFields('"kind":1e20'), `${kind}: out of range for SpanKind (0 to 5)`);
  refused(withSpanFields('"kind":6'), `${kind}: out of range for SpanKind (0 to 5)`);
  refused(withSpanFields('"kind":-1'), `${kind}: out of range for SpanKind (0 to 5)`);
  refused(withSpanFields('"kind":4294967298'), `${kind}: out of range for SpanKind (0 to 5)`);
  refused(withSpanFields('"kind":1.5'), `${kind}: expected an integer (a number or a decimal string)`);
  refused(withSpanFields('"kind":"SPAN_KIND_SECRET"'), `${kind}: expected a SpanKind (an integer or its name)`);
  refused(withSpanFields('"kind":"1"'), `${kind}: expected a SpanKind (an integer or its name)`);
  refused(withSpanFields('"kind":"toString"'), `${kind}: expected a SpanKind (an integer or its name)`);
  refused(withSpanFields('"kind":true'), `${kind}: expected a SpanKind (an integer or its name)`);
  refused(withSpanFields('"status":{"code":3}'), `${SPAN0}.status.code: out of range for StatusCode (0 to 2)`);
  refused(withSpanFields('"status":{"code":"STATUS_CODE_MAYBE"}'), `${SPAN0}.status.code: expected a StatusCode (an integer or its name)`);
});

test('doubles: numbers, or strings holding a JSON number, NaN or ±Infinity; "" and "0x10" are refused', () => {
  const d = (json: string): unknown => firstValue(convert(withValue(`{"doubleValue":${json}}`)))['doubleValue'];
  assert.equal(d('1.5'), 1.5);
  assert.equal(d('"1.5"'), 1.5);
  assert.equal(d('"-2e3"'), -2000);
  assert.equal(d('0.1'), 0.1);
  assert.equal(d('12345678901234567890'), 12345678901234567890);
  assert.equal(d('1.7976931348623157e308'), Number.MAX_VALUE);
  assert.equal(d('5e-324'), 5e-324);
  assert.ok(Number.isNaN(d('"NaN"')));
  assert.equal(d('"Infinity"'), Infinity);
  assert.equal(d('"-Infinity"'), -Infinity);
  assert.equal(d('0'), 0);
  const path = `${ATTR0}.doubleValue`;
  const expected = `${path}: expected a number, or a string holding a number, "NaN", "Infinity" or "-Infinity"`;
  for (const bad of ['""', '"0x10"', '" 1"', '"1 "', '"nan"', '"inf"', '"+1"', '"1."', '".5"', 'true', '[]', '{}']) refused(withValue(`{"doubleValue":${bad}}`), expected);
  refused(withValue('{"doubleValue":1e400}'), `${path}: out of range for a double`);
  refused(withValue('{"doubleValue":"-1e400"}'), `${path}: out of range for a double`);
});

test('a body that is null, or not an object, is refused', () => {
  for (const body of ['null', '[]', '"resourceSpans"', '1', 'true', '[{"resourceSpans":[]}]']) refused(body, '$: expected an object');
  assert.equal(convert('{}').length, 0, 'an empty object is an empty request');
  assert.equal(convert('{"resourceSpans":null}').length, 0);
  assert.equal(convert(' \n{"resourceSpans":[]}\t').length, 0);
});

test('all-zero trace and span ids are refused; hex is case-insensitive; parent and link ids may be zero', () => {
  refused(request({ traceId: '0'.repeat(32) }), `${SPAN0}.traceId: an all-zero trace id is invalid`);
  refused(request({ spanId: '0'.repeat(16) }), `${SPAN0}.spanId: an all-zero span id is invalid`);
  refused(request({ trace_id: '0'.repeat(32), traceId: undefined }), `${SPAN0}.traceId: an all-zero trace id is invalid`);
  refused(request({ traceId: TRACE.slice(2) }), `${SPAN0}.traceId: expected 32 hex characters`);
  refused(request({ traceId: `${TRACE.slice(1)}g` }), `${SPAN0}.traceId: expected 32 hex characters`);
  refused(request({ spanId: `${SPAN.slice(1)}\u0660` }), `${SPAN0}.spanId: expected 16 hex characters`);
  refused(request({ spanId: 12 }), `${SPAN0}.spanId: expected a string`);
  refused(request({ parentSpanId: 'xyz' }), `${SPAN0}.parentSpanId: expected 16 hex characters`);
  const s = firstSpan(convert(request({ traceId: TRACE.toUpperCase(), parentSpanId: '0'.repeat(16), links: [{ traceId: '0'.repeat(32), spanId: '0'.repeat(16), attributes: [{ key: 'a', value: { stringValue: 'b' } }] }] })));
  assert.equal(Buffer.from(s['traceId'] as string, 'base64').toString('hex'), TRACE);
  assert.equal(Buffer.from(s['parentSpanId'] as string, 'base64').toString('hex'), '0'.repeat(16));
  assert.equal(Buffer.from((s['links'] as Obj[])[0]!['traceId'] as string, 'base64').toString('hex'), '0'.repeat(32));
  refused(request({ links: [{ traceId: 'zz' }] }), `${SPAN0}.links[0].traceId: expected 32 hex characters`);
});

test('lists hold objects, never null; messages are objects; an AnyValue holds one value', () => {
  refused({ resourceSpans: [null] }, '$.resourceSpans[0]: expected an object');
  refused({ resourceSpans: {} }, '$.resourceSpans: expected an array');
  refused({ resourceSpans: [{ scopeSpans: [{ spans: [null] }] }] }, `${SPAN0}: expected an object`);
  refused({ resourceSpans: [{ scopeSpans: [{ spans: 'all' }] }] }, '$.resourceSpans[0].scopeSpans[0].spans: expected an array');
  refused({ resourceSpans: [{ resource: [] }] }, '$.resourceSpans[0].resource: expected an object');
  refused(request({ attributes: [1] }), `${SPAN0}.attributes[0]: expected an object`);
  refused(request({ attributes: [{ key: 'k', value: 'v' }] }), `${ATTR0}: expected an object`);
  refused(request({ attributes: [{ key: 7 }] }), `${SPAN0}.attributes[0].key: expected a string`);
  refused(request({ status: 'ok' }), `${SPAN0}.status: expected an object`);
  refused(request({ name: ['op'] }), `${SPAN0}.name: expected a string`);
  refused(request({ attributes: [{ key: 'k', value: { stringValue: 'a', intValue: 1 } }] }), `${ATTR0}: more than one value is set (an AnyValue holds one)`);
  refused(request({ attributes: [{ key: 'k', value: { stringValue: 'a', string_value: 'b' } }] }), `${ATTR0}: more than one value is set (an AnyValue holds one)`);
  refused(request({ attributes: [{ key: 'k', value: { boolValue: 'true' } }] }), `${ATTR0}.boolValue: expected a boolean`);
  refused(request({ attributes: [{ key: 'k', value: { stringValue: 5 } }] }), `${ATTR0}.stringValue: expected a string`);
  refused(request({ attributes: [{ key: 'k', value: { arrayValue: { values: [{ intValue: 1 }, null] } } }] }), `${ATTR0}.arrayValue.values[1]: expected an object`);
  refused(request({ attributes: [{ key: 'k', value: { kvlistValue: { values: [{ key: 'x', value: { doubleValue: 'x' } }] } } }] }), `${ATTR0}.kvlistValue.values[0].value.doubleValue: expected a number, or a string holding a number, "NaN", "Infinity" or "-Infinity"`);
  refused(request({ events: [{ attributes: [{ key: 'k', value: { intValue: 'x' } }] }] }), `${SPAN0}.events[0].attributes[0].value.intValue: expected an integer (a number or a decimal string)`);
  // A null member is an absent member, as protobuf's JSON mapping reads it.
  assert.deepEqual(firstValue(convert(request({ attributes: [{ key: 'k', value: { stringValue: null, intValue: '3' } }] }))), { intValue: '3' });
  assert.deepEqual(firstValue(convert(request({ attributes: [{ key: 'k', value: {} }] }))), {});
});

test('bytes values are base64 in one alphabet, padded or not', () => {
  const b = (s: string): string => Buffer.from(firstValue(convert(request({ attributes: [{ key: 'k', value: { bytesValue: s } }] })))['bytesValue'] as string, 'base64').toString('hex');
  assert.equal(b('AQID'), '010203');
  assert.equal(b('AQI='), '0102');
  assert.equal(b('AQI'), '0102');
  assert.equal(b('-_8='), 'fbff');
  assert.equal(b('+/8='), 'fbff');
  assert.equal(b(''), '');
  const path = `${ATTR0}.bytesValue`;
  for (const bad of ['A', 'AQI==', 'AQ=', '+_8=', 'AQ ID', 'AQ\nID', '!!!!', '=AQI']) refused(request({ attributes: [{ key: 'k', value: { bytesValue: bad } }] }), `${path}: expected base64`);
});

test('attribute values nest as deep as the wire scanner allows, and no deeper', () => {
  const nest = (levels: number): Obj => {
    let v: Obj = { intValue: 1 };
    for (let i = 0; i < levels; i++) v = i % 2 === 0 ? { arrayValue: { values: [v] } } : { kvlistValue: { values: [{ key: 'n', value: v }] } };
    return v;
  };
  const ok = convert(request({ attributes: [{ key: 'deep', value: nest(32) }] }));
  new TraceBatch(ok).index(); // the scanner accepts what the converter produced
  let path = ATTR0;
  for (let i = 32; i >= 0; i--) path += i % 2 === 0 ? '.arrayValue.values[0]' : '.kvlistValue.values[0].value';
  refused(request({ attributes: [{ key: 'deep', value: nest(33) }] }), `${path}: attribute values nested too deeply`);
  const deepJson = `{"x":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`;
  refused(deepJson, `request body nests JSON more than ${MAX_JSON_DEPTH} levels deep`);
  assert.equal(convert(`{"x":${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}}`).length, 0, 'unknown fields are ignored, however nested within the limit');
});

test('error messages name the path and never quote what the client sent', () => {
  const MARK = 'Zq7Secret9xk';
  const bodies = [
    request({ traceId: MARK }),
    request({ kind: MARK }),
    request({ attributes: [{ key: MARK, value: { intValue: MARK } }] }),
    request({ attributes: [{ key: MARK, value: { doubleValue: MARK } }] }),
    request({ attributes: [{ key: MARK, value: { bytesValue: `${MARK}!` } }] }),
    request({ status: { code: MARK } }),
    request({ startTimeUnixNano: MARK }),
    `{"resourceSpans":[{"${MARK}": ${MARK}}]}`,
    `{"${MARK}":"\\u${MARK}"}`,
    `{"a":"${MARK}`,
  ];
  for (const body of bodies) {
    assert.throws(
      () => convert(body),
      (err: unknown) => err instanceof PipelineError && err.code === 'INVALID_ARGUMENT' && !err.message.includes(MARK) && !err.message.toLowerCase().includes(MARK.toLowerCase()),
    );
  }
});

test('the JSON reader accepts exactly what JSON.parse accepts', () => {
  const valid = [
    '{}',
    '{"a":[1,-2,3.5,-0.25e-3,1E+2,0,-0],"b":{"c":null,"d":true,"e":false},"f":""}',
    '{"s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\ud800"}',
    '{"u":"é 😀 \u2028"}',
    ' { "a" : [ ] , "b" : { } } ',
    '{"a":1,"a":2}',
  ];
  // Numbers a double may not hold exactly come back as their text (a JsonNumber); JSON.parse rounds them.
  const rounded = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rounded);
    if (v !== null && typeof v === 'object') {
      if (v.constructor?.name === 'JsonNumber') return Number((v as { text: string }).text);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rounded(x)]));
    }
    return v;
  };
  for (const text of valid) assert.deepEqual(rounded(parseJson(text)), JSON.parse(text), text);
  assert.equal(parseJson('[1e2]') instanceof Array && (parseJson('[9007199254740993]') as { text: string }[])[0]!.text, '9007199254740993');
  const invalid = ['', ' ', '{', '{"a":1,}', '[1,]', '{"a" 1}', '{a:1}', "{'a':1}", '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":+1}', '{"a":1e}', '{"a":-}', '{"a":NaN}', '{"a":Infinity}', '{"a":tru}', '{"a":nul}', '{"a":"\t"}', '{"a":"\\x"}', '{"a":"\\u12"}', '{"a":"abc}', '{}{}', '{} x', '\ufeff{}', '{"a":1}\u00a0', '{"a":"\\'];
  for (const text of invalid) {
    assert.throws(() => JSON.parse(text), SyntaxError, `JSON.parse accepts ${JSON.stringify(text)}`);
    refused(text, 'request body is not valid JSON');
  }
  // JSON.parse makes "__proto__" an own key; no OTLP field has that name, so it is skipped, never a prototype.
  const p = parseJson('{"__proto__":{"polluted":1},"resourceSpans":[]}') as Obj;
  assert.equal(Object.getPrototypeOf(p), Object.prototype);
  assert.equal((p as { polluted?: unknown }).polluted, undefined);
});

test('a full request converts field for field, snake_case keys included', () => {
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }], droppedAttributesCount: 1 },
        schemaUrl: 'https://opentelemetry.io/schemas/1.24.0',
        scopeSpans: [
          {
            scope: { name: 'lib', version: '1.2', attributes: [{ key: 'x', value: { boolValue: true } }], dropped_attributes_count: 2 },
            schema_url: 'u',
            spans: [
              {
                trace_id: TRACE,
                span_id: SPAN,
                parent_span_id: '0102030405060708',
                trace_state: 'k=v',
                name: 'GET /',
                kind: 2,
                start_time_unix_nano: '1700000000000000001',
                endTimeUnixNano: 'END',
                attributes: [
                  { key: 's', value: { stringValue: 'é😀' } },
                  { key: 'i', value: { int_value: '-5' } },
                  { key: 'd', value: { doubleValue: 2.5 } },
                  { key: 'a', value: { arrayValue: { values: [{ stringValue: 'x' }, { intValue: 9007199254740993n.toString() }] } } },
                  { key: 'kv', value: { kvlist_value: { values: [{ key: 'n', value: { boolValue: false } }] } } },
                  { key: 'b', value: { bytesValue: 'AQID' } },
                  { key: 'empty' },
                ],
                dropped_attributes_count: 3,
                events: [{ time_unix_nano: '5', name: 'ev', attributes: [{ key: 'e', value: { intValue: 1 } }], droppedAttributesCount: 4 }],
                droppedEventsCount: 5,
                links: [{ traceId: TRACE, spanId: SPAN, traceState: 't', attributes: [], droppedAttributesCount: 6, flags: 257 }],
                dropped_links_count: 7,
                status: { message: 'boom', code: 2 },
                flags: 769,
                someFutureField: { whatever: [1, 2, 3] },
              },
            ],
          },
        ],
      },
    ],
  };
  const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
  // The end time is sent as a JSON number that a double cannot hold.
  assert.deepEqual(decode(convert(JSON.stringify(body).replace('"END"', '1700000000000000002'))), {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }], droppedAttributesCount: 1 },
        schemaUrl: 'https://opentelemetry.io/schemas/1.24.0',
        scopeSpans: [
          {
            scope: { name: 'lib', version: '1.2', attributes: [{ key: 'x', value: { boolValue: true } }], droppedAttributesCount: 2 },
            schemaUrl: 'u',
            spans: [
              {
                traceId: b64(TRACE),
                spanId: b64(SPAN),
                parentSpanId: b64('0102030405060708'),
                traceState: 'k=v',
                name: 'GET /',
                kind: 2,
                startTimeUnixNano: '1700000000000000001',
                endTimeUnixNano: '1700000000000000002',
                attributes: [
                  { key: 's', value: { stringValue: 'é😀' } },
                  { key: 'i', value: { intValue: '-5' } },
                  { key: 'd', value: { doubleValue: 2.5 } },
                  { key: 'a', value: { arrayValue: { values: [{ stringValue: 'x' }, { intValue: '9007199254740993' }] } } },
                  { key: 'kv', value: { kvlistValue: { values: [{ key: 'n', value: { boolValue: false } }] } } },
                  { key: 'b', value: { bytesValue: b64('010203') } },
                  { key: 'empty' },
                ],
                droppedAttributesCount: 3,
                events: [{ timeUnixNano: '5', name: 'ev', attributes: [{ key: 'e', value: { intValue: '1' } }], droppedAttributesCount: 4 }],
                droppedEventsCount: 5,
                links: [{ traceId: b64(TRACE), spanId: b64(SPAN), traceState: 't', droppedAttributesCount: 6, flags: 257 }],
                droppedLinksCount: 7,
                status: { message: 'boom', code: 2 },
                flags: 769,
              },
            ],
          },
        ],
      },
    ],
  });
});

test('long strings and large messages get multi-byte length prefixes', () => {
  const long = 'x'.repeat(200_000);
  // ASCII, non-ASCII, and ASCII that turns non-ASCII part-way, short and long (1- and 2-byte lengths).
  const text = (i: number): string => (i === 0 ? long : i % 3 === 0 ? 'é'.repeat(i % 50) : i % 3 === 1 ? 'a'.repeat(i % 130) : `${'b'.repeat(i % 127)}é😀`);
  const attrs = Array.from({ length: 3000 }, (_, i) => ({ key: `k${i}`, value: { stringValue: text(i) } }));
  const bytes = convert(request({ attributes: attrs }));
  const got = firstSpan(bytes)['attributes'] as { key: string; value: { stringValue?: string } }[];
  assert.equal(got.length, 3000);
  assert.equal(got[0]!.value.stringValue, long);
  for (let i = 1; i < 3000; i++) {
    assert.equal(got[i]!.key, `k${i}`);
    assert.equal(got[i]!.value.stringValue ?? '', text(i));
  }
  new TraceBatch(bytes).index();
});

test('the async API: small bodies inline, large ones on a worker, same bytes and same errors', async () => {
  const attrs = Array.from({ length: 4000 }, (_, i) => ({ key: `key.${i}`, value: { intValue: `${2n ** 62n + BigInt(i)}` } }));
  const big = Buffer.from(JSON.stringify(request({ attributes: attrs })));
  assert.ok(big.length > INLINE_MAX_BYTES, 'this body goes to a worker');
  const viaWorker = await otlpJsonToProtobufAsync(big);
  assert.deepEqual(Buffer.from(viaWorker), Buffer.from(otlpJsonToProtobuf(big)));
  assert.equal(((firstSpan(viaWorker)['attributes'] as Obj[])[3999]!['value'] as Obj)['intValue'], `${2n ** 62n + 3999n}`);
  // The caller's buffer is left as it was (the worker gets a copy).
  assert.equal(big.length > 0 && big[0], 0x7b);

  const bad = Buffer.from(JSON.stringify(request({ attributes: [...attrs, { key: 'k', value: { intValue: '1e20' } }] })));
  const sync = (() => {
    try {
      otlpJsonToProtobuf(bad);
    } catch (err) {
      return err as PipelineError;
    }
    assert.fail('refused');
  })();
  await assert.rejects(otlpJsonToProtobufAsync(bad), (err: unknown) => {
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.message, sync.message);
    assert.equal(err.message, `${SPAN0}.attributes[4000].value.intValue: out of range for a signed 64-bit integer`);
    return true;
  });
  await assert.rejects(otlpJsonToProtobufAsync(Buffer.from('null')), { code: 'INVALID_ARGUMENT', message: '$: expected an object' });
  const notJson = Buffer.concat([big, Buffer.from('x')]);
  await assert.rejects(otlpJsonToProtobufAsync(notJson), { code: 'INVALID_ARGUMENT', message: 'request body is not valid JSON' });
  // Several at once share the pool and each gets its own answer.
  const many = await Promise.all(Array.from({ length: 6 }, () => otlpJsonToProtobufAsync(big)));
  for (const m of many) assert.deepEqual(Buffer.from(m), Buffer.from(viaWorker));
});
