/**
 * A span's W3C `tracestate` as the Collector's `pkg/sampling` reads and writes it, over the span's bytes:
 * the whole value is checked (size, member syntax, at most 31 list pieces), the OpenTelemetry member
 * `ot=` is parsed into its `rv` (explicit randomness), `th` (threshold) and other sub-keys, and every other
 * vendor's member is kept as it was. Written back, the value is `ot=` first (`rv`, `th`, then the other
 * sub-keys in their order), then the other members in their order with blanks around them trimmed and
 * empty members left out: byte for byte what the Collector writes.
 *
 * Like the Collector, a value with an error keeps what was parsed before (and beside) the error, which
 * matters only where the Collector still writes such a state back (a never-sampling configuration that
 * keeps a span: see the processor). One instance is reused for every span: parsing allocates nothing.
 */
import { HALF, U56, le, parseHex56, writeRValue, writeTValue } from './sampling.js';

const MAX_W3C_LENGTH = 1024;
const MAX_PIECES = 32; // the Collector refuses the 32nd comma-separated piece (hardMaxNumPairs)
const MAX_KEY_LENGTH = 256;
const MAX_TENANT_LENGTH = 241;
const MAX_SYSTEM_LENGTH = 14;
const MAX_OT_LENGTH = 256;
const MAX_VALUE_LENGTH = 256;

// Error texts, as the Collector's errors read.
export const ERR_SIZE = 'invalid tracestate size';
export const ERR_SYNTAX = 'invalid syntax';
export const ERR_RV_SIZE = 'r-value must have 14 hex digits';
export const ERR_RV_SYNTAX = 'r-value is not hexadecimal';
export const ERR_TV_SIZE = 't-value exceeds 14 hex digits';
export const ERR_TV_EMPTY = 't-value is empty';
export const ERR_TV_SYNTAX = 't-value is not hexadecimal';

const COMMA = 0x2c;
const SEMI = 0x3b;
const EQ = 0x3d;
const COLON = 0x3a;
const AT = 0x40;
const SP = 0x20;
const TAB = 0x09;

function isLcAlpha(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}
function isLcAlphaNum(c: number): boolean {
  return isLcAlpha(c) || (c >= 0x30 && c <= 0x39);
}
function isKeyChar(c: number): boolean {
  return isLcAlphaNum(c) || c === 0x5f || c === 0x2d || c === 0x2a || c === 0x2f; // _ - * /
}
function isNonBlankValueChar(c: number): boolean {
  return (c >= 0x21 && c <= 0x2b) || (c >= 0x2d && c <= 0x3c) || (c >= 0x3e && c <= 0x7e);
}
function isOTelValueChar(c: number): boolean {
  return isLcAlphaNum(c) || (c >= 0x41 && c <= 0x5a) || c === 0x2e || c === 0x5f || c === 0x2d; // A-Z . _ -
}
function indexOf(buf: Uint8Array, c: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === c) return i;
  return -1;
}

/** Where a value came from: absent, the bytes as received, or set by the sampler. */
export const ABSENT = 0;
export const RECEIVED = 1;
export const SET = 2;

export class TraceState {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private end = 0;
  /** The first error found, or null. */
  error: string | null = null;

  /** Other vendors' members: each trimmed member's range, in order. */
  private readonly memberStart = new Int32Array(MAX_PIECES);
  private readonly memberEnd = new Int32Array(MAX_PIECES);
  private members = 0;

  /** `rv`: ABSENT, RECEIVED (its text at rvStart..rvEnd) or SET; its value in `rv`. */
  rvKind = ABSENT;
  private rvStart = 0;
  private rvEnd = 0;
  readonly rv = new U56();
  /** `th`: ABSENT, RECEIVED (its text at thStart..thEnd) or SET; its value in `th`. */
  thKind = ABSENT;
  private thStart = 0;
  private thEnd = 0;
  readonly th = new U56();
  /** Other `ot` sub-keys (`key:value`), in order. */
  private readonly subStart = new Int32Array(MAX_OT_LENGTH / 2 + 1);
  private readonly subEnd = new Int32Array(MAX_OT_LENGTH / 2 + 1);
  private subs = 0;

  /** Parses buf[start, end) (empty when the span has no trace state); true when it has no error. */
  parse(buf: Uint8Array, start: number, end: number): boolean {
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.error = null;
    this.members = 0;
    this.clearOTel();
    if (end === start) return true;
    if (end - start > MAX_W3C_LENGTH) return this.fail(ERR_SIZE);
    if (!this.validW3C(buf, start, end)) return this.fail(ERR_SYNTAX);

    let pieces = 0;
    let p = start;
    while (p < end) {
      if (++pieces >= MAX_PIECES) return this.fail(ERR_SIZE);
      const comma = indexOf(buf, COMMA, p, end);
      let ms = p;
      let me = comma < 0 ? end : comma;
      p = comma < 0 ? end : comma + 1;
      while (ms < me && (buf[ms] === SP || buf[ms] === TAB)) ms++;
      while (me > ms && (buf[me - 1] === SP || buf[me - 1] === TAB)) me--;
      if (ms === me) continue;
      const eq = indexOf(buf, EQ, ms, me);
      if (eq < 0) continue;
      if (eq - ms > MAX_KEY_LENGTH) {
        this.fail(ERR_SIZE);
        continue;
      }
      const at = indexOf(buf, AT, ms, eq);
      if (at >= 0 && (at - ms > MAX_TENANT_LENGTH || eq - at - 1 > MAX_SYSTEM_LENGTH)) {
        this.fail(ERR_SIZE);
        continue;
      }
      if (eq - ms === 2 && buf[ms] === 0x6f && buf[ms + 1] === 0x74) {
        // `ot`: a later one replaces an earlier one, as in the Collector.
        this.parseOTel(buf, eq + 1, me);
      } else {
        this.memberStart[this.members] = ms;
        this.memberEnd[this.members] = me;
        this.members++;
      }
    }
    return this.error === null;
  }

  private fail(message: string): false {
    if (this.error === null) this.error = message;
    return false;
  }

  private clearOTel(): void {
    this.rvKind = ABSENT;
    this.thKind = ABSENT;
    this.subs = 0;
  }

  /** The value syntax of the whole list; the Collector checks it all before reading any member. */
  private validW3C(buf: Uint8Array, start: number, end: number): boolean {
    let p = start;
    while (p < end) {
      const comma = indexOf(buf, COMMA, p, end);
      let ms = p;
      let me = comma < 0 ? end : comma;
      p = comma < 0 ? end : comma + 1;
      while (ms < me && (buf[ms] === SP || buf[ms] === TAB)) ms++;
      while (me > ms && (buf[me - 1] === SP || buf[me - 1] === TAB)) me--;
      if (ms === me) continue;
      const eq = indexOf(buf, EQ, ms, me);
      if (eq < ms + 1) return false;
      if (!validKey(buf, ms, eq) || !validValue(buf, eq + 1, me)) return false;
    }
    return true;
  }

  /** The `ot` member's value: `key:value` sub-keys separated by `;`. */
  private parseOTel(buf: Uint8Array, start: number, end: number): void {
    this.clearOTel();
    if (end - start > MAX_OT_LENGTH) {
      this.fail(ERR_SIZE);
      return;
    }
    if (!validOTel(buf, start, end)) {
      this.fail(ERR_SYNTAX);
      return;
    }
    let p = start;
    while (p < end) {
      const semi = indexOf(buf, SEMI, p, end);
      const ms = p;
      const me = semi < 0 ? end : semi;
      p = semi < 0 ? end : semi + 1;
      const colon = indexOf(buf, COLON, ms, me);
      const vs = colon + 1;
      if (colon - ms === 2 && buf[ms] === 0x72 && buf[ms + 1] === 0x76) {
        // rv: exactly 14 hex digits
        if (me - vs !== 14) {
          this.rvKind = ABSENT;
          this.fail(ERR_RV_SIZE);
        } else if (!parseHex56(buf, vs, me, this.rv)) {
          this.rvKind = ABSENT;
          this.fail(ERR_RV_SYNTAX);
        } else {
          this.rvKind = RECEIVED;
          this.rvStart = vs;
          this.rvEnd = me;
        }
      } else if (colon - ms === 2 && buf[ms] === 0x74 && buf[ms + 1] === 0x68) {
        // th: 1 to 14 hex digits, trailing zeros implied
        if (me - vs > 14) {
          this.thKind = ABSENT;
          this.fail(ERR_TV_SIZE);
        } else if (me === vs) {
          this.thKind = ABSENT;
          this.fail(ERR_TV_EMPTY);
        } else if (!parseHex56(buf, vs, me, this.th)) {
          this.thKind = ABSENT;
          this.fail(ERR_TV_SYNTAX);
        } else {
          this.thKind = RECEIVED;
          this.thStart = vs;
          this.thEnd = me;
        }
      } else {
        this.subStart[this.subs] = ms;
        this.subEnd[this.subs] = me;
        this.subs++;
      }
    }
  }

  /** Sets explicit randomness (`rv`), as the hash_seed mode does on the spans it samples. */
  setRandomness(hi: number, lo: number): void {
    this.rvKind = SET;
    this.rv.set(hi, lo);
  }

  clearThreshold(): void {
    this.thKind = ABSENT;
  }

  /**
   * Go's UpdateTValueWithSampling: records the threshold a span was sampled with, unless the one it came
   * with is larger (a probability never rises; false then, and the received `th` stays). The never-sample
   * threshold removes `th`.
   */
  updateThreshold(hi: number, lo: number): boolean {
    if (this.thKind !== ABSENT && !le(this.th.hi, this.th.lo, hi, lo)) return false;
    if (hi >= HALF) {
      this.thKind = ABSENT;
      return true;
    }
    this.thKind = SET;
    this.th.set(hi, lo);
    return true;
  }

  /** Writes the value into out[0...] and returns its length (the buffer must hold MAX_SERIALIZED bytes). */
  serialize(out: Uint8Array): number {
    const buf = this.buf;
    let n = 0;
    if (this.rvKind !== ABSENT || this.thKind !== ABSENT || this.subs > 0) {
      out[n++] = 0x6f; // ot=
      out[n++] = 0x74;
      out[n++] = EQ;
      let first = true;
      if (this.rvKind !== ABSENT) {
        first = false;
        out[n++] = 0x72; // rv:
        out[n++] = 0x76;
        out[n++] = COLON;
        if (this.rvKind === RECEIVED) n = copy(buf, this.rvStart, this.rvEnd, out, n);
        else n = writeRValue(this.rv.hi, this.rv.lo, out, n);
      }
      if (this.thKind !== ABSENT) {
        if (!first) out[n++] = SEMI;
        first = false;
        out[n++] = 0x74; // th:
        out[n++] = 0x68;
        out[n++] = COLON;
        if (this.thKind === RECEIVED) n = copy(buf, this.thStart, this.thEnd, out, n);
        else n = writeTValue(this.th.hi, this.th.lo, out, n);
      }
      for (let i = 0; i < this.subs; i++) {
        if (!first) out[n++] = SEMI;
        first = false;
        n = copy(buf, this.subStart[i]!, this.subEnd[i]!, out, n);
      }
    }
    for (let i = 0; i < this.members; i++) {
      if (n > 0) out[n++] = COMMA;
      n = copy(buf, this.memberStart[i]!, this.memberEnd[i]!, out, n);
    }
    return n;
  }

  /** Whether out[0, n) is the value as received. */
  unchanged(out: Uint8Array, n: number): boolean {
    if (n !== this.end - this.start) return false;
    const buf = this.buf;
    for (let i = 0; i < n; i++) if (out[i] !== buf[this.start + i]) return false;
    return true;
  }
}

/** The most bytes `serialize` writes: a value of at most 1024 bytes, plus `ot=`, `rv:` and `th:` added. */
export const MAX_SERIALIZED = MAX_W3C_LENGTH + 64;

function copy(buf: Uint8Array, s: number, e: number, out: Uint8Array, n: number): number {
  for (let i = s; i < e; i++) out[n++] = buf[i]!;
  return n;
}

/** simple-key = lcalpha *keychar; multi-tenant-key = (lcalpha / DIGIT) *keychar "@" lcalpha *keychar. */
function validKey(buf: Uint8Array, s: number, e: number): boolean {
  const at = indexOf(buf, AT, s, e);
  if (at >= 0) {
    if (at === s || at === e - 1) return false;
    if (!isLcAlphaNum(buf[s]!) || !isLcAlpha(buf[at + 1]!)) return false;
    for (let i = s + 1; i < at; i++) if (!isKeyChar(buf[i]!)) return false;
    for (let i = at + 2; i < e; i++) if (!isKeyChar(buf[i]!)) return false;
    return true;
  }
  if (!isLcAlpha(buf[s]!)) return false;
  for (let i = s + 1; i < e; i++) if (!isKeyChar(buf[i]!)) return false;
  return true;
}

/** 1 to 256 characters of %x20-2B / %x2D-3C / %x3E-7E, the last not a space. */
function validValue(buf: Uint8Array, s: number, e: number): boolean {
  if (e === s || e - s > MAX_VALUE_LENGTH) return false;
  if (!isNonBlankValueChar(buf[e - 1]!)) return false;
  for (let i = s; i < e - 1; i++) {
    const c = buf[i]!;
    if (c !== SP && !isNonBlankValueChar(c)) return false;
  }
  return true;
}

/** key ":" value *( ";" key ":" value ), key = lcalpha *(lcalpha / DIGIT), value = *[A-Za-z0-9._-]. */
function validOTel(buf: Uint8Array, s: number, e: number): boolean {
  if (e === s || buf[e - 1] === SEMI) return false;
  let p = s;
  while (p < e) {
    const semi = indexOf(buf, SEMI, p, e);
    const ms = p;
    const me = semi < 0 ? e : semi;
    p = semi < 0 ? e : semi + 1;
    if (ms === me) return false;
    const colon = indexOf(buf, COLON, ms, me);
    if (colon < ms + 1) return false;
    if (!isLcAlpha(buf[ms]!)) return false;
    for (let i = ms + 1; i < colon; i++) if (!isLcAlphaNum(buf[i]!)) return false;
    for (let i = colon + 1; i < me; i++) if (!isOTelValueChar(buf[i]!)) return false;
  }
  return true;
}
