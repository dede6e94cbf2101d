/**
 * Body compression as the OpenTelemetry Collector's configcompression names it, for the exporters (one
 * encoding each) and the otlp receiver (every encoding it accepts), with one rule for decompression: the
 * limit applies to the decompressed size and is enforced before the output can grow past it, so a
 * decompression bomb costs at most `limit` bytes and only its own request.
 *
 * - gzip, deflate (zlib format, also named zlib): node:zlib on the libuv pool; zlib stops at maxOutputLength.
 * - zstd: `@toondepauw/node-zstd` (libzstd through napi-rs, prebuilt per platform, on the libuv pool). Its
 *   decoder has no output limit, so the frames are walked first (zstd-frames.ts): the block headers bound the
 *   output, and a body whose bound is more than one block (128 KiB) over the limit is refused without being
 *   decoded; the rest is decoded (at most limit + 128 KiB) and its size checked exactly.
 * - snappy: `snappy` (napi-rs, prebuilt) for blocks; the framing format is snappy-framing.ts. Both formats
 *   declare their uncompressed lengths up front, checked against the limit before decoding.
 * - lz4 (the frame format; decompression only, as only the Collector's servers need it): lz4-frames.ts,
 *   whose decoder writes into a buffer that never grows past the limit.
 *
 * Node 20 has no zstd of its own (node:zlib gained one in 22.15). The two native packages are loaded on first
 * use, so a platform without a prebuilt binary fails only the components configured to use them, with a
 * message saying so.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type * as ZstdModule from '@toondepauw/node-zstd';
import type * as SnappyModule from 'snappy';
import { decodeSnappyFramed, encodeSnappyFramed, isSnappyFramed, checkSnappyBlock, SnappyFormatError } from './snappy-framing.js';
import { ZSTD_BLOCK_SIZE_MAX, zstdDecompressedBound, ZstdFrameError } from './zstd-frames.js';
import { decodeLz4Frames, Lz4FrameError } from './lz4-frames.js';

/** What a body can be compressed with: the Collector's names, as sent in Content-Encoding / grpc-encoding. */
export type CompressionCodec = 'gzip' | 'deflate' | 'zlib' | 'zstd' | 'snappy' | 'x-snappy-framed';

/**
 * What a body can be decompressed from. `snappy` reads both snappy formats (the framing format is told by its
 * stream identifier), as the Collector's confighttp does for `Content-Encoding: snappy`.
 */
export type DecompressionCodec = 'gzip' | 'deflate' | 'zstd' | 'snappy' | 'x-snappy-framed' | 'lz4';

export class CodecError extends Error {
  constructor(
    /** `corrupt`: not valid data; `too_large`: over the limit; `unavailable`: no native binary here. */
    readonly kind: 'corrupt' | 'too_large' | 'unavailable',
    message: string,
  ) {
    super(message);
    this.name = 'CodecError';
  }
}

/** zstd frames may ask for a history window up to this, or up to the limit when that is larger. */
const MIN_MAX_ZSTD_WINDOW = 8 * 1024 * 1024;

const gzipAsync = promisify(zlib.gzip);
const deflateAsync = promisify(zlib.deflate);
const gunzipAsync = promisify(zlib.gunzip);
const inflateAsync = promisify(zlib.inflate);

const require = createRequire(import.meta.url);
let zstdModule: typeof ZstdModule | null = null;
let snappyModule: typeof SnappyModule | null = null;

function loadZstd(): typeof ZstdModule {
  if (zstdModule === null) {
    try {
      zstdModule = require('@toondepauw/node-zstd') as typeof ZstdModule;
    } catch (err) {
      throw new CodecError('unavailable', `zstd is not available on ${process.platform}-${process.arch}: ${(err as Error).message.split('\n', 1)[0]}`);
    }
  }
  return zstdModule;
}

function loadSnappy(): typeof SnappyModule {
  if (snappyModule === null) {
    try {
      snappyModule = require('snappy') as typeof SnappyModule;
    } catch (err) {
      throw new CodecError('unavailable', `snappy is not available on ${process.platform}-${process.arch}: ${(err as Error).message.split('\n', 1)[0]}`);
    }
  }
  return snappyModule;
}

/** Loads what `codec` needs; throws a CodecError (`unavailable`) naming the platform when it cannot. */
export function ensureCodec(codec: CompressionCodec | DecompressionCodec): void {
  if (codec === 'zstd') loadZstd();
  else if (codec === 'snappy' || codec === 'x-snappy-framed') loadSnappy();
}

/** Whether `codec` can be used here (its native binary loads). */
export function codecAvailable(codec: CompressionCodec | DecompressionCodec): boolean {
  try {
    ensureCodec(codec);
    return true;
  } catch {
    return false;
  }
}

const zstdEncoders = new Map<number, ZstdModule.Encoder>();
let zstdDecoder: ZstdModule.Decoder | null = null;

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Compresses `input`. `level`: zlib's for gzip/deflate/zlib (-1 default, 0-9; -2 Huffman only, as Go's
 * compress/flate), libzstd's for zstd (1-22); ignored for snappy.
 */
export async function compress(input: Uint8Array, codec: CompressionCodec, level: number): Promise<Buffer> {
  const buf = asBuffer(input);
  switch (codec) {
    case 'gzip':
    case 'deflate':
    case 'zlib': {
      const opts: zlib.ZlibOptions = level === -2 ? { strategy: zlib.constants.Z_HUFFMAN_ONLY } : { level };
      return codec === 'gzip' ? gzipAsync(buf, opts) : deflateAsync(buf, opts);
    }
    case 'zstd': {
      const z = loadZstd();
      let enc = zstdEncoders.get(level);
      if (enc === undefined) {
        enc = new z.Encoder(level);
        zstdEncoders.set(level, enc);
      }
      return enc.encode(buf);
    }
    case 'snappy':
      return loadSnappy().compress(buf);
    case 'x-snappy-framed':
      return encodeSnappyFramed(buf, loadSnappy());
  }
}

/**
 * Decompresses `input`, refusing (CodecError `too_large`) any body that decompresses to more than `limit`
 * bytes before holding more than that, and (`corrupt`) any that is not valid data of its codec.
 */
export async function decompress(input: Uint8Array, codec: DecompressionCodec, limit: number): Promise<Buffer> {
  const buf = asBuffer(input);
  switch (codec) {
    case 'gzip':
    case 'deflate':
      try {
        // zlib stops with ERR_BUFFER_TOO_LARGE as soon as the output would pass the limit.
        const opts = { maxOutputLength: limit };
        return codec === 'gzip' ? await gunzipAsync(buf, opts) : await inflateAsync(buf, opts);
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw decompressedTooLarge(limit);
        throw new CodecError('corrupt', `not valid ${codec} data`);
      }
    case 'zstd':
      return decompressZstd(buf, limit);
    case 'snappy':
    case 'x-snappy-framed':
      return decompressSnappy(buf, codec, limit);
    case 'lz4':
      try {
        return decodeLz4Frames(buf, limit);
      } catch (err) {
        if (err instanceof Lz4FrameError) throw new CodecError(err.kind, err.message);
        throw err;
      }
  }
}

async function decompressZstd(buf: Buffer, limit: number): Promise<Buffer> {
  const z = loadZstd();
  let bound: number;
  try {
    bound = zstdDecompressedBound(buf, limit, limit + ZSTD_BLOCK_SIZE_MAX, Math.max(limit, MIN_MAX_ZSTD_WINDOW));
  } catch (err) {
    if (err instanceof ZstdFrameError) throw new CodecError(err.kind, err.message);
    throw err;
  }
  if (zstdDecoder === null) zstdDecoder = new z.Decoder();
  let out: Buffer;
  try {
    out = await zstdDecoder.decode(buf);
  } catch {
    throw new CodecError('corrupt', 'not valid zstd data');
  }
  // Cannot happen with libzstd's block limit; checked so that a decoder that allowed it is still caught.
  if (out.length > bound) throw new CodecError('corrupt', 'not valid zstd data: a block decompresses to more than its frame allows');
  // The bound may pass the limit by one block: the exact check.
  if (out.length > limit) throw decompressedTooLarge(limit);
  return out;
}

async function decompressSnappy(buf: Buffer, codec: 'snappy' | 'x-snappy-framed', limit: number): Promise<Buffer> {
  const snappy = loadSnappy();
  try {
    if (codec === 'x-snappy-framed' || isSnappyFramed(buf)) return decodeSnappyFramed(buf, limit, snappy);
    const declared = checkSnappyBlock(buf, limit);
    let out: Buffer;
    try {
      out = (await snappy.uncompress(buf, { asBuffer: true })) as Buffer;
    } catch {
      throw new CodecError('corrupt', 'not valid snappy data');
    }
    if (out.length !== declared) throw new CodecError('corrupt', 'not valid snappy data: it decompresses to other than its declared length');
    return out;
  } catch (err) {
    if (err instanceof SnappyFormatError) throw new CodecError(err.kind, err.message);
    throw err;
  }
}

function decompressedTooLarge(limit: number): CodecError {
  return new CodecError('too_large', `the body decompresses to more than the limit of ${limit} bytes`);
}
