/**
 * Request body decompression with the size limit applied to the output, so a small gzip bomb costs at
 * most `limit` bytes of memory. Runs on the zlib thread pool, never blocking the event loop.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { PipelineError, invalidArgument } from '../../pipeline/service/errors.js';

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);

export type Encoding = 'identity' | 'gzip' | 'deflate';

/** The encoding named by a Content-Encoding / grpc-encoding value, or null when unsupported. */
export function parseEncoding(value: string | undefined): Encoding | null {
  if (value === undefined || value === '') return 'identity';
  const v = value.trim().toLowerCase();
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  if (v === 'deflate') return 'deflate';
  if (v === 'identity') return 'identity';
  return null;
}

export async function decompress(body: Buffer, encoding: Encoding, limit: number): Promise<Buffer> {
  if (encoding === 'identity') return body;
  try {
    // zlib stops with ERR_BUFFER_TOO_LARGE as soon as the output would pass the limit (which it allows).
    const opts = { maxOutputLength: limit };
    return encoding === 'gzip' ? await gunzip(body, opts) : await inflate(body, opts);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit);
    throw invalidArgument(`request body is not valid ${encoding} data`);
  }
}

export function tooLarge(limit: number): PipelineError {
  return new PipelineError('PAYLOAD_TOO_LARGE', `request is larger than the limit of ${limit} bytes`);
}
