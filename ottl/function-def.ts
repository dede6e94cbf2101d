/**
 * How OTTL functions are declared: parameters with the Collector's kinds (Getter, StringGetter,
 * StringLikeGetter, ..., literal strings and ints, Setter) so the checker can refuse a wrong argument at
 * config time, and coercions that the typed getters apply at run time.
 */
import type { PathExpr, Eval } from './paths.js';
import { OttlRuntimeError } from './errors.js';
import { asString, typeOf, type StaticType, type Value } from './values.js';
import { OttlDuration, OttlTime } from './values.js';

export type ParamKind =
  | 'getter'
  | 'string'
  | 'stringlike'
  | 'int'
  | 'intlike'
  | 'float'
  | 'floatlike'
  | 'bool'
  | 'map'
  | 'time'
  | 'duration'
  | 'bytes'
  /** A settable path (set's target; replace_pattern's). */
  | 'setter'
  /** A settable map path that the editor changes in place (delete_key, keep_keys, merge_maps...). */
  | 'mapsetter'
  /** Literals, checked and prepared at config time. */
  | 'lit_string'
  | 'lit_int'
  | 'regex'
  | 'glob'
  | 'lit_strings'
  /** A list of values (Concat's). */
  | 'getters'
  /** A converter's name as an argument (replace_pattern's optional hash function). */
  | 'function';

export interface Param {
  name: string;
  kind: ParamKind;
  optional?: boolean;
}

/** An argument as a function's build receives it, by its parameter's kind. */
export type Arg = Eval | PathExpr | string | bigint | RegExp | string[] | Eval[] | ((s: string) => string) | undefined;

export interface FunctionDef {
  name: string;
  params: Param[];
  /** What a converter returns; editors return nothing. */
  returns: StaticType;
  /**
   * Builds the evaluator once at config time. Errors about argument values known then (a negative limit,
   * an unknown case) are thrown as strings and reported at the argument.
   */
  build(args: Arg[]): Eval;
}

/** Which static types a getter kind takes; 'any' (a path whose type only run time tells) always passes. */
export const ACCEPTS: Partial<Record<ParamKind, readonly StaticType[]>> = {
  string: ['string'],
  stringlike: ['string', 'int', 'float', 'bool', 'bytes', 'map', 'list', 'nil', 'time', 'duration'],
  int: ['int'],
  intlike: ['int', 'float', 'string', 'bool', 'nil'],
  float: ['float'],
  floatlike: ['float', 'int', 'string', 'bool', 'nil'],
  bool: ['bool'],
  map: ['map'],
  time: ['time'],
  duration: ['duration'],
  bytes: ['bytes'],
};

function got(v: Value): string {
  return v === null ? 'nil' : typeOf(v);
}

/** The run-time check or conversion a typed getter applies to a value. */
export function coerce(kind: ParamKind, get: Eval): Eval {
  switch (kind) {
    case 'string':
      return (t) => {
        const v = get(t);
        if (typeof v !== 'string') throw new OttlRuntimeError(`expected string but got ${got(v)}`);
        return v;
      };
    case 'stringlike':
      return (t) => {
        const v = get(t);
        return v === null || typeof v === 'string' ? v : asString(v);
      };
    case 'int':
      return (t) => {
        const v = get(t);
        if (typeof v !== 'bigint') throw new OttlRuntimeError(`expected int but got ${got(v)}`);
        return v;
      };
    case 'intlike':
      return (t) => intLike(get(t));
    case 'float':
      return (t) => {
        const v = get(t);
        if (typeof v !== 'number') throw new OttlRuntimeError(`expected float but got ${got(v)}`);
        return v;
      };
    case 'floatlike':
      return (t) => floatLike(get(t));
    case 'bool':
      return (t) => {
        const v = get(t);
        if (typeof v !== 'boolean') throw new OttlRuntimeError(`expected bool but got ${got(v)}`);
        return v;
      };
    case 'map':
      return (t) => {
        const v = get(t);
        if (!(v instanceof Map)) throw new OttlRuntimeError(`expected a map but got ${got(v)}`);
        return v;
      };
    case 'time':
      return (t) => {
        const v = get(t);
        if (!(v instanceof OttlTime)) throw new OttlRuntimeError(`expected a time but got ${got(v)}`);
        return v;
      };
    case 'duration':
      return (t) => {
        const v = get(t);
        if (!(v instanceof OttlDuration)) throw new OttlRuntimeError(`expected a duration but got ${got(v)}`);
        return v;
      };
    case 'bytes':
      return (t) => {
        const v = get(t);
        if (!(v instanceof Uint8Array)) throw new OttlRuntimeError(`expected bytes but got ${got(v)}`);
        return v;
      };
    default:
      return get;
  }
}

/** IntLikeGetter: ints as they are, floats truncated, bools 1/0, strings parsed base 10; nil stays nil. */
export function intLike(v: Value): bigint | null {
  if (v === null || typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new OttlRuntimeError('cannot convert a non-finite float to int');
    return BigInt.asIntN(64, BigInt(Math.trunc(v)));
  }
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'string') {
    if (!/^[+-]?\d+$/.test(v)) throw new OttlRuntimeError('cannot convert a string that is not a base-10 integer to int');
    const n = BigInt(v);
    if (n !== BigInt.asIntN(64, n)) throw new OttlRuntimeError('a string holds an integer out of the int64 range');
    return n;
  }
  throw new OttlRuntimeError(`cannot convert a ${got(v)} to int`);
}

/** FloatLikeGetter: floats, ints, bools 1/0, strings parsed; nil stays nil. */
export function floatLike(v: Value): number | null {
  if (v === null || typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const f = parseGoFloat(v);
    if (f === null) throw new OttlRuntimeError('cannot convert a string that is not a number to float');
    return f;
  }
  throw new OttlRuntimeError(`cannot convert a ${got(v)} to float`);
}

/** Go's strconv.ParseFloat(s, 64) for decimal text (and Inf/NaN); null when it does not parse. */
export function parseGoFloat(s: string): number | null {
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return Number(s);
  if (/^[+-]?(inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(s)) return NaN;
  return null;
}
