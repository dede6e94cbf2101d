/**
 * The arithmetic of consistent probability sampling as the Collector's `pkg/sampling` does it (OTEP 235,
 * W3C Trace Context Level 2): 56-bit rejection thresholds and randomness values, their hex encodings
 * (`th`, `rv`), a probability turned into a threshold with a precision, and the hash_seed mode's
 * FNV-based randomness.
 *
 * A 56-bit value is two 28-bit halves held in plain numbers (`hi`, `lo`), so that a per-span comparison
 * or encoding allocates nothing; 2^56 (the threshold that never samples) is hi = 2^28, lo = 0. A span is
 * sampled when threshold <= randomness.
 */

/** 2^28: one half of a 56-bit value. */
export const HALF = 0x10000000;
const HALF_MASK = HALF - 1;
/** 2^56, the number of randomness values. */
const TWO_56 = 2 ** 56;
/** The smallest probability a threshold can express: 2^-56. */
export const MIN_PROBABILITY = 2 ** -56;

/** A 56-bit value (or 2^56) as two 28-bit halves; instances are reused, never allocated per span. */
export class U56 {
  hi = 0;
  lo = 0;
  set(hi: number, lo: number): this {
    this.hi = hi;
    this.lo = lo;
    return this;
  }
  copy(o: U56): this {
    this.hi = o.hi;
    this.lo = o.lo;
    return this;
  }
}

/** a <= b for 56-bit values given as halves. */
export function le(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi < bHi || (aHi === bHi && aLo <= bLo);
}

/** The threshold that samples everything (0) and the one that samples nothing (2^56). */
export const ALWAYS_HI = 0;
export const NEVER_HI = HALF;
/** Randomness used when there is none: 2^56 - 1, sampled at every probability. */
export const ALL_RANDOMNESS_HI = HALF_MASK;
export const ALL_RANDOMNESS_LO = HALF_MASK;

/** The probability a threshold samples at: float64(2^56 - t) / 2^56, rounded as Go converts a uint64. */
export function thresholdProbability(hi: number, lo: number): number {
  // (2^28 - hi) * 2^28 is exact; adding -lo rounds once, to nearest even, as Go's uint64 -> float64 does.
  return ((HALF - hi) * HALF - lo) / TWO_56;
}

// frexp's exponent, read from the IEEE-754 bits (no allocation: one shared view).
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const HIGH_WORD = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** The exponent e of Go's math.Frexp(x) = f * 2^e with f in [0.5, 1), for finite x > 0. */
export function frexpExponent(x: number): number {
  f64[0] = x;
  const biased = (u32[HIGH_WORD]! >>> 20) & 0x7ff;
  if (biased !== 0) return biased - 1022;
  // Subnormal: scale into the normal range first.
  f64[0] = x * 2 ** 64;
  return ((u32[HIGH_WORD]! >>> 20) & 0x7ff) - 1022 - 64;
}

/**
 * Go's sampling.ProbabilityToThresholdWithPrecision: the threshold for `fraction` with `precision`
 * significant hex digits, more where leading 0s or fs of the fraction or of its complement would otherwise
 * leave too few (the Frexp rule), rounded half up. Writes `out` and returns true, or returns false when
 * `fraction` is outside [2^-56, 1] (ErrProbabilityRange; `out` is then the always-sample threshold).
 */
export function probabilityToThreshold(fraction: number, precision: number, out: U56): boolean {
  if (precision === 0) precision = 14;
  if (!(fraction >= MIN_PROBABILITY && fraction <= 1)) {
    out.set(ALWAYS_HI, 0);
    return false;
  }
  if (fraction === 1) {
    out.set(ALWAYS_HI, 0);
    return true;
  }
  // Go's integer division truncates toward zero: exp / -4 for exp <= 0.
  const expF = frexpExponent(fraction);
  const expR = frexpExponent(1 - fraction);
  precision = Math.min(14, Math.max(precision + Math.trunc(expF / -4), precision + Math.trunc(expR / -4)));

  // scaled = uint64(math.Round(fraction * 2^56)); both round half away from zero for positive values.
  const scaled = Math.round(fraction * TWO_56);
  const sHi = Math.floor(scaled / HALF);
  const sLo = scaled - sHi * HALF;
  // threshold = 2^56 - scaled
  let hi = HALF - sHi;
  let lo = -sLo;
  if (lo < 0) {
    lo += HALF;
    hi -= 1;
  }
  const shift = 4 * (14 - precision);
  if (shift !== 0) {
    // threshold += 1 << (shift - 1); threshold >>= shift; threshold <<= shift
    if (shift - 1 < 28) {
      lo += 2 ** (shift - 1);
      if (lo >= HALF) {
        lo -= HALF;
        hi += 1;
      }
    } else {
      hi += 2 ** (shift - 1 - 28);
    }
    if (shift <= 28) {
      lo -= lo % 2 ** shift;
    } else {
      lo = 0;
      hi -= hi % 2 ** (shift - 28);
    }
  }
  out.set(hi, lo);
  return true;
}

// ---- hex encodings ----

const HEX = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/** The value of an ASCII hex digit, or -1. */
export function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * Reads 1 to 14 hex digits at buf[start, end) as the leading digits of a 14-digit value (what a `th`
 * value and, with exactly 14 digits, an `rv` value mean). False when a character is not a hex digit.
 */
export function parseHex56(buf: Uint8Array, start: number, end: number, out: U56): boolean {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 14; i++) {
    let d = 0;
    if (start + i < end) {
      d = hexValue(buf[start + i]!);
      if (d < 0) return false;
    }
    if (i < 7) hi = hi * 16 + d;
    else lo = lo * 16 + d;
  }
  out.set(hi, lo);
  return true;
}

/** Writes the 14 lowercase hex digits of a 56-bit value (an `rv` value); returns the position after. */
export function writeRValue(hi: number, lo: number, buf: Uint8Array, pos: number): number {
  for (let i = 6; i >= 0; i--) {
    buf[pos + i] = HEX[hi & 15]!;
    hi = Math.floor(hi / 16);
  }
  for (let i = 13; i >= 7; i--) {
    buf[pos + i] = HEX[lo & 15]!;
    lo = Math.floor(lo / 16);
  }
  return pos + 14;
}

/**
 * Writes a threshold's `th` value (Go's Threshold.TValue): "0" for always-sample, nothing for
 * never-sample, otherwise 14 hex digits without their trailing zeros. Returns the position after.
 */
export function writeTValue(hi: number, lo: number, buf: Uint8Array, pos: number): number {
  if (hi === ALWAYS_HI && lo === 0) {
    buf[pos] = 0x30;
    return pos + 1;
  }
  if (hi >= NEVER_HI) return pos;
  let end = writeRValue(hi, lo, buf, pos);
  while (end > pos && buf[end - 1] === 0x30) end--;
  return end;
}

// ---- trace id randomness ----

/** The W3C randomness of a trace id: its last 7 bytes (bytes 9..15) as a 56-bit number. */
export function traceIdRandomness(buf: Uint8Array, at: number, out: U56): void {
  out.hi = (buf[at + 9]! << 20) | (buf[at + 10]! << 12) | (buf[at + 11]! << 4) | (buf[at + 12]! >>> 4);
  out.lo = ((buf[at + 12]! & 15) << 24) | (buf[at + 13]! << 16) | (buf[at + 14]! << 8) | buf[at + 15]!;
}

/** Whether the 16 trace id bytes at `at` are all zero (pdata's TraceID.IsEmpty). */
export function traceIdEmpty(buf: Uint8Array, at: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[at + i] !== 0) return false;
  return true;
}

// ---- the hash_seed mode ----

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a (32 bits) of the seed as 4 little-endian bytes followed by the 16 trace id bytes. */
export function fnvHash(seed: number, buf: Uint8Array, at: number): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < 4; i++) {
    h ^= (seed >>> (8 * i)) & 0xff;
    h = Math.imul(h, FNV_PRIME) >>> 0;
  }
  for (let i = 0; i < 16; i++) {
    h ^= buf[at + i]!;
    h = Math.imul(h, FNV_PRIME) >>> 0;
  }
  return h;
}

export const HASH_BUCKETS = 0x4000;

/**
 * The randomness the hash_seed mode derives from a 32-bit hash: from most to least significant, 14 bits
 * of 16383 - (hash & 16383), 28 bits mixing the hash's top bits (u ^ u << 10), and the 14 bucket bits.
 * A threshold of (16384 - buckets) << 42 then samples exactly when (hash & 16383) < buckets.
 *
 * The Collector calls the mixed part "the 18 unused bits" but takes hash >> (32 - 14), the top 14 bits
 * (bits 18..31; bits 14..17 are in neither part); the `rv` it writes is that, so this is too.
 */
export function hashRandomness(h: number, out: U56): void {
  const hashed = h & (HASH_BUCKETS - 1);
  const rprime = HASH_BUCKETS - 1 - hashed;
  const top = h >>> 18;
  const mixed28 = top ^ (top << 10);
  out.hi = (rprime << 14) | (mixed28 >>> 14);
  out.lo = ((mixed28 & 0x3fff) << 14) | hashed;
}

/**
 * The hash_seed mode's number of accepted buckets out of 16384 for a percentage (already a float32,
 * at most 100): Go's uint32(pct * 163.84), the product taken in float32 and truncated.
 */
export function hashBuckets(pct32: number): number {
  return Math.trunc(Math.fround(pct32 * Math.fround(HASH_BUCKETS / 100)));
}
