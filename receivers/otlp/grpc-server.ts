/**
 * OTLP/gRPC served directly on node:http2. grpc-js cannot raise the HTTP/2 receive window and costs
 * 200–300 µs a call (DESIGN.md), and a unary gRPC call is simple framing: one 5-byte-prefixed message in,
 * one out, the status in trailers. Per-stream state hangs off the stream under a symbol so that the event
 * handlers are shared functions, not closures made per request.
 *
 * A hostile client costs only itself: at most max_concurrent_streams calls a connection; request bytes
 * being received are bounded per connection and per endpoint (past either, the call is refused as
 * retryable and its bytes released); a message not fully received within message_timeout is cut; and the
 * Collector's keepalive parameters close idle, old and unresponsive connections and connections that ping
 * too often. One coarse sweep per second enforces the clocks: no timer per call.
 */
import http2 from 'node:http2';
import type { Authenticator, RequestContext } from '../../pipeline/service/component.js';
import { PipelineError, invalidArgument } from '../../pipeline/service/errors.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import type { GrpcConfig } from './config.js';
import { acceptedEncodings, decompress, parseEncoding, tooLarge, type Encoding } from './decompress.js';
import type { ExportCore, TransportMetrics } from './export-core.js';
import { closeServer, listen, type BoundAddress } from '../../pipeline/service/net.js';
import { settlesBy } from '../../pipeline/service/deadline.js';
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
const CALL = Symbol('grpcCall');
const CONN = Symbol('grpcConnection');
const MIB = 1024 * 1024;
/** How often the clocks (idle, age, pings, message deadlines) are checked. */
const SWEEP_MS = 1000;
/** grpc-go's allowance of early pings before ENHANCE_YOUR_CALM. */
const MAX_PING_STRIKES = 2;
/** grpc-go: with no call open and pings not permitted without one, the least interval is two hours. */
const PING_INTERVAL_WITHOUT_STREAM = 2 * 3_600_000;

type Stream = http2.ServerHttp2Stream & { [CALL]?: GrpcCall; [CONN]?: Connection };
type Session = http2.ServerHttp2Session & { [CONN]?: Connection };

/** Per-connection state for the limits and keepalive clocks. */
class Connection {
  readonly createdAt: number;
  lastActive: number;
  openStreams = 0;
  inflight = 0;
  pingStrikes = 0;
  lastPingAt = 0;
  /** When our keepalive ping was sent and is not yet answered (0: none outstanding). */
  pingSentAt = 0;
  goingAwayAt = 0;
  /** How long after GOAWAY the connection is cut: the age grace, or none for an idle one. */
  graceMs = 0;

  constructor(
    readonly server: GrpcServer,
    now: number,
  ) {
    this.createdAt = now;
    this.lastActive = now;
  }
}

class GrpcCall {
  chunks: Buffer[] = [];
  received = 0;
  /** Bytes counted against the in-flight budgets, released once the message is in (or the call fails). */
  held = 0;
  readonly startedAt = Date.now();
  /** The message length from the prefix; -1 until five bytes have arrived. */
  declared = -1;
  compressed = false;
  finished = false;

  constructor(
    readonly server: GrpcServer,
    readonly stream: Stream,
    readonly conn: Connection,
    readonly encoding: Encoding,
    readonly ctx: RequestContext,
  ) {}
}

export class GrpcServer {
  private server: http2.Http2Server | http2.Http2SecureServer | null = null;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private authenticator: Authenticator | null = null;
  private bound: BoundAddress | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  readonly limit: number;
  /** Request bytes being received on this endpoint, and the budgets. */
  inflight = 0;
  readonly maxInflight: number;
  readonly maxInflightPerConnection: number;
  /** Calls whose message is still arriving (for message_timeout). */
  readonly receiving = new Set<GrpcCall>();
  readonly overBudget: PipelineError;

  constructor(
    private readonly id: string,
    private readonly config: GrpcConfig,
    readonly core: ExportCore,
    readonly metrics: TransportMetrics,
    readonly logger: Logger,
  ) {
    this.limit = config.max_recv_msg_size_mib * MIB;
    this.maxInflight = config.max_inflight_mib * MIB;
    this.maxInflightPerConnection = config.max_inflight_mib_per_connection * MIB;
    this.overBudget = new PipelineError('UNAVAILABLE', 'too much request data is being received; retry later', 1000);
  }

  get address(): BoundAddress | null {
    return this.bound;
  }

  async start(authenticator: Authenticator | null): Promise<void> {
    this.authenticator = authenticator;
    acceptedEncodings();
    const settings: http2.Settings = { initialWindowSize: RECEIVE_WINDOW, maxConcurrentStreams: this.config.max_concurrent_streams };
    // nghttp2 refuses new streams once a session buffers more than this (in MB); leave room for a full
    // window on a few streams.
    const maxSessionMemory = Math.max(64, 4 * (RECEIVE_WINDOW / 1048576) + 2 * this.config.max_recv_msg_size_mib);
    const server = this.config.tls
      ? http2.createSecureServer({ ...(await loadTls(this.config.tls)), settings, maxSessionMemory, allowHTTP1: false })
      : http2.createServer({ settings, maxSessionMemory });
    server.on('session', (session: http2.ServerHttp2Session) => this.onSession(session));
    server.on('stream', (stream: Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => this.onStream(stream, headers, rawHeaders));
    server.on('sessionError', ignore);
    server.on('tlsClientError', ignore);
    this.server = server;
    this.bound = await listen(server, this.config.endpoint, 'otlp/grpc');
    this.sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_MS);
    this.sweeper.unref();
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /** GOAWAY every session so in-flight calls finish and no new ones start; at the deadline, cut them. */
  async shutdown(deadline: number): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    const closed = closeServer(server);
    for (const s of this.sessions) if (!s.closed && !s.destroyed) s.close();
    if (!(await settlesBy(closed, deadline))) {
      for (const s of this.sessions) s.destroy();
      await closed;
    }
  }

  private onSession(session: Session): void {
    this.sessions.add(session);
    session[CONN] = new Connection(this, Date.now());
    session.once('close', () => this.sessions.delete(session));
    session.on('error', ignore);
    session.on('ping', onPing);
    try {
      session.setLocalWindowSize(RECEIVE_WINDOW);
    } catch {
      // The session closed before it was set up; nothing to tune.
    }
  }

  private onStream(stream: Stream, headers: http2.IncomingHttpHeaders, rawHeaders: readonly string[]): void {
    stream.on('error', ignore);
    const conn = (stream.session as Session | undefined)?.[CONN];
    if (conn === undefined) return;
    conn.openStreams++;
    conn.lastActive = Date.now();
    // Kept on the stream: by the time it closes, stream.session is gone.
    stream[CONN] = conn;
    stream.once('close', onStreamClose);
    if (headers[':path'] !== EXPORT_PATH || headers[':method'] !== 'POST') {
      this.metrics.count('not_found');
      // The path is the client's text: not echoed.
      respondStatus(stream, GRPC_UNIMPLEMENTED, 'unknown method: this endpoint serves TraceService/Export only', 0);
      return;
    }
    const contentType = headers['content-type'];
    if (!isGrpcContentType(contentType)) {
      // The gRPC HTTP/2 protocol: a content-type that is not application/grpc* gets HTTP 415.
      this.metrics.count('unsupported_media_type');
      respondHttp(stream, 415);
      return;
    }
    const encoding = parseEncoding(headers['grpc-encoding'] as string | undefined, 'grpc');
    if (encoding === null) {
      this.metrics.count('invalid');
      respondStatus(stream, GRPC_UNIMPLEMENTED, `unsupported grpc-encoding; this server accepts ${acceptedEncodings().grpc}`, 0, acceptedEncodings().grpc);
      return;
    }
    const socket = stream.session?.socket;
    const ctx: RequestContext = { receiver: this.id, transport: 'grpc', peer: `${socket?.remoteAddress}:${socket?.remotePort}`, auth: null };
    const call = new GrpcCall(this, stream, conn, encoding, ctx);
    stream[CALL] = call;
    this.receiving.add(call);
    if (this.authenticator === null) {
      startReading(stream);
    } else {
      void this.authenticateThenRead(call, this.authenticator, distinctHeaders(rawHeaders));
    }
  }

  /** Bodies are read only once the sender is authenticated: an unauthenticated client holds no body memory. */
  private async authenticateThenRead(call: GrpcCall, authenticator: Authenticator, headers: Readonly<Record<string, string | string[]>>): Promise<void> {
    try {
      call.ctx.auth = await this.core.authenticate(authenticator, headers);
    } catch (err) {
      fail(call, this.core.refusal(err, call.ctx));
      return;
    }
    startReading(call.stream);
  }

  /** Counts `n` more bytes of `call` against the budgets; false (nothing counted) when either is exceeded. */
  reserve(call: GrpcCall, n: number): boolean {
    if (this.inflight + n > this.maxInflight || call.conn.inflight + n > this.maxInflightPerConnection) return false;
    this.inflight += n;
    call.conn.inflight += n;
    call.held += n;
    return true;
  }

  /** Releases what `call` holds against the budgets and stops its message clock. */
  release(call: GrpcCall): void {
    this.inflight -= call.held;
    call.conn.inflight -= call.held;
    call.held = 0;
    this.receiving.delete(call);
  }

  /** The clocks: message deadlines, then each connection's idle, age and keepalive. */
  sweep(now: number): void {
    const deadline = now - this.config.message_timeout;
    for (const call of this.receiving) {
      if (call.startedAt <= deadline && !call.finished) fail(call, invalidArgument('the request message was not received within message_timeout'));
    }
    const ka = this.config.keepalive.server_parameters;
    for (const session of this.sessions) {
      const conn = (session as Session)[CONN];
      if (conn === undefined || session.destroyed) continue;
      // Told to go away (closed, so no new calls): cut once the grace is over.
      if (conn.goingAwayAt > 0) {
        if (now - conn.goingAwayAt >= conn.graceMs) session.destroy();
        continue;
      }
      if (session.closed) continue;
      if (conn.openStreams === 0 && now - conn.lastActive >= ka.max_connection_idle) {
        // Nothing is open: the GOAWAY tells the client why, and the next sweep cuts the connection.
        goAway(session, conn, now, 0);
        continue;
      }
      if (ka.max_connection_age !== undefined && now - conn.createdAt >= ka.max_connection_age) {
        goAway(session, conn, now, ka.max_connection_age_grace);
        continue;
      }
      if (conn.pingSentAt > 0) {
        if (now - conn.pingSentAt >= ka.timeout) session.destroy();
      } else if (now - conn.lastActive >= ka.time) {
        conn.pingSentAt = now;
        try {
          // Rare (after `time` of silence, two hours by default): a closure per ping is fine.
          session.ping((err) => {
            if (err !== null) return;
            conn.pingSentAt = 0;
            conn.lastActive = Date.now();
          });
        } catch {
          session.destroy();
        }
      }
    }
  }

  /** A ping from the client: grpc-go's enforcement policy (too often, or with no call open, is a strike). */
  onClientPing(session: Session, conn: Connection, now: number): void {
    const policy = this.config.keepalive.enforcement_policy;
    const least = conn.openStreams === 0 && !policy.permit_without_stream ? Math.max(policy.min_time, PING_INTERVAL_WITHOUT_STREAM) : policy.min_time;
    if (conn.lastPingAt > 0 && now - conn.lastPingAt < least && ++conn.pingStrikes > MAX_PING_STRIKES) {
      try {
        session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from('too_many_pings'));
      } catch {
        // Already closing.
      }
      session.destroy();
      return;
    }
    conn.lastPingAt = now;
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
  if (!call.server.reserve(call, chunk.length)) return fail(call, call.server.overBudget);
  call.conn.lastActive = Date.now();
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
  call.server.release(call);
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
  call.server.release(call);
  call.server.metrics.countError(err);
  call.server.core.logRejected(call.ctx, err);
  respondStatus(call.stream, grpcCodeOf(err.code), err.message, err.retryable ? retryDelayMs(err) : 0);
}

function onStreamClose(this: Stream): void {
  const conn = this[CONN];
  if (conn !== undefined) {
    conn.openStreams--;
    conn.lastActive = Date.now();
  }
  const call = this[CALL];
  // A call the client abandoned mid-message releases what it held.
  if (call !== undefined && !call.finished) {
    call.finished = true;
    call.chunks = [];
    call.server.release(call);
  }
}

function onPing(this: Session): void {
  const conn = this[CONN];
  if (conn !== undefined) conn.server.onClientPing(this, conn, Date.now());
}

/** Asks the client to go away (it finishes its calls and reconnects); the sweep cuts it after the grace. */
function goAway(session: Session, conn: Connection, now: number, graceMs: number): void {
  conn.goingAwayAt = now;
  conn.graceMs = graceMs;
  try {
    session.close();
  } catch {
    session.destroy();
  }
}

/**
 * Request headers with repeated names kept apart (`authorization` twice is two values, which an
 * authenticator must refuse as ambiguous), from the raw list: the parsed headers join or drop repeats.
 */
export function distinctHeaders(raw: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else out[name] = [seen, value];
  }
  return out;
}

function respondOk(stream: Stream): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': acceptedEncodings().grpc }, { waitForTrailers: true });
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
