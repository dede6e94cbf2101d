/**
 * A protobuf writer for the OTLP/JSON conversion: one growing buffer, a one-byte length slot per nested
 * message that is widened in place when the message turns out longer than 127 bytes (no per-field
 * objects, unlike protobufjs's Writer).
 */

/** Hex digit values by character code; -1 for anything else. */
export const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

export class ProtoWriter {
  buf: Buffer;
  pos = 0;
  private readonly starts: number[] = [];
  private depth = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(8192, capacity));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(v: number): void {
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  tag(field: number, wireType: number): void {
    this.varint(((field << 3) | wireType) >>> 0);
  }

  /** A varint of a non-negative safe integer (up to 2^53), without BigInt. */
  varintNumber(v: number): void {
    if (v <= 0xffffffff) return this.varint(v);
    this.ensure(8);
    const b = this.buf;
    let p = this.pos;
    while (v > 0x7f) {
      b[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    b[p++] = v;
    this.pos = p;
  }

  /** A 64-bit varint of a value in [-2^63, 2^64): two's complement for negatives, as int64 is encoded. */
  varint64(v: bigint): void {
    this.ensure(10);
    let u = BigInt.asUintN(64, v);
    const b = this.buf;
    let p = this.pos;
    while (u > 0x7fn) {
      b[p++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    b[p++] = Number(u);
    this.pos = p;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(v: number | bigint): void {
    this.ensure(8);
    if (typeof v === 'number') {
      this.buf.writeUInt32LE(v % 0x100000000, this.pos);
      this.buf.writeUInt32LE(Math.floor(v / 0x100000000), this.pos + 4);
    } else {
      this.buf.writeBigUInt64LE(v, this.pos);
    }
    this.pos += 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  string(s: string): void {
    if (s.length === 0) return this.varint(0);
    if (s.length < 0x80) {
      // Short ASCII, the common case (keys, names): copied by hand, cheaper than a call into Buffer.write.
      this.ensure(1 + s.length);
      const b = this.buf;
      const p = this.pos + 1;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p + i] = c;
      }
      if (i === s.length) {
        b[this.pos] = i;
        this.pos = p + i;
        return;
      }
    }
    const n = s.length < 0x2a ? -1 : Buffer.byteLength(s, 'utf8');
    if (n < 0) {
      // Short: at most 3 × 41 = 123 bytes, so one length byte; written first, then fixed up.
      this.ensure(1 + s.length * 3);
      const written = this.buf.write(s, this.pos + 1, 'utf8');
      this.buf[this.pos] = written;
      this.pos += 1 + written;
      return;
    }
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The bytes of a hex string already checked to be valid and of even length. */
  hex(h: string): void {
    const n = h.length >>> 1;
    this.varint(n);
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < h.length; i += 2) b[p++] = (HEX[h.charCodeAt(i)]! << 4) | HEX[h.charCodeAt(i + 1)]!;
    this.pos = p;
  }

  fork(): void {
    this.ensure(1);
    this.starts[this.depth++] = this.pos;
    this.pos += 1;
  }

  ldelim(): void {
    const start = this.starts[--this.depth]!;
    const len = this.pos - start - 1;
    const size = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    if (size > 1) {
      this.ensure(size - 1);
      this.buf.copyWithin(start + size, start + 1, this.pos);
      this.pos += size - 1;
    }
    const b = this.buf;
    let p = start;
    let v = len;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p] = v;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}
