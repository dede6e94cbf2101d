/**
 * The OpenTracing `sampling.priority` span attribute as the Collector's probabilistic sampler reads it (the
 * processor finds the first attribute with that key, as pdata's Map.Get does): an int or a double that is
 * 0 means never sample, above 0 always sample, anything else (below 0, NaN, another type) leaves the
 * decision to the sampler. A string counts when Go's strconv.ParseFloat accepts it without error, which
 * this module reproduces (decimal and hexadecimal floats, `_` digit separators, `inf`/`infinity`/`nan` in
 * any case; an overflow is an error, an underflow is 0).
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import { VALUE_DOUBLE, VALUE_INT, VALUE_STRING, encodeKey } from '../../pipeline/batch/batch.js';

export const PRIORITY_DEFER = 0;
export const PRIORITY_KEEP = 1;
export const PRIORITY_DROP = 2;

/** The attribute key, UTF-8. */
export const PRIORITY_KEY = encodeKey('sampling.priority');

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * PRIORITY_DEFER, PRIORITY_KEEP or PRIORITY_DROP for the attribute value the batch last found
 * (`b.found`, filled by findSpanAttribute or readAttributeAt).
 */
export function foundPriority(b: TraceBatch): number {
  const f = b.found;
  switch (f.kind) {
    case VALUE_INT:
      return intPriority(b.bytes, f.valueStart, f.valueEnd);
    case VALUE_DOUBLE:
      return numberPriority(readDouble(b.bytes, f.valueStart));
    case VALUE_STRING:
      return stringPriority(b.bytes, f.valueStart, f.valueEnd);
    default:
      return PRIORITY_DEFER;
  }
}

function numberPriority(v: number): number {
  if (v === 0) return PRIORITY_DROP;
  return v > 0 ? PRIORITY_KEEP : PRIORITY_DEFER;
}

/** An int64 varint: 0, positive, or negative (bit 63, carried by the 10th byte). */
function intPriority(buf: Uint8Array, s: number, e: number): number {
  let nonzero = false;
  for (let i = s; i < e; i++) {
    const group = i - s === 9 ? buf[i]! & 1 : buf[i]! & 0x7f;
    if (group !== 0) nonzero = true;
    if (i - s === 9 && group !== 0) return PRIORITY_DEFER;
  }
  return nonzero ? PRIORITY_KEEP : PRIORITY_DROP;
}

function readDouble(buf: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[LITTLE_ENDIAN ? i : 7 - i] = buf[at + i]!;
  return f64[0]!;
}

const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const UNDERSCORE = 0x5f;

function lower(c: number): number {
  return c | 0x20;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** How many leading bytes of buf[s, e) match `word` (lowercase ASCII) ignoring case. */
function prefixIgnoringCase(buf: Uint8Array, s: number, e: number, word: string): number {
  let n = 0;
  while (n < word.length && s + n < e && lower(buf[s + n]!) === word.charCodeAt(n)) n++;
  return n;
}

/** The priority a string means, as strconv.ParseFloat(s, 64) reads it. */
export function stringPriority(buf: Uint8Array, s: number, e: number): number {
  if (e === s) return PRIORITY_DEFER;
  // Go's special(): [+-]inf, [+-]infinity, nan; the whole string must be consumed.
  const c0 = buf[s]!;
  if (c0 === PLUS || c0 === MINUS || lower(c0) === 0x69 /* i */) {
    const sign = c0 === PLUS || c0 === MINUS ? 1 : 0;
    let n = prefixIgnoringCase(buf, s + sign, e, 'infinity');
    if (n > 3 && n < 8) n = 3;
    if (n === 3 || n === 8) return sign + n === e - s && c0 !== MINUS ? PRIORITY_KEEP : PRIORITY_DEFER;
  } else if (lower(c0) === 0x6e /* n */ && prefixIgnoringCase(buf, s, e, 'nan') === 3) {
    return PRIORITY_DEFER; // NaN (or a syntax error): neither 0 nor above 0
  }
  return readFloat(buf, s, e);
}

/**
 * Go's readFloat over the whole of buf[s, e), then the value's sign: PRIORITY_DEFER for a syntax error, an
 * overflow or a negative number, PRIORITY_DROP for zero (an underflow included), PRIORITY_KEEP otherwise.
 */
function readFloat(buf: Uint8Array, s: number, e: number): number {
  let i = s;
  let underscores = false;
  let neg = false;
  if (buf[i] === PLUS) i++;
  else if (buf[i] === MINUS) {
    i++;
    neg = true;
  }
  let hex = false;
  if (i + 2 < e && buf[i] === 0x30 && lower(buf[i + 1]!) === 0x78) {
    hex = true;
    i += 2;
  }
  const maxMantDigits = hex ? 16 : 19;
  let sawdot = false;
  let sawdigits = false;
  let nd = 0;
  let ndMant = 0;
  let dp = 0;
  let trunc = false;
  let nonzero = false;
  let mantissa = 0n; // hexadecimal only
  for (; i < e; i++) {
    const c = buf[i]!;
    if (c === UNDERSCORE) {
      underscores = true;
      continue;
    }
    if (c === DOT) {
      if (sawdot) break;
      sawdot = true;
      dp = nd;
      continue;
    }
    let d = -1;
    if (isDigit(c)) d = c - 0x30;
    else if (hex && lower(c) >= 0x61 && lower(c) <= 0x66) d = lower(c) - 0x61 + 10;
    if (d < 0) break;
    sawdigits = true;
    if (d === 0 && nd === 0 && c === 0x30) {
      dp--;
      continue;
    }
    nd++;
    if (ndMant < maxMantDigits) {
      if (hex) mantissa = mantissa * 16n + BigInt(d);
      if (d !== 0) nonzero = true;
      ndMant++;
    } else if (c !== 0x30) {
      trunc = true;
    }
  }
  if (!sawdigits) return PRIORITY_DEFER;
  if (!sawdot) dp = nd;
  if (hex) {
    dp *= 4;
    ndMant *= 4;
  }
  const expChar = hex ? 0x70 : 0x65; // p, e
  if (i < e && lower(buf[i]!) === expChar) {
    i++;
    if (i >= e) return PRIORITY_DEFER;
    let esign = 1;
    if (buf[i] === PLUS) i++;
    else if (buf[i] === MINUS) {
      i++;
      esign = -1;
    }
    if (i >= e || !isDigit(buf[i]!)) return PRIORITY_DEFER;
    let x = 0;
    for (; i < e && (isDigit(buf[i]!) || buf[i] === UNDERSCORE); i++) {
      if (buf[i] === UNDERSCORE) {
        underscores = true;
        continue;
      }
      if (x < 10000) x = x * 10 + buf[i]! - 0x30;
    }
    dp += x * esign;
  } else if (hex) {
    return PRIORITY_DEFER; // a hexadecimal mantissa needs a p exponent
  }
  if (i !== e) return PRIORITY_DEFER; // ParseFloat wants the whole string
  if (underscores && !underscoreOK(buf, s, e)) return PRIORITY_DEFER;
  if (!nonzero && !trunc) return PRIORITY_DROP;

  let value: number;
  if (hex) {
    const r = hexMagnitude(mantissa, dp - ndMant, trunc);
    if (r === OVERFLOW) return PRIORITY_DEFER;
    value = r === ZERO ? 0 : 1;
  } else {
    // Decimal: the JavaScript parser rounds correctly, as Go does; only the sign, zero and overflow matter.
    let text = '';
    for (let k = s; k < e; k++) if (buf[k] !== UNDERSCORE) text += String.fromCharCode(buf[k]!);
    value = Math.abs(Number(text));
    if (value === Infinity) return PRIORITY_DEFER;
  }
  if (value === 0) return PRIORITY_DROP;
  return neg ? PRIORITY_DEFER : PRIORITY_KEEP;
}

/** Go's underscoreOK: `_` only between digits, or between a base prefix and a digit. */
function underscoreOK(buf: Uint8Array, s: number, e: number): boolean {
  let saw = 0x5e; // ^
  let i = s;
  if (i < e && (buf[i] === MINUS || buf[i] === PLUS)) i++;
  let hex = false;
  if (e - i >= 2 && buf[i] === 0x30 && (lower(buf[i + 1]!) === 0x62 || lower(buf[i + 1]!) === 0x6f || lower(buf[i + 1]!) === 0x78)) {
    hex = lower(buf[i + 1]!) === 0x78;
    i += 2;
    saw = 0x30;
  }
  for (; i < e; i++) {
    const c = buf[i]!;
    if (isDigit(c) || (hex && lower(c) >= 0x61 && lower(c) <= 0x66)) {
      saw = 0x30;
      continue;
    }
    if (c === UNDERSCORE) {
      if (saw !== 0x30) return false;
      saw = UNDERSCORE;
      continue;
    }
    if (saw === UNDERSCORE) return false;
    saw = 0x21; // !
  }
  return saw !== UNDERSCORE;
}

const ZERO = 0;
const FINITE = 1;
const OVERFLOW = 2;

/** Go's atofHex for float64, reduced to whether mantissa * 2^exp rounds to zero, a finite value, or overflows. */
function hexMagnitude(mantissa: bigint, exp: number, trunc: boolean): number {
  const mantbits = 52n;
  const bias = -1023;
  const maxExp = (1 << 11) + bias - 2;
  const minExp = bias + 1;
  exp += 52;
  while (mantissa !== 0n && mantissa >> (mantbits + 2n) === 0n) {
    mantissa <<= 1n;
    exp--;
  }
  if (trunc) mantissa |= 1n;
  while (mantissa >> (1n + mantbits + 2n) !== 0n) {
    mantissa = (mantissa >> 1n) | (mantissa & 1n);
    exp++;
  }
  while (mantissa > 1n && exp < minExp - 2) {
    mantissa = (mantissa >> 1n) | (mantissa & 1n);
    exp++;
  }
  let round = mantissa & 3n;
  mantissa >>= 2n;
  round |= mantissa & 1n;
  exp += 2;
  if (round === 3n) {
    mantissa++;
    if (mantissa === 1n << (1n + mantbits)) {
      mantissa >>= 1n;
      exp++;
    }
  }
  if (mantissa >> mantbits === 0n) exp = bias;
  if (exp > maxExp) return OVERFLOW;
  return mantissa === 0n ? ZERO : FINITE;
}
