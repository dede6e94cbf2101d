import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GoRegexpError, compileGoRegexp, goReplaceAll, goTest, replaceEveryLine, translateGoRegexp } from './go-regexp.js';

const X = () => 'X';
const replace = (pattern: string, s: string) => goReplaceAll(compileGoRegexp(pattern), s, X);

test('ReplaceAll follows Go: no replacement of an empty match right after a match', () => {
  // Go: regexp.MustCompile(p).ReplaceAllString(s, "X")
  assert.equal(replace('a*', 'baaac'), 'XbXcX');
  assert.equal(replace('x*', 'abc'), 'XaXbXcX');
  assert.equal(replace('.*', 'abc'), 'X');
  assert.equal(replace('.*', ''), 'X');
  assert.equal(replace('.*', 'a\n\nb'), 'X\nX\nX');
  assert.equal(replace('[0-9]+', 'a1b22c333'), 'aXbXcX');
  assert.equal(replace('b', 'aaa'), 'aaa');
  assert.equal(replace('', '😀a'), 'X😀XaX', 'an astral character is one step');
  // JavaScript would replace the empty match after "aaa" as well.
  assert.equal('baaac'.replace(/a*/g, 'X'), 'XbXXcX');
});

test('replaceEveryLine is ReplaceAll with ".*"', () => {
  for (const s of ['', 'abc', 'a\nb', 'a\n', '\n', 'a\n\nb', '\r\n']) {
    assert.equal(replaceEveryLine(s, X), replace('.*', s), JSON.stringify(s));
  }
});

test('RE2 constructs are translated to what matches the same text', () => {
  assert.ok(goTest(compileGoRegexp('a.c'), 'a\rc'), 'RE2 . matches \\r');
  assert.ok(!goTest(compileGoRegexp('a.c'), 'a\nc'));
  assert.ok(goTest(compileGoRegexp('(?s)a.c'), 'a\nc'));
  assert.ok(goTest(compileGoRegexp('(?i)TOKEN'), 'my_token'));
  assert.ok(goTest(compileGoRegexp('(?im)^tok$'), 'x\nTOK\ny'));
  assert.ok(!goTest(compileGoRegexp('a\\sb'), 'a\u00a0b'), 'RE2 \\s is ASCII only');
  assert.ok(!goTest(compileGoRegexp('a\\sb'), 'a\vb'), 'RE2 \\s has no vertical tab');
  assert.ok(goTest(compileGoRegexp('a\\Sb'), 'a\u00a0b'));
  assert.ok(goTest(compileGoRegexp('\\Aab'), 'abc') && !goTest(compileGoRegexp('\\Abc'), 'abc'));
  assert.ok(goTest(compileGoRegexp('bc\\z'), 'abc') && !goTest(compileGoRegexp('ab\\z'), 'abc'));
  assert.ok(goTest(compileGoRegexp('\\Qa.b*\\E+'), 'a.b**') && !goTest(compileGoRegexp('\\Qa.b\\E'), 'axb'));
  assert.ok(goTest(compileGoRegexp('\\x41\\x{42}\\101\\a'), 'ABA\x07'));
  assert.ok(goTest(compileGoRegexp('\\x{1F600}+'), '😀😀'));
  assert.ok(goTest(compileGoRegexp('^[[:alpha:]_][[:digit:]]+$'), '_12') && !goTest(compileGoRegexp('^[[:alpha:]]$'), '1'));
  assert.ok(goTest(compileGoRegexp('[]a]+'), ']a]'));
  assert.ok(goTest(compileGoRegexp('[[a]'), '['));
  assert.ok(goTest(compileGoRegexp('(?P<card>4[0-9]{3})'), '4111'));
  assert.ok(goTest(compileGoRegexp('\\#\\@\\%'), '#@%'));
  assert.deepEqual(translateGoRegexp('(?i)a.b'), { source: 'a[^\\n]b', flags: 'i' });
});

test('what RE2 rejects or this translation cannot match faithfully is refused', () => {
  const refused: [string, RegExp][] = [
    ['(?=a)', /lookaround/],
    ['(?<!a)b', /lookaround/],
    ['a(?i)b', /inline flags are accepted only as a leading/],
    ['(?i:a)', /inline flags/],
    ['(?U)a*', /inline flag U/],
    ['(a)\\1', /backreferences/],
    ['\\pL', /Unicode character classes/],
    ['\\p{Greek}', /Unicode character classes/],
    ['\\y', /invalid escape sequence \\y/],
    ['\\8', /invalid escape sequence \\8/],
    ['\\', /trailing backslash/],
    ['[a', /missing closing \]/],
    ['[[:foo:]]', /invalid character class range/],
    ['[[:^alpha:]]', /negated POSIX class/],
    ['[\\b]', /inside a character class/],
    ['x{1001}', /invalid repeat count/],
    ['(', /invalid regular expression/],
    ['a**', /invalid regular expression/],
  ];
  for (const [p, why] of refused) {
    assert.throws(() => compileGoRegexp(p), (e: unknown) => e instanceof GoRegexpError && why.test(e.message), p);
  }
});
