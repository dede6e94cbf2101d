/**
 * One view of the bytes: every singular field of the trace schema, and every oneof member, may occur once;
 * a request where one repeats is refused naming the field, because a conforming decoder would merge or
 * keep the last occurrence while a reader of the first would see something else. Also: the replacement
 * edits the sanitizer uses, and folded key matching.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from './batch.js';
import { Inspection } from './inspection.js';
import { KeyMatcher, foldKey } from './key-matcher.js';
import { PipelineError } from '../service/errors.js';
import { decodeRequest } from '../../test/helpers/otlp-walk.js';
import { varint } from '../../test/helpers/protobuf-bytes.js';

const bytes = (...parts: (number[] | Uint8Array)[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));
const len = (field: number, ...content: (number[] | Uint8Array)[]) => {
  const c = bytes(...content);
  return bytes(varint((field << 3) | 2), varint(c.length), c);
};
const str = (field: number, s: string) => len(field, Buffer.from(s));
const vint = (field: number, n: number) => bytes(varint(field << 3), varint(n));
const f64 = (field: number) => bytes(varint((field << 3) | 1), new Array(8).fill(1));
const f32 = (field: number) => bytes(varint((field << 3) | 5), [1, 0, 0, 0]);

const keyValue = (field: number, k: string, v: string) => len(field, str(1, k), len(2, str(1, v)));

/** One of every Span field, in field order, with these attribute, event, link and status contents. */
function spanFields(kv: Uint8Array[], event: Uint8Array[], link: Uint8Array[], status: Uint8Array[]): Uint8Array[] {
  return [
    len(1, new Uint8Array(16).fill(1)),
    len(2, new Uint8Array(8).fill(2)),
    str(3, 'ts'),
    len(4, new Uint8Array(8).fill(3)),
    str(5, 'name'),
    vint(6, 2),
    f64(7),
    f64(8),
    len(9, ...kv),
    vint(10, 0),
    len(11, ...event),
    vint(12, 0),
    len(13, ...link),
    vint(14, 0),
    len(15, ...status),
    f32(16),
  ];
}

/** A request with one of everything, each message's fields given by the caller (defaults otherwise). */
function request(o: { rs?: Uint8Array[]; res?: Uint8Array[]; ss?: Uint8Array[]; scope?: Uint8Array[]; span?: Uint8Array[]; event?: Uint8Array[]; link?: Uint8Array[]; status?: Uint8Array[]; kv?: Uint8Array[]; any?: Uint8Array[] } = {}): Uint8Array {
  const any = o.any ?? [str(1, 'v')];
  const kv = o.kv ?? [str(1, 'k'), len(2, ...any)];
  const status = o.status ?? [str(2, 'm'), vint(3, 2)];
  const event = o.event ?? [f64(1), str(2, 'e'), len(3, ...kv), vint(4, 0)];
  const link = o.link ?? [len(1, new Uint8Array(16)), len(2, new Uint8Array(8)), str(3, 'ts'), len(4, ...kv), vint(5, 0), f32(6)];
  const span = o.span ?? spanFields(kv, event, link, status);
  const scope = o.scope ?? [str(1, 'lib'), str(2, '1.0'), len(3, ...kv), vint(4, 0)];
  const ss = o.ss ?? [len(1, ...scope), len(2, ...span), str(3, 'https://schema')];
  const res = o.res ?? [len(1, ...kv), vint(2, 0)];
  const rs = o.rs ?? [len(1, ...res), len(2, ...ss), str(3, 'https://schema')];
  return len(1, ...rs);
}

function refused(buf: Uint8Array, field: RegExp): void {
  assert.throws(
    () => new TraceBatch(buf).index(),
    (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT' && field.test(e.message),
  );
}

test('the baseline request with one of every field is accepted and decodes the same in protobufjs', () => {
  const buf = request();
  const b = new TraceBatch(buf);
  b.index();
  assert.equal(b.spanCount, 1);
  const d = decodeRequest(buf);
  assert.equal(d.resourceSpans[0].scopeSpans[0].spans[0].name, 'name');
});

test('every singular field occurring twice is refused, naming the field', () => {
  const dup = (list: Uint8Array[], i: number) => [...list.slice(0, i + 1), list[i]!, ...list.slice(i + 1)];
  const cases: [string, Parameters<typeof request>[0]][] = [];
  const defaults = {
    span: ['Span.trace_id', 'Span.span_id', 'Span.trace_state', 'Span.parent_span_id', 'Span.name', 'Span.kind', 'Span.start_time_unix_nano', 'Span.end_time_unix_nano', null, 'Span.dropped_attributes_count', null, 'Span.dropped_events_count', null, 'Span.dropped_links_count', 'Span.status', 'Span.flags'],
  };
  const kv = [str(1, 'k'), len(2, str(1, 'v'))];
  const base = {
    rs: [len(1, len(1, ...kv)), len(2, len(2, len(1, new Uint8Array(16).fill(1)))), str(3, 's')],
    res: [len(1, ...kv), vint(2, 0)],
    ss: [len(1, str(1, 'lib')), len(2, len(1, new Uint8Array(16).fill(1))), str(3, 's')],
    scope: [str(1, 'lib'), str(2, '1.0'), vint(4, 0)],
    event: [f64(1), str(2, 'e'), vint(4, 0)],
    link: [len(1, new Uint8Array(16)), len(2, new Uint8Array(8)), str(3, 'ts'), vint(5, 0), f32(6)],
    status: [str(2, 'm'), vint(3, 2)],
    kv,
  };
  cases.push(['ResourceSpans.resource', { rs: dup(base.rs, 0) }], ['ResourceSpans.schema_url', { rs: dup(base.rs, 2) }]);
  cases.push(['Resource.dropped_attributes_count', { res: dup(base.res, 1) }]);
  cases.push(['ScopeSpans.scope', { ss: dup(base.ss, 0) }], ['ScopeSpans.schema_url', { ss: dup(base.ss, 2) }]);
  ['InstrumentationScope.name', 'InstrumentationScope.version', 'InstrumentationScope.dropped_attributes_count'].forEach((n, i) => cases.push([n, { scope: dup(base.scope, i) }]));
  ['Event.time_unix_nano', 'Event.name', 'Event.dropped_attributes_count'].forEach((n, i) => cases.push([n, { event: dup(base.event, i) }]));
  ['Link.trace_id', 'Link.span_id', 'Link.trace_state', 'Link.dropped_attributes_count', 'Link.flags'].forEach((n, i) => cases.push([n, { link: dup(base.link, i) }]));
  ['Status.message', 'Status.code'].forEach((n, i) => cases.push([n, { status: dup(base.status, i) }]));
  cases.push(['KeyValue.key', { kv: dup(base.kv, 0) }], ['KeyValue.value', { kv: dup(base.kv, 1) }]);
  cases.push(['AnyValue', { any: [str(1, 'a'), vint(3, 5)] }], ['AnyValue', { any: [str(1, 'a'), str(1, 'b')] }]);
  const fields = spanFields(kv, [f64(1)], [len(1, new Uint8Array(16))], [vint(3, 1)]);
  defaults.span.forEach((n, i) => {
    if (n !== null) cases.push([n, { span: dup(fields, i) }]);
  });
  assert.ok(cases.length >= 30);
  for (const [name, o] of cases) refused(request(o), new RegExp(`${name.replace('.', '\\.')}.*(occurs more than once|more than one)`));
  // Repeated fields are lists: twice is fine.
  for (const o of [{ span: [...fields, len(9, ...kv)] }, { res: [len(1, ...kv), len(1, ...kv)] }, { scope: [len(3, ...kv), len(3, ...kv)] }]) new TraceBatch(request(o)).index();
});

test('replacement edits in a span, a resource and a scope encode to what protobufjs decodes, with edits beside them', () => {
  const buf = request();
  const b = new TraceBatch(buf);
  b.index();
  // Span: replace the name field and the attribute; also append an attribute (an insertion) and remove nothing else.
  const spanStart = b.spanStart(0);
  const find = (start: number, end: number, tag: number): [number, number] => {
    let p = start;
    while (p < end) {
      const t = buf[p]!;
      const l = buf[p + 1]!; // every field in the baseline is short
      const size = (t & 7) === 2 ? 2 + l : (t & 7) === 0 ? 2 : (t & 7) === 1 ? 9 : 5;
      if (t === tag) return [p, p + size];
      p += size;
    }
    throw new Error('no field');
  };
  const [ns, ne] = find(spanStart, b.spanEnd(0), 0x2a);
  b.replaceInSpan(0, ns, ne, str(5, 'renamed, and longer than before'));
  const [as, ae] = find(spanStart, b.spanEnd(0), 0x4a);
  b.replaceInSpan(0, as, ae, new Uint8Array(0));
  b.appendSpanAttribute(0, Buffer.from('added'), str(1, 'yes'));
  const [rs, re] = find(b.resourceStart(0), b.resourceEnd(0), 0x0a);
  b.replaceInResource(0, rs, re, keyValue(1, 'service.name', 'x'));
  b.replaceInScope(0, b.scopeFieldStart(0), b.scopeFieldEnd(0), len(1, str(1, 'newlib')));
  const d = decodeRequest(b.encode());
  const span = d.resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(span.name, 'renamed, and longer than before');
  assert.deepEqual(span.attributes.map((a: { key: string }) => a.key), ['added']);
  assert.equal(span.events.length, 1);
  assert.equal(span.status.message, 'm');
  assert.deepEqual(d.resourceSpans[0].resource.attributes.map((a: { key: string; value: { stringValue: string } }) => [a.key, a.value.stringValue]), [['service.name', 'x']]);
  assert.equal(d.resourceSpans[0].scopeSpans[0].scope.name, 'newlib');
  assert.deepEqual(d.resourceSpans[0].scopeSpans[0].scope.attributes ?? [], []);
  // encodeRange applies the same edits.
  assert.deepEqual(Buffer.from(b.encodeRange(0, 1)), Buffer.from(b.encode()).subarray(0, b.encodeRange(0, 1).length));
});

test('folded key matching ignores ASCII case and blanks, controls and invisible characters around the key', () => {
  const m = KeyMatcher.of(['enduser.id', 'identity.verified'], true);
  const yes = ['enduser.id', 'ENDUSER.ID', 'EndUser.Id', ' enduser.id', 'enduser.id ', '\tenduser.id\n', 'enduser.id\u0000', '\u0000\u0001enduser.id\u007f', 'enduser.id\u200b', '\u200benduser.id', '\u00a0enduser.id\u00a0', '\ufeffidentity.verified', 'identity.verified\u2028', 'identity.verified\u202e', '\u3000identity.verified', 'identity.verified\u00ad', 'identity.verified\u2060'];
  const no = ['enduser.idx', 'enduser id', 'enduser.i d', 'enduser\u0000.id', 'ｅnduser.id', 'enduser.ıd', 'enduser.id.x', ''];
  for (const k of yes) assert.ok(m.matchString(k) >= 0, JSON.stringify(k));
  for (const k of no) assert.equal(m.matchString(k), -1, JSON.stringify(k));
  assert.equal(foldKey(' Enduser.ID\u200b'), 'enduser.id');
  // An exact matcher stays exact.
  assert.equal(KeyMatcher.of(['enduser.id']).matchString('ENDUSER.ID'), -1);
});

test('an inspection marks exactly the units holding something to look at', () => {
  const insp = new Inspection({ protect: ['enduser.id', 'http.request.header.authorization'], sensitiveNames: ['authorization', 'cookie'], urlKeys: ['url.query'], secretParams: ['access_token'], tokens: true });
  const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
  const cases: [string, Uint8Array, boolean][] = [
    ['nothing', request(), false],
    ['a protected key in every list (events, links and scope are marked)', request({ kv: [str(1, 'ENDUSER.ID'), len(2, str(1, 'x'))] }), true],
    ['the evidence itself', request({ span: [len(9, str(1, 'http.request.header.authorization'), len(2, str(1, `Bearer ${jwt}`)))] }), false],
    ['a JWT in a span name', request({ span: [str(5, `x ${jwt}`)] }), true],
    ['a JWT-like word', request({ span: [str(5, 'they keyed money into eyeballs')] }), false],
    ['a sensitive header name', request({ span: [len(9, str(1, 'http.request.header.Cookie'), len(2, str(1, 'a=b')))] }), true],
    ['a secret URL parameter', request({ span: [len(9, str(1, 'url.query'), len(2, str(1, 'a=1&access_token=x')))] }), true],
    ['an ordinary URL parameter', request({ span: [len(9, str(1, 'url.query'), len(2, str(1, 'a=1&token_type=x')))] }), false],
    ['a protected prefix kvlist', request({ span: [len(9, str(1, 'enduser'), len(2, len(6, len(1, str(1, 'id'), len(2, str(1, 'x'))))))] }), true],
  ];
  for (const [what, buf, marked] of cases) {
    const b = new TraceBatch(buf);
    b.index(insp);
    assert.equal(b.markedCount > 0, marked, what);
  }
  // In a protected span attribute, the key is watched for the strip pass, and marks nothing.
  const b = new TraceBatch(request({ span: [len(9, str(1, 'Enduser.Id'), len(2, str(1, jwt)))] }));
  b.index(insp);
  assert.equal(b.markedCount, 0);
});

test('every field with another wire type than its own is refused, naming the field and both wire types; so is field number 0', () => {
  const LEN = 2;
  const VARINT = 0;
  const I64 = 1;
  const I32 = 5;
  // [message, field number, its wire type, its name]; each message's default fields are in field order
  const fields: Record<string, [number, number, string][]> = {
    rs: [[1, LEN, 'ResourceSpans.resource'], [2, LEN, 'ResourceSpans.scope_spans'], [3, LEN, 'ResourceSpans.schema_url']],
    res: [[1, LEN, 'Resource.attributes'], [2, VARINT, 'Resource.dropped_attributes_count']],
    ss: [[1, LEN, 'ScopeSpans.scope'], [2, LEN, 'ScopeSpans.spans'], [3, LEN, 'ScopeSpans.schema_url']],
    scope: [[1, LEN, 'InstrumentationScope.name'], [2, LEN, 'InstrumentationScope.version'], [3, LEN, 'InstrumentationScope.attributes'], [4, VARINT, 'InstrumentationScope.dropped_attributes_count']],
    span: [
      [1, LEN, 'Span.trace_id'], [2, LEN, 'Span.span_id'], [3, LEN, 'Span.trace_state'], [4, LEN, 'Span.parent_span_id'], [5, LEN, 'Span.name'],
      [6, VARINT, 'Span.kind'], [7, I64, 'Span.start_time_unix_nano'], [8, I64, 'Span.end_time_unix_nano'], [9, LEN, 'Span.attributes'],
      [10, VARINT, 'Span.dropped_attributes_count'], [11, LEN, 'Span.events'], [12, VARINT, 'Span.dropped_events_count'], [13, LEN, 'Span.links'],
      [14, VARINT, 'Span.dropped_links_count'], [15, LEN, 'Span.status'], [16, I32, 'Span.flags'],
    ],
    event: [[1, I64, 'Event.time_unix_nano'], [2, LEN, 'Event.name'], [3, LEN, 'Event.attributes'], [4, VARINT, 'Event.dropped_attributes_count']],
    link: [[1, LEN, 'Link.trace_id'], [2, LEN, 'Link.span_id'], [3, LEN, 'Link.trace_state'], [4, LEN, 'Link.attributes'], [5, VARINT, 'Link.dropped_attributes_count'], [6, I32, 'Link.flags']],
    status: [[2, LEN, 'Status.message'], [3, VARINT, 'Status.code']],
    kv: [[1, LEN, 'KeyValue.key'], [2, LEN, 'KeyValue.value']],
  };
  const kv = [str(1, 'k'), len(2, str(1, 'v'))];
  const event = [f64(1), str(2, 'e'), len(3, ...kv), vint(4, 0)];
  const link = [len(1, new Uint8Array(16)), len(2, new Uint8Array(8)), str(3, 'ts'), len(4, ...kv), vint(5, 0), f32(6)];
  const status = [str(2, 'm'), vint(3, 2)];
  const defaults: Record<string, Uint8Array[]> = {
    res: [len(1, ...kv), vint(2, 0)],
    scope: [str(1, 'lib'), str(2, '1.0'), len(3, ...kv), vint(4, 0)],
    span: spanFields(kv, event, link, status),
    event,
    link,
    status,
    kv,
  };
  defaults['ss'] = [len(1, ...defaults['scope']!), len(2, ...defaults['span']!), str(3, 'https://schema')];
  defaults['rs'] = [len(1, ...defaults['res']!), len(2, ...defaults['ss']!), str(3, 'https://schema')];
  let cases = 0;
  for (const [msg, list] of Object.entries(fields)) {
    list.forEach(([field, wt, name], i) => {
      const wrong = wt === LEN ? vint(field, 1) : str(field, 'x');
      const replaced = defaults[msg]!.slice();
      replaced[i] = wrong;
      const buf = request({ [msg]: replaced });
      refused(buf, new RegExp(`^${name.replace('.', '\\.')} has wire type ${wt === LEN ? VARINT : LEN}, expected ${wt}$`));
      cases++;
    });
  }
  assert.equal(cases, 42);
  refused(request({ span: [vint(0, 1), ...defaults['span']!] }), /^field number 0$/);
});

test('ids of the wrong length are refused, naming which; empty ids are absent ids', () => {
  const kv = [str(1, 'k'), len(2, str(1, 'v'))];
  const base = spanFields(kv, [f64(1), str(2, 'e')], [len(1, new Uint8Array(16)), len(2, new Uint8Array(8))], [vint(3, 1)]);
  const withField = (i: number, field: Uint8Array) => {
    const s = base.slice();
    s[i] = field;
    return request({ span: s });
  };
  refused(withField(0, len(1, new Uint8Array(15))), /^trace_id is 15 bytes, expected 16$/);
  refused(withField(1, len(2, new Uint8Array(5))), /^span id is 5 bytes, expected 8$/);
  refused(withField(3, len(4, new Uint8Array(9))), /^span id is 9 bytes, expected 8$/);
  for (const i of [0, 1, 3]) {
    const b = new TraceBatch(withField(i, len(i + 1)));
    b.index();
    assert.equal(b.spanCount, 1, `empty field ${i + 1}`);
  }
});
