/**
 * The OpenTelemetry Collector compiles the patterns of the redaction processor and of OTTL's functions with
 * Go's regexp (RE2 syntax). Operators copy those patterns here, so each one is translated to a JavaScript
 * RegExp that matches the same text, and what cannot be translated faithfully is refused with a message
 * naming the construct:
 * a pattern never silently means something else here than in the Collector.
 *
 * Translated: a leading `(?i)`/`(?m)`/`(?s)` flag group; `.` (RE2's matches `\r`, JavaScript's does not);
 * `\s`/`\S` (ASCII only in RE2); `\A`, `\z`, `\a`, `\x{…}`, octal escapes, `\Q…\E`; `(?P<name>…)`; POSIX
 * classes such as `[[:alpha:]]`. Refused: inline flags elsewhere, `(?U)`, lookaround and backreferences
 * (not RE2), `\p{…}` Unicode classes, escapes RE2 rejects, repeat counts over 1000.
 *
 * Known differences left: RE2 matches in linear time while JavaScript backtracks (a pattern with nested
 * quantifiers can be slow on hostile values; prefer simple patterns); `(?m)` line anchors in JavaScript
 * also break at `\r`, U+2028 and U+2029; case folding under `(?i)` outside ASCII may differ slightly.
 */

export class GoRegexpError extends Error {
  override readonly name = 'GoRegexpError';
}

/** RE2's `\s`: ASCII space, tab, newline, form feed, carriage return (no vertical tab, no Unicode spaces). */
const SPACE_SET = '\\t\\n\\f\\r ';

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

const MAX_REPEAT = 1000;
const JS_SYNTAX_CHARS = /[\\^$.*+?()[\]{}|/-]/;

interface Piece {
  text: string;
  next: number;
}

function fail(pattern: string, what: string): never {
  throw new GoRegexpError(`${what} in ${JSON.stringify(pattern)}`);
}

function hex4(code: number): string {
  return '\\u' + code.toString(16).padStart(4, '0');
}

/** A code point as JavaScript pattern text matching exactly it (outside a class: a group for a pair). */
function codePoint(pattern: string, code: number, inClass: boolean): string {
  if (code > 0x10ffff) fail(pattern, 'escape sequence out of range');
  if (code <= 0xffff) return hex4(code);
  if (inClass) fail(pattern, 'characters beyond U+FFFF inside a character class are not supported');
  const v = code - 0x10000;
  return `(?:${hex4(0xd800 + (v >> 10))}${hex4(0xdc00 + (v & 0x3ff))})`;
}

function isOctal(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '7';
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9A-Fa-f]$/.test(c);
}

function escape(pattern: string, i: number, inClass: boolean): Piece {
  const d = pattern[i + 1];
  if (d === undefined) fail(pattern, 'trailing backslash at end of expression');
  switch (d) {
    case 'a':
      return { text: '\\x07', next: i + 2 };
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case 'v':
    case 'd':
    case 'D':
    case 'w':
    case 'W':
      return { text: '\\' + d, next: i + 2 };
    case 's':
      return { text: inClass ? SPACE_SET : `[${SPACE_SET}]`, next: i + 2 };
    case 'S':
      if (inClass) fail(pattern, '\\S inside a character class is not supported');
      return { text: `[^${SPACE_SET}]`, next: i + 2 };
    case 'b':
    case 'B':
      if (inClass) fail(pattern, `invalid escape sequence \\${d} inside a character class`);
      return { text: '\\' + d, next: i + 2 };
    case 'A':
      if (inClass) fail(pattern, 'invalid escape sequence \\A inside a character class');
      return { text: '(?<![\\s\\S])', next: i + 2 };
    case 'z':
      if (inClass) fail(pattern, 'invalid escape sequence \\z inside a character class');
      return { text: '(?![\\s\\S])', next: i + 2 };
    case 'p':
    case 'P':
      return fail(pattern, `Unicode character classes (\\${d}) are not supported`);
    case 'x': {
      if (pattern[i + 2] === '{') {
        const close = pattern.indexOf('}', i + 3);
        const digits = close < 0 ? '' : pattern.slice(i + 3, close);
        if (digits.length === 0 || !/^[0-9A-Fa-f]+$/.test(digits)) fail(pattern, 'invalid escape sequence \\x{');
        return { text: codePoint(pattern, parseInt(digits, 16), inClass), next: close + 1 };
      }
      if (!isHex(pattern[i + 2]) || !isHex(pattern[i + 3])) fail(pattern, 'invalid escape sequence \\x');
      return { text: hex4(parseInt(pattern.slice(i + 2, i + 4), 16)), next: i + 4 };
    }
    default:
      break;
  }
  if (d >= '0' && d <= '7') {
    // RE2: \0 and \1-\7 followed by another octal digit start an octal escape of up to three digits; a
    // lone \1-\7 would be a backreference, which RE2 does not have.
    if (d !== '0' && !isOctal(pattern[i + 2])) fail(pattern, `backreferences (\\${d}) are not supported by RE2`);
    let j = i + 2;
    while (j < i + 4 && isOctal(pattern[j])) j++;
    return { text: hex4(parseInt(pattern.slice(i + 1, j), 8)), next: j };
  }
  const code = d.charCodeAt(0);
  if (code >= 0x80 || /[A-Za-z0-9]/.test(d)) fail(pattern, `invalid escape sequence \\${d}`);
  // ASCII punctuation: a literal in both dialects.
  return { text: '\\' + d, next: i + 2 };
}

function charClass(pattern: string, i: number): Piece {
  let j = i + 1;
  let out = '[';
  if (pattern[j] === '^') {
    out += '^';
    j++;
  }
  let first = true;
  for (;;) {
    if (j >= pattern.length) fail(pattern, 'missing closing ]');
    const c = pattern[j]!;
    if (c === ']' && !first) return { text: out + ']', next: j + 1 };
    first = false;
    if (c === '[' && pattern[j + 1] === ':') {
      const close = pattern.indexOf(':]', j + 2);
      if (close >= 0) {
        const name = pattern.slice(j + 2, close);
        if (name.startsWith('^')) fail(pattern, `negated POSIX class [:${name}:] is not supported`);
        const set = POSIX_CLASSES[name];
        if (set === undefined) fail(pattern, `invalid character class range [:${name}:]`);
        out += set;
        j = close + 2;
        continue;
      }
    }
    if (c === '\\') {
      if (pattern[j + 1] === 'Q') fail(pattern, '\\Q inside a character class is not supported');
      const p = escape(pattern, j, true);
      out += p.text;
      j = p.next;
      continue;
    }
    out += c === '[' || c === ']' ? '\\' + c : c;
    j++;
  }
}

/** RE2 pattern text → JavaScript source and flags. Throws GoRegexpError. */
export function translateGoRegexp(pattern: string): { source: string; flags: string } {
  let i = 0;
  let flags = '';
  let dotAll = false;
  for (;;) {
    const m = /^\(\?([A-Za-z]+)\)/.exec(pattern.slice(i));
    if (m === null) break;
    for (const f of m[1]!) {
      if (f === 'i' || f === 'm') {
        if (!flags.includes(f)) flags += f;
      } else if (f === 's') dotAll = true;
      else fail(pattern, `the inline flag ${f} is not supported`);
    }
    i += m[0].length;
  }
  let out = '';
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i]!;
    if (c === '\\') {
      if (pattern[i + 1] === 'Q') {
        const end = pattern.indexOf('\\E', i + 2);
        const lit = pattern.slice(i + 2, end < 0 ? n : end);
        for (const ch of lit) out += JS_SYNTAX_CHARS.test(ch) ? '\\' + ch : ch;
        i = end < 0 ? n : end + 2;
        continue;
      }
      const p = escape(pattern, i, false);
      out += p.text;
      i = p.next;
      continue;
    }
    if (c === '[') {
      const p = charClass(pattern, i);
      out += p.text;
      i = p.next;
      continue;
    }
    if (c === '.') {
      out += dotAll ? '[\\s\\S]' : '[^\\n]';
      i++;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      if (pattern.startsWith('(?:', i)) {
        out += '(?:';
        i += 3;
        continue;
      }
      if (pattern.startsWith('(?P<', i)) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (pattern.startsWith('(?<', i) && pattern[i + 3] !== '=' && pattern[i + 3] !== '!') {
        out += '(?<';
        i += 3;
        continue;
      }
      fail(pattern, `unsupported group syntax at offset ${i} (RE2 has no lookaround; inline flags are accepted only as a leading (?i), (?m) or (?s))`);
    }
    if (c === '{') {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
      if (m !== null && (Number(m[1]) > MAX_REPEAT || (m[2] !== undefined && m[2] !== '' && Number(m[2]) > MAX_REPEAT))) {
        fail(pattern, `invalid repeat count ${m[0]} (RE2 allows at most ${MAX_REPEAT})`);
      }
    }
    out += c;
    i++;
  }
  return { source: out, flags };
}

/** Compiles an RE2 pattern to a global JavaScript RegExp (for goTest and goReplaceAll). Throws GoRegexpError. */
export function compileGoRegexp(pattern: string): RegExp {
  const { source, flags } = translateGoRegexp(pattern);
  try {
    return new RegExp(source, flags + 'g');
  } catch (err) {
    throw new GoRegexpError(`invalid regular expression ${JSON.stringify(pattern)}: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** The problem with a pattern, or null when it compiles: for config validation. */
export function goRegexpProblem(pattern: string): string | null {
  try {
    compileGoRegexp(pattern);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Go's MatchString: whether the pattern matches anywhere in `s`. `re` is from compileGoRegexp. */
export function goTest(re: RegExp, s: string): boolean {
  re.lastIndex = 0;
  const r = re.test(s);
  re.lastIndex = 0;
  return r;
}

/**
 * Go's ReplaceAllStringFunc: every leftmost non-overlapping match replaced by `repl(match)`, except an empty
 * match right after a previous match. (JavaScript's replace would also replace that one: ".*" on "abc"
 * gives two replacements there, one in Go.)
 */
export function goReplaceAll(re: RegExp, src: string, repl: (match: string) => string): string {
  return goReplaceAllExec(re, src, (m) => repl(m[0]));
}

/** goReplaceAll with the whole match (groups included) given to `repl`: for Go's template expansion. */
export function goReplaceAllExec(re: RegExp, src: string, repl: (match: RegExpExecArray) => string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  const n = src.length;
  while (searchPos <= n) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (m === null) break;
    const a0 = m.index;
    const a1 = a0 + m[0].length;
    out += src.slice(lastMatchEnd, a0);
    if (a1 > lastMatchEnd || a0 === 0) out += repl(m);
    lastMatchEnd = a1;
    // Advance past the match, always by at least one character (a surrogate pair is one character).
    let width = 0;
    if (searchPos < n) {
      const cu = src.charCodeAt(searchPos);
      width = cu >= 0xd800 && cu <= 0xdbff && searchPos + 1 < n && (src.charCodeAt(searchPos + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
    }
    if (searchPos + width > a1) searchPos += width;
    else if (searchPos + 1 > a1) searchPos++;
    else searchPos = a1;
  }
  re.lastIndex = 0;
  return out + src.slice(lastMatchEnd);
}

/**
 * What Go's ReplaceAllStringFunc gives with the pattern ".*": each line (text between newlines, empty
 * ones included) replaced once. This is how the Collector masks the whole value of a blocked key.
 */
export function replaceEveryLine(src: string, repl: (line: string) => string): string {
  if (src.indexOf('\n') < 0) return repl(src);
  const lines = src.split('\n');
  for (let i = 0; i < lines.length; i++) lines[i] = repl(lines[i]!);
  return lines.join('\n');
}
