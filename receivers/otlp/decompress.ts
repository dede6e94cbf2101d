/**
 * Request body decompression with the size limit applied to the output, so a small bomb costs at most
 * `limit` bytes of memory and only its request: zlib stops at the limit, and zstd and snappy bodies declare
 * (snappy) or bound (zstd, from its block headers) their decompressed size, checked before decoding
 * (pipeline/batch/compression.ts), and lz4's decoder writes into a buffer no larger than the limit. Decoding
 * runs on the libuv pool, except snappy's framing format (64 KiB chunks) and lz4, decoded on the event loop.
 *
 * What is accepted is what the Collector's servers accept: confighttp's default compression_algorithms over
 * HTTP (gzip, zstd, zlib, snappy, deflate, lz4, x-snappy-framed), and over gRPC the encodings configgrpc
 * registers (gzip, zstd, snappy) plus deflate. lz4 is decoded on the event loop (pure TypeScript).
 */
import { PipelineError, invalidArgument } from '../../pipeline/service/errors.js';
import { CodecError, codecAvailable, decompress as decompressBody, type DecompressionCodec } from '../../pipeline/compression/compression.js';

export type Encoding = 'identity' | DecompressionCodec;

interface Accepted {
  zstd: boolean;
  snappy: boolean;
  /** grpc-accept-encoding. */
  grpc: string;
  /** The Content-Encodings, as a refusal names them. */
  http: string;
}

let accepted: Accepted | null = null;

/**
 * What is accepted here: the native codecs are loaded on first call (the servers call it when they start,
 * so that `validate` never pays for loading them and no request does).
 */
export function acceptedEncodings(): Accepted {
  if (accepted === null) {
    const zstd = codecAvailable('zstd');
    const snappy = codecAvailable('snappy');
    accepted = {
      zstd,
      snappy,
      grpc: ['identity', 'gzip', 'deflate', ...(zstd ? ['zstd'] : []), ...(snappy ? ['snappy'] : [])].join(','),
      http: ['gzip', 'deflate', 'zlib', ...(zstd ? ['zstd'] : []), ...(snappy ? ['snappy', 'x-snappy-framed'] : []), 'lz4', 'identity'].join(', '),
    };
  }
  return accepted;
}

/**
 * The encoding named by a Content-Encoding (`http`) or grpc-encoding (`grpc`) value, or null when
 * unsupported. Over HTTP `snappy` is either snappy format (the Collector once sent the framing format under
 * that name and still reads both); over gRPC it is the framing format, read the same way.
 */
export function parseEncoding(value: string | undefined, transport: 'http' | 'grpc' = 'http'): Encoding | null {
  if (value === undefined || value === '') return 'identity';
  const v = value.trim().toLowerCase();
  switch (v) {
    case 'identity':
      return 'identity';
    case 'gzip':
    case 'x-gzip':
      return 'gzip';
    case 'zlib':
      return transport === 'http' ? 'deflate' : null;
    case 'deflate':
      return 'deflate';
    case 'zstd':
      return acceptedEncodings().zstd ? 'zstd' : null;
    case 'snappy':
      return acceptedEncodings().snappy ? 'snappy' : null;
    case 'x-snappy-framed':
      return transport === 'http' && acceptedEncodings().snappy ? 'x-snappy-framed' : null;
    case 'lz4':
      return transport === 'http' ? 'lz4' : null;
    default:
      return null;
  }
}

export async function decompress(body: Buffer, encoding: Encoding, limit: number): Promise<Buffer> {
  if (encoding === 'identity') return body;
  try {
    return await decompressBody(body, encoding, limit);
  } catch (err) {
    if (err instanceof CodecError) {
      if (err.kind === 'too_large') throw new PipelineError('PAYLOAD_TOO_LARGE', `request body decompresses to more than the limit of ${limit} bytes (${encoding})`);
      if (err.kind === 'corrupt') throw invalidArgument(`request body is ${err.message}`);
    }
    throw invalidArgument(`request body could not be decompressed (${encoding})`);
  }
}

export function tooLarge(limit: number): PipelineError {
  return new PipelineError('PAYLOAD_TOO_LARGE', `request is larger than the limit of ${limit} bytes`);
}
