/**
 * Snappy's two formats, as the OpenTelemetry Collector uses them:
 *
 * - the block format (one snappy block: a varint of the uncompressed length, then the compressed data),
 *   which is `Content-Encoding: snappy` over HTTP;
 * - the framing format (google/snappy framing_format.txt: a stream identifier chunk, then chunks of at most
 *   64 KiB of data each, compressed or not, each with a masked CRC-32C of its uncompressed data), which is
 *   `Content-Encoding: x-snappy-framed` over HTTP and the gRPC `snappy` encoding (configgrpc's snappy codec
 *   wraps golang/snappy's framed Reader and Writer).
 *
 * Blocks are compressed and decompressed by `snappy` (napi-rs, native, prebuilt); the framing and its
 * checksums are done here. Every length is known before anything is decompressed (the block's varint, each
 * chunk's length), so the limit is applied to the decompressed size before a byte of it is allocated.
 */
import { maskedCrc32c } from './crc32c.js';

/** The first 10 bytes of every framed stream: chunk 0xff of length 6 holding "sNaPpY". */
export const SNAPPY_STREAM_IDENTIFIER = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);
const CHUNK_COMPRESSED = 0x00;
const CHUNK_UNCOMPRESSED = 0x01;
const CHUNK_STREAM_ID = 0xff;
/** Uncompressed data in one chunk, at most (the format's limit, and golang/snappy's block size). */
const MAX_CHUNK_DATA = 65536;

export interface SnappyBlockCodec {
  compressSync(input: Uint8Array): Buffer;
  uncompressSync(input: Uint8Array, options: { asBuffer: true }): string | Buffer;
}

export class SnappyFormatError extends Error {
  constructor(
    readonly kind: 'corrupt' | 'too_large',
    message: string,
  ) {
    super(message);
    this.name = 'SnappyFormatError';
  }
}

function corrupt(what: string): SnappyFormatError {
  return new SnappyFormatError('corrupt', `not valid snappy data: ${what}`);
}

/** True when the data starts with the framing format's stream identifier. */
export function isSnappyFramed(buf: Uint8Array): boolean {
  if (buf.length < SNAPPY_STREAM_IDENTIFIER.length) return false;
  for (let i = 0; i < SNAPPY_STREAM_IDENTIFIER.length; i++) if (buf[i] !== SNAPPY_STREAM_IDENTIFIER[i]) return false;
  return true;
}

/**
 * The uncompressed length a snappy block declares (its leading varint, at most 32 bits as the format says),
 * with the varint's size; throws `corrupt` on a malformed varint.
 */
export function snappyBlockLength(buf: Uint8Array, start = 0, end = buf.length): { length: number; headerSize: number } {
  let result = 0;
  for (let i = 0; i < 5; i++) {
    if (start + i >= end) throw corrupt('truncated length');
    const b = buf[start + i]!;
    if (i === 4 && b > 0x0f) throw corrupt('length does not fit in 32 bits');
    result += (b & 0x7f) * 2 ** (7 * i);
    if (b < 0x80) return { length: result, headerSize: i + 1 };
  }
  throw corrupt('malformed length');
}

/** Checks a block's declared length against the limit; `too_large` past it. */
export function checkSnappyBlock(buf: Uint8Array, limit: number): number {
  const { length } = snappyBlockLength(buf);
  if (length > limit) throw new SnappyFormatError('too_large', `snappy block declares ${length} bytes, over the limit of ${limit} bytes`);
  return length;
}

/**
 * Decodes a framed stream: the structure and every chunk's length are checked first (so nothing is
 * decompressed when the total is over `limit`), then each chunk is decompressed and its checksum verified.
 */
export function decodeSnappyFramed(buf: Uint8Array, limit: number, codec: SnappyBlockCodec): Buffer {
  if (!isSnappyFramed(buf)) throw corrupt('the stream does not start with the stream identifier');
  const end = buf.length;
  let total = 0;
  // Pass 1: framing and sizes.
  let pos = 0;
  while (pos < end) {
    if (end - pos < 4) throw corrupt('truncated chunk header');
    const type = buf[pos]!;
    const len = buf[pos + 1]! | (buf[pos + 2]! << 8) | (buf[pos + 3]! << 16);
    const data = pos + 4;
    if (len > end - data) throw corrupt('truncated chunk');
    if (type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) {
      if (len < 4) throw corrupt('chunk too short for its checksum');
      const n = type === CHUNK_UNCOMPRESSED ? len - 4 : snappyBlockLength(buf, data + 4, data + len).length;
      if (n > MAX_CHUNK_DATA) throw corrupt('chunk holds more than 64 KiB');
      total += n;
      if (total > limit) throw new SnappyFormatError('too_large', `snappy data decompresses to more than the limit of ${limit} bytes`);
    } else if (type === CHUNK_STREAM_ID) {
      if (len !== 6 || !isSnappyFramed(buf.subarray(pos, pos + 10))) throw corrupt('bad stream identifier');
    } else if (type < 0x80) {
      throw corrupt('reserved unskippable chunk');
    }
    // 0x80-0xfd (reserved skippable) and 0xfe (padding) are skipped.
    pos = data + len;
  }
  // Pass 2: data.
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  pos = 0;
  while (pos < end) {
    const type = buf[pos]!;
    const len = buf[pos + 1]! | (buf[pos + 2]! << 8) | (buf[pos + 3]! << 16);
    const data = pos + 4;
    pos = data + len;
    if (type !== CHUNK_COMPRESSED && type !== CHUNK_UNCOMPRESSED) continue;
    const expected = (buf[data]! | (buf[data + 1]! << 8) | (buf[data + 2]! << 16) | (buf[data + 3]! << 24)) >>> 0;
    const start = at;
    if (type === CHUNK_UNCOMPRESSED) {
      out.set(buf.subarray(data + 4, pos), at);
      at += len - 4;
    } else {
      let plain: Buffer;
      try {
        plain = codec.uncompressSync(buf.subarray(data + 4, pos), { asBuffer: true }) as Buffer;
      } catch {
        throw corrupt('a chunk does not decompress');
      }
      // The block's varint was read in pass 1; a decoder honouring it returns exactly that many bytes.
      if (plain.length > total - at) throw corrupt('a chunk decompresses to more than it declares');
      out.set(plain, at);
      at += plain.length;
    }
    if (maskedCrc32c(out, start, at) !== expected) throw corrupt('checksum mismatch');
  }
  if (at !== total) throw corrupt('a chunk decompresses to less than it declares');
  return out;
}

/**
 * Encodes as golang/snappy's framed Writer does: the stream identifier, then one chunk per 64 KiB of input,
 * compressed unless that saves less than an eighth.
 */
export function encodeSnappyFramed(input: Uint8Array, codec: SnappyBlockCodec): Buffer {
  const parts: Uint8Array[] = [SNAPPY_STREAM_IDENTIFIER];
  let size = SNAPPY_STREAM_IDENTIFIER.length;
  for (let off = 0; off < input.length; off += MAX_CHUNK_DATA) {
    const plain = input.subarray(off, Math.min(input.length, off + MAX_CHUNK_DATA));
    const compressed = codec.compressSync(plain);
    const useCompressed = compressed.length < plain.length - (plain.length >>> 3);
    const body = useCompressed ? compressed : plain;
    const header = Buffer.allocUnsafe(8);
    const len = body.length + 4;
    header[0] = useCompressed ? CHUNK_COMPRESSED : CHUNK_UNCOMPRESSED;
    header[1] = len & 0xff;
    header[2] = (len >>> 8) & 0xff;
    header[3] = len >>> 16;
    header.writeUInt32LE(maskedCrc32c(plain), 4);
    parts.push(header, body);
    size += 8 + body.length;
  }
  return Buffer.concat(parts, size);
}
