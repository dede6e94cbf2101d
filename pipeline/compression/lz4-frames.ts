/**
 * LZ4 frame format decoding (lz4 frame_format.md, the format of `Content-Encoding: lz4` as the Collector's
 * confighttp reads it with pierrec/lz4), in TypeScript: a block decoder is a short loop, and owning it means
 * the output is written into a buffer that never grows past the limit, so no bound has to be inferred.
 *
 * Checked as pierrec/lz4 checks: the magic number, the version, reserved bits, the descriptor checksum, the
 * block checksums and content checksum when the frame has them (XXH32), the declared content size, and
 * that no block decompresses to more than the frame's block maximum. Concatenated frames and skippable
 * frames are read; dictionaries and the legacy format are refused.
 */

const LZ4_MAGIC = 0x184d2204;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const BLOCK_MAX: Readonly<Record<number, number>> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

export class Lz4FrameError extends Error {
  constructor(
    readonly kind: 'corrupt' | 'too_large',
    message: string,
  ) {
    super(message);
    this.name = 'Lz4FrameError';
  }
}

function corrupt(what: string): Lz4FrameError {
  return new Lz4FrameError('corrupt', `not valid lz4 data: ${what}`);
}

function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** XXH32 of buf[start, end) with seed 0. */
export function xxh32(buf: Uint8Array, start = 0, end = buf.length): number {
  let p = start;
  let h: number;
  if (end - start >= 16) {
    let v1 = (P1 + P2) | 0;
    let v2 = P2 | 0;
    let v3 = 0;
    let v4 = -P1 | 0;
    const limit = end - 16;
    while (p <= limit) {
      v1 = Math.imul(rotl((v1 + Math.imul(u32(buf, p), P2)) | 0, 13), P1);
      v2 = Math.imul(rotl((v2 + Math.imul(u32(buf, p + 4), P2)) | 0, 13), P1);
      v3 = Math.imul(rotl((v3 + Math.imul(u32(buf, p + 8), P2)) | 0, 13), P1);
      v4 = Math.imul(rotl((v4 + Math.imul(u32(buf, p + 12), P2)) | 0, 13), P1);
      p += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = P5 | 0;
  }
  h = (h + (end - start)) | 0;
  while (p + 4 <= end) {
    h = Math.imul(rotl((h + Math.imul(u32(buf, p), P3)) | 0, 17), P4);
    p += 4;
  }
  while (p < end) {
    h = Math.imul(rotl((h + Math.imul(buf[p]!, P5)) | 0, 11), P1);
    p++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

interface Block {
  start: number;
  end: number;
  compressed: boolean;
}

interface Frame {
  blocks: Block[];
  blockMax: number;
  independent: boolean;
  contentSize: number;
  /** The content checksum, or -1. */
  checksum: number;
}

/** Decodes every frame of `buf`; `too_large` the moment the output would pass `limit`. */
export function decodeLz4Frames(buf: Uint8Array, limit: number): Buffer {
  // Pass 1: framing, checksums of the descriptors and blocks, and how large the output can be.
  const frames: Frame[] = [];
  const end = buf.length;
  if (end === 0) throw corrupt('empty body');
  let pos = 0;
  let bound = 0;
  while (pos < end) {
    if (end - pos < 4) throw corrupt('truncated frame');
    const magic = u32(buf, pos);
    pos += 4;
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (end - pos < 4) throw corrupt('truncated skippable frame');
      const size = u32(buf, pos);
      pos += 4;
      if (size > end - pos) throw corrupt('truncated skippable frame');
      pos += size;
      continue;
    }
    if (magic !== LZ4_MAGIC) throw corrupt('bad magic number');
    if (end - pos < 3) throw corrupt('truncated frame descriptor');
    const descStart = pos;
    const flg = buf[pos++]!;
    const bd = buf[pos++]!;
    if (flg >>> 6 !== 1) throw corrupt('unsupported version');
    if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) throw corrupt('reserved bits set in the frame descriptor');
    if ((flg & 0x01) !== 0) throw corrupt('frames that need a dictionary are not accepted');
    const blockMax = BLOCK_MAX[(bd >>> 4) & 7];
    if (blockMax === undefined) throw corrupt('bad block maximum size');
    let contentSize = -1;
    if ((flg & 0x08) !== 0) {
      if (end - pos < 9) throw corrupt('truncated frame descriptor');
      contentSize = u32(buf, pos) + u32(buf, pos + 4) * 2 ** 32;
      pos += 8;
      if (contentSize > limit) throw new Lz4FrameError('too_large', `lz4 frame declares ${contentSize} bytes, over the limit of ${limit} bytes`);
    }
    if (end - pos < 1) throw corrupt('truncated frame descriptor');
    if (((xxh32(buf, descStart, pos) >>> 8) & 0xff) !== buf[pos]) throw corrupt('descriptor checksum mismatch');
    pos++;
    const blockChecksums = (flg & 0x10) !== 0;
    const frame: Frame = { blocks: [], blockMax, independent: (flg & 0x20) !== 0, contentSize, checksum: -1 };
    for (;;) {
      if (end - pos < 4) throw corrupt('truncated block');
      const word = u32(buf, pos);
      pos += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      const compressed = (word & 0x80000000) === 0;
      if (size > blockMax) throw corrupt('block larger than the frame allows');
      if (size > end - pos) throw corrupt('truncated block');
      frame.blocks.push({ start: pos, end: pos + size, compressed });
      pos += size;
      if (blockChecksums) {
        if (end - pos < 4) throw corrupt('truncated block checksum');
        if (xxh32(buf, pos - size, pos) !== u32(buf, pos)) throw corrupt('block checksum mismatch');
        pos += 4;
      }
      bound += compressed ? blockMax : size;
    }
    if ((flg & 0x04) !== 0) {
      if (end - pos < 4) throw corrupt('truncated content checksum');
      frame.checksum = u32(buf, pos);
      pos += 4;
    }
    frames.push(frame);
  }
  // Pass 2: the data, into a buffer no larger than the limit.
  const out = Buffer.allocUnsafe(Math.min(bound, limit));
  let o = 0;
  for (const f of frames) {
    const frameStart = o;
    for (const b of f.blocks) {
      const blockStart = o;
      const stop = Math.min(out.length, blockStart + f.blockMax);
      if (!b.compressed) {
        if (blockStart + (b.end - b.start) > out.length) throw tooLarge(limit);
        out.set(buf.subarray(b.start, b.end), o);
        o += b.end - b.start;
      } else {
        o = decodeBlock(buf, b.start, b.end, out, o, stop, f.independent ? blockStart : frameStart, limit, blockStart + f.blockMax);
      }
    }
    if (f.contentSize >= 0 && o - frameStart !== f.contentSize) throw corrupt('the content size does not match the frame');
    if (f.checksum >= 0 && xxh32(out, frameStart, o) !== f.checksum) throw corrupt('content checksum mismatch');
  }
  return out.subarray(0, o);
}

function tooLarge(limit: number): Lz4FrameError {
  return new Lz4FrameError('too_large', `lz4 data decompresses to more than the limit of ${limit} bytes`);
}

/**
 * One LZ4 block from src[s, e) into out at `o`, writing no further than `stop` (the buffer's end or the
 * block maximum, whichever is first; `blockEnd` tells which one was passed); matches may reach back to
 * `windowStart`.
 */
function decodeBlock(src: Uint8Array, s: number, e: number, out: Buffer, o: number, stop: number, windowStart: number, limit: number, blockEnd: number): number {
  const overflow = (): Lz4FrameError => (stop < blockEnd ? tooLarge(limit) : corrupt('a block decompresses to more than the frame allows'));
  while (s < e) {
    const token = src[s++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (s >= e) throw corrupt('truncated literal length');
        b = src[s++]!;
        lit += b;
      } while (b === 255);
    }
    if (lit > e - s) throw corrupt('literals run past the block');
    if (lit > stop - o) throw overflow();
    for (let i = 0; i < lit; i++) out[o + i] = src[s + i]!;
    s += lit;
    o += lit;
    if (s === e) return o;
    if (e - s < 2) throw corrupt('truncated match offset');
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > o - windowStart) throw corrupt('match offset outside the data');
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (s >= e) throw corrupt('truncated match length');
        b = src[s++]!;
        len += b;
      } while (b === 255);
    }
    len += 4;
    if (len > stop - o) throw overflow();
    // Byte by byte: a match may overlap what it writes (a run).
    let from = o - offset;
    const until = o + len;
    while (o < until) out[o++] = out[from++]!;
  }
  // Ends after a match rather than with literals: the format says it should not, pierrec/lz4 allows it.
  return o;
}
