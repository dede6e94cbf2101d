import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch, KeyMatcher, encodeKey, encodeString, encodeInt, encodeStringArray, VALUE_ARRAY, VALUE_STRING } from './batch.js';
import { PipelineError } from '../service/errors.js';
import { otlpType } from './otlp-schema.js';
import { buildRequest, decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import { varint } from '../../test/helpers/protobuf-bytes.js';

const AUTH = encodeKey('http.request.header.authorization');

function twoResources(): Uint8Array {
  return buildRequest([
    {
      attributes: { 'service.name': 'checkout' },
      scopes: [
        { spans: [{ name: 'a', attributes: { keep: 1, [AUTH_KEY]: ['Bearer x.y.z'] } }, { name: 'b', attributes: { keep: 2 } }] },
        { spans: [{ name: 'c', attributes: { [AUTH_KEY]: 'Bearer q' } }] },
      ],
    },
    { attributes: { 'service.name': 'payments' }, scopes: [{ spans: [{ name: 'd', attributes: { n: 4 } }] }] },
  ]);
}
const AUTH_KEY = 'http.request.header.authorization';

test('indexes resources, scopes and spans', () => {
  const b = new TraceBatch(twoResources());
  assert.equal(b.resourceCount, 2);
  assert.equal(b.scopeCount, 3);
  assert.equal(b.spanCount, 4);
  assert.deepEqual([0, 1, 2, 3].map((i) => b.spanName(i)), ['a', 'b', 'c', 'd']);
  assert.deepEqual([0, 1, 2, 3].map((i) => b.spanResource(i)), [0, 0, 0, 1]);
});

test('an unedited batch encodes to the very bytes received', () => {
  const bytes = twoResources();
  const b = new TraceBatch(bytes);
  b.index();
  assert.equal(b.encode(), bytes);
});

test('finds span attributes as strings and string arrays', () => {
  const b = new TraceBatch(twoResources());
  assert.ok(b.findSpanAttribute(0, AUTH));
  assert.equal(b.found.kind, VALUE_ARRAY);
  assert.equal(b.foundString(), 'Bearer x.y.z');
  assert.ok(b.findSpanAttribute(2, AUTH));
  assert.equal(b.found.kind, VALUE_STRING);
  assert.equal(b.foundString(), 'Bearer q');
  assert.equal(b.findSpanAttribute(1, AUTH), false);
  assert.ok(b.findResourceAttribute(1, encodeKey('service.name')));
  assert.equal(b.foundString(), 'payments');
});

test('edits: remove, set, drop, resource attributes, applied in one pass', () => {
  const b = new TraceBatch(twoResources());
  assert.equal(b.removeSpanAttribute(0, AUTH), 1);
  b.setSpanAttribute(0, encodeKey('enduser.id'), encodeString('alice'));
  b.setSpanAttribute(0, encodeKey('keep'), encodeInt(-7));
  b.setSpanAttribute(1, encodeKey('user.roles'), encodeStringArray(['admin', 'ops']));
  b.dropSpan(2);
  b.setResourceAttribute(1, encodeKey('telemetry.sender.id'), encodeString('svc-1'));
  const spans = decodeSpans(b.encode());
  assert.deepEqual(
    spans.map((s) => s.name),
    ['a', 'b', 'd'],
  );
  assert.deepEqual(spans[0]!.attributes, { 'enduser.id': 'alice', keep: -7 });
  assert.deepEqual(spans[1]!.attributes, { keep: 2, 'user.roles': ['admin', 'ops'] });
  assert.deepEqual(spans[2]!.resource, { 'service.name': 'payments', 'telemetry.sender.id': 'svc-1' });
  assert.deepEqual(spans[0]!.resource, { 'service.name': 'checkout' });
});

test('dropping every span of a scope or resource drops what became empty', () => {
  const b = new TraceBatch(twoResources());
  b.dropSpan(2);
  b.dropSpan(3);
  const T = otlpType('ExportTraceServiceRequest');
  const req = T.toObject(T.decode(b.encode())) as { resourceSpans: { scopeSpans: unknown[] }[] };
  assert.equal(req.resourceSpans.length, 1);
  assert.equal(req.resourceSpans[0]!.scopeSpans.length, 1);
  const all = new TraceBatch(twoResources());
  for (let i = 0; i < 4; i++) all.dropSpan(i);
  assert.equal(all.encode().length, 0);
  assert.equal(all.liveSpanCount, 0);
});

test('removing the same attribute twice counts once', () => {
  const b = new TraceBatch(twoResources());
  b.removeSpanAttribute(0, AUTH);
  b.removeSpanAttribute(0, AUTH);
  assert.deepEqual(decodeSpans(b.encode())[0]!.attributes, { keep: 1 });
});

test('setting a resource attribute where the request has no Resource message creates one', () => {
  const T = otlpType('ExportTraceServiceRequest');
  const bytes = T.encode(T.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'x', traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2) }] }] }] })).finish();
  const b = new TraceBatch(bytes);
  b.setResourceAttribute(0, encodeKey('k'), encodeString('v'));
  assert.deepEqual(decodeSpans(b.encode())[0]!.resource, { k: 'v' });
});

test('encodeRange splits a batch into valid requests holding exactly the chosen spans', () => {
  const bytes = twoResources();
  const b = new TraceBatch(bytes);
  b.removeSpanAttribute(0, AUTH);
  const first = decodeSpans(b.encodeRange(0, 2));
  const second = decodeSpans(b.encodeRange(2, 4));
  assert.deepEqual(first.map((s) => s.name), ['a', 'b']);
  assert.deepEqual(first[0]!.attributes, { keep: 1 });
  assert.deepEqual(second.map((s) => s.name), ['c', 'd']);
  assert.deepEqual(second.map((s) => s.resource['service.name']), ['checkout', 'payments']);
});

test('fork shares the index and keeps edits apart', () => {
  const b = new TraceBatch(twoResources());
  const f = b.fork();
  f.dropSpan(0);
  assert.equal(decodeSpans(b.encode()).length, 4);
  assert.equal(decodeSpans(f.encode()).length, 3);
});

test('large synthetic batches survive one edit per span', () => {
  const bytes = syntheticRequest(1000, 12, (i) => ({ [AUTH_KEY]: [`Bearer token-${i % 20}`] }));
  const b = new TraceBatch(bytes);
  const uid = encodeKey('enduser.id');
  for (let i = 0; i < b.spanCount; i++) {
    b.removeSpanAttribute(i, AUTH);
    b.setSpanAttribute(i, uid, encodeString(`user-${i}`));
  }
  const spans = decodeSpans(b.encode());
  assert.equal(spans.length, 1000);
  for (let i = 0; i < 1000; i++) {
    assert.equal(spans[i]!.attributes['enduser.id'], `user-${i}`);
    assert.equal(spans[i]!.attributes[AUTH_KEY], undefined);
  }
});

test('malformed input is an INVALID_ARGUMENT error, never anything else', () => {
  const bytes = twoResources();
  const cases: [string, Uint8Array][] = [
    ['truncated', bytes.subarray(0, bytes.length - 3)],
    ['garbage', Buffer.from('this is not protobuf at all, not even close')],
    ['bad wire type for resource_spans', Uint8Array.of(0x08, 0x01, 0x0d)],
    ['length past the end', Uint8Array.of(0x0a, 0x7f, 0x00)],
    ['group wire type', Uint8Array.of(0x0b)],
  ];
  for (const [name, input] of cases) {
    assert.throws(
      () => new TraceBatch(input).index(),
      (err: unknown) => err instanceof PipelineError && err.code === 'INVALID_ARGUMENT',
      name,
    );
  }
  // A trace id of the wrong length.
  const T = otlpType('ExportTraceServiceRequest');
  const bad = T.encode(T.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.alloc(5) }] }] }] })).finish();
  assert.throws(() => new TraceBatch(bad).index(), /trace_id is 5 bytes/);
});

test('deeply nested attribute values are refused, not recursed without bound', () => {
  // Built by hand: protobufjs itself refuses to encode this depth.
  const wrap = (field: number, inner: Buffer): Buffer => Buffer.concat([Buffer.from([(field << 3) | 2]), varint(inner.length), inner]);
  let v = wrap(1, Buffer.from('leaf')); // AnyValue{string_value}
  for (let i = 0; i < 100; i++) v = wrap(5, wrap(1, v)); // AnyValue{array_value{values[0]}}
  const kv = Buffer.concat([wrap(1, Buffer.from('deep')), wrap(2, v)]);
  const bytes = wrap(1, wrap(2, wrap(2, wrap(9, kv)))); // request.resource_spans.scope_spans.spans.attributes
  assert.throws(() => new TraceBatch(bytes).index(), /nested too deeply/);
});

test('an empty request is a valid batch of zero spans', () => {
  const b = new TraceBatch(new Uint8Array(0));
  assert.equal(b.spanCount, 0);
  assert.equal(b.encode().length, 0);
});

test('removeSpanAttributes strips several keys in one pass; appendSpanAttribute adds without searching', () => {
  const b = new TraceBatch(twoResources());
  const keep = encodeKey('keep');
  assert.equal(b.removeSpanAttributes(0, new KeyMatcher([AUTH, keep])), 2);
  assert.equal(b.removeSpanAttributes(1, new KeyMatcher([AUTH])), 0);
  b.appendSpanAttribute(0, encodeKey('enduser.id'), encodeString('bob'));
  const spans = decodeSpans(b.encode());
  assert.deepEqual(spans[0]!.attributes, { 'enduser.id': 'bob' });
  assert.deepEqual(spans[1]!.attributes, { keep: 2 });
});

test('stripSpanAttributes removes keys in one pass and says where each evidence key was', async () => {
  const { encodeSpanAttributes, encodeBool } = await import('./batch.js');
  const b = new TraceBatch(twoResources());
  const firstAt = new Int32Array(2);
  assert.equal(b.stripSpanAttributes(0, new KeyMatcher([encodeKey('missing.key'), AUTH]), firstAt), 1);
  assert.equal(firstAt[0], -1);
  assert.ok(firstAt[1]! > 0);
  assert.ok(b.readAttributeAt(firstAt[1]!));
  assert.equal(b.foundString(), 'Bearer x.y.z');
  b.appendSpanAttributesEncoded(0, encodeSpanAttributes([['identity.verified', encodeBool(true)], ['enduser.id', encodeString('alice')]]));
  assert.deepEqual(decodeSpans(b.encode())[0]!.attributes, { keep: 1, 'identity.verified': true, 'enduser.id': 'alice' });
});

/** Re-encodes every length prefix of spans and scopes with a non-minimal (two-byte) varint. */
function withLongHeaders(bytes: Uint8Array): Uint8Array {
  const T = otlpType('ExportTraceServiceRequest');
  const req = T.decode(bytes) as unknown as { resourceSpans: { resource?: unknown; scopeSpans: { scope?: unknown; spans: unknown[] }[] }[] };
  const Span = otlpType('Span');
  const long = (field: number, body: Uint8Array): Buffer => {
    if (body.length >= 0x80) throw new Error('test spans must be short');
    return Buffer.concat([Buffer.from([(field << 3) | 2, body.length | 0x80, 0x00]), body]);
  };
  const rsParts: Buffer[] = [];
  for (const rs of req.resourceSpans) {
    const scopes = rs.scopeSpans.map((ss) => {
      const spans = ss.spans.map((sp) => long(2, Span.encode(sp as never).finish()));
      const inner = Buffer.concat(spans);
      return Buffer.concat([Buffer.from([0x12]), varint(inner.length), inner]);
    });
    const inner = Buffer.concat(scopes);
    rsParts.push(Buffer.concat([Buffer.from([0x0a]), varint(inner.length), inner]));
  }
  return Buffer.concat(rsParts);
}

test('non-minimal length prefixes on unedited spans keep encode, encodeRange and drop consistent', () => {
  const small = buildRequest([{ scopes: [{ spans: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] }] }]);
  const bytes = withLongHeaders(small);
  assert.deepEqual(decodeSpans(bytes).map((s) => s.name), ['a', 'b', 'c']);
  const b = new TraceBatch(bytes);
  b.setSpanString(0, encodeKey('k'), 'v');
  assert.deepEqual(decodeSpans(b.encode()).map((s) => [s.name, s.attributes]), [['a', { k: 'v' }], ['b', {}], ['c', {}]]);
  const d = new TraceBatch(bytes);
  d.dropSpan(1);
  assert.deepEqual(decodeSpans(d.encode()).map((s) => s.name), ['a', 'c']);
  assert.deepEqual(decodeSpans(new TraceBatch(bytes).encodeRange(0, 2)).map((s) => s.name), ['a', 'b']);
});

test('encodeRange leaves out unknown top-level fields and stays consistent', () => {
  const bytes = Buffer.concat([Buffer.from(twoResources()), Buffer.from([0x48, 0x01])]);
  const b = new TraceBatch(bytes);
  assert.deepEqual(decodeSpans(b.encodeRange(1, 4)).map((s) => s.name), ['b', 'c', 'd']);
  b.dropSpan(0);
  assert.deepEqual(decodeSpans(b.encode()).map((s) => s.name), ['b', 'c', 'd']);
});

test('a request of empty spans cannot make the index grow past a bound of its size', () => {
  // 2 MiB of zero-length spans in one scope: each would cost 32 bytes of index.
  const spans = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < spans.length; i += 2) spans[i] = 0x12;
  const scope = Buffer.concat([Buffer.from([0x12]), varint(spans.length), spans]);
  const bytes = Buffer.concat([Buffer.from([0x0a]), varint(scope.length), scope]);
  assert.throws(() => new TraceBatch(bytes).index(), /too many resources, scopes or spans for its size/);
});

test('setting the same attribute twice leaves one value, the last', () => {
  const b = new TraceBatch(twoResources());
  const key = encodeKey('enduser.id');
  b.setSpanString(0, key, 'alice');
  b.setSpanString(0, key, 'mallory');
  b.setSpanString(1, key, 'bob');
  b.setResourceAttribute(0, encodeKey('r'), encodeString('1'));
  b.setResourceAttribute(0, encodeKey('r'), encodeString('2'));
  const spans = decodeSpans(b.encode());
  assert.equal(spans[0]!.attributes['enduser.id'], 'mallory');
  assert.equal(spans[1]!.attributes['enduser.id'], 'bob');
  assert.equal(spans[0]!.resource['r'], '2');
  const T = otlpType('ExportTraceServiceRequest');
  const raw = T.toObject(T.decode(b.encode())) as { resourceSpans: { scopeSpans: { spans: { attributes: { key: string }[] }[] }[] }[] };
  assert.equal(raw.resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes.filter((a) => a.key === 'enduser.id').length, 1);
});

test('an attribute with two key fields is refused: it could be stripped under one name and read under another', () => {
  const wrap = (field: number, inner: Buffer): Buffer => Buffer.concat([Buffer.from([(field << 3) | 2]), varint(inner.length), inner]);
  const kv = Buffer.concat([wrap(1, Buffer.from('x')), wrap(1, Buffer.from('enduser.id')), wrap(2, wrap(1, Buffer.from('admin')))]);
  const span = Buffer.concat([wrap(1, Buffer.alloc(16, 1)), wrap(2, Buffer.alloc(8, 2)), wrap(9, kv)]);
  const bytes = wrap(1, wrap(2, wrap(2, span)));
  assert.throws(() => new TraceBatch(bytes).index(), /KeyValue.key occurs more than once/);
  // The same inside a resource, and nested in a kvlist value.
  const resource = wrap(1, wrap(1, wrap(1, kv)));
  assert.throws(() => new TraceBatch(resource).index(), /more than one key/);
  const nested = Buffer.concat([wrap(1, Buffer.from('outer')), wrap(2, wrap(6, wrap(1, kv)))]);
  const span2 = Buffer.concat([wrap(1, Buffer.alloc(16, 1)), wrap(2, Buffer.alloc(8, 2)), wrap(9, nested)]);
  assert.throws(() => new TraceBatch(wrap(1, wrap(2, wrap(2, span2)))).index(), /more than one key/);
});
