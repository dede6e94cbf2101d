/**
 * Attribute values as the wire carries them: the AnyValue oneof's field numbers, and encoders that build
 * an encoded AnyValue (or a run of span attribute fields) once, for processors to append many times.
 */
import { lenFieldSize, varintSize, writeLenHeader, writeVarint } from './wire.js';

/** AnyValue oneof field numbers, exposed as the kind of a found attribute value. */
export const VALUE_STRING = 1;
export const VALUE_BOOL = 2;
export const VALUE_INT = 3;
export const VALUE_DOUBLE = 4;
export const VALUE_ARRAY = 5;
export const VALUE_KVLIST = 6;
export const VALUE_BYTES = 7;

/** An encoded AnyValue message body (without its own tag and length). */
export type EncodedValue = Uint8Array;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

export function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  return utf8Decoder.decode(buf.subarray(start, end));
}

export function encodeKey(key: string): Uint8Array {
  return utf8.encode(key);
}

export function encodeString(value: string): EncodedValue {
  const s = utf8.encode(value);
  const out = new Uint8Array(lenFieldSize(s.length));
  const p = writeLenHeader(out, 0, VALUE_STRING, s.length);
  out.set(s, p);
  return out;
}

export const ENCODED_TRUE: EncodedValue = Uint8Array.of(0x10, 1);
export const ENCODED_FALSE: EncodedValue = Uint8Array.of(0x10, 0);

export function encodeBool(value: boolean): EncodedValue {
  return value ? ENCODED_TRUE : ENCODED_FALSE;
}

export function encodeInt(value: number | bigint): EncodedValue {
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [0x18];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Uint8Array.from(bytes);
}

export function encodeDouble(value: number): EncodedValue {
  const out = new Uint8Array(9);
  out[0] = 0x21;
  new DataView(out.buffer).setFloat64(1, value, true);
  return out;
}

export function encodeStringArray(values: readonly string[]): EncodedValue {
  const items = values.map((v) => encodeString(v));
  let arrLen = 0;
  for (const it of items) arrLen += lenFieldSize(it.length);
  const out = new Uint8Array(lenFieldSize(arrLen));
  let p = writeLenHeader(out, 0, VALUE_ARRAY, arrLen);
  for (const it of items) {
    p = writeLenHeader(out, p, 1, it.length);
    out.set(it, p);
    p += it.length;
  }
  return out;
}

const encodedKeys = new Map<string, Uint8Array>();

/** Encodes attributes as a run of span attribute fields (KeyValue, field 9) for appendSpanAttributesEncoded. */
export function encodeSpanAttributes(attrs: readonly (readonly [string, EncodedValue])[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [key, value] of attrs) {
    let k = encodedKeys.get(key);
    if (k === undefined) {
      k = utf8.encode(key);
      // Keys written over and over are few (configured attribute names); bound it anyway.
      if (encodedKeys.size < 1024) encodedKeys.set(key, k);
    }
    const kvLen = lenFieldSize(k.length) + lenFieldSize(value.length);
    const out = new Uint8Array(lenFieldSize(kvLen));
    let p = writeLenHeader(out, 0, 9, kvLen);
    p = writeLenHeader(out, p, 1, k.length);
    out.set(k, p);
    p += k.length;
    p = writeLenHeader(out, p, 2, value.length);
    out.set(value, p);
    parts.push(out);
  }
  return Buffer.concat(parts);
}

// Re-exported for processors that write their own varints.
export { writeVarint, varintSize };
