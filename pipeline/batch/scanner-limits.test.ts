/**
 * The scanner's limits at their exact edges: what is one byte or one level inside is accepted, what is one
 * outside is refused. (Mutation testing found these edges unguarded: the code was right, nothing would
 * have noticed it going wrong.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from './batch.js';
import { PipelineError } from '../service/errors.js';
import { varint } from '../../test/helpers/protobuf-bytes.js';

const wrap = (field: number, inner: Buffer): Buffer => Buffer.concat([Buffer.from([(field << 3) | 2]), varint(inner.length), inner]);
/** request.resource_spans.scope_spans.spans with this span content. */
const request = (span: Buffer): Buffer => wrap(1, wrap(2, wrap(2, span)));
const refused = (bytes: Buffer, message: RegExp): void =>
  assert.throws(() => new TraceBatch(bytes).index(), (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT' && message.test(e.message));

test('attribute values nest exactly 32 levels deep, not 33', () => {
  const nested = (levels: number): Buffer => {
    let v = wrap(1, Buffer.from('leaf'));
    for (let i = 0; i < levels; i++) v = wrap(5, wrap(1, v));
    return request(wrap(9, Buffer.concat([wrap(1, Buffer.from('k')), wrap(2, v)])));
  };
  const b = new TraceBatch(nested(32));
  b.index();
  assert.equal(b.spanCount, 1);
  refused(nested(33), /nested too deeply/);
});

test('a fixed32 or fixed64 field cut short at the very end of a span is refused, by one byte', () => {
  const flags = (bytes: number): Buffer => request(Buffer.concat([Buffer.from([0x85, 0x01]), Buffer.alloc(bytes)]));
  // Tag 16 is two bytes as a varint (0x85 0x01): field 16, wire type 5.
  const ok = new TraceBatch(flags(4));
  ok.index();
  assert.equal(ok.spanCount, 1);
  refused(flags(3), /truncated fixed32/);
  const start = (bytes: number): Buffer => request(Buffer.concat([Buffer.from([(7 << 3) | 1]), Buffer.alloc(bytes)]));
  new TraceBatch(start(8)).index();
  refused(start(7), /truncated fixed64/);
});
