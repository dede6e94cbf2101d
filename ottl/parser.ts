/**
 * OTTL's grammar (the Collector's pkg/ottl grammar.go), parsed by recursive descent into ast.ts nodes:
 *
 *   statement   = editor [ "where" boolExpr ]
 *   boolExpr    = term { "or" term } ;  term = boolValue { "and" boolValue }
 *   boolValue   = [ "not" ] ( comparison | "true" | "false" | converter | "(" boolExpr ")" )
 *   comparison  = value op value        op = == != < <= > >=
 *   value       = nil | math | bytes | string | bool | ENUM | map | list
 *   math        = addTerm { (+|-) addTerm } ; addTerm = mathValue { (*|/) mathValue }
 *   mathValue   = converter | float | int | path | "(" math ")"
 *   editor      = lower-case-name "(" args ")" ; converter = Upper-case-name "(" args ")" { key }
 *   path        = name { key } { "." name { key } } ;  key = "[" ( string | int | path | converter ) "]"
 *
 * One difference in lexing: the Collector's lexer takes a sign glued to digits as part of the number even
 * after a value (`x -1` is `x` then `-1`, a syntax error there); here a sign after a value is an operator.
 * Everything the Collector parses parses here the same way.
 */
import type { Argument, BoolNode, Call, CompareOp, Key, PathField, Statement, ValueNode } from './ast.js';
import { OttlError } from './errors.js';

type TokenKind = 'ident' | 'int' | 'float' | 'string' | 'bytes' | 'op' | 'punct' | 'eof';

interface Token {
  kind: TokenKind;
  text: string;
  pos: number;
  /** The decoded value of a string literal. */
  value?: string;
}

const WORD_OPS = new Set(['not', 'and', 'or']);
const COMPARE_OPS = new Set(['==', '!=', '<', '<=', '>', '>=']);

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isIdentStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}
function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c);
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t', r: '\r', '/': '/', b: '\b', f: '\f' };

function lex(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = text.length;
  const valueEnded = (): boolean => {
    const last = out[out.length - 1];
    if (last === undefined) return false;
    if (last.kind === 'ident') return !WORD_OPS.has(last.text);
    return last.kind === 'int' || last.kind === 'float' || last.kind === 'string' || last.kind === 'bytes' || last.text === ')' || last.text === ']' || last.text === '}';
  };
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      i++;
      continue;
    }
    const start = i;
    if (c === 0x30 && (text[i + 1] === 'x' || text[i + 1] === 'X') && /[0-9a-fA-F]/.test(text[i + 2] ?? '')) {
      i += 2;
      while (i < n && /[0-9a-fA-F]/.test(text[i]!)) i++;
      out.push({ kind: 'bytes', text: text.slice(start, i), pos: start });
      continue;
    }
    const signed = (c === 0x2b || c === 0x2d) && !valueEnded();
    const numStart = signed ? i + 1 : i;
    const d0 = text.charCodeAt(numStart);
    if (isDigit(d0) || (d0 === 0x2e && isDigit(text.charCodeAt(numStart + 1)))) {
      i = numStart;
      while (i < n && isDigit(text.charCodeAt(i))) i++;
      let kind: TokenKind = 'int';
      if (text[i] === '.' && isDigit(text.charCodeAt(i + 1))) {
        kind = 'float';
        i++;
        while (i < n && isDigit(text.charCodeAt(i))) i++;
        if ((text[i] === 'e' || text[i] === 'E') && /^[eE][-+]?\d/.test(text.slice(i, i + 3))) {
          i += text[i + 1] === '-' || text[i + 1] === '+' ? 2 : 1;
          while (i < n && isDigit(text.charCodeAt(i))) i++;
        }
      }
      out.push({ kind, text: text.slice(start, i), pos: start });
      continue;
    }
    if (c === 0x22) {
      let value = '';
      i++;
      for (;;) {
        if (i >= n) throw new OttlError('OTTL_SYNTAX', 'unterminated string', start);
        const ch = text[i]!;
        if (ch === '"') break;
        if (ch === '\\') {
          const e = text[i + 1];
          if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            value += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
            i += 6;
            continue;
          }
          const rep = e === undefined ? undefined : ESCAPES[e];
          if (rep === undefined) throw new OttlError('OTTL_SYNTAX', `invalid escape \\${e ?? ''} in string`, i);
          value += rep;
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      i++;
      out.push({ kind: 'string', text: text.slice(start, i), pos: start, value });
      continue;
    }
    if (isIdentStart(c)) {
      while (i < n && isIdentPart(text.charCodeAt(i))) i++;
      out.push({ kind: 'ident', text: text.slice(start, i), pos: start });
      continue;
    }
    const two = text.slice(i, i + 2);
    if (COMPARE_OPS.has(two)) {
      out.push({ kind: 'op', text: two, pos: start });
      i += 2;
      continue;
    }
    const ch = text[i]!;
    if ('<>+-*/'.includes(ch)) {
      out.push({ kind: 'op', text: ch, pos: start });
      i++;
      continue;
    }
    if ('()[]{},.:='.includes(ch)) {
      out.push({ kind: 'punct', text: ch, pos: start });
      i++;
      continue;
    }
    throw new OttlError('OTTL_SYNTAX', `unexpected character ${JSON.stringify(ch)}`, start);
  }
  out.push({ kind: 'eof', text: '', pos: n });
  return out;
}

function describe(t: Token): string {
  return t.kind === 'eof' ? 'the end of the statement' : JSON.stringify(t.text);
}

const isUpper = (name: string): boolean => name.charCodeAt(0) >= 0x41 && name.charCodeAt(0) <= 0x5a;
const isEnumName = (name: string): boolean => /^[A-Z][A-Z0-9_]*$/.test(name);

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(ahead = 0): Token {
    return this.toks[Math.min(this.i + ahead, this.toks.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }
  private is(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind !== 'string' && t.text === text;
  }
  private expect(text: string, what = JSON.stringify(text)): Token {
    const t = this.peek();
    if (!this.is(text)) throw new OttlError('OTTL_SYNTAX', `expected ${what}, found ${describe(t)}`, t.pos);
    return this.next();
  }
  end(): void {
    const t = this.peek();
    if (t.kind !== 'eof') throw new OttlError('OTTL_SYNTAX', `unexpected ${describe(t)} after the end of the expression`, t.pos);
  }

  statement(): Statement {
    const t = this.peek();
    if (t.kind !== 'ident' || !this.is('(', 1)) throw new OttlError('OTTL_SYNTAX', `a statement starts with an editor call such as set(...), found ${describe(t)}`, t.pos);
    if (isUpper(t.text)) throw new OttlError('OTTL_SYNTAX', `editor names must start with a lowercase letter but got '${t.text}' (a converter cannot be a statement)`, t.pos);
    const editor = this.call();
    if (editor.keys.length > 0) throw new OttlError('OTTL_SYNTAX', `only paths and converters may be indexed, not editors, but got ${editor.name}[...]`, editor.keys[0]!.pos);
    let where: BoolNode | null = null;
    if (this.is('where')) {
      this.next();
      where = this.boolExpr();
    }
    this.end();
    return { editor, where };
  }

  boolExpr(): BoolNode {
    const pos = this.peek().pos;
    const items = [this.term()];
    while (this.is('or')) {
      this.next();
      items.push(this.term());
    }
    return items.length === 1 ? items[0]! : { t: 'or', items, pos };
  }

  private term(): BoolNode {
    const pos = this.peek().pos;
    const items = [this.boolValue()];
    while (this.is('and')) {
      this.next();
      items.push(this.boolValue());
    }
    return items.length === 1 ? items[0]! : { t: 'and', items, pos };
  }

  private boolValue(): BoolNode {
    const pos = this.peek().pos;
    if (this.is('not')) {
      this.next();
      return { t: 'not', inner: this.boolValue(), pos };
    }
    // A parenthesis opens either a boolean sub-expression or a math group on a comparison's left side:
    // try the boolean reading first, as the Collector's grammar does.
    if (this.is('(')) {
      const save = this.i;
      try {
        this.next();
        const inner = this.boolExpr();
        this.expect(')');
        if (!(this.peek().kind === 'op' && COMPARE_OPS.has(this.peek().text)) && !this.isMathOp()) return inner;
      } catch (err) {
        if (!(err instanceof OttlError)) throw err;
      }
      this.i = save;
    }
    const left = this.value();
    const op = this.peek();
    if (op.kind === 'op' && COMPARE_OPS.has(op.text)) {
      this.next();
      const right = this.value();
      return { t: 'compare', op: op.text as CompareOp, left, right, pos };
    }
    if ((left.t === 'bool') || (left.t === 'call')) return { t: 'const', value: left, pos };
    throw new OttlError('OTTL_SYNTAX', `expected a comparison operator (==, !=, <, <=, >, >=) after this value, found ${describe(op)}`, op.pos);
  }

  private isMathOp(): boolean {
    const t = this.peek();
    return t.kind === 'op' && '+-*/'.includes(t.text) && t.text.length === 1;
  }

  value(): ValueNode {
    const t = this.peek();
    if (t.kind === 'ident' && t.text === 'nil') {
      this.next();
      return { t: 'nil', pos: t.pos };
    }
    if (t.kind === 'ident' && (t.text === 'true' || t.text === 'false')) {
      this.next();
      return { t: 'bool', v: t.text === 'true', pos: t.pos };
    }
    if (t.kind === 'string') {
      this.next();
      return { t: 'string', v: t.value!, pos: t.pos };
    }
    if (t.kind === 'bytes') {
      this.next();
      const hex = t.text.slice(2);
      if (hex.length % 2 !== 0) throw new OttlError('OTTL_SYNTAX', `byte literal ${t.text} has an odd number of hex digits`, t.pos);
      return { t: 'bytes', v: Uint8Array.from(Buffer.from(hex, 'hex')), pos: t.pos };
    }
    if (t.kind === 'ident' && isEnumName(t.text) && !this.is('(', 1)) {
      this.next();
      return { t: 'enum', name: t.text, pos: t.pos };
    }
    if (this.is('{')) return this.map();
    if (this.is('[')) return this.list();
    return this.math();
  }

  private map(): ValueNode {
    const pos = this.expect('{').pos;
    const entries: [string, ValueNode][] = [];
    while (!this.is('}')) {
      const k = this.peek();
      if (k.kind !== 'string') throw new OttlError('OTTL_SYNTAX', `expected a string key or "}" in the map, found ${describe(k)}`, k.pos);
      this.next();
      this.expect(':');
      entries.push([k.value!, this.value()]);
      if (this.is(',')) this.next();
      else if (!this.is('}')) throw new OttlError('OTTL_SYNTAX', `expected "," or "}" in the map, found ${describe(this.peek())}`, this.peek().pos);
    }
    this.next();
    return { t: 'map', entries, pos };
  }

  private list(): ValueNode {
    const pos = this.expect('[').pos;
    const items: ValueNode[] = [];
    while (!this.is(']')) {
      items.push(this.value());
      if (this.is(',')) this.next();
      else if (!this.is(']')) throw new OttlError('OTTL_SYNTAX', `expected "," or "]" in the list, found ${describe(this.peek())}`, this.peek().pos);
    }
    this.next();
    return { t: 'list', items, pos };
  }

  private math(): ValueNode {
    let left = this.addTerm();
    while (this.isMathOp() && (this.is('+') || this.is('-'))) {
      const op = this.next();
      left = { t: 'math', op: op.text as '+' | '-', left, right: this.addTerm(), pos: op.pos };
    }
    return left;
  }

  private addTerm(): ValueNode {
    let left = this.mathValue();
    while (this.is('*') || this.is('/')) {
      const op = this.next();
      left = { t: 'math', op: op.text as '*' | '/', left, right: this.mathValue(), pos: op.pos };
    }
    return left;
  }

  private mathValue(): ValueNode {
    const t = this.peek();
    if (this.is('(')) {
      this.next();
      const inner = this.math();
      this.expect(')');
      return inner;
    }
    if (t.kind === 'int') {
      this.next();
      return { t: 'int', v: BigInt.asIntN(64, BigInt(t.text)), pos: t.pos };
    }
    if (t.kind === 'float') {
      this.next();
      return { t: 'float', v: Number(t.text), pos: t.pos };
    }
    if (t.kind === 'ident' && !WORD_OPS.has(t.text)) {
      if (this.is('(', 1)) {
        if (!isUpper(t.text)) throw new OttlError('OTTL_SYNTAX', `converter names must start with an uppercase letter but got '${t.text}' (an editor cannot be a value)`, t.pos);
        return { t: 'call', call: this.call() };
      }
      if (isUpper(t.text)) throw new OttlError('OTTL_SYNTAX', `expected "(" after the converter name ${t.text}`, this.peek(1).pos);
      return this.path();
    }
    throw new OttlError('OTTL_SYNTAX', `expected a value, found ${describe(t)}`, t.pos);
  }

  private call(): Call {
    const name = this.next();
    this.expect('(');
    const args: Argument[] = [];
    let named = false;
    while (!this.is(')')) {
      const pos = this.peek().pos;
      let argName: string | null = null;
      if (this.peek().kind === 'ident' && this.is('=', 1)) {
        argName = this.next().text;
        this.next();
        named = true;
      } else if (named) {
        throw new OttlError('OTTL_SYNTAX', 'an unnamed argument cannot follow a named one', pos);
      }
      // A bare function name (`SHA256` in some converters' arguments) is a value of its own.
      const t = this.peek();
      const value: ValueNode = t.kind === 'ident' && isUpper(t.text) && !isEnumName(t.text) && !this.is('(', 1) ? (this.next(), { t: 'enum', name: t.text, pos: t.pos }) : this.value();
      args.push({ name: argName, value, pos });
      if (this.is(',')) this.next();
      else if (!this.is(')')) throw new OttlError('OTTL_SYNTAX', `expected "," or ")" in the arguments of ${name.text}, found ${describe(this.peek())}`, this.peek().pos);
    }
    this.next();
    return { name: name.text, args, keys: this.keys(), pos: name.pos };
  }

  private keys(): Key[] {
    const keys: Key[] = [];
    while (this.is('[')) {
      const pos = this.next().pos;
      const t = this.peek();
      if (t.kind === 'string') {
        this.next();
        keys.push({ pos, str: t.value! });
      } else if (t.kind === 'int') {
        this.next();
        keys.push({ pos, int: BigInt(t.text) });
      } else if (t.kind === 'ident') {
        keys.push({ pos, expr: this.mathValue() });
      } else {
        throw new OttlError('OTTL_SYNTAX', `expected a string, an integer, a path or a converter as a key, found ${describe(t)}`, t.pos);
      }
      this.expect(']');
    }
    return keys;
  }

  private path(): ValueNode {
    const pos = this.peek().pos;
    const fields: PathField[] = [];
    for (;;) {
      const t = this.next();
      if (t.kind !== 'ident' || isUpper(t.text) || WORD_OPS.has(t.text)) throw new OttlError('OTTL_SYNTAX', `expected a path segment (lower-case name), found ${describe(t)}`, t.pos);
      fields.push({ name: t.text, keys: this.keys(), pos: t.pos });
      if (!this.is('.')) break;
      this.next();
    }
    return { t: 'path', fields, pos };
  }
}

/** Parses a statement: an editor call with an optional `where` condition. Throws OttlError. */
export function parseStatement(text: string): Statement {
  return new Parser(lex(text)).statement();
}

/** Parses a condition (a boolean expression, as filter and routing take). Throws OttlError. */
export function parseCondition(text: string): BoolNode {
  const p = new Parser(lex(text));
  const c = p.boolExpr();
  p.end();
  return c;
}

/** Parses a value expression (as the transform's `set` second argument would be). Throws OttlError. */
export function parseValue(text: string): ValueNode {
  const p = new Parser(lex(text));
  const v = p.value();
  p.end();
  return v;
}
