/**
 * The OTTL grammar rule by rule (the Collector's grammar.go and LANGUAGE.md), syntax errors with their
 * column, and a fuzz property: random statements either parse or fail with an OttlError, never anything
 * else, and never hang.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCondition, parseStatement, parseValue } from './parser.js';
import { OttlError } from './errors.js';
import { prng } from '../test/helpers/prng.js';

function syntaxError(text: string, parse: (t: string) => unknown = parseStatement): OttlError {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof OttlError, `${text}: ${String(err)}`);
    return err;
  }
  assert.fail(`${text} parsed`);
}

test('statement: an editor call, arguments, optional where clause', () => {
  const s = parseStatement('set(attributes["a"], "b") where name == "x"');
  assert.equal(s.editor.name, 'set');
  assert.equal(s.editor.args.length, 2);
  assert.deepEqual(s.editor.args[0]!.value, { t: 'path', fields: [{ name: 'attributes', keys: [{ pos: 14, str: 'a' }], pos: 4 }], pos: 4 });
  assert.deepEqual(s.editor.args[1]!.value, { t: 'string', v: 'b', pos: 21 });
  assert.equal(s.where?.t, 'compare');
  assert.equal(parseStatement('delete_key(attributes, "k")').where, null);
  assert.equal(parseStatement('noop()').editor.args.length, 0);
});

test('boolean expressions: or binds loosest, then and, then not; parentheses group', () => {
  const c = parseCondition('a == 1 or b == 2 and not c == 3');
  assert.equal(c.t, 'or');
  if (c.t !== 'or') return;
  assert.equal(c.items[0]!.t, 'compare');
  assert.equal(c.items[1]!.t, 'and');
  const and = c.items[1]!;
  if (and.t !== 'and') return;
  assert.equal(and.items[1]!.t, 'not');
  const g = parseCondition('(a == 1 or b == 2) and c == 3');
  assert.equal(g.t, 'and');
  if (g.t === 'and') assert.equal(g.items[0]!.t, 'or');
  assert.equal(parseCondition('not (a == 1)').t, 'not');
  assert.equal(parseCondition('true').t, 'const');
  assert.equal(parseCondition('IsMatch(name, "x")').t, 'const');
});

test('comparison operators', () => {
  for (const op of ['==', '!=', '<', '<=', '>', '>=']) {
    const c = parseCondition(`kind ${op} 2`);
    assert.equal(c.t === 'compare' && c.op, op);
  }
});

test('literals: strings with escapes, ints, floats, bools, nil, bytes, enums', () => {
  assert.deepEqual(parseValue('"a\\"b\\\\c\\n"'), { t: 'string', v: 'a"b\\c\n', pos: 0 });
  assert.deepEqual(parseValue('42'), { t: 'int', v: 42n, pos: 0 });
  assert.deepEqual(parseValue('-42'), { t: 'int', v: -42n, pos: 0 });
  assert.deepEqual(parseValue('+7'), { t: 'int', v: 7n, pos: 0 });
  assert.deepEqual(parseValue('1.5'), { t: 'float', v: 1.5, pos: 0 });
  assert.deepEqual(parseValue('-.5'), { t: 'float', v: -0.5, pos: 0 });
  assert.deepEqual(parseValue('2.5e3'), { t: 'float', v: 2500, pos: 0 });
  assert.deepEqual(parseValue('true'), { t: 'bool', v: true, pos: 0 });
  assert.deepEqual(parseValue('nil'), { t: 'nil', pos: 0 });
  assert.deepEqual(parseValue('0x0aff'), { t: 'bytes', v: Uint8Array.of(0x0a, 0xff), pos: 0 });
  assert.deepEqual(parseValue('SPAN_KIND_SERVER'), { t: 'enum', name: 'SPAN_KIND_SERVER', pos: 0 });
  // int64 wraps as Go's parser would refuse; the value is kept in range.
  assert.equal((parseValue('9223372036854775807') as { v: bigint }).v, 9223372036854775807n);
});

test('paths: segments, string and int keys, nested keys, keys that are paths or converters', () => {
  const p = parseValue('resource.attributes["a"]["b"][0]');
  assert.equal(p.t, 'path');
  if (p.t !== 'path') return;
  assert.deepEqual(
    p.fields.map((f) => [f.name, f.keys.map((k) => k.str ?? k.int)]),
    [
      ['resource', []],
      ['attributes', ['a', 'b', 0n]],
    ],
  );
  const dyn = parseValue('attributes[attributes["k"]]');
  assert.equal(dyn.t === 'path' && dyn.fields[0]!.keys[0]!.expr?.t, 'path');
  const conv = parseValue('attributes[Concat(["a", "b"], "")]');
  assert.equal(conv.t === 'path' && conv.fields[0]!.keys[0]!.expr?.t, 'call');
});

test('converters: upper-case calls, named arguments, keys on the result', () => {
  const c = parseValue('Split(name, ",")[1]');
  assert.equal(c.t, 'call');
  if (c.t !== 'call') return;
  assert.equal(c.call.name, 'Split');
  assert.equal(c.call.keys[0]!.int, 1n);
  const named = parseStatement('replace_pattern(name, "a", "b", function = SHA256, replacement_format = "x-%s")');
  assert.deepEqual(
    named.editor.args.map((a) => a.name),
    [null, null, null, 'function', 'replacement_format'],
  );
  assert.deepEqual(named.editor.args[3]!.value, { t: 'enum', name: 'SHA256', pos: 43 });
});

test('lists and maps', () => {
  assert.deepEqual(parseValue('[]'), { t: 'list', items: [], pos: 0 });
  const l = parseValue('["a", 1, name]');
  assert.equal(l.t === 'list' && l.items.length, 3);
  const m = parseValue('{"a": 1, "b": {"c": "d"}}');
  assert.equal(m.t, 'map');
  if (m.t === 'map') {
    assert.deepEqual(
      m.entries.map(([k]) => k),
      ['a', 'b'],
    );
    assert.equal(m.entries[1]![1].t, 'map');
  }
  assert.equal(parseValue('{}').t, 'map');
});

test('math: * and / before + and -, left to right, parentheses', () => {
  const e = parseValue('1 + 2 * 3 - 4');
  // ((1 + (2 * 3)) - 4)
  assert.equal(e.t === 'math' && e.op, '-');
  if (e.t !== 'math') return;
  assert.equal(e.left.t === 'math' && e.left.op, '+');
  if (e.left.t === 'math') assert.equal(e.left.right.t === 'math' && e.left.right.op, '*');
  const g = parseValue('(1 + 2) * 3');
  assert.equal(g.t === 'math' && g.op, '*');
  // A sign after a value is an operator.
  const s = parseValue('end_time_unix_nano -1');
  assert.equal(s.t === 'math' && s.op, '-');
  const c = parseCondition('(end_time_unix_nano - start_time_unix_nano) / 1000000 > 500');
  assert.equal(c.t === 'compare' && c.left.t, 'math');
});

test('syntax errors name what is wrong and the 1-based column', () => {
  const cases: [string, string, number][] = [
    ['set(attributes["a"], "b"', 'expected "," or ")" in the arguments of set, found the end of the statement', 25],
    ['Set(name, "x")', "editor names must start with a lowercase letter but got 'Set'", 1],
    ['set(name, concat(["a"], ""))', "converter names must start with an uppercase letter but got 'concat'", 11],
    ['set(name, "x") where', 'expected a value, found the end of the statement', 21],
    ['set(name, "x") where name', 'expected a comparison operator', 26],
    ['set(name, "x) ', 'unterminated string', 11],
    ['set(name, "\\q")', 'invalid escape \\q in string', 12],
    ['set(name, "x") garbage', 'unexpected "garbage" after the end of the expression', 16],
    ['set(name, 0xabc)', 'odd number of hex digits', 11],
    ['set(attributes[], "x")', 'expected a string, an integer, a path or a converter as a key', 16],
    ['set(name, "x" @)', 'unexpected character "@"', 15],
    ['set(a = 1, name)', 'an unnamed argument cannot follow a named one', 12],
    ['set(name, {1: 2})', 'expected a string key or "}" in the map', 12],
    ['set(name, ["a" "b"])', 'expected "," or "]" in the list', 16],
    ['set(name, 1 + IsMatch)', 'expected "(" after the converter name IsMatch', 22],
    ['name == "x"', 'a statement starts with an editor call', 1],
    ['set(name, "x")["k"]', 'only paths and converters may be indexed, not editors', 15],
  ];
  for (const [text, message, column] of cases) {
    const err = syntaxError(text);
    assert.equal(err.code, 'OTTL_SYNTAX', text);
    assert.ok(err.reason.includes(message), `${text}: ${err.reason}`);
    assert.equal(err.offset + 1, column, `${text}: column of ${err.reason}`);
    assert.ok(err.message.endsWith(`(at column ${column})`));
  }
  assert.equal(syntaxError('a == ', parseCondition).offset, 5);
});

test('fuzz: random statements parse or fail with an OttlError, never crash or hang', () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const count = Number(process.env.FUZZ_COUNT ?? 3000);
  const rand = prng(seed);
  const pieces = ['set', '(', ')', '[', ']', '{', '}', ',', '.', ':', '=', '==', '!=', '<', '>=', '+', '-', '*', '/', ' ', 'where', 'and', 'or', 'not', 'nil', 'true', '"s"', '"\\"', '1', '-2', '1.5', '.5', '0xff', 'attributes', '"k"', 'name', 'IsMatch', 'Concat', 'SPAN_KIND_SERVER', 'resource', 'span', '\n', '\\', '#', '"'];
  let parsed = 0;
  for (let i = 0; i < count; i++) {
    let text = '';
    const n = 1 + Math.floor(rand() * 24);
    for (let j = 0; j < n; j++) text += pieces[Math.floor(rand() * pieces.length)]!;
    for (const parse of [parseStatement, parseCondition, parseValue]) {
      try {
        parse(text);
        parsed++;
      } catch (err) {
        assert.ok(err instanceof OttlError, `seed ${seed}: ${JSON.stringify(text)} threw ${String(err)}`);
        assert.ok(err.offset >= 0 && err.offset <= text.length, `seed ${seed}: offset ${err.offset} outside ${JSON.stringify(text)}`);
      }
    }
  }
  // Random text rarely parses, but the generator must reach valid statements sometimes.
  assert.ok(parsed > 0, `seed ${seed}: nothing parsed`);
});
