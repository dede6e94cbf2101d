/**
 * Type-checks a parsed statement or condition against a context and the function table, and builds its
 * evaluator: a tree of functions made once at config time, so evaluating a span allocates only the values
 * a statement actually computes. Everything that can be known before data arrives is checked here: that
 * each path exists in the context and can be set where it is set, that each function exists, its
 * arguments' number, names and types, literal patterns, enum names, and that a condition is boolean.
 *
 * A comparison of an attribute (or a span's name) with a string literal compares bytes in the batch,
 * decoding nothing: the common filter and routing condition costs one attribute lookup.
 */
import { compileGoRegexp } from '../pipeline/config/go-regexp.js';
import { VALUE_STRING } from '../pipeline/batch/values.js';
import { bytesEqual } from '../pipeline/batch/wire.js';
import type { Argument, BoolNode, Call, Key, Statement, ValueNode } from './ast.js';
import { nodePos } from './ast.js';
import { CONVERTERS, STRING_HASHES } from './converters.js';
import { EDITORS } from './editors.js';
import { globToRegExp } from './editors.js';
import { OttlError, OttlRuntimeError } from './errors.js';
import { ACCEPTS, coerce, type Arg, type FunctionDef, type Param } from './function-def.js';
import { ENUMS, indexValue, pathContext, pathText, resolvePath, type Eval, type PathExpr } from './paths.js';
import { CTX_RESOURCE, CTX_SPAN, type ContextLevel, type Target } from './target.js';
import { OttlDuration, OttlTime, compare, typeOf, type OttlMap, type StaticType, type Value } from './values.js';

export type Predicate = (t: Target) => boolean;

interface Typed {
  type: StaticType;
  get: Eval;
  path: PathExpr | null;
}

const converters = new Map(CONVERTERS.map((f) => [f.name, f]));
const editors = new Map(EDITORS.map((f) => [f.name, f]));

export const CONVERTER_NAMES: readonly string[] = CONVERTERS.map((f) => f.name);
export const EDITOR_NAMES: readonly string[] = EDITORS.map((f) => f.name);

function typeError(message: string, pos: number): OttlError {
  return new OttlError('OTTL_TYPE', message, pos);
}

function isNumeric(t: StaticType): boolean {
  return t === 'int' || t === 'float';
}

/** OTTL's math on run-time values (LANGUAGE.md, "Math Expressions"). */
function applyMath(op: '+' | '-' | '*' | '/', a: Value, b: Value): Value {
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    switch (op) {
      case '+':
        return BigInt.asIntN(64, a + b);
      case '-':
        return BigInt.asIntN(64, a - b);
      case '*':
        return BigInt.asIntN(64, a * b);
      case '/':
        if (b === 0n) throw new OttlRuntimeError('attempted to divide by 0');
        return BigInt.asIntN(64, a / b);
    }
  }
  if (typeof a === 'number' && typeof b === 'number') {
    switch (op) {
      case '+':
        return a + b;
      case '-':
        return a - b;
      case '*':
        return a * b;
      case '/':
        if (b === 0) throw new OttlRuntimeError('attempted to divide by 0');
        return a / b;
    }
  }
  if (a instanceof OttlTime && b instanceof OttlTime && op === '-') return new OttlDuration(a.ns - b.ns);
  if (a instanceof OttlTime && b instanceof OttlDuration && (op === '+' || op === '-')) return new OttlTime(op === '+' ? a.ns + b.ns : a.ns - b.ns);
  if (a instanceof OttlDuration && b instanceof OttlTime && op === '+') return new OttlTime(a.ns + b.ns);
  if (a instanceof OttlDuration && b instanceof OttlDuration && (op === '+' || op === '-')) return new OttlDuration(op === '+' ? a.ns + b.ns : a.ns - b.ns);
  const name = (v: Value): string => (v === null ? 'nil' : typeOf(v));
  throw new OttlRuntimeError(`cannot apply ${op} to ${name(a)} and ${name(b)}`);
}

function mathResult(op: string, a: StaticType, b: StaticType): StaticType | null {
  if (a === 'any' || b === 'any') return 'any';
  if (isNumeric(a) && a === b) return a;
  if (a === 'time' && b === 'time' && op === '-') return 'duration';
  if (a === 'time' && b === 'duration' && (op === '+' || op === '-')) return 'time';
  if (a === 'duration' && b === 'time' && op === '+') return 'time';
  if (a === 'duration' && b === 'duration' && (op === '+' || op === '-')) return 'duration';
  return null;
}

export class Compiler {
  constructor(readonly context: ContextLevel) {}

  statement(s: Statement): Eval {
    const def = editors.get(s.editor.name);
    if (def === undefined) {
      const hint = converters.has(s.editor.name) ? ' (it is a converter; a statement needs an editor)' : '';
      throw new OttlError('OTTL_UNKNOWN_FUNCTION', `unknown editor ${s.editor.name}${hint}; known editors: ${EDITOR_NAMES.join(', ')}`, s.editor.pos);
    }
    const run = this.call(def, s.editor);
    if (s.where === null) return run;
    const cond = this.condition(s.where);
    return (t) => (cond(t) ? run(t) : null);
  }

  condition(b: BoolNode): Predicate {
    switch (b.t) {
      case 'or': {
        const items = b.items.map((x) => this.condition(x));
        return (t) => {
          for (let i = 0; i < items.length; i++) if (items[i]!(t)) return true;
          return false;
        };
      }
      case 'and': {
        const items = b.items.map((x) => this.condition(x));
        return (t) => {
          for (let i = 0; i < items.length; i++) if (!items[i]!(t)) return false;
          return true;
        };
      }
      case 'not': {
        const inner = this.condition(b.inner);
        return (t) => !inner(t);
      }
      case 'const': {
        const v = this.value(b.value);
        if (v.type !== 'bool' && v.type !== 'any') throw typeError(`a condition must be a comparison or return a boolean, but this returns ${v.type}`, b.pos);
        const get = v.get;
        return (t) => {
          const x = get(t);
          if (typeof x !== 'boolean') throw new OttlRuntimeError(`a condition returned ${x === null ? 'nil' : typeOf(x)}, not a boolean`);
          return x;
        };
      }
      case 'compare':
        return this.comparison(b.op, b.left, b.right);
    }
  }

  private comparison(op: '==' | '!=' | '<' | '<=' | '>' | '>=', leftNode: ValueNode, rightNode: ValueNode): Predicate {
    const left = this.value(leftNode);
    const right = this.value(rightNode);
    if (op === '==' || op === '!=') {
      const fast = this.stringEquality(left, rightNode) ?? this.stringEquality(right, leftNode);
      if (fast !== null) return op === '==' ? fast : (t) => !fast(t);
    }
    const l = left.get;
    const r = right.get;
    return (t) => compare(l(t), op, r(t));
  }

  /** `attributes["k"] == "text"` or `name == "text"` as a byte comparison in the batch. */
  private stringEquality(side: Typed, other: ValueNode): Predicate | null {
    if (other.t !== 'string' || side.path === null) return null;
    const text = Buffer.from(other.v, 'utf8');
    const p = side.path;
    const slow = p.get;
    const literal = other.v;
    if (p.attribute !== null && (p.attribute.level === CTX_SPAN || p.attribute.level === CTX_RESOURCE)) {
      const key = p.attribute.key;
      const span = p.attribute.level === CTX_SPAN;
      return (t) => {
        if (span ? t.spanAttrs !== null || t.spanKeyed !== null : t.resourceAttrs !== null || t.resourceKeyed !== null) return slow(t) === literal;
        const b = t.batch;
        if (!(span ? b.findSpanAttribute(t.span, key) : b.findResourceAttribute(t.resource, key))) return false;
        const f = b.found;
        return f.kind === VALUE_STRING && bytesEqual(b.bytes, f.valueStart, f.valueEnd, text);
      };
    }
    if (p.text === 'name' || p.text === 'span.name') {
      if (this.context !== CTX_SPAN && p.text === 'name') return null;
      return (t) => (t.name !== null ? t.name === literal : t.batch.spanNameEquals(t.span, text));
    }
    return null;
  }

  value(node: ValueNode): Typed {
    switch (node.t) {
      case 'nil':
        return { type: 'nil', get: () => null, path: null };
      case 'string':
      case 'bool':
      case 'int':
      case 'float':
      case 'bytes': {
        const v = node.v;
        return { type: node.t === 'string' ? 'string' : node.t, get: () => v, path: null };
      }
      case 'enum': {
        const v = ENUMS[node.name];
        if (v === undefined) throw typeError(`unknown enum ${node.name}; known: ${Object.keys(ENUMS).join(', ')}`, node.pos);
        return { type: 'int', get: () => v, path: null };
      }
      case 'path': {
        const p = resolvePath(node, this.context, (k) => this.value(k).get);
        return { type: p.type, get: p.get, path: p };
      }
      case 'call': {
        const def = converters.get(node.call.name);
        if (def === undefined) {
          const hint = editors.has(node.call.name.toLowerCase()) ? '' : '';
          throw new OttlError('OTTL_UNKNOWN_FUNCTION', `unknown converter ${node.call.name}${hint}; known converters: ${CONVERTER_NAMES.join(', ')}`, node.call.pos);
        }
        const get = this.call(def, node.call);
        if (node.call.keys.length === 0) return { type: def.returns, get, path: null };
        const keys = node.call.keys.map((k) => this.key(k));
        return {
          type: 'any',
          get: (t) => indexValue(get(t), keys, t, 0),
          path: null,
        };
      }
      case 'list': {
        const items = node.items.map((x) => this.value(x).get);
        return { type: 'list', get: (t) => items.map((g) => g(t)), path: null };
      }
      case 'map': {
        const entries = node.entries.map(([k, v]) => [k, this.value(v).get] as const);
        return {
          type: 'map',
          get: (t) => {
            const m: OttlMap = new Map();
            for (const [k, g] of entries) m.set(k, g(t));
            return m;
          },
          path: null,
        };
      }
      case 'math': {
        const a = this.value(node.left);
        const b = this.value(node.right);
        const type = mathResult(node.op, a.type, b.type);
        if (type === null) throw typeError(`cannot apply ${node.op} to ${a.type} and ${b.type}`, node.pos);
        const op = node.op;
        const ga = a.get;
        const gb = b.get;
        return { type, get: (t) => applyMath(op, ga(t), gb(t)), path: null };
      }
    }
  }

  private key(k: Key): Eval {
    if (k.str !== undefined) {
      const s = k.str;
      return () => s;
    }
    if (k.int !== undefined) {
      const n = k.int;
      return () => n;
    }
    return this.value(k.expr!).get;
  }

  /** Matches arguments to parameters, checks each, and builds the function. */
  private call(def: FunctionDef, call: Call): Eval {
    const byParam: (Argument | undefined)[] = new Array(def.params.length);
    let positional = 0;
    for (const a of call.args) {
      if (a.name === null) {
        if (positional >= def.params.length) throw typeError(`too many arguments to ${def.name}: it takes ${def.params.length} (${def.params.map((p) => p.name).join(', ')})`, a.pos);
        byParam[positional++] = a;
      } else {
        const i = def.params.findIndex((p) => p.name === a.name);
        if (i < 0) throw typeError(`${def.name} has no argument named ${a.name} (its arguments: ${def.params.map((p) => p.name).join(', ')})`, a.pos);
        if (byParam[i] !== undefined) throw typeError(`the argument ${a.name} of ${def.name} is given twice`, a.pos);
        byParam[i] = a;
      }
    }
    const args: Arg[] = def.params.map((p, i) => {
      const a = byParam[i];
      if (a === undefined) {
        if (p.optional) return undefined;
        throw typeError(`${def.name} needs the argument ${p.name} (its arguments: ${def.params.map((x) => x.name + (x.optional ? '?' : '')).join(', ')})`, call.pos);
      }
      return this.argument(def, p, a);
    });
    try {
      return def.build(args);
    } catch (err) {
      if (typeof err === 'string') throw typeError(`${def.name}: ${err}`, call.pos);
      throw err;
    }
  }

  private argument(def: FunctionDef, p: Param, a: Argument): Arg {
    const node = a.value;
    const pos = nodePos(node);
    const where = `the argument ${p.name} of ${def.name}`;
    switch (p.kind) {
      case 'setter':
      case 'mapsetter': {
        if (node.t !== 'path') throw typeError(`${where} must be a path that can be set, such as attributes["key"]`, pos);
        const v = this.value(node);
        const path = v.path!;
        if (p.kind === 'setter' && path.set === null) throw typeError(`${where}: the path ${path.text} cannot be set here`, pos);
        if (p.kind === 'mapsetter' && (path.writableMap === null || (v.type !== 'map' && v.type !== 'any'))) throw typeError(`${where}: the path ${path.text} is not a map that can be changed here`, pos);
        return path;
      }
      case 'lit_string':
        if (node.t !== 'string') throw typeError(`${where} must be a string literal`, pos);
        return node.v;
      case 'lit_int':
        if (node.t !== 'int') throw typeError(`${where} must be an integer literal`, pos);
        return node.v;
      case 'regex':
        if (node.t !== 'string') throw typeError(`${where} must be a string literal (a regular expression)`, pos);
        try {
          return compileGoRegexp(node.v);
        } catch (err) {
          throw typeError(`${where}: ${(err as Error).message}`, pos);
        }
      case 'glob':
        if (node.t !== 'string') throw typeError(`${where} must be a string literal (a glob pattern)`, pos);
        try {
          return globToRegExp(node.v);
        } catch (err) {
          throw typeError(`${where}: ${String(err)}`, pos);
        }
      case 'lit_strings':
        if (node.t !== 'list' || node.items.some((x) => x.t !== 'string')) throw typeError(`${where} must be a list of string literals, such as ["a", "b"]`, pos);
        return node.items.map((x) => (x as { v: string }).v);
      case 'getters':
        if (node.t !== 'list') throw typeError(`${where} must be a list, such as [attributes["a"], "-"]`, pos);
        return node.items.map((x) => coerce('stringlike', this.value(x).get));
      case 'function': {
        if (node.t !== 'enum' || !(node.name in STRING_HASHES)) throw typeError(`${where} must be one of ${Object.keys(STRING_HASHES).join(', ')}`, pos);
        return STRING_HASHES[node.name];
      }
      default: {
        const v = this.value(node);
        const accepts = ACCEPTS[p.kind];
        if (accepts !== undefined && v.type !== 'any' && !accepts.includes(v.type)) throw typeError(`${where} must be ${p.kind === 'stringlike' ? 'convertible to a string' : p.kind.replace('like', ' or convertible to one')}, but this is ${v.type}`, pos);
        return coerce(p.kind, v.get);
      }
    }
  }
}

/** Every path in a statement or condition, for context inference and the identity ordering check. */
export function pathsOf(node: Statement | BoolNode | ValueNode): Extract<ValueNode, { t: 'path' }>[] {
  const out: Extract<ValueNode, { t: 'path' }>[] = [];
  const visitValue = (v: ValueNode): void => {
    switch (v.t) {
      case 'path':
        out.push(v);
        for (const f of v.fields) for (const k of f.keys) if (k.expr) visitValue(k.expr);
        return;
      case 'call':
        visitCall(v.call);
        return;
      case 'list':
        v.items.forEach(visitValue);
        return;
      case 'map':
        v.entries.forEach(([, x]) => visitValue(x));
        return;
      case 'math':
        visitValue(v.left);
        visitValue(v.right);
        return;
      default:
        return;
    }
  };
  const visitCall = (c: Call): void => {
    c.args.forEach((a) => visitValue(a.value));
    for (const k of c.keys) if (k.expr) visitValue(k.expr);
  };
  const visitBool = (b: BoolNode): void => {
    switch (b.t) {
      case 'or':
      case 'and':
        b.items.forEach(visitBool);
        return;
      case 'not':
        visitBool(b.inner);
        return;
      case 'compare':
        visitValue(b.left);
        visitValue(b.right);
        return;
      case 'const':
        visitValue(b.value);
        return;
    }
  };
  if ('editor' in node) {
    visitCall(node.editor);
    if (node.where) visitBool(node.where);
  } else if (node.t === 'or' || node.t === 'and' || node.t === 'not' || node.t === 'compare' || node.t === 'const') {
    visitBool(node as BoolNode);
  } else {
    visitValue(node as ValueNode);
  }
  return out;
}

/**
 * The context of a statement written with context-named paths (`set(span.attributes["k"], resource.…)`):
 * the innermost context its paths name, as the Collector infers it. Every path must name one.
 */
export function inferContext(node: Statement | BoolNode): ContextLevel {
  const paths = pathsOf(node);
  if (paths.length === 0) throw new OttlError('OTTL_CONTEXT', 'cannot infer the context: the statement has no path; give the context with `context:`', 0);
  let level = -1;
  for (const p of paths) {
    const c = pathContext(p.fields);
    if (c === null) {
      throw new OttlError('OTTL_CONTEXT', `cannot infer the context: the path ${pathText(p.fields)} names none; write it with its context (span.${pathText(p.fields)}, resource.…) or give the context with \`context:\``, p.pos);
    }
    if (c > level) level = c;
  }
  return level as ContextLevel;
}
