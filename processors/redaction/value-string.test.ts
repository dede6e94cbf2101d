import { test } from 'node:test';
import assert from 'node:assert/strict';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { AttrList } from './attr-list.js';
import { goJsonString, sortGoStrings, valueAsString } from './value-string.js';

/** AsString of one value, read the way the processor reads it: through an AttrList over encoded bytes. */
function asString(value: Record<string, unknown>): string {
  const T = otlpType('Span');
  const bytes = T.encode(T.fromObject({ attributes: [{ key: 'k', value }] })).finish();
  const list = new AttrList(1);
  list.read(bytes, 0, bytes.length, 9);
  assert.equal(list.count, 1);
  return valueAsString(bytes, list.kind[0]!, list.vStart[0]!, list.vEnd[0]!);
}

test('AsString of scalars as pcommon.Value.AsString writes them', () => {
  assert.equal(asString({ stringValue: 'héllo' }), 'héllo');
  assert.equal(asString({ boolValue: true }), 'true');
  assert.equal(asString({ boolValue: false }), 'false');
  assert.equal(asString({ intValue: '-9223372036854775808' }), '-9223372036854775808');
  assert.equal(asString({ intValue: '4111111111111111' }), '4111111111111111');
  assert.equal(asString({ doubleValue: 0.1 }), '0.1');
  assert.equal(asString({ doubleValue: 1e21 }), '1e+21');
  assert.equal(asString({ doubleValue: 123456789012345680000 }), '123456789012345680000');
  assert.equal(asString({ doubleValue: 1e-7 }), '1e-7');
  assert.equal(asString({ doubleValue: 0.000001 }), '0.000001');
  assert.equal(asString({ doubleValue: -0 }), '-0');
  assert.equal(asString({ doubleValue: NaN }), 'json: unsupported value: NaN');
  assert.equal(asString({ doubleValue: -Infinity }), 'json: unsupported value: -Inf');
  assert.equal(asString({ bytesValue: Buffer.from('hi?>') }), 'aGk/Pg==');
  assert.equal(asString({}), '');
});

test('AsString of arrays and maps is JSON with sorted keys, no HTML escaping', () => {
  assert.equal(asString({ arrayValue: { values: [{ stringValue: 'a"b' }, { intValue: 3 }, { boolValue: false }, { doubleValue: 1.5 }, {}, { bytesValue: Buffer.from([255]) }] } }), '["a\\"b",3,false,1.5,null,"/w=="]');
  assert.equal(
    asString({
      kvlistValue: {
        values: [
          { key: 'z', value: { stringValue: '<tag>&\n\u2028' } },
          { key: 'a', value: { kvlistValue: { values: [{ key: 'n', value: { arrayValue: { values: [] } } }] } } },
          { key: 'z', value: { stringValue: 'last wins' } },
          { key: 'm' },
        ],
      },
    }),
    '{"a":{"n":[]},"m":null,"z":"last wins"}',
  );
  assert.equal(asString({ arrayValue: { values: [{ doubleValue: NaN }] } }), '', 'Go cannot marshal NaN: AsString gives ""');
  assert.equal(goJsonString('<tag>&\n\t\b\f\u0001\u2028"\\'), '"<tag>&\\n\\t\\b\\f\\u0001\\u2028\\"\\\\"');
});

test('sortGoStrings orders by code point (UTF-8 byte order), not UTF-16 code unit', () => {
  assert.deepEqual(sortGoStrings(['b', 'a', '\uFF21', '😀', 'A']), ['A', 'a', 'b', '\uFF21', '😀']);
});
