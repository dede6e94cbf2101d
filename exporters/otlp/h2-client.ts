/**
 * A unary gRPC client on node:http2, for the `otlp` exporter's zstd and snappy compression. grpc-js cannot
 * send them: its compression filter knows identity, deflate and gzip only and has no way to register a
 * codec (an unknown algorithm fails every call), and anything above the filter sees messages framed as
 * uncompressed. A unary call is simple framing (one 5-byte-prefixed message out, one in, the status in
 * trailers: the receiver serves it the same way), so this client speaks it directly:
 *
 * - one HTTP/2 connection, opened on the first call and again after the peer closes it or sends GOAWAY;
 *   calls are streams on it (as grpc-js multiplexes them on its one subchannel);
 * - the message is compressed as the Collector's configgrpc does (zstd; snappy in its framing format) and
 *   sent with the compressed flag and `grpc-encoding`;
 * - `grpc-timeout` carries the deadline, and a local timer cancels the stream when it passes
 *   (DEADLINE_EXCEEDED); the abort signal cancels it too (CANCELLED);
 * - the status comes from the trailers (or a trailers-only response), an HTTP status other than 200 maps
 *   to a gRPC code as the gRPC HTTP/2 protocol says, and a stream that ends with no answer (connection
 *   refused, reset, dropped) is UNAVAILABLE, so retry_on_failure retries it;
 * - the response message (read for partial success, at most 16 MiB) is decompressed whatever encoding it
 *   names, since grpc-go servers answer in the request's encoding.
 *
 * There is no connection backoff: a call to an unreachable peer fails fast and the exporter's retry paces
 * the next attempt (as grpc-js's short reconnect backoff is configured for).
 */
import http2 from 'node:http2';
import { decompress, type DecompressionCodec } from '../../pipeline/compression/compression.js';
import type { TlsMaterial } from './tls.js';

export interface H2CallResult {
  code: number;
  details: string;
  /** grpc-status-details-bin, decoded. */
  statusDetails?: Buffer;
  /** The response message (decompressed), when the call succeeded. */
  response?: Buffer;
}

export interface H2ClientOptions {
  /** host:port */
  target: string;
  secure: boolean;
  tls?: TlsMaterial;
  userAgent: string;
  /** grpc-encoding of requests. */
  encoding: string;
  /** Compresses one request message. */
  compress: (message: Buffer) => Promise<Buffer>;
}

const OK = 0;
const CANCELLED = 1;
const UNKNOWN = 2;
const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;
const PERMISSION_DENIED = 7;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const ACCEPT_ENCODING = 'identity,gzip,deflate,zstd,snappy';
const RESPONSE_CODECS: Readonly<Record<string, DecompressionCodec>> = { gzip: 'gzip', deflate: 'deflate', zstd: 'zstd', snappy: 'snappy' };

/** The gRPC HTTP/2 protocol's mapping of an HTTP status received without a grpc-status. */
export function grpcCodeOfHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return INTERNAL;
    case 401:
      return UNAUTHENTICATED;
    case 403:
      return PERMISSION_DENIED;
    case 404:
      return UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return UNAVAILABLE;
    default:
      return UNKNOWN;
  }
}

/** grpc-timeout: at most 8 digits, in the finest unit that fits. */
export function grpcTimeout(ms: number): string {
  const n = Math.max(1, Math.ceil(ms));
  if (n < 1e8) return `${n}m`;
  const s = Math.ceil(n / 1000);
  return s < 1e8 ? `${s}S` : `${Math.min(99_999_999, Math.ceil(s / 3600))}H`;
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export class H2GrpcClient {
  private session: http2.ClientHttp2Session | null = null;
  private readonly authority: string;
  private readonly url: string;
  private closed = false;

  constructor(private readonly opts: H2ClientOptions) {
    this.authority = opts.tls?.servername ?? opts.target;
    this.url = `${opts.secure ? 'https' : 'http'}://${opts.target}`;
  }

  /** Closes the connection; calls in flight end as UNAVAILABLE. */
  close(): void {
    this.closed = true;
    const s = this.session;
    this.session = null;
    s?.destroy();
  }

  private connect(): http2.ClientHttp2Session {
    const current = this.session;
    if (current !== null && !current.closed && !current.destroyed) return current;
    const o = this.opts;
    const options: http2.SecureClientSessionOptions = { settings: { enablePush: false } };
    if (o.secure && o.tls !== undefined) {
      const t = o.tls;
      options.rejectUnauthorized = t.rejectUnauthorized;
      if (t.ca !== undefined) options.ca = t.ca;
      if (t.cert !== undefined) options.cert = t.cert;
      if (t.key !== undefined) options.key = t.key;
      if (t.servername !== undefined) options.servername = t.servername;
    }
    const session = http2.connect(this.url, options);
    // The connection never holds the process open; a call's deadline timer does while it runs.
    session.unref();
    const forget = (): void => {
      if (this.session === session) this.session = null;
    };
    session.on('error', forget);
    session.on('goaway', forget);
    session.on('close', forget);
    session.on('frameError', () => {});
    this.session = session;
    return session;
  }

  /** One unary call; never rejects. */
  call(path: string, message: Buffer, metadata: Readonly<Record<string, string>>, deadline: number, signal: AbortSignal): Promise<H2CallResult> {
    if (this.closed) return Promise.resolve({ code: UNAVAILABLE, details: 'client closed' });
    return this.opts.compress(message).then(
      (compressed) => this.send(path, compressed, metadata, deadline, signal),
      (err: unknown) => ({ code: INTERNAL, details: `${this.opts.encoding} compression failed: ${(err as Error).message}` }),
    );
  }

  private send(path: string, payload: Buffer, metadata: Readonly<Record<string, string>>, deadline: number, signal: AbortSignal): Promise<H2CallResult> {
    return new Promise<H2CallResult>((resolve) => {
      const timeout = deadline - Date.now();
      if (timeout <= 0) return resolve({ code: DEADLINE_EXCEEDED, details: 'deadline exceeded before the call was sent' });
      if (signal.aborted) return resolve({ code: CANCELLED, details: 'cancelled' });
      const headers: http2.OutgoingHttpHeaders = { ...metadata };
      headers[':method'] = 'POST';
      headers[':path'] = path;
      headers[':authority'] = this.authority;
      headers['content-type'] = 'application/grpc';
      headers['te'] = 'trailers';
      headers['user-agent'] = this.opts.userAgent;
      headers['grpc-encoding'] = this.opts.encoding;
      headers['grpc-accept-encoding'] = ACCEPT_ENCODING;
      headers['grpc-timeout'] = grpcTimeout(timeout);
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connect().request(headers);
      } catch (err) {
        this.session?.destroy();
        this.session = null;
        return resolve({ code: UNAVAILABLE, details: `cannot start the call: ${(err as Error).message}` });
      }
      let response: http2.IncomingHttpHeaders | null = null;
      let trailers: http2.IncomingHttpHeaders | null = null;
      let streamError: Error | null = null;
      let ended: 'deadline' | 'cancelled' | null = null;
      const chunks: Buffer[] = [];
      let size = 0;
      const cancel = (why: 'deadline' | 'cancelled'): void => {
        if (ended === null) ended = why;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      };
      const timer = setTimeout(cancel, timeout, 'deadline');
      const onAbort = (): void => cancel('cancelled');
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('response', (h) => {
        response = h;
      });
      stream.on('trailers', (t) => {
        trailers = t;
      });
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_RESPONSE_BYTES + 5) chunks.push(chunk);
      });
      stream.on('error', (err) => {
        streamError = err;
      });
      stream.on('close', () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        void this.outcome(ended, response, trailers, stream.rstCode, streamError, chunks, size).then(resolve);
      });
      const frame = Buffer.allocUnsafe(5 + payload.length);
      frame[0] = 1;
      frame.writeUInt32BE(payload.length, 1);
      payload.copy(frame, 5);
      stream.end(frame);
    });
  }

  private async outcome(
    ended: 'deadline' | 'cancelled' | null,
    response: http2.IncomingHttpHeaders | null,
    trailers: http2.IncomingHttpHeaders | null,
    rstCode: number | undefined,
    streamError: Error | null,
    chunks: Buffer[],
    size: number,
  ): Promise<H2CallResult> {
    if (ended === 'deadline') return { code: DEADLINE_EXCEEDED, details: 'deadline exceeded' };
    if (ended === 'cancelled') return { code: CANCELLED, details: 'cancelled' };
    if (response === null) {
      // No answer at all: the connection failed, dropped or refused the stream.
      if (rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM) return { code: RESOURCE_EXHAUSTED, details: 'the peer reset the call (ENHANCE_YOUR_CALM)' };
      if (rstCode === http2.constants.NGHTTP2_INADEQUATE_SECURITY) return { code: PERMISSION_DENIED, details: 'the peer reset the call (INADEQUATE_SECURITY)' };
      const why = streamError !== null ? streamError.message : `the stream was reset (code ${rstCode ?? 'none'})`;
      return { code: UNAVAILABLE, details: `no response: ${why}` };
    }
    const httpStatus = Number(response[':status']);
    const source = trailers !== null && trailers['grpc-status'] !== undefined ? trailers : response['grpc-status'] !== undefined ? response : null;
    if (source === null) {
      if (httpStatus !== 200) return { code: grpcCodeOfHttpStatus(httpStatus), details: `HTTP ${httpStatus}` };
      if (streamError !== null || (rstCode !== undefined && rstCode !== 0)) return { code: UNAVAILABLE, details: 'the response was cut before its status' };
      return { code: UNKNOWN, details: 'the response has no grpc-status' };
    }
    const code = Number(source['grpc-status']);
    const result: H2CallResult = {
      code: Number.isInteger(code) && code >= 0 ? code : UNKNOWN,
      details: percentDecode(String(source['grpc-message'] ?? '')),
    };
    const bin = source['grpc-status-details-bin'];
    if (typeof bin === 'string' && bin !== '') result.statusDetails = Buffer.from(bin, 'base64');
    if (result.code === OK && size >= 5 && size <= MAX_RESPONSE_BYTES + 5) {
      result.response = await responseMessage(Buffer.concat(chunks, size), String(response['grpc-encoding'] ?? 'identity'));
    }
    return result;
  }
}

/** The first response message, decompressed; an unreadable one is treated as empty (it only carries partial success). */
async function responseMessage(body: Buffer, encoding: string): Promise<Buffer | undefined> {
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) return undefined;
  const message = body.subarray(5, 5 + len);
  if (body[0] !== 1) return message;
  const codec = RESPONSE_CODECS[encoding];
  if (codec === undefined) return undefined;
  try {
    return await decompress(message, codec, MAX_RESPONSE_BYTES);
  } catch {
    return undefined;
  }
}
