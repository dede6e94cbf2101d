/**
 * OTTL evaluation over the batch: each path of each trace context, comparisons by the Collector's rules,
 * math, each converter and each editor, and type errors at config time with their column. Inputs are
 * encoded and outputs decoded with protobufjs, independently of the code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CTX_RESOURCE, CTX_SCOPE, CTX_SPAN, CTX_SPANEVENT, OttlError, OttlRuntimeError, Target, compileCondition, compileStatement, type ContextLevel } from './index.js';
import { attrs, decodeRequest, evalCondition, fixtureRequest, oneSpan, runOnSpan } from '../test/helpers/ottl-fixture.js';
import { TraceBatch } from '../pipeline/batch/batch.js';

const PARENT = Buffer.from('0102030405060708', 'hex');

function span() {
  return oneSpan({
    name: 'GET /orders/{id}',
    kind: 2,
    parentSpanId: PARENT,
    traceState: 'ot=th:8;rv:abc,vendor=x',
    status: { code: 2, message: 'upstream failed' },
    start: '1700000000000000000',
    end: '1700000000250000000',
    attributes: {
      'http.response.status_code': 503,
      'http.route': '/orders/{id}',
      ratio: 0.25,
      cached: false,
      tags: ['a', 'b', 'c'],
      nested: { inner: { deep: 'value' }, n: 7 },
      raw: Uint8Array.of(1, 2, 3),
      'identity.verified': true,
      'enduser.id': 'alice',
    },
    events: [{ name: 'exception', attributes: { 'exception.type': 'Timeout', attempt: 2 } }],
  });
}

function cond(c: string, ctx: ContextLevel = CTX_SPAN): boolean {
  return evalCondition(span(), c, ctx);
}

test('span paths read the bytes as the Collector reads the span', () => {
  const truths = [
    'name == "GET /orders/{id}"',
    'span.name == "GET /orders/{id}"',
    'kind == SPAN_KIND_SERVER',
    'kind == 2',
    'kind.string == "Server"',
    'kind.deprecated_string == "SPAN_KIND_SERVER"',
    'status.code == STATUS_CODE_ERROR',
    'status.message == "upstream failed"',
    'start_time_unix_nano == 1700000000000000000',
    'end_time_unix_nano - start_time_unix_nano == 250000000',
    'end_time - start_time == Duration("250ms")',
    'end_time - start_time > Duration("200ms")',
    'trace_id.string == "abababababababababababababababab"',
    'span_id.string == "0000000000000001"',
    'parent_span_id.string == "0102030405060708"',
    'parent_span_id == SpanID(0x0102030405060708)',
    'trace_id == TraceID(0xabababababababababababababababab)',
    'trace_state == "ot=th:8;rv:abc,vendor=x"',
    'trace_state["vendor"] == "x"',
    'dropped_attributes_count == 0',
    'flags == 0',
    'attributes["http.response.status_code"] == 503',
    'attributes["http.response.status_code"] >= 500',
    'attributes["ratio"] < 0.5',
    'attributes["ratio"] == 0.25',
    'attributes["cached"] == false',
    'attributes["tags"][1] == "b"',
    'attributes["nested"]["inner"]["deep"] == "value"',
    'attributes["nested"]["n"] == 7',
    'attributes["raw"] == 0x010203',
    'attributes["missing"] == nil',
    'attributes["identity.verified"] == true',
    'resource.attributes["service.name"] == "checkout"',
    'scope.name == "lib"',
    'instrumentation_scope.version == "1.0"',
    'not IsRootSpan()',
  ];
  for (const c of truths) assert.equal(cond(c), true, c);
  const falsehoods = ['name == "GET"', 'kind == SPAN_KIND_CLIENT', 'attributes["missing"] != nil', 'attributes["http.response.status_code"] == "503"', 'attributes["tags"] == "a"', 'IsRootSpan()'];
  for (const c of falsehoods) assert.equal(cond(c), false, c);
});

test('comparison rules: int and float compare as numbers, other mixes are only unequal, nil equals only nil', () => {
  for (const [c, want] of [
    ['1 == 1.0', true],
    ['2 > 1.5', true],
    ['"a" < "b"', true],
    ['false < true', true],
    ['1 == "1"', false],
    ['1 != "1"', true],
    ['1 < "2"', false],
    ['nil == nil', true],
    ['nil != 0', true],
    ['nil < 1', false],
    ['[1, 2] == [1, 2]', true],
    ['{"a": 1} == {"a": 1}', true],
    ['{"a": 1} == {"a": 2}', false],
    ['0x01 == 0x01', true],
  ] as const) {
    assert.equal(cond(c), want, c);
  }
});

test('boolean operators and precedence', () => {
  assert.equal(cond('kind == 2 and name == "nope" or status.code == 2'), true);
  assert.equal(cond('kind == 2 and (name == "nope" or status.code == 2)'), true);
  assert.equal(cond('not kind == 2 or false'), false);
  assert.equal(cond('not (kind == 3 and true)'), true);
  assert.equal(cond('true and IsMatch(name, "^GET ")'), true);
});

test('math: int and float arithmetic, integer division, times and durations, errors', () => {
  assert.equal(cond('7 / 2 == 3'), true);
  assert.equal(cond('7.0 / 2.0 == 3.5'), true);
  assert.equal(cond('2 + 3 * 4 == 14'), true);
  assert.equal(cond('(2 + 3) * 4 == 20'), true);
  assert.equal(cond('-7 / 2 == -3'), true);
  assert.equal(cond('end_time - Duration("250ms") == start_time'), true);
  assert.throws(() => cond('1 / 0 == 0'), OttlRuntimeError);
  assert.throws(() => cond('attributes["ratio"] + 1 == 1'), /cannot apply \+ to float and int/);
  assert.throws(
    () => compileCondition('1 + 1.5 == 2', CTX_SPAN),
    (e: unknown) => e instanceof OttlError && e.code === 'OTTL_TYPE' && /cannot apply \+ to int and float/.test(e.reason),
  );
});

test('converters', () => {
  const truths = [
    'IsMatch(attributes["http.route"], "^/orders/")',
    'IsMatch(attributes["http.response.status_code"], "^5")',
    'not IsMatch(attributes["missing"], ".*")',
    'Concat([name, attributes["http.response.status_code"], attributes["missing"]], "|") == "GET /orders/{id}|503|<nil>"',
    'Split(attributes["http.route"], "/")[1] == "orders"',
    'Len(Split(attributes["http.route"], "/")) == 3',
    'Len(attributes["tags"]) == 3',
    'Len("héllo") == 6',
    'Len(attributes["nested"]) == 2',
    'Int("42") == 42',
    'Int(2.9) == 2',
    'Int(true) == 1',
    'Int("x") == nil',
    'Double("1.5") == 1.5',
    'Double(3) == 3.0',
    'String(attributes["http.response.status_code"]) == "503"',
    'String(attributes["ratio"]) == "0.25"',
    'String(attributes["cached"]) == "false"',
    'String(attributes["nested"]) == "{\\"inner\\":{\\"deep\\":\\"value\\"},\\"n\\":7}"',
    'SHA256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"',
    'SHA1("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d"',
    'MD5("abc") == "900150983cd24fb0d6963f7d28e17f72"',
    'FNV("abc") == -1792535898324117685',
    'Substring(name, 5, 6) == "orders"',
    'IsString(name)',
    'IsInt(attributes["http.response.status_code"])',
    'IsDouble(attributes["ratio"])',
    'IsBool(attributes["cached"])',
    'IsMap(attributes["nested"])',
    'IsList(attributes["tags"])',
    'not IsString(attributes["missing"])',
    'ConvertCase("HelloWorld", "snake") == "hello_world"',
    'ConvertCase("hello_world", "camel") == "HelloWorld"',
    'ToUpperCase(name) == "GET /ORDERS/{ID}"',
    'ToLowerCase("ABC") == "abc"',
    'HasPrefix(name, "GET")',
    'HasSuffix(name, "{id}")',
    'UnixNano(start_time) == 1700000000000000000',
    'UnixMilli(start_time) == 1700000000000',
    'UnixSeconds(start_time) == 1700000000',
    'Nanoseconds(Duration("1ms")) == 1000000',
    'Milliseconds(end_time - start_time) == 250',
    'Seconds(Duration("1500ms")) == 1.5',
    'ParseJSON("{\\"a\\": [1, 2]}")["a"][1] == 2.0',
    'Now() > start_time',
  ];
  for (const c of truths) assert.equal(cond(c), true, c);
  for (const c of ['Substring(name, 2, 100) == ""', 'Substring(name, -1, 2) == ""', 'Len(attributes["cached"]) == 0', 'ParseJSON("{") == nil', 'Split(attributes["http.response.status_code"], "0") == nil']) {
    assert.throws(() => cond(c), OttlRuntimeError, c);
  }
});

test('runtime errors do not quote span values (they may be secrets)', () => {
  const b = oneSpan({ attributes: { token: 'eyJhbGciOiJIUzI1NiJ9.secret.sig' } });
  for (const c of ['Int(attributes["token"]) == 1 and attributes["token"] + 1 == 2', 'ParseJSON(attributes["token"]) == nil', 'Duration(attributes["token"]) == nil', 'attributes["token"]["x"] == nil', 'attributes["token"][0] == nil']) {
    try {
      evalCondition(b, c);
    } catch (err) {
      assert.ok(!(err as Error).message.includes('eyJ'), `${c}: ${(err as Error).message}`);
      assert.ok(!(err as Error).message.includes('secret'), `${c}: ${(err as Error).message}`);
    }
  }
});

test('span event context reads the event, its span, scope and resource', () => {
  for (const c of [
    'name == "exception"',
    'spanevent.name == "exception"',
    'attributes["exception.type"] == "Timeout"',
    'attributes["attempt"] == 2',
    'time_unix_nano == 1700000000100000000',
    'span.name == "GET /orders/{id}"',
    'span.attributes["enduser.id"] == "alice"',
    'resource.attributes["service.name"] == "checkout"',
    'dropped_attributes_count == 0',
  ]) {
    assert.equal(cond(c, CTX_SPANEVENT), true, c);
  }
});

test('resource and scope contexts', () => {
  const b = new TraceBatch(fixtureRequest([{ attributes: { 'service.name': 'cart', 'k8s.namespace.name': 'shop' }, scopes: [{ name: 'io.lib', version: '3.1', attributes: { 'lib.kind': 'http' }, spans: [{}] }] }]));
  const t = new Target();
  t.reset(b, CTX_RESOURCE);
  t.atResource(0);
  assert.equal(compileCondition('attributes["k8s.namespace.name"] == "shop"', CTX_RESOURCE).test(t), true);
  assert.equal(compileCondition('resource.attributes["service.name"] == "cart" and dropped_attributes_count == 0', CTX_RESOURCE).test(t), true);
  t.reset(b, CTX_SCOPE);
  t.atScope(0);
  assert.equal(compileCondition('name == "io.lib" and version == "3.1" and attributes["lib.kind"] == "http"', CTX_SCOPE).test(t), true);
  assert.equal(compileCondition('resource.attributes["service.name"] == "cart"', CTX_SCOPE).test(t), true);
});

test('config-time errors: unknown paths and functions, child contexts, argument types, with their column', () => {
  const cases: [string, number, string, string, 'condition' | 'statement'][] = [
    ['attributes["a"] == nam', CTX_SPAN, 'OTTL_UNKNOWN_PATH', 'unknown path nam in the span context', 'condition'],
    ['span.name == "x"', CTX_RESOURCE, 'OTTL_CONTEXT', 'belongs to the span context and cannot be used in the resource context', 'condition'],
    ['spanevent.name == "x"', CTX_SPAN, 'OTTL_CONTEXT', 'cannot be used in the span context', 'condition'],
    ['IsMatchy(name, "x")', CTX_SPAN, 'OTTL_UNKNOWN_FUNCTION', 'unknown converter IsMatchy', 'condition'],
    ['IsMatch(name, "(")', CTX_SPAN, 'OTTL_TYPE', 'the argument pattern of IsMatch', 'condition'],
    ['IsMatch(name)', CTX_SPAN, 'OTTL_TYPE', 'IsMatch needs the argument pattern', 'condition'],
    ['IsMatch(name, "a", "b")', CTX_SPAN, 'OTTL_TYPE', 'too many arguments to IsMatch', 'condition'],
    ['Substring(name, "1", 2) == ""', CTX_SPAN, 'OTTL_TYPE', 'the argument start of Substring must be int, but this is string', 'condition'],
    ['SHA256(1) == ""', CTX_SPAN, 'OTTL_TYPE', 'the argument value of SHA256 must be string, but this is int', 'condition'],
    ['kind == SPAN_KIND_SERVERX', CTX_SPAN, 'OTTL_TYPE', 'unknown enum SPAN_KIND_SERVERX', 'condition'],
    ['Concat(["a"], "-")', CTX_SPAN, 'OTTL_TYPE', 'a condition must be a comparison or return a boolean', 'condition'],
    ['name["x"] == "y"', CTX_SPAN, 'OTTL_TYPE', 'the path name["x"] cannot be indexed', 'condition'],
    ['set(trace_id.string, "x")', CTX_SPAN, 'OTTL_TYPE', 'the path trace_id.string cannot be set here', 'statement'],
    ['set("x", "y")', CTX_SPAN, 'OTTL_TYPE', 'must be a path that can be set', 'statement'],
    ['delete_key(name, "x")', CTX_SPAN, 'OTTL_TYPE', 'is not a map that can be changed here', 'statement'],
    ['delete_key(attributes, k)', CTX_SPAN, 'OTTL_TYPE', 'the argument key of delete_key must be a string literal', 'statement'],
    ['keep_keys(attributes, ["a", 1])', CTX_SPAN, 'OTTL_TYPE', 'must be a list of string literals', 'statement'],
    ['limit(attributes, 0, [])', CTX_SPAN, 'OTTL_TYPE', 'cannot be less than 1', 'statement'],
    ['truncate_all(attributes, -1)', CTX_SPAN, 'OTTL_TYPE', 'cannot be negative', 'statement'],
    ['merge_maps(attributes, {"a": 1}, "merge")', CTX_SPAN, 'OTTL_TYPE', "must be 'insert', 'update' or 'upsert'", 'statement'],
    ['replace_pattern(name, "a", "b", SHA3)', CTX_SPAN, 'OTTL_TYPE', 'must be one of SHA1, SHA256, SHA512, MD5, FNV', 'statement'],
    ['replace_all_patterns(attributes, "keys", "a", "b")', CTX_SPAN, 'OTTL_TYPE', 'invalid mode keys', 'statement'],
    ['Set(name, "x")', CTX_SPAN, 'OTTL_SYNTAX', 'lowercase', 'statement'],
    ['sett(name, "x")', CTX_SPAN, 'OTTL_UNKNOWN_FUNCTION', 'unknown editor sett', 'statement'],
    ['set(attributes["a"], "b", "c")', CTX_SPAN, 'OTTL_TYPE', 'too many arguments to set', 'statement'],
    ['set(attributes["a"], value = "b", value = "c")', CTX_SPAN, 'OTTL_TYPE', 'is given twice', 'statement'],
    ['set(target = attributes["a"], valu = "b")', CTX_SPAN, 'OTTL_TYPE', 'set has no argument named valu', 'statement'],
    ['set(attributes["a"], "b") where Len(name)', CTX_SPAN, 'OTTL_TYPE', 'must be a comparison or return a boolean', 'statement'],
    ['set(attributes["a"], 1) where scope.name == "x"', CTX_RESOURCE, 'OTTL_CONTEXT', 'cannot be used in the resource context', 'statement'],
  ];
  for (const [text, ctx, code, reason, kind] of cases) {
    try {
      if (kind === 'condition') compileCondition(text, ctx as 0);
      else compileStatement(text, ctx as 0);
      assert.fail(`${text} compiled`);
    } catch (err) {
      assert.ok(err instanceof OttlError, `${text}: ${String(err)}`);
      assert.equal(err.code, code, `${text}: ${err.reason}`);
      assert.ok(err.reason.includes(reason), `${text}: ${err.reason}`);
      assert.ok(err.offset >= 0 && err.offset < text.length, `${text}: offset ${err.offset}`);
    }
  }
  // The column points at the part that is wrong.
  const err = (() => {
    try {
      compileCondition('name == "a" and Substring(name, "1", 2) == ""', CTX_SPAN);
    } catch (e) {
      return e as OttlError;
    }
    return null;
  })();
  assert.equal(err?.offset, 'name == "a" and Substring(name, '.length);
});

test('context inference from path prefixes', () => {
  assert.equal(compileStatement('set(span.attributes["a"], resource.attributes["b"])', null).context, CTX_SPAN);
  assert.equal(compileStatement('set(resource.attributes["a"], "x")', null).context, CTX_RESOURCE);
  assert.equal(compileStatement('set(span.attributes["a"], "x") where spanevent.name == "e"', null).context, CTX_SPANEVENT);
  assert.throws(() => compileStatement('set(attributes["a"], "x")', null), /cannot infer the context: the path attributes\["a"\] names none/);
});

test('editors: set, delete and keep keys, limit, truncate, replace, merge; later statements see earlier writes', () => {
  const out = runOnSpan(span(), [
    'set(attributes["copied"], attributes["http.route"])',
    'set(attributes["len"], Len(attributes["copied"]))',
    'set(attributes["nil"], attributes["missing"])',
    'set(attributes["nested"]["inner"]["added"], "x")',
    'set(attributes["new"]["a"], 1)',
    'delete_key(attributes, "raw")',
    'delete_matching_keys(attributes, "^identity\\\\.")',
    'replace_pattern(attributes["http.route"], "\\\\{(\\\\w+)\\\\}", "<$1>")',
    'replace_match(attributes["copied"], "/orders/*", "/orders/{id}")',
    'merge_maps(attributes, {"cached": true, "merged": "yes"}, "insert")',
    'set(name, Concat(["op", attributes["len"]], ":"))',
    'set(status.code, STATUS_CODE_OK)',
    'set(status.message, "fine")',
    'set(kind, SPAN_KIND_CLIENT)',
  ]);
  const sp = out.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
  const a = attrs(sp.attributes as never);
  assert.equal(a.copied, '/orders/{id}');
  assert.equal(a.len, 12n);
  assert.ok(!('nil' in a), 'setting nil changes nothing');
  assert.deepEqual(a.nested, { inner: { deep: 'value', added: 'x' }, n: 7n });
  assert.deepEqual(a.new, { a: 1n });
  assert.ok(!('raw' in a));
  assert.ok(!('identity.verified' in a));
  assert.equal(a['http.route'], '/orders/<id>');
  assert.equal(a.cached, false, 'insert does not overwrite');
  assert.equal(a.merged, 'yes');
  assert.equal(sp.name, 'op:12');
  assert.deepEqual(sp.status, { code: 1, message: 'fine' });
  assert.equal(sp.kind, 3);
  // Fields no statement touched are the bytes they were.
  assert.equal(sp.traceState, 'ot=th:8;rv:abc,vendor=x');
  assert.equal(sp.events && (sp.events as unknown[]).length, 1);

  const kept = attrs(runOnSpan(span(), ['keep_keys(attributes, ["ratio", "tags", "absent"])']).resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes as never);
  assert.deepEqual(Object.keys(kept).sort(), ['ratio', 'tags']);
  const limited = attrs(runOnSpan(span(), ['limit(attributes, 2, ["enduser.id"])']).resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes as never);
  assert.equal(Object.keys(limited).length, 2);
  assert.ok('enduser.id' in limited);
  const truncated = attrs(runOnSpan(oneSpan({ attributes: { a: 'héllo', b: 'ok', n: 5 } }), ['truncate_all(attributes, 2)']).resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes as never);
  assert.deepEqual(truncated, { a: 'h', b: 'ok', n: 5n });
  const replaced = attrs(
    runOnSpan(oneSpan({ attributes: { 'db.statement': 'select 1', 'db.password': 'hunter2', url: 'u?token=abc' } }), [
      'replace_all_patterns(attributes, "value", "token=[^&]*", "token=***")',
      'replace_all_patterns(attributes, "key", "^db\\\\.", "database.")',
      'replace_all_matches(attributes, "hunter*", "[redacted]")',
    ]).resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes as never,
  );
  assert.deepEqual(replaced, { 'database.statement': 'select 1', 'database.password': '[redacted]', url: 'u?token=***' });
  const hashed = attrs(runOnSpan(oneSpan({ attributes: { email: 'user=alice@example.com' } }), ['replace_pattern(attributes["email"], "user=(.*)", "$1", SHA256, "hash:%s")']).resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes as never);
  assert.equal(hashed.email, 'hash:ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976');
  const whole = attrs(runOnSpan(span(), ['set(attributes, {"only": "this"})']).resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes as never);
  assert.deepEqual(whole, { only: 'this' });
});

test('resource writes from the span context reach the resource once', () => {
  const b = new TraceBatch(fixtureRequest([{ attributes: { 'service.name': 'a' }, scopes: [{ spans: [{ name: 'x' }, { name: 'y' }] }] }]));
  const t = new Target();
  t.reset(b, CTX_SPAN);
  const st = compileStatement('set(resource.attributes["seen"], Concat([resource.attributes["seen"], name], ","))', CTX_SPAN);
  for (let i = 0; i < 2; i++) {
    t.atSpan(i);
    st.run(t);
    t.flushSpan();
  }
  t.flushResource();
  const decoded = attrs(decodeRequest(b.encode()).resourceSpans[0]!.resource!.attributes as never);
  assert.deepEqual(decoded, { 'service.name': 'a', seen: '<nil>,x,y' });
});

