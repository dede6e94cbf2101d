/**
 * Protobuf wire-format primitives over plain byte arrays. Readers take explicit bounds and throw
 * INVALID_ARGUMENT on anything that would step outside them; writers assume a buffer sized in advance.
 */
import { invalidArgument } from '../service/errors.js';

export const WT_VARINT = 0;
export const WT_I64 = 1;
export const WT_LEN = 2;
export const WT_I32 = 5;

/**
 * A cursor over untrusted bytes. One instance is reused for a whole scan so that reading a varint
 * allocates nothing: the value is returned, the position advanced in place.
 */
export class WireReader {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;

  reset(buf: Uint8Array, pos: number): void {
    this.buf = buf;
    this.pos = pos;
  }

  /** A varint that must fit in 32 bits unsigned (tags and lengths). */
  uint32(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= end) throw invalidArgument('truncated varint');
      const b = buf[pos++]!;
      if (shift === 28) {
        if (b > 0x0f) throw invalidArgument('varint does not fit in 32 bits');
        result += b * 0x10000000;
        this.pos = pos;
        return result;
      }
      result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result >>> 0;
      }
    }
    /* c8 ignore next */
    throw invalidArgument('malformed varint');
  }

  /** Skip a varint of up to 10 bytes (int64 values); returns nothing, checks bounds and length. */
  skipVarint(end: number): void {
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw invalidArgument('truncated varint');
      if (buf[pos++]! < 0x80) {
        this.pos = pos;
        return;
      }
    }
    throw invalidArgument('varint longer than 10 bytes');
  }

  /** Reads a length prefix and returns the end offset of the delimited bytes, checked against `end`. */
  lengthDelimitedEnd(end: number): number {
    const len = this.uint32(end);
    const stop = this.pos + len;
    if (stop > end) throw invalidArgument('length prefix runs past the end of its message');
    return stop;
  }

  /** Skips one field's value of the given wire type. Groups (3, 4) are rejected: OTLP never uses them. */
  skip(wireType: number, end: number): void {
    switch (wireType) {
      case WT_VARINT:
        this.skipVarint(end);
        return;
      case WT_I64:
        if (this.pos + 8 > end) throw invalidArgument('truncated fixed64');
        this.pos += 8;
        return;
      case WT_LEN:
        this.pos = this.lengthDelimitedEnd(end);
        return;
      case WT_I32:
        if (this.pos + 4 > end) throw invalidArgument('truncated fixed32');
        this.pos += 4;
        return;
      default:
        throw invalidArgument(`unsupported wire type ${wireType}`);
    }
  }
}

export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Writes an unsigned 32-bit varint at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[pos++] = value;
  return pos;
}

/** Size of a length-delimited field with a one-byte tag holding `len` bytes. */
export function lenFieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

/** Writes a one-byte tag for a length-delimited field and its length; returns the position after them. */
export function writeLenHeader(buf: Uint8Array, pos: number, field: number, len: number): number {
  buf[pos++] = (field << 3) | WT_LEN;
  return writeVarint(buf, pos, len);
}

/** Compares `key` with buf[start, end) byte by byte; short keys make this cheaper than a Buffer view. */
export function bytesEqual(buf: Uint8Array, start: number, end: number, key: Uint8Array): boolean {
  const n = key.length;
  if (end - start !== n) return false;
  for (let i = 0; i < n; i++) if (buf[start + i] !== key[i]) return false;
  return true;
}
