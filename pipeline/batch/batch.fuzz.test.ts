/**
 * Fuzzes the wire scanner, the one place that parses untrusted bytes on the hot path. Valid requests
 * are mutated with a seeded PRNG (so a failure reproduces exactly); every input must either index or
 * fail with INVALID_ARGUMENT, and whatever indexes must survive the whole read and edit API and encode
 * to a request that indexes again with the same live span count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch, encodeKey, encodeString, encodeStringArray } from './batch.js';
import { PipelineError } from '../service/errors.js';
import { otlpType } from './otlp-schema.js';
import { syntheticRequest } from '../../test/helpers/otlp.js';
import { prng } from '../../test/helpers/prng.js';


const AUTH = 'http.request.header.authorization';
const AUTH_KEY = encodeKey(AUTH);
const ABSENT_KEY = encodeKey('fuzz.key.that.no.seed.has');
const ENDUSER_KEY = encodeKey('enduser.id');
const ROLES_KEY = encodeKey('user.roles');
const ENDUSER = encodeString('alice');
const ROLES = encodeStringArray(['admin', 'ops']);
const BOUNDARY = [0x00, 0x7f, 0x80, 0xff];

function id(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

function kv(key: string, value: Record<string, unknown>): Record<string, unknown> {
  return { key, value };
}

/** A kvlist nested `depth` levels deep. */
function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { stringValue: 'leaf' };
  for (let i = 0; i < depth; i++) v = { kvlistValue: { values: [kv(`level${i}`, v)] } };
  return v;
}

/** A request using every part of the schema: nested values, arrays, bytes, events, links, status, flags. */
function richRequest(rand: () => number, spans: number): Uint8Array {
  const T = otlpType('ExportTraceServiceRequest');
  const mkSpan = (i: number) => ({
    traceId: id(rand, 16),
    spanId: id(rand, 8),
    parentSpanId: i % 2 === 0 ? id(rand, 8) : undefined,
    traceState: i % 3 === 0 ? 'vendor=a' : undefined,
    name: `op-${i}`,
    kind: (i % 5) + 1,
    flags: 0x101,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000100000000',
    attributes: [
      kv(AUTH, { arrayValue: { values: [{ stringValue: `Bearer tok.${i}.sig` }] } }),
      kv('http.method', { stringValue: 'GET' }),
      kv('http.status_code', { intValue: 200 + i }),
      kv('ratio', { doubleValue: 0.25 * i }),
      kv('ok', { boolValue: i % 2 === 0 }),
      kv('blob', { bytesValue: id(rand, 5) }),
      kv('deep', nested(1 + (i % 6))),
      kv('list', { arrayValue: { values: [{ intValue: 1 }, { arrayValue: { values: [{ stringValue: 'x' }] } }, { kvlistValue: { values: [kv('k', { boolValue: true })] } }] } }),
    ],
    droppedAttributesCount: i % 2,
    events: [
      { timeUnixNano: '1700000000050000000', name: 'exception', attributes: [kv('exception.type', { stringValue: 'Boom' }), kv('n', nested(2))], droppedAttributesCount: 1 },
    ],
    droppedEventsCount: 0,
    links: [{ traceId: id(rand, 16), spanId: id(rand, 8), traceState: 'k=v', attributes: [kv('link.kind', { stringValue: 'follows' })], flags: 1 }],
    status: { code: 2, message: 'failed' },
  });
  const msg = T.fromObject({
    resourceSpans: [
      {
        resource: { attributes: [kv('service.name', { stringValue: 'checkout' }), kv('host.id', { intValue: 7 })], droppedAttributesCount: 0 },
        scopeSpans: [
          { scope: { name: 'lib', version: '1.0', attributes: [kv('scope.attr', { stringValue: 's' })] }, spans: Array.from({ length: spans }, (_, i) => mkSpan(i)), schemaUrl: 'https://x' },
          { scope: { name: 'empty' }, spans: [] },
        ],
        schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
      },
      { scopeSpans: [{ spans: [mkSpan(99)] }] },
    ],
  });
  return T.encode(msg).finish();
}

// ---- mutations ----

function writeVarintBytes(v: number): number[] {
  const out: number[] = [];
  let x = v;
  while (x >= 0x80) {
    out.push((x % 0x80) | 0x80);
    x = Math.floor(x / 0x80);
  }
  out.push(x);
  return out;
}

function splice(src: Uint8Array, at: number, remove: number, insert: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(src.length - remove + insert.length);
  out.set(src.subarray(0, at), 0);
  out.set(insert as ArrayLike<number>, at);
  out.set(src.subarray(at + remove), at + insert.length);
  return out;
}

/** Replaces a length prefix (after a length-delimited tag) with a larger or extreme value. */
function inflateLength(src: Uint8Array, rand: () => number): Uint8Array {
  const candidates: number[] = [];
  for (let i = 0; i + 1 < src.length; i++) if ((src[i]! & 7) === 2 && src[i]! < 0x80 && src[i]! >= 0x08) candidates.push(i);
  if (candidates.length === 0) return src;
  const at = candidates[(rand() * candidates.length) | 0]! + 1;
  let len = 0;
  let n = 0;
  let mul = 1;
  while (at + n < src.length && n < 5) {
    const b = src[at + n]!;
    len += (b & 0x7f) * mul;
    mul *= 128;
    n++;
    if (b < 0x80) break;
  }
  const choices = [len + 1, len + 2, len + 127, len * 2 + 1, src.length, 0x7fffffff, 0xffffffff, 2 ** 35, Math.max(0, len - 1)];
  const v = choices[(rand() * choices.length) | 0]!;
  const enc = v === 2 ** 35 ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01] : writeVarintBytes(v);
  return splice(src, at, n, enc);
}

function mutate(src: Uint8Array, rand: () => number): Uint8Array {
  const pick = (n: number) => (rand() * n) | 0;
  let out = src;
  const rounds = rand() < 0.6 ? 1 : 2 + pick(2);
  for (let r = 0; r < rounds && out.length > 0; r++) {
    switch (pick(8)) {
      case 0: {
        out = out.slice();
        const flips = 1 + pick(4);
        for (let i = 0; i < flips; i++) out[pick(out.length)]! ^= 1 << pick(8);
        break;
      }
      case 1: {
        out = out.slice();
        out[pick(out.length)] = BOUNDARY[pick(4)]!;
        break;
      }
      case 2:
        out = out.slice(0, pick(out.length));
        break;
      case 3: {
        const ins: number[] = [];
        const n = 1 + pick(8);
        for (let i = 0; i < n; i++) ins.push(rand() < 0.5 ? BOUNDARY[pick(4)]! : pick(256));
        out = splice(out, pick(out.length + 1), 0, ins);
        break;
      }
      case 4: {
        const at = pick(out.length);
        out = splice(out, at, Math.min(out.length - at, 1 + pick(16)), []);
        break;
      }
      case 5:
        out = inflateLength(out, rand);
        break;
      case 6: {
        const a = pick(out.length);
        const b = Math.min(out.length, a + 1 + pick(64));
        out = splice(out, pick(out.length + 1), 0, out.slice(a, b));
        break;
      }
      default: {
        // A multi-byte varint where a one-byte tag stood (a valid but unusual encoding, or garbage).
        const at = pick(out.length);
        out = splice(out, at, 1, [out[at]! | 0x80, 0x00]);
      }
    }
  }
  return out;
}

// ---- the property ----

interface Outcome {
  indexed: boolean;
  spans: number;
}

/** Throws (an AssertionError or whatever escaped) when the property fails; returns what happened. */
function exercise(bytes: Uint8Array): Outcome {
  const b = new TraceBatch(bytes);
  try {
    b.index();
  } catch (err) {
    if (err instanceof PipelineError && err.code === 'INVALID_ARGUMENT') return { indexed: false, spans: 0 };
    throw err;
  }
  const n = b.spanCount;
  for (let i = 0; i < n; i++) {
    b.spanName(i);
    b.spanScope(i);
    const r = b.spanResource(i);
    assert.ok(r >= 0 && r < b.resourceCount);
    const t = b.traceIdOffset(i);
    assert.ok(t === -1 || (t >= 0 && t + 16 <= bytes.length));
    const s = b.spanIdOffset(i);
    assert.ok(s === -1 || (s >= 0 && s + 8 <= bytes.length));
    if (b.findSpanAttribute(i, AUTH_KEY)) {
      b.foundString();
      b.findSpanAttribute(i, AUTH_KEY);
      b.foundFirstArrayString();
      b.findNextSpanAttribute(i, AUTH_KEY);
    }
    b.findSpanAttribute(i, ABSENT_KEY);
  }
  for (let r = 0; r < b.resourceCount; r++) {
    if (b.findResourceAttribute(r, encodeKey('service.name'))) b.foundString();
  }
  // Odd spans without the credential stay unedited, so the encoder also copies untouched spans and
  // scopes with their original (possibly non-minimal) headers.
  const expectEnduser: boolean[] = [];
  for (let i = 0; i < n; i++) {
    b.removeSpanAttribute(i, AUTH_KEY);
    if (i % 2 === 0) b.setSpanAttribute(i, ENDUSER_KEY, ENDUSER);
    if (i % 4 === 2) b.setSpanAttribute(i, ROLES_KEY, ROLES);
    if (i % 3 === 2) b.dropSpan(i);
    else expectEnduser.push(i % 2 === 0);
  }
  if (b.resourceCount > 0) b.setResourceAttribute(0, encodeKey('telemetry.checked'), ENDUSER);
  const out = b.encode();
  const again = new TraceBatch(out);
  again.index();
  assert.equal(again.spanCount, b.liveSpanCount, 'encoded output has the live span count');
  for (let i = 0; i < again.spanCount; i++) {
    if (expectEnduser[i]) {
      assert.ok(again.findSpanAttribute(i, ENDUSER_KEY), 'the set attribute is there after encoding');
      assert.equal(again.foundString(), 'alice');
    }
    assert.equal(again.findSpanAttribute(i, AUTH_KEY), false, 'the removed attribute is gone');
  }
  // A range of the edited batch is a valid request with exactly the live spans of that range.
  if (n > 1) {
    const half = n >> 1;
    let live = 0;
    for (let i = 0; i < half; i++) if (!b.isDropped(i)) live++;
    const part = new TraceBatch(b.encodeRange(0, half));
    part.index();
    assert.equal(part.spanCount, live, 'encodeRange holds the live spans of its range');
  }
  return { indexed: true, spans: n };
}

/** protobufjs's view, for the tally only: the two may legitimately disagree (id sizes, wire types). */
function protobufAccepts(bytes: Uint8Array): boolean {
  try {
    otlpType('ExportTraceServiceRequest').decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Greedy shrink of a failing input: drop chunks while it still fails, for a small reproduction. */
function minimize(bytes: Uint8Array, fails: (b: Uint8Array) => boolean): Uint8Array {
  let cur = bytes;
  for (let chunk = Math.max(1, cur.length >> 1); chunk >= 1; chunk >>= 1) {
    for (let at = 0; at + chunk <= cur.length && cur.length > 1; ) {
      const cand = splice(cur, at, chunk, []);
      if (fails(cand)) cur = cand;
      else at += chunk;
    }
  }
  return cur;
}

function failsProperty(b: Uint8Array): boolean {
  try {
    exercise(b);
    return false;
  } catch {
    return true;
  }
}

function checkOrReport(bytes: Uint8Array, label: string): Outcome {
  try {
    return exercise(bytes);
  } catch (err) {
    const small = minimize(bytes, failsProperty);
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    assert.fail(`${label}: ${what}\nminimal input (${small.length} bytes): ${Buffer.from(small).toString('hex')}\nfull input: ${Buffer.from(bytes).toString('hex')}`);
  }
}

function seeds(): Uint8Array[] {
  const rand = prng(0x5eed);
  // Plain Uint8Array copies: protobufjs returns Buffers, whose slice() is a view the mutations would share.
  return [
    richRequest(rand, 1),
    richRequest(rand, 3),
    syntheticRequest(4, 6, (i) => ({ [AUTH]: [`Bearer t${i}`], 'enduser.id': 'mallory' })),
    syntheticRequest(1, 20),
    new Uint8Array(0),
  ].map((b) => new Uint8Array(b));
}

test('fuzz: every prefix of small valid requests indexes or fails with INVALID_ARGUMENT', () => {
  let indexed = 0;
  let cases = 0;
  for (const seed of seeds()) {
    if (seed.length > 1500) continue;
    for (let len = 0; len <= seed.length; len++) {
      const out = checkOrReport(seed.subarray(0, len), `prefix ${len}/${seed.length}`);
      cases++;
      if (out.indexed) indexed++;
    }
  }
  assert.ok(cases > 1000, `${cases} prefixes`);
  assert.ok(indexed >= 4, 'the full seeds (and the empty request) index');
});

test('fuzz: mutated requests index or fail with INVALID_ARGUMENT; what indexes edits and re-encodes', (t) => {
  // FUZZ_SEED / FUZZ_ITERATIONS run a longer hunt by hand; the defaults keep the suite fast and fixed.
  const rand = prng(Number(process.env['FUZZ_SEED'] ?? 20240601));
  const base = seeds();
  base.push(new Uint8Array(Buffer.concat([base[0]!, base[2]!]))); // concatenated requests are one request
  let indexed = 0;
  let rejected = 0;
  let pbAcceptedWeRejected = 0;
  let weAcceptedPbRejected = 0;
  const started = Date.now();
  const ITERATIONS = Number(process.env['FUZZ_ITERATIONS'] ?? 12_000);
  for (let i = 0; i < ITERATIONS; i++) {
    const seed = base[i % base.length]!;
    const input = seed.length === 0 ? Uint8Array.of((rand() * 256) | 0) : mutate(seed, rand);
    const out = checkOrReport(input, `iteration ${i}`);
    const pb = protobufAccepts(input);
    if (out.indexed) {
      indexed++;
      if (!pb) weAcceptedPbRejected++;
    } else {
      rejected++;
      if (pb) pbAcceptedWeRejected++;
    }
  }
  t.diagnostic(
    `${ITERATIONS} inputs in ${Date.now() - started} ms: ${indexed} indexed, ${rejected} rejected; ` +
      `protobufjs accepted ${pbAcceptedWeRejected} we rejected, rejected ${weAcceptedPbRejected} we accepted`,
  );
  // The mutations must exercise both outcomes, or the fuzzer is not testing much.
  assert.ok(indexed > ITERATIONS / 50, `${indexed} inputs indexed`);
  assert.ok(rejected > ITERATIONS / 5, `${rejected} inputs rejected`);
});

/** A one-span request whose attribute value is an array nested `depth` levels deep, encoded by hand. */
function deepRequest(depth: number): Uint8Array {
  const field = (tag: number, body: Uint8Array) => Buffer.concat([Buffer.from([tag, ...writeVarintBytes(body.length)]), body]);
  let value: Uint8Array = Buffer.from([0x0a, 0x01, 0x78]); // AnyValue{string_value: "x"}
  for (let d = 0; d < depth; d++) value = field(0x2a, field(0x0a, value)); // AnyValue{array_value{values: [value]}}
  const keyValue = Buffer.concat([Buffer.from([0x0a, 0x01, 0x64]), field(0x12, value)]);
  const span = Buffer.concat([field(0x0a, Buffer.alloc(16, 1)), field(0x12, Buffer.alloc(8, 2)), field(0x4a, keyValue)]);
  return new Uint8Array(field(0x0a, field(0x12, field(0x12, span))));
}

test('fuzz: attribute values nested past the depth limit are INVALID_ARGUMENT, not a stack overflow', () => {
  assert.equal(checkOrReport(deepRequest(30), 'depth 30').indexed, true);
  assert.equal(checkOrReport(deepRequest(40), 'depth 40').indexed, false);
  assert.equal(checkOrReport(deepRequest(5000), 'depth 5000').indexed, false);
  const err = (() => {
    try {
      new TraceBatch(deepRequest(40)).index();
    } catch (e) {
      return e;
    }
    return null;
  })();
  assert.ok(err instanceof PipelineError && /nested too deeply/.test(err.message));
});
