/**
 * A fixed set of attribute keys matched against key bytes in a batch. Keys are bucketed by length, so the
 * many attributes whose key length matches none cost one array read, and the rest compare only the keys
 * of their length. Built once, at start-up.
 *
 * A folding matcher compares as a person reading a backend's UI would: ASCII case is ignored, and
 * whitespace, control and invisible characters around the key are not part of it. `Identity.Verified`,
 * `ENDUSER.ID ` and `enduser.id\u200b` all match `enduser.id`. Unicode case and confusable letters are not
 * folded (a backend shows those as different keys).
 */
import { bytesEqual } from './wire.js';

const utf8 = new TextEncoder();

export class KeyMatcher {
  readonly size: number;
  /** The keys as given (folded matchers store them lower-cased and trimmed). */
  readonly keys: readonly Uint8Array[];
  private readonly byLength: Int32Array[];
  /** Each key's last byte (folded matchers), compared before the rest. */
  private readonly lastBytes: Uint8Array;
  /** Folded keys' last two bytes ((second-to-last << 8) | last; 0 before a one-byte key). */
  private readonly endPairs = new Uint8Array(65536);
  private readonly coverage = new WeakMap<KeyMatcher, boolean>();

  constructor(
    keys: readonly Uint8Array[],
    readonly folded = false,
  ) {
    this.keys = folded ? keys.map((k) => utf8.encode(foldKey(new TextDecoder().decode(k)))) : keys;
    this.size = keys.length;
    const max = this.keys.reduce((m, k) => Math.max(m, k.length), 0);
    const buckets: number[][] = Array.from({ length: max + 1 }, () => []);
    this.keys.forEach((k, i) => buckets[k.length]!.push(i));
    this.byLength = buckets.map((b) => Int32Array.from(b));
    this.lastBytes = Uint8Array.from(this.keys.map((k) => (k.length === 0 ? 0 : k[k.length - 1]!)));
    for (const k of this.keys) if (k.length > 0) this.endPairs[((k.length >= 2 ? k[k.length - 2]! : 0) << 8) | k[k.length - 1]!] = 1;
  }

  /**
   * Whether buf[start, end) can end like one of these keys (its last two bytes, ASCII-folded): a two-read
   * filter. Most keys fail it; keys of one length often share a prefix (`http.request.…`) but rarely an
   * ending.
   */
  mayEnd(buf: Uint8Array, start: number, end: number): boolean {
    if (end <= start) return false;
    let a = end - start >= 2 ? buf[end - 2]! : 0;
    let b = buf[end - 1]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    return this.endPairs[(a << 8) | b] === 1;
  }

  static of(keys: readonly string[], folded = false): KeyMatcher {
    return new KeyMatcher(keys.map((k) => utf8.encode(k)), folded);
  }

  /** Whether every key of `other` is one of these (answered once per pair). */
  covers(other: KeyMatcher): boolean {
    if (other === this) return true;
    let c = this.coverage.get(other);
    if (c === undefined) {
      c = (this.folded || !other.folded) && other.keys.every((k) => this.match(k, 0, k.length) >= 0);
      this.coverage.set(other, c);
    }
    return c;
  }

  /** Index of the key equal to buf[start, end), or -1. */
  match(buf: Uint8Array, start: number, end: number): number {
    if (this.folded) {
      // Most keys neither start nor end with anything to trim: two byte reads decide it.
      if (start < end && (IGNORABLE_LEAD[buf[start]!] === 1 || IGNORABLE_LEAD[buf[end - 1]!] === 1 || buf[end - 1]! >= 0x80)) {
        start = trimStart(buf, start, end);
        end = trimEnd(buf, start, end);
      }
      const len = end - start;
      if (len === 0 || len >= this.byLength.length || !this.mayEnd(buf, start, end)) return -1;
      const bucket = this.byLength[len]!;
      let last = buf[end - 1]!;
      if (last >= 0x41 && last <= 0x5a) last |= 0x20;
      for (let i = 0; i < bucket.length; i++) {
        const k = bucket[i]!;
        // Keys of one length often share a prefix (`http.request.…`): the last byte tells most apart.
        if (this.lastBytes[k] === last && foldedEqual(buf, start, this.keys[k]!)) return k;
      }
      return -1;
    }
    const len = end - start;
    if (len >= this.byLength.length) return -1;
    const bucket = this.byLength[len]!;
    for (let i = 0; i < bucket.length; i++) {
      const k = bucket[i]!;
      if (bytesEqual(buf, start, end, this.keys[k]!)) return k;
    }
    return -1;
  }

  /** match() for a JavaScript string (the rare paths that have one). */
  matchString(key: string): number {
    const b = utf8.encode(key);
    return this.match(b, 0, b.length);
  }
}

/** Bytes that may start an ignorable character: ASCII controls, space, DEL, and lead bytes of the multi-byte ones below. */
const IGNORABLE_LEAD = new Uint8Array(256);
for (let c = 0; c <= 0x20; c++) IGNORABLE_LEAD[c] = 1;
IGNORABLE_LEAD[0x7f] = 1;
IGNORABLE_LEAD[0xc2] = 1;
IGNORABLE_LEAD[0xe1] = 1;
IGNORABLE_LEAD[0xe2] = 1;
IGNORABLE_LEAD[0xe3] = 1;
IGNORABLE_LEAD[0xef] = 1;

/**
 * Length of the ignorable character at buf[p] (0 when there is none): ASCII controls and space, DEL, C1
 * controls, NBSP, soft hyphen, the Unicode spaces, zero-width characters, bidirectional marks, word
 * joiners, the ideographic space and the byte order mark.
 */
function ignorableAt(buf: Uint8Array, p: number, end: number): number {
  const c = buf[p]!;
  if (c <= 0x20 || c === 0x7f) return 1;
  if (c === 0xc2 && p + 1 < end) {
    const d = buf[p + 1]!;
    return (d >= 0x80 && d <= 0xa0) || d === 0xad ? 2 : 0;
  }
  if (p + 2 >= end) return 0;
  const d = buf[p + 1]!;
  const e = buf[p + 2]!;
  if (c === 0xe2) {
    if (d === 0x80 && ((e >= 0x80 && e <= 0x8f) || (e >= 0xa8 && e <= 0xaf))) return 3;
    if (d === 0x81 && e >= 0x9f && e <= 0xaf) return 3;
    return 0;
  }
  if (c === 0xe1) return (d === 0x9a && e === 0x80) || (d === 0xa0 && e === 0x8e) ? 3 : 0;
  if (c === 0xe3) return d === 0x80 && e === 0x80 ? 3 : 0;
  if (c === 0xef) return d === 0xbb && e === 0xbf ? 3 : 0;
  return 0;
}

function trimStart(buf: Uint8Array, start: number, end: number): number {
  for (;;) {
    if (start >= end) return start;
    const n = ignorableAt(buf, start, end);
    if (n === 0) return start;
    start += n;
  }
}

function trimEnd(buf: Uint8Array, start: number, end: number): number {
  for (;;) {
    if (end <= start) return end;
    const c = buf[end - 1]!;
    if (c <= 0x20 || c === 0x7f) {
      end--;
      continue;
    }
    // A multi-byte ignorable ends in a continuation byte: try the 2- and 3-byte forms ending here.
    if (c >= 0x80 && c < 0xc0) {
      if (end - 2 >= start && ignorableAt(buf, end - 2, end) === 2) {
        end -= 2;
        continue;
      }
      if (end - 3 >= start && ignorableAt(buf, end - 3, end) === 3) {
        end -= 3;
        continue;
      }
    }
    return end;
  }
}

function foldedEqual(buf: Uint8Array, start: number, lowerKey: Uint8Array): boolean {
  const n = lowerKey.length;
  for (let i = n - 1; i >= 0; i--) {
    let c = buf[start + i]!;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowerKey[i]) return false;
  }
  return true;
}

/** A key as a folding matcher compares it: ignorable characters around it removed, ASCII lower-cased. */
export function foldKey(key: string): string {
  const b = utf8.encode(key);
  const s = trimStart(b, 0, b.length);
  const e = trimEnd(b, s, b.length);
  let out = '';
  const t = new TextDecoder().decode(b.subarray(s, e));
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c | 0x20) : t[i];
  }
  return out;
}
