/**
 * OTLP/gRPC served directly on node:http2. grpc-js cannot raise the HTTP/2 receive window and costs
 * 200–300 µs a call (DESIGN.md), and a unary gRPC call is simple framing: one 5-byte-prefixed message in,
 * one out, the status in trailers. Per-stream state hangs off the stream under a symbol so that the event
 * handlers are shared functions, not closures made per request.
 */
import http2 from 'node:http2';
import type { Authenticator, RequestContext } from '../../pipeline/component.js';
import { PipelineError, invalidArgument } from '../../pipeline/errors.js';
import type { Logger } from '../../pipeline/logger.js';
import type { GrpcConfig } from './config.js';
import { decompress, parseEncoding, tooLarge, type Encoding } from './decompress.js';
import type { ExportCore, TransportMetrics } from './export-core.js';
import { closeServer, listen, type BoundAddress } from '../../pipeline/net.js';
import { settlesBy } from '../../pipeline/deadline.js';
import { loadTls } from './listen.js';
import {
  GRPC_INTERNAL,
  GRPC_UNIMPLEMENTED,
  encodeRpcStatus,
  grpcCodeOf,
  percentEncode,
  retryDelayMs,
} from './status.js';

export const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
/** 8 MiB: a 4 MiB request arrives without waiting for WINDOW_UPDATE round trips. */
const RECEIVE_WINDOW = 8 * 1024 * 1024;
const PREFIX = 5;
/** An empty ExportTraceServiceResponse (zero bytes), framed. */
const EMPTY_RESPONSE = Buffer.alloc(PREFIX);
const ACCEPT_ENCODING = 'identity,gzip,deflate';
const CALL = Symbol('grpcCall');

type Stream = http2.ServerHttp2Stream & { [CALL]?: GrpcCall };

class GrpcCall {
  chunks: Buffer[] = [];
  received = 0;
  /** The message length from the prefix; -1 until five bytes have arrived. */
  declared = -1;
  compressed = false;
  finished = false;

  constructor(
    readonly server: GrpcServer,
    readonly stream: Stream,
    readonly encoding: Encoding,
    readonly ctx: RequestContext,
  ) {}
}

export class GrpcServer {
  private server: http2.Http2Server | http2.Http2SecureServer | null = null;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private authenticator: Authenticator | null = null;
  private bound: BoundAddress | null = null;
  readonly limit: number;

  constructor(
    private readonly id: string,
    private readonly config: GrpcConfig,
    readonly core: ExportCore,
    readonly metrics: TransportMetrics,
    readonly logger: Logger,
  ) {
    this.limit = config.max_recv_msg_size_mib * 1024 * 1024;
  }

  get address(): BoundAddress | null {
    return this.bound;
  }

  async start(authenticator: Authenticator | null): Promise<void> {
    this.authenticator = authenticator;
    const settings: http2.Settings = { initialWindowSize: RECEIVE_WINDOW };
    if (this.config.max_concurrent_streams !== undefined) settings.maxConcurrentStreams = this.config.max_concurrent_streams;
    // nghttp2 refuses new streams once a session buffers more than this (in MB); leave room for a full
    // window on a few streams.
    const maxSessionMemory = Math.max(64, 4 * (RECEIVE_WINDOW / 1048576) + 2 * this.config.max_recv_msg_size_mib);
    const server = this.config.tls
      ? http2.createSecureServer({ ...(await loadTls(this.config.tls)), settings, maxSessionMemory, allowHTTP1: false })
      : http2.createServer({ settings, maxSessionMemory });
    server.on('session', (session: http2.ServerHttp2Session) => this.onSession(session));
    server.on('stream', (stream: Stream, headers: http2.IncomingHttpHeaders) => this.onStream(stream, headers));
    server.on('sessionError', ignore);
    server.on('tlsClientError', ignore);
    this.server = server;
    this.bound = await listen(server, this.config.endpoint, 'otlp/grpc');
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /** GOAWAY every session so in-flight calls finish and no new ones start; at the deadline, cut them. */
  async shutdown(deadline: number): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    const closed = closeServer(server);
    for (const s of this.sessions) if (!s.closed && !s.destroyed) s.close();
    if (!(await settlesBy(closed, deadline))) {
      for (const s of this.sessions) s.destroy();
      await closed;
    }
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    session.on('error', ignore);
    try {
      session.setLocalWindowSize(RECEIVE_WINDOW);
    } catch {
      // The session closed before it was set up; nothing to tune.
    }
  }

  private onStream(stream: Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', ignore);
    if (headers[':path'] !== EXPORT_PATH || headers[':method'] !== 'POST') {
      this.metrics.count('not_found');
      respondStatus(stream, GRPC_UNIMPLEMENTED, `unknown method ${String(headers[':path']).slice(0, 200)}`, 0);
      return;
    }
    const contentType = headers['content-type'];
    if (!isGrpcContentType(contentType)) {
      // The gRPC HTTP/2 protocol: a content-type that is not application/grpc* gets HTTP 415.
      this.metrics.count('unsupported_media_type');
      respondHttp(stream, 415);
      return;
    }
    const encoding = parseEncoding(headers['grpc-encoding'] as string | undefined);
    if (encoding === null) {
      this.metrics.count('invalid');
      respondStatus(stream, GRPC_UNIMPLEMENTED, 'unsupported grpc-encoding', 0, ACCEPT_ENCODING);
      return;
    }
    const socket = stream.session?.socket;
    const ctx: RequestContext = { receiver: this.id, transport: 'grpc', peer: `${socket?.remoteAddress}:${socket?.remotePort}`, auth: null };
    const call = new GrpcCall(this, stream, encoding, ctx);
    stream[CALL] = call;
    if (this.authenticator === null) {
      startReading(stream);
    } else {
      void this.authenticateThenRead(call, this.authenticator, headers);
    }
  }

  private async authenticateThenRead(call: GrpcCall, authenticator: Authenticator, headers: http2.IncomingHttpHeaders): Promise<void> {
    try {
      call.ctx.auth = await this.core.authenticate(authenticator, headers as Readonly<Record<string, string | string[] | undefined>>);
    } catch (err) {
      fail(call, this.core.refusal(err, call.ctx));
      return;
    }
    startReading(call.stream);
  }

  /** The whole message is in: unframe, decompress, ingest, answer. */
  async complete(call: GrpcCall): Promise<void> {
    let message: Buffer;
    try {
      const body = call.chunks.length === 1 ? call.chunks[0]! : Buffer.concat(call.chunks, call.received);
      call.chunks = [];
      message = body.subarray(PREFIX);
      if (call.compressed) {
        if (call.encoding === 'identity') throw invalidArgument('compressed message without grpc-encoding');
        message = await decompress(message, call.encoding, this.limit);
      }
    } catch (err) {
      fail(call, this.core.refusal(err, call.ctx));
      return;
    }
    const err = await this.core.ingest(message, call.ctx, this.metrics);
    if (err === null) respondOk(call.stream);
    else respondStatus(call.stream, grpcCodeOf(err.code), err.message, err.retryable ? retryDelayMs(err) : 0);
  }
}

function ignore(): void {}

function isGrpcContentType(ct: string | undefined): boolean {
  if (ct === undefined) return false;
  const base = ct.split(';', 1)[0]!.trim().toLowerCase();
  return base === 'application/grpc' || base === 'application/grpc+proto';
}

function startReading(stream: Stream): void {
  stream.on('data', onData);
  stream.on('end', onEnd);
}

function onData(this: Stream, chunk: Buffer): void {
  const call = this[CALL]!;
  if (call.finished) return;
  call.received += chunk.length;
  call.chunks.push(chunk);
  if (call.declared < 0 && call.received >= PREFIX) {
    const head = call.chunks.length === 1 ? chunk : Buffer.concat(call.chunks, call.received);
    const flag = head[0]!;
    if (flag > 1) return fail(call, invalidArgument('malformed gRPC message prefix'));
    call.compressed = flag === 1;
    call.declared = head.readUInt32BE(1);
    // As grpc-go does: the size on the wire is checked first; a compressed message is checked again after
    // inflating.
    if (call.declared > call.server.limit) return fail(call, tooLarge(call.server.limit));
  }
  if (call.declared >= 0 && call.received > PREFIX + call.declared) {
    fail(call, invalidArgument('more than one message in a unary call'));
  }
}

function onEnd(this: Stream): void {
  const call = this[CALL]!;
  if (call.finished) return;
  if (call.declared < 0 || call.received < PREFIX + call.declared) {
    fail(call, invalidArgument(call.received === 0 ? 'no request message' : 'request message is truncated'));
    return;
  }
  call.finished = true;
  call.server.complete(call).catch((err: unknown) => {
    // complete() answers every PipelineError itself; anything else is a bug, answered as INTERNAL.
    call.server.logger.error('otlp/grpc request failed', { error: err instanceof Error ? err.name : 'unknown' });
    respondStatus(call.stream, GRPC_INTERNAL, 'internal error', 0);
  });
}

/** Answers a call refused before it reached the pipeline, and stops reading its body. */
function fail(call: GrpcCall, err: PipelineError): void {
  call.finished = true;
  call.chunks = [];
  call.server.metrics.countError(err);
  call.server.core.logRejected(call.ctx, err);
  respondStatus(call.stream, grpcCodeOf(err.code), err.message, err.retryable ? retryDelayMs(err) : 0);
}

function respondOk(stream: Stream): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': ACCEPT_ENCODING }, { waitForTrailers: true });
    stream.once('wantTrailers', sendOkTrailers);
    stream.end(EMPTY_RESPONSE);
  } catch {
    // The client went away between the check and the write.
  }
}

function sendOkTrailers(this: Stream): void {
  try {
    this.sendTrailers({ 'grpc-status': '0' });
  } catch {
    // Stream closed by the peer.
  }
}

/** A trailers-only response. When the request is still being sent, the stream is then reset with NO_ERROR. */
function respondStatus(stream: Stream, code: number, message: string, retryDelay: number, acceptEncoding?: string): void {
  if (stream.destroyed || stream.headersSent) return;
  const headers: http2.OutgoingHttpHeaders = {
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': String(code),
    'grpc-message': percentEncode(message),
  };
  if (retryDelay > 0) headers['grpc-status-details-bin'] = Buffer.from(encodeRpcStatus(code, message, retryDelay)).toString('base64').replace(/=+$/, '');
  if (acceptEncoding !== undefined) headers['grpc-accept-encoding'] = acceptEncoding;
  try {
    stream.respond(headers, { endStream: true });
    if (!stream.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  } catch {
    // The client went away.
  }
}

function respondHttp(stream: Stream, status: number): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond({ ':status': status }, { endStream: true });
    if (!stream.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  } catch {
    // The client went away.
  }
}
