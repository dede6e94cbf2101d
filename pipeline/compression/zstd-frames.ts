/**
 * A structural walk over zstd frames (RFC 8878) that decompresses nothing: it checks the framing (magic
 * numbers, header bits, block headers, lengths against the end of the data) and returns an upper bound on
 * the decompressed size, from the block headers alone:
 *
 * - a raw or RLE block regenerates exactly its Block_Size;
 * - a compressed block regenerates at most Block_Maximum_Size = min(Window_Size, 128 KiB), a limit that
 *   libzstd's streaming decoder enforces ("Decompressed Block Size Exceeds Maximum").
 *
 * This bound is what lets a body be handed to a native decoder that has no output limit of its own: no
 * decoding of these bytes can produce more. It is exact for raw and RLE blocks and for compressed blocks that
 * are full; encoders fill blocks to 128 KiB except at the end of a frame or at a flush. So the caller allows
 * the bound one block (128 KiB) past the limit, which a body of one frame never needs more than, and checks
 * the decoded size exactly: a legitimate body is refused only when it is within a few blocks of the limit
 * and made of several frames or flushes. A frame may also ask for a window (the decoder's history buffer) no
 * larger than `maxWindow`.
 */

/** The most a compressed block regenerates (RFC 8878 Block_Maximum_Size, with the largest window). */
export const ZSTD_BLOCK_SIZE_MAX = 128 * 1024;

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const BLOCK_RAW = 0;
const BLOCK_RLE = 1;
const BLOCK_COMPRESSED = 2;

/** Why a body was refused: malformed framing, or more than the limit (output or window). */
export class ZstdFrameError extends Error {
  constructor(
    readonly kind: 'corrupt' | 'too_large',
    message: string,
  ) {
    super(message);
    this.name = 'ZstdFrameError';
  }
}

function corrupt(what: string): ZstdFrameError {
  return new ZstdFrameError('corrupt', `not valid zstd data: ${what}`);
}

/** True when the data starts like a zstd frame (or a skippable frame). */
export function looksLikeZstd(buf: Uint8Array): boolean {
  if (buf.length < 4) return false;
  const magic = (buf[0]! | (buf[1]! << 8) | (buf[2]! << 16) | (buf[3]! << 24)) >>> 0;
  return magic === ZSTD_MAGIC || (magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC;
}

/**
 * Walks every frame of `buf` and returns the upper bound of its decompressed size. Throws a ZstdFrameError:
 * `corrupt` for bad framing; `too_large` as soon as the bound passes `maxBound`, a declared content size is
 * over `limit`, or a frame's window is over `maxWindow`.
 */
export function zstdDecompressedBound(buf: Uint8Array, limit: number, maxBound: number, maxWindow: number): number {
  const end = buf.length;
  if (end === 0) throw corrupt('empty body');
  let pos = 0;
  let bound = 0;
  while (pos < end) {
    if (end - pos < 4) throw corrupt('truncated frame');
    const magic = (buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16) | (buf[pos + 3]! << 24)) >>> 0;
    pos += 4;
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (end - pos < 4) throw corrupt('truncated skippable frame');
      const size = (buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16) | (buf[pos + 3]! << 24)) >>> 0;
      pos += 4;
      if (size > end - pos) throw corrupt('truncated skippable frame');
      pos += size;
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw corrupt('bad magic number');
    if (pos >= end) throw corrupt('truncated frame header');
    const fhd = buf[pos++]!;
    const fcsFlag = fhd >>> 6;
    const singleSegment = (fhd & 0x20) !== 0;
    if ((fhd & 0x08) !== 0) throw corrupt('reserved bit set in the frame header');
    const hasChecksum = (fhd & 0x04) !== 0;
    const didSize = [0, 1, 2, 4][fhd & 3]!;
    const fcsSize = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
    const headerRest = (singleSegment ? 0 : 1) + didSize + fcsSize;
    if (end - pos < headerRest) throw corrupt('truncated frame header');
    let window = 0;
    if (!singleSegment) {
      const wd = buf[pos++]!;
      const base = 2 ** (10 + (wd >>> 3));
      window = base + (base / 8) * (wd & 7);
    }
    let dictId = 0;
    for (let i = 0; i < didSize; i++) dictId += buf[pos + i]! * 2 ** (8 * i);
    pos += didSize;
    if (dictId !== 0) throw corrupt('frames that need a dictionary are not accepted');
    let contentSize = -1;
    if (fcsSize > 0) {
      contentSize = 0;
      for (let i = 0; i < fcsSize; i++) contentSize += buf[pos + i]! * 2 ** (8 * i);
      if (fcsSize === 2) contentSize += 256;
      pos += fcsSize;
      if (contentSize > limit) throw new ZstdFrameError('too_large', `zstd frame declares ${contentSize} bytes, over the limit of ${limit} bytes`);
    }
    if (singleSegment) window = contentSize;
    // The decoder's history buffer: no larger than the content when the content size is known.
    const history = contentSize >= 0 ? Math.min(window, contentSize) : window;
    if (history > maxWindow) throw new ZstdFrameError('too_large', `zstd window of ${window} bytes is larger than the ${maxWindow} bytes allowed`);
    const blockMax = Math.min(window, ZSTD_BLOCK_SIZE_MAX);
    for (;;) {
      if (end - pos < 3) throw corrupt('truncated block header');
      const header = buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16);
      pos += 3;
      const last = (header & 1) !== 0;
      const type = (header >>> 1) & 3;
      const size = header >>> 3;
      if (size > blockMax) throw corrupt('block larger than the frame allows');
      if (type === BLOCK_RAW) {
        if (size > end - pos) throw corrupt('truncated block');
        pos += size;
        bound += size;
      } else if (type === BLOCK_RLE) {
        if (end - pos < 1) throw corrupt('truncated block');
        pos += 1;
        bound += size;
      } else if (type === BLOCK_COMPRESSED) {
        if (size > end - pos) throw corrupt('truncated block');
        pos += size;
        bound += blockMax;
      } else {
        throw corrupt('reserved block type');
      }
      if (bound > maxBound) throw new ZstdFrameError('too_large', `zstd data may decompress to more than the limit of ${limit} bytes`);
      if (last) break;
    }
    if (hasChecksum) {
      if (end - pos < 4) throw corrupt('truncated checksum');
      pos += 4;
    }
  }
  return bound;
}
