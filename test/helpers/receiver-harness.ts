/**
 * Test helpers for the otlp receiver: a recording consumer, a host with a bearer-token authenticator,
 * a receiver started on loopback port 0, raw HTTP/1.1 and HTTP/2 (gRPC-framed) clients, and a
 * self-signed certificate made with openssl.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { Authenticator, Extension, Host, RequestContext, SenderAuth, TracesConsumer } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { Telemetry } from '../../pipeline/telemetry/telemetry.js';
import { factory } from '../../receivers/otlp/index.js';
import type { OtlpReceiver } from '../../receivers/otlp/receiver.js';

/** A next stage that records what it is given, or refuses with `refuseWith` when set. */
export class RecordingConsumer implements TracesConsumer {
  readonly batches: TraceBatch[] = [];
  readonly contexts: RequestContext[] = [];
  refuseWith: PipelineError | null = null;
  /** While set, consume() waits on it: a request held in flight. */
  gate: Promise<void> | null = null;
  /** Called when a consume() call reaches the gate. */
  onGate: (() => void) | null = null;

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    if (this.gate) {
      this.onGate?.();
      await this.gate;
    }
    if (this.refuseWith) throw this.refuseWith;
    this.batches.push(batch);
    this.contexts.push(ctx);
  }

  get spanCount(): number {
    return this.batches.reduce((n, b) => n + b.spanCount, 0);
  }
}

/** Accepts `authorization: Bearer good` only. */
export class BearerAuthenticator implements Authenticator {
  async start(): Promise<void> {}
  async shutdown(): Promise<void> {}
  async authenticate(headers: Readonly<Record<string, string | string[] | undefined>>): Promise<SenderAuth> {
    if (headers['authorization'] !== 'Bearer good') throw new PipelineError('UNAUTHENTICATED', 'invalid bearer token');
    return { authenticator: 'bearer', subject: 'svc-checkout', issuer: 'test', groups: ['writers'], claims: { sub: 'svc-checkout' } };
  }
}

export class MapHost implements Host {
  constructor(private readonly extensions: Record<string, Extension> = {}) {}
  getExtension(id: string): Extension | undefined {
    return this.extensions[id];
  }
  readiness(): { ready: boolean; notReady: string[] } {
    return { ready: true, notReady: [] };
  }
}

export interface RunningReceiver {
  receiver: OtlpReceiver;
  consumer: RecordingConsumer;
  telemetry: Telemetry;
  logs: MemorySink;
  grpcPort: number;
  httpPort: number;
  stop(): Promise<void>;
}

/** Starts an otlp receiver on loopback port 0 for each protocol given (both by default). */
export async function startReceiver(
  protocols: { grpc?: Record<string, unknown> | null; http?: Record<string, unknown> | null } = { grpc: {}, http: {} },
  host: Host = new MapHost(),
  id = 'otlp',
): Promise<RunningReceiver> {
  const raw: Record<string, unknown> = {};
  if (protocols.grpc !== undefined) raw['grpc'] = { endpoint: '127.0.0.1:0', ...(protocols.grpc ?? {}) };
  if (protocols.http !== undefined) raw['http'] = { endpoint: '127.0.0.1:0', ...(protocols.http ?? {}) };
  const config = parseOrThrow(factory.schema, { protocols: raw });
  const telemetry = new Telemetry({ processMetrics: false });
  const logs = new MemorySink();
  const consumer = new RecordingConsumer();
  const receiver = factory.create({ id, logger: new Logger(logs, 'debug'), telemetry }, config, consumer) as OtlpReceiver;
  await receiver.start(host);
  return {
    receiver,
    consumer,
    telemetry,
    logs,
    grpcPort: receiver.grpcAddress?.port ?? 0,
    httpPort: receiver.httpAddress?.port ?? 0,
    stop: () => receiver.shutdown(Date.now() + 2000),
  };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP/1.1 request on a fresh connection. */
export function httpRequest(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string | number>; body?: Uint8Array; ca?: Buffer },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const common = { host: '127.0.0.1', port, method: opts.method ?? 'POST', path: opts.path ?? '/v1/traces', headers: opts.headers ?? {}, agent: false as const };
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    };
    const req = opts.ca ? https.request({ ...common, ca: opts.ca, servername: 'localhost' }, onResponse) : http.request(common, onResponse);
    req.on('error', reject);
    req.end(opts.body ? Buffer.from(opts.body) : undefined);
  });
}

export interface GrpcResult {
  httpStatus: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  data: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only response; -1 when absent. */
  grpcStatus: number;
  grpcMessage: string;
}

/** Frames a gRPC message: compressed flag, 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array, compressed = false): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** One raw HTTP/2 request (a gRPC call when the defaults are kept) on a fresh session. */
export function grpcRaw(
  port: number,
  body: Uint8Array,
  opts: { path?: string; headers?: Record<string, string>; ca?: Buffer } = {},
): Promise<GrpcResult> {
  return new Promise((resolve, reject) => {
    const session = opts.ca ? http2.connect(`https://localhost:${port}`, { ca: opts.ca }) : http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': opts.path ?? '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...opts.headers,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {
      // A reset after a trailers-only answer is how the server stops an unread upload.
    });
    stream.on('close', () => {
      session.close();
      const status = trailers['grpc-status'] ?? headers['grpc-status'];
      const message = trailers['grpc-message'] ?? headers['grpc-message'];
      resolve({
        httpStatus: Number(headers[':status'] ?? 0),
        headers,
        trailers,
        data: Buffer.concat(chunks),
        grpcStatus: status === undefined ? -1 : Number(status),
        grpcMessage: message === undefined ? '' : decodeURIComponent(String(message)),
      });
    });
    stream.end(Buffer.from(body));
  });
}

export interface SelfSignedCert {
  dir: string;
  cert: Buffer;
  certFile: string;
  keyFile: string;
  remove(): void;
}

/** A P-256 self-signed certificate for localhost and 127.0.0.1, valid one day, in a temporary folder. */
export function selfSignedCert(): SelfSignedCert {
  const dir = mkdtempSync(join(tmpdir(), 'tw-receiver-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', keyFile, '-out', certFile],
    { stdio: 'ignore' },
  );
  return { dir, cert: readFileSync(certFile), certFile, keyFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
