/**
 * Edges of the validating scan that a mutation pass found untested: index growth past every initial
 * capacity (resources, scopes, spans), absent and empty optional fields recorded as absent, and a
 * credential in a field no schema defines at the request's top level, where nothing could remove it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch, encodeKey } from './batch.js';
import { Inspection } from './inspection.js';
import { PipelineError } from '../service/errors.js';
import { varint } from '../../test/helpers/protobuf-bytes.js';
import { decodeSpans } from '../../test/helpers/otlp.js';

const field = (n: number, body: Uint8Array | string): Buffer => {
  const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
  return Buffer.concat([varint((n << 3) | 2), varint(b.length), b]);
};
const msg = (...parts: Buffer[]) => Buffer.concat(parts);
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';
const TOKENS = new Inspection({ protect: [], sensitiveNames: [], urlKeys: [], secretParams: [], tokens: true });

function span(name: string, i: number): Buffer {
  return msg(field(1, Buffer.alloc(16, i + 1)), field(2, Buffer.alloc(8, i + 1)), field(5, name));
}

test('the index grows past every initial capacity and still describes each unit as a decoder reads it', () => {
  // 9 resources (capacity 4), each with 3 scopes (27 > 8), each with 2 spans (54 > 16).
  const resources: Buffer[] = [];
  let n = 0;
  for (let r = 0; r < 9; r++) {
    const scopes: Buffer[] = [];
    for (let s = 0; s < 3; s++) scopes.push(field(2, msg(field(1, field(1, `scope-${r}-${s}`)), field(2, span(`span-${n}`, n++)), field(2, span(`span-${n}`, n++)))));
    resources.push(field(1, msg(field(1, field(1, msg(field(1, 'service.name'), field(2, field(1, `svc-${r}`))))), ...scopes)));
  }
  const bytes = msg(...resources);
  const b = new TraceBatch(bytes);
  assert.equal(b.resourceCount, 9);
  assert.equal(b.scopeCount, 27);
  assert.equal(b.spanCount, 54);
  const decoded = decodeSpans(bytes);
  for (let i = 0; i < 54; i++) {
    assert.equal(b.spanName(i), decoded[i]!.name);
    assert.equal(b.spanName(i), `span-${i}`);
    assert.equal(b.spanScope(i), Math.floor(i / 2));
    assert.equal(b.spanResource(i), Math.floor(i / 6));
    assert.deepEqual(b.bytes.subarray(b.traceIdOffset(i), b.traceIdOffset(i) + 16), Buffer.alloc(16, i + 1));
    assert.deepEqual(b.bytes.subarray(b.spanIdOffset(i), b.spanIdOffset(i) + 8), Buffer.alloc(8, i + 1));
  }
  for (let r = 0; r < 9; r++) {
    assert.equal(b.findResourceAttribute(r, encodeKey('service.name')), true);
    assert.equal(Buffer.from(b.bytes.subarray(b.found.valueStart, b.found.valueEnd)).toString(), `svc-${r}`);
  }
});

test('absent and empty optional fields are recorded as absent', () => {
  // A resource without a Resource message, a scope without an InstrumentationScope, a span without ids
  // or name, and one with empty ids.
  const bare = msg(field(5, ''));
  const emptyIds = msg(field(1, new Uint8Array(0)), field(2, new Uint8Array(0)), field(5, 'n'));
  const b = new TraceBatch(field(1, field(2, msg(field(2, bare), field(2, emptyIds)))));
  assert.equal(b.resourceCount, 1);
  assert.equal(b.resourceStart(0), -1);
  assert.equal(b.resourceEnd(0), -1);
  assert.equal(b.findResourceAttribute(0, encodeKey('service.name')), false);
  assert.equal(b.scopeFieldStart(0), -1);
  assert.equal(b.scopeFieldEnd(0), -1);
  for (const i of [0, 1]) {
    assert.equal(b.traceIdOffset(i), -1, `span ${i} trace id`);
    assert.equal(b.spanIdOffset(i), -1, `span ${i} span id`);
  }
  assert.equal(b.spanName(0), '');
  assert.equal(b.spanNameEquals(0, new Uint8Array(0)), true);
  assert.equal(b.spanNameEquals(0, encodeKey('x')), false);
  assert.equal(b.spanName(1), 'n');
});

test('a credential in an unknown field at the top level is refused (nothing could remove it); elsewhere it marks its unit', () => {
  const request = msg(field(1, field(2, field(2, span('s', 0)))));
  const refuse = (bytes: Buffer) => {
    try {
      new TraceBatch(bytes).index(TOKENS);
    } catch (err) {
      return err as PipelineError;
    }
    return null;
  };
  const err = refuse(msg(request, field(9, `x ${TOKEN}`)));
  assert.ok(err instanceof PipelineError && err.code === 'INVALID_ARGUMENT', String(err));
  assert.match(err.message, /an unknown field outside any resource, scope or span holds a credential-shaped value/);
  assert.ok(!err.message.includes(TOKEN.slice(0, 12)));
  // Without a credential, or without token inspection, the same field is accepted as it is.
  assert.equal(refuse(msg(request, field(9, 'x'.repeat(60)))), null);
  const plain = new TraceBatch(msg(request, field(9, `x ${TOKEN}`)));
  plain.index();
  assert.equal(plain.spanCount, 1);
  // Inside a span, the same field marks the span for the close look.
  const inSpan = new TraceBatch(msg(field(1, field(2, field(2, msg(span('s', 0), field(30, TOKEN)))))));
  inSpan.index(TOKENS);
  assert.equal(inSpan.spanMarked(0), true);
  const clean = new TraceBatch(request);
  clean.index(TOKENS);
  assert.equal(clean.spanMarked(0), false);
  assert.equal(clean.markedCount, 0);
});
