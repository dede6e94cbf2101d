/**
 * A real OTLP/HTTP trace server for tests (node:http or node:https on 127.0.0.1, port 0) that records
 * every request and answers as scripted.
 *
 *   const server = await OtlpHttpTestServer.start();
 *   server.replyWith({ status: 503, retryAfter: '1' });       // next request: 503 + Retry-After
 *   ... point an exporter at server.url (base) or server.tracesUrl ...
 *   await server.waitForRequests(2);
 *   server.requests[1].bytes                                   // the body, gunzipped if it was gzip
 *   await server.close();
 *
 * Replies are used one per request, in order; with none left a request gets 200 and an empty
 * application/x-protobuf body. `hold()` keeps requests unanswered until `release()`.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { waitFor } from './exporter-grpc-server.js';
import { TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from './exporter-tls.js';

export interface RecordedHttpRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The body as received on the wire. */
  raw: Buffer;
  /** The body after undoing Content-Encoding: gzip. */
  bytes: Buffer;
  at: number;
}

export interface HttpReply {
  status?: number;
  /** A Retry-After header value: seconds ("2") or an HTTP date. */
  retryAfter?: string;
  body?: Uint8Array | string;
  contentType?: string;
}

export class OtlpHttpTestServer {
  readonly requests: RecordedHttpRequest[] = [];
  private readonly replies: HttpReply[] = [];
  private readonly events = new EventEmitter();
  private held: (() => void)[] | null = null;

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    private readonly scheme: 'http' | 'https',
  ) {}

  static async start(opts: { tls?: boolean } = {}): Promise<OtlpHttpTestServer> {
    const server = opts.tls ? https.createServer({ key: TEST_SERVER_KEY_PEM, cert: TEST_SERVER_CERT_PEM }) : http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const s = new OtlpHttpTestServer(server, (server.address() as AddressInfo).port, opts.tls ? 'https' : 'http');
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => s.onRequest(req, res));
    return s;
  }

  /** Base URL, as the otlphttp exporter's `endpoint`. */
  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }
  get tracesUrl(): string {
    return `${this.url}/v1/traces`;
  }

  replyWith(...replies: HttpReply[]): void {
    this.replies.push(...replies);
  }
  hold(): void {
    if (this.held === null) this.held = [];
  }
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const answer of held) answer();
  }
  get heldCount(): number {
    return this.held?.length ?? 0;
  }

  waitForRequests(n: number, timeoutMs = 10_000): Promise<void> {
    return waitFor(this.events, 'request', () => this.requests.length >= n, timeoutMs, () => `expected ${n} HTTP requests, got ${this.requests.length}`);
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const bytes = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, bytes, at: Date.now() });
      const reply = this.replies.shift() ?? {};
      const answer = (): void => {
        if (res.destroyed) return;
        const headers: http.OutgoingHttpHeaders = { 'content-type': reply.contentType ?? 'application/x-protobuf' };
        if (reply.retryAfter !== undefined) headers['retry-after'] = reply.retryAfter;
        res.writeHead(reply.status ?? 200, headers);
        res.end(reply.body === undefined ? undefined : typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body));
      };
      this.events.emit('request');
      if (this.held !== null) this.held.push(answer);
      else answer();
    });
  }
}
