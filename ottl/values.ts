/**
 * OTTL's values at run time, as JavaScript values: nil is `null`, strings, booleans, int64 as `bigint`,
 * float64 as `number` (the two stay apart because OTTL's arithmetic and `Int`/`Double` treat them apart),
 * bytes as Uint8Array, maps as Map, lists as arrays, and times and durations as nanosecond counts in their
 * own classes. Comparison follows the Collector's table (LANGUAGE.md, "Comparison Rules").
 */
import type { CompareOp } from './ast.js';

export class OttlTime {
  constructor(readonly ns: bigint) {}
}
export class OttlDuration {
  constructor(readonly ns: bigint) {}
}

export type Value = null | string | boolean | bigint | number | Uint8Array | OttlTime | OttlDuration | OttlMap | Value[];
export type OttlMap = Map<string, Value>;

/** Static types the checker knows; `any` for what only run time tells (an attribute's value). */
export type StaticType = 'nil' | 'string' | 'bool' | 'int' | 'float' | 'bytes' | 'map' | 'list' | 'time' | 'duration' | 'any';

export function typeOf(v: Value): StaticType {
  if (v === null) return 'nil';
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'bigint':
      return 'int';
    case 'number':
      return 'float';
  }
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof Map) return 'map';
  if (Array.isArray(v)) return 'list';
  if (v instanceof OttlTime) return 'time';
  return 'duration';
}

function ordered(op: CompareOp, c: number): boolean {
  switch (op) {
    case '==':
      return c === 0;
    case '!=':
      return c !== 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
  }
}

function cmp<T extends number | bigint | string>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function valuesEqual(a: Value, b: Value): boolean {
  return compare(a, '==', b);
}

/**
 * `a op b` by the Collector's rules: numbers compare across int and float (as float), strings, booleans
 * (false < true), bytes, times and durations by value; values of different kinds are only "not equal";
 * nil equals only nil (and empty bytes, as a nil byte slice); maps and lists compare for equality only.
 */
export function compare(a: Value, op: CompareOp, b: Value): boolean {
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'string' && tb === 'string') return ordered(op, cmp(a as string, b as string));
  if ((ta === 'bigint' || ta === 'number') && (tb === 'bigint' || tb === 'number')) {
    if (ta === tb) return ordered(op, cmp(a as number, b as number));
    return ordered(op, cmp(Number(a), Number(b)));
  }
  if (ta === 'boolean' && tb === 'boolean') return ordered(op, a === b ? 0 : a ? 1 : -1);
  if (a === null || b === null) {
    const other = a === null ? b : a;
    const eq = other === null || (other instanceof Uint8Array && other.length === 0);
    return op === '==' ? eq : op === '!=' ? !eq : false;
  }
  if (a instanceof OttlTime && b instanceof OttlTime) return ordered(op, cmp(a.ns, b.ns));
  if (a instanceof OttlDuration && b instanceof OttlDuration) return ordered(op, cmp(a.ns, b.ns));
  let eq: boolean;
  if (a instanceof Uint8Array && b instanceof Uint8Array) eq = bytesEqual(a, b);
  else if (a instanceof Map && b instanceof Map) eq = mapsEqual(a, b);
  else if (Array.isArray(a) && Array.isArray(b)) eq = a.length === b.length && a.every((x, i) => valuesEqual(x, b[i]!));
  else eq = false;
  return op === '==' ? eq : op === '!=' ? !eq : false;
}

function mapsEqual(a: OttlMap, b: OttlMap): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    if (!b.has(k) || !valuesEqual(v, b.get(k)!)) return false;
  }
  return true;
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest decimal that reads back, never an exponent. */
export function formatFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  const s = String(f);
  if (!/e/i.test(s)) return s;
  // Expand the exponent form without losing digits.
  const [mant, expText] = s.split(/e/i) as [string, string];
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  const point = (mant.replace('-', '').indexOf('.') < 0 ? mant.replace('-', '').length : mant.replace('-', '').indexOf('.')) + exp;
  let out: string;
  if (point <= 0) out = '0.' + '0'.repeat(-point) + digits;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = digits.slice(0, point) + '.' + digits.slice(point);
  return (neg ? '-' : '') + out;
}

/** A value as JSON text, the way pcommon renders maps and lists (AsString). */
function toJson(v: Value): unknown {
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[k] = toJson(x);
    return o;
  }
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (v instanceof OttlTime || v instanceof OttlDuration) return asString(v);
  return v;
}

/** The string form converters such as `String` and `Concat` use (pcommon's AsString). */
export function asString(v: Value): string {
  if (v === null) return '';
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'number':
      return formatFloat(v);
  }
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (v instanceof OttlTime) return new Date(Number(v.ns / 1_000_000n)).toISOString();
  if (v instanceof OttlDuration) return `${v.ns}ns`;
  return JSON.stringify(toJson(v));
}
