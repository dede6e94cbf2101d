/**
 * JSON.parse's grammar and results, with one difference that OTLP needs: numbers a double may not hold
 * exactly are kept as their source text, so 64-bit integers stay exact.
 */
import { invalidArgument } from '../service/errors.js';

export type Json = unknown;
type Obj = Record<string, Json>;

/** JSON nesting of the whole body; deep enough for MAX_VALUE_DEPTH values (4 JSON levels each). */
export const MAX_JSON_DEPTH = 256;

// ---------------------------------------------------------------------------------------------------------
// JSON reader

/**
 * A JSON number a double may not hold exactly: more than 15 significant digits, or an exponent. Kept as
 * its source text; integer fields read it exactly, double fields round it as JSON.parse would.
 */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export const NOT_JSON = 'request body is not valid JSON';

/**
 * JSON.parse's grammar and results, except that numbers which a double may not hold exactly are
 * JsonNumbers, and a `__proto__` key is skipped (no field of OTLP has that name). JSON.parse's error
 * messages quote the input, which may hold a credential: every failure here says only what is wrong.
 */
export function parseJson(text: string): Json {
  const r = new JsonReader(text);
  r.ws();
  const v = r.value(0);
  r.ws();
  if (r.i !== text.length) throw invalidArgument(NOT_JSON);
  return v;
}

export class JsonReader {
  i = 0;
  constructor(private readonly s: string) {}

  ws(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  value(depth: number): Json {
    const c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(depth + 1);
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.literal('true', true);
      case 0x66: // f
        return this.literal('false', false);
      case 0x6e: // n
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        throw invalidArgument(NOT_JSON);
    }
  }

  private literal(word: string, v: Json): Json {
    if (!this.s.startsWith(word, this.i)) throw invalidArgument(NOT_JSON);
    this.i += word.length;
    return v;
  }

  private object(depth: number): Obj {
    if (depth > MAX_JSON_DEPTH) throw invalidArgument(`request body nests JSON more than ${MAX_JSON_DEPTH} levels deep`);
    const s = this.s;
    const o: Obj = {};
    this.i++;
    this.ws();
    if (s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return o;
    }
    for (;;) {
      if (s.charCodeAt(this.i) !== 0x22) throw invalidArgument(NOT_JSON);
      const key = this.string();
      this.ws();
      if (s.charCodeAt(this.i) !== 0x3a) throw invalidArgument(NOT_JSON);
      this.i++;
      this.ws();
      const v = this.value(depth);
      if (key !== '__proto__') o[key] = v;
      this.ws();
      const c = s.charCodeAt(this.i++);
      if (c === 0x2c) this.ws();
      else if (c === 0x7d) return o;
      else throw invalidArgument(NOT_JSON);
    }
  }

  private array(depth: number): Json[] {
    if (depth > MAX_JSON_DEPTH) throw invalidArgument(`request body nests JSON more than ${MAX_JSON_DEPTH} levels deep`);
    const s = this.s;
    const a: Json[] = [];
    this.i++;
    this.ws();
    if (s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return a;
    }
    for (;;) {
      a.push(this.value(depth));
      this.ws();
      const c = s.charCodeAt(this.i++);
      if (c === 0x2c) this.ws();
      else if (c === 0x5d) return a;
      else throw invalidArgument(NOT_JSON);
    }
  }

  private string(): string {
    const s = this.s;
    const start = this.i + 1;
    let escaped = false;
    let j = start;
    for (;;) {
      const c = s.charCodeAt(j);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        j += 2;
        continue;
      }
      if (c < 0x20 || c !== c) throw invalidArgument(NOT_JSON); // a control character, or the end (NaN)
      j++;
    }
    this.i = j + 1;
    if (!escaped) return s.slice(start, j);
    try {
      // Escapes (\n, \uXXXX, surrogate pairs) exactly as JSON.parse reads them.
      return JSON.parse(s.slice(start - 1, j + 1)) as string;
    } catch {
      throw invalidArgument(NOT_JSON);
    }
  }

  private number(): number | JsonNumber {
    const s = this.s;
    const start = this.i;
    let i = start;
    let digits = 0;
    let exact = true;
    let n = 0;
    if (s.charCodeAt(i) === 0x2d) i++;
    let c = s.charCodeAt(i);
    if (c === 0x30) {
      i++;
    } else if (c >= 0x31 && c <= 0x39) {
      do {
        n = n * 10 + (c - 0x30);
        digits++;
        c = s.charCodeAt(++i);
      } while (c >= 0x30 && c <= 0x39);
    } else {
      throw invalidArgument(NOT_JSON);
    }
    c = s.charCodeAt(i);
    if (c === 0x2e) {
      exact = false;
      c = s.charCodeAt(++i);
      if (!(c >= 0x30 && c <= 0x39)) throw invalidArgument(NOT_JSON);
      do {
        digits++;
        c = s.charCodeAt(++i);
      } while (c >= 0x30 && c <= 0x39);
    }
    let exponent = false;
    if (c === 0x65 || c === 0x45) {
      exponent = true;
      c = s.charCodeAt(++i);
      if (c === 0x2b || c === 0x2d) c = s.charCodeAt(++i);
      if (!(c >= 0x30 && c <= 0x39)) throw invalidArgument(NOT_JSON);
      do c = s.charCodeAt(++i);
      while (c >= 0x30 && c <= 0x39);
    }
    this.i = i;
    // Up to 15 significant digits without an exponent: the double is exact for an integer, and no
    // non-integer of that many digits rounds to an integer.
    if (exponent || digits > 15) return new JsonNumber(s.slice(start, i));
    if (exact) return s.charCodeAt(start) === 0x2d ? -n : n;
    return Number(s.slice(start, i));
  }
}

/** The parts of a JSON number's text, or null when the text is not one (no spaces, no '+', no hex). */
export function numberParts(t: string): { negative: boolean; digits: string; fractionDigits: number; exponent: number } | null {
  const m = /^(-?)(0|[1-9]\d*)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(t);
  if (m === null) return null;
  const frac = m[3] ?? '';
  const e = m[4] ?? '0';
  // An exponent beyond any 64-bit integer is clamped: enough to say "out of range" or "not integral".
  const exponent = e.replace(/^[+-]?0*/, '').length > 6 ? (e.startsWith('-') ? -1e7 : 1e7) : Number(e);
  return { negative: m[1] === '-', digits: m[2]! + frac, fractionDigits: frac.length, exponent };
}

/** Stands for any magnitude past 64 bits: out of range for every integer field. */
export const HUGE = 2n ** 70n;

/**
 * The exact integer a JSON number's text denotes: null when it is not integral, undefined when the text is
 * not a JSON number. Magnitudes past 21 digits are HUGE (no giant power or BigInt is ever built).
 */
export function exactInteger(t: string): bigint | null | undefined {
  const p = numberParts(t);
  if (p === null) return undefined;
  const digits = p.digits.replace(/^0+/, '');
  if (digits === '') return 0n;
  const shift = p.exponent - p.fractionDigits; // value = digits × 10^shift
  const intDigits = digits.length + shift;
  if (shift < 0 && !/^0*$/.test(digits.slice(Math.max(0, intDigits)))) return null;
  let v: bigint;
  if (intDigits > 21) v = HUGE;
  else if (shift >= 0) v = BigInt(digits) * 10n ** BigInt(shift);
  else v = intDigits <= 0 ? 0n : BigInt(digits.slice(0, intDigits));
  return p.negative ? -v : v;
}
