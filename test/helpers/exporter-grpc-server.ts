/**
 * A real OTLP/gRPC trace server for tests, on node:http2 (loopback, port 0), that records every Export
 * call and answers as scripted. Being a bare HTTP/2 server it sees what a grpc-js server would hide: the
 * raw headers (grpc-encoding, custom metadata) and whether each message arrived compressed.
 *
 *   const server = await OtlpGrpcTestServer.start();          // or start({ tls: true })
 *   server.replyWith({ code: 14, retryDelayMs: 100 });        // next call: UNAVAILABLE + RetryInfo
 *   ... point an exporter at server.endpoint ...
 *   await server.waitForRequests(2);
 *   server.requests[1].bytes                                   // the decompressed request message
 *   await server.close();
 *
 * Scripted replies are used one per call, in order; with none left a call succeeds (empty response).
 * `hold()` makes the server keep calls open without answering until `release()`, to fill queues.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { encodeRpcStatus } from './exporter-rpc-status.js';
import { TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from './exporter-tls.js';

export const GRPC_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export interface RecordedGrpcCall {
  /** The request message, decompressed: an ExportTraceServiceRequest. */
  bytes: Buffer;
  /** Whether the message arrived with the compressed flag set. */
  compressed: boolean;
  /** Request headers as received (lower-case names), including custom metadata. */
  headers: http2.IncomingHttpHeaders;
  /** When the call arrived (ms since epoch), for measuring retry gaps. */
  at: number;
}

export interface GrpcReply {
  /** gRPC status code; 0 (OK) by default. */
  code?: number;
  message?: string;
  /** Adds a google.rpc.RetryInfo detail with this delay. */
  retryDelayMs?: number;
  /** Response message for OK (an ExportTraceServiceResponse, e.g. with partial_success). */
  response?: Uint8Array;
}

export class OtlpGrpcTestServer {
  readonly requests: RecordedGrpcCall[] = [];
  private readonly replies: GrpcReply[] = [];
  private readonly events = new EventEmitter();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private held: (() => void)[] | null = null;

  private constructor(
    private readonly server: http2.Http2Server | http2.Http2SecureServer,
    readonly port: number,
  ) {}

  /**
   * Starts on 127.0.0.1 with a free port (or `port`, to bring a backend up where an exporter already
   * points); `tls: true` serves the test certificate for localhost.
   */
  static async start(opts: { tls?: boolean; port?: number } = {}): Promise<OtlpGrpcTestServer> {
    const server = opts.tls ? http2.createSecureServer({ key: TEST_SERVER_KEY_PEM, cert: TEST_SERVER_CERT_PEM }) : http2.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const s = new OtlpGrpcTestServer(server, (server.address() as AddressInfo).port);
    server.on('session', (session) => {
      s.sessions.add(session);
      session.on('close', () => s.sessions.delete(session));
    });
    server.on('stream', (stream, headers) => s.onStream(stream, headers));
    return s;
  }

  /** `127.0.0.1:port`, as the otlp exporter's endpoint. */
  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Queues replies for the next calls, in order. */
  replyWith(...replies: GrpcReply[]): void {
    this.replies.push(...replies);
  }

  /** Keeps calls open without answering until release(). */
  hold(): void {
    if (this.held === null) this.held = [];
  }

  /** Answers every held call and stops holding. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const answer of held) answer();
  }

  /** Calls received but not yet answered because of hold(). */
  get heldCount(): number {
    return this.held?.length ?? 0;
  }

  /** Resolves once at least `n` calls have been received; rejects after `timeoutMs`. */
  waitForRequests(n: number, timeoutMs = 10_000): Promise<void> {
    return waitFor(this.events, 'request', () => this.requests.length >= n, timeoutMs, () => `expected ${n} gRPC calls, got ${this.requests.length}`);
  }

  async close(): Promise<void> {
    this.release();
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    if (headers[':path'] !== GRPC_EXPORT_PATH) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' }, { endStream: true });
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const compressed = body.length >= 5 && body[0] === 1;
      const len = body.length >= 5 ? body.readUInt32BE(1) : 0;
      // A call cancelled by its client (a deadline) ends with part of its message: not a request received.
      if (body.length < 5 + len) return;
      let message = body.subarray(5, 5 + len);
      if (compressed) message = gunzipSync(message);
      this.requests.push({ bytes: Buffer.from(message), compressed, headers, at: Date.now() });
      const reply = this.replies.shift() ?? {};
      const answer = (): void => this.answer(stream, reply);
      this.events.emit('request');
      if (this.held !== null) this.held.push(answer);
      else answer();
    });
  }

  private answer(stream: http2.ServerHttp2Stream, reply: GrpcReply): void {
    if (stream.destroyed || stream.closed) return;
    const code = reply.code ?? 0;
    if (code !== 0) {
      const trailers: http2.OutgoingHttpHeaders = {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': String(code),
        'grpc-message': encodeURIComponent(reply.message ?? 'scripted failure'),
      };
      if (reply.retryDelayMs !== undefined) {
        trailers['grpc-status-details-bin'] = Buffer.from(encodeRpcStatus(code, reply.message ?? '', reply.retryDelayMs)).toString('base64');
      }
      stream.respond(trailers, { endStream: true });
      return;
    }
    const payload = Buffer.from(reply.response ?? new Uint8Array(0));
    const frame = Buffer.alloc(5 + payload.length);
    frame.writeUInt32BE(payload.length, 1);
    payload.copy(frame, 5);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  }
}

/** Resolves when `done()` holds, re-checking on each `event`; bounded by `timeoutMs`. */
export function waitFor(events: EventEmitter, event: string, done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (!done()) return;
      clearTimeout(timer);
      events.off(event, check);
      resolve();
    };
    const timer = setTimeout(() => {
      events.off(event, check);
      reject(new Error(`timed out after ${timeoutMs} ms: ${describe()}`));
    }, timeoutMs);
    events.on(event, check);
  });
}
