/**
 * OTLP/HTTP on node:http (node:https with TLS), keep-alive. The body is read with a running byte count
 * and abandoned the moment it passes the limit, so no request ever holds more than the limit in memory.
 * Per-request state hangs off the request under a symbol so the event handlers are shared functions.
 */
import http from 'node:http';
import https from 'node:https';
import type { Authenticator, RequestContext } from '../../pipeline/component.js';
import { PipelineError } from '../../pipeline/errors.js';
import type { Logger } from '../../pipeline/logger.js';
import { otlpJsonToProtobuf } from '../../pipeline/otlp-json.js';
import type { HttpConfig } from './config.js';
import { decompress, parseEncoding, tooLarge, type Encoding } from './decompress.js';
import type { ExportCore, TransportMetrics } from './export-core.js';
import { closeServer, listen, type BoundAddress } from '../../pipeline/net.js';
import { settlesBy } from '../../pipeline/deadline.js';
import { loadTls } from './listen.js';
import { encodeRpcStatus, grpcCodeOf, httpStatusOf, retryAfterSeconds } from './status.js';

const EXCHANGE = Symbol('httpExchange');
const PROTOBUF = 'application/x-protobuf';
const JSON_TYPE = 'application/json';
const EMPTY = Buffer.alloc(0);
const EMPTY_JSON = Buffer.from('{}');
type Format = 'proto' | 'json';
type Request = http.IncomingMessage & { [EXCHANGE]?: HttpExchange };

class HttpExchange {
  chunks: Buffer[] = [];
  received = 0;
  finished = false;

  constructor(
    readonly server: HttpServer,
    readonly req: Request,
    readonly res: http.ServerResponse,
    readonly format: Format,
    readonly encoding: Encoding,
    readonly ctx: RequestContext,
  ) {}
}

export class HttpServer {
  private server: http.Server | https.Server | null = null;
  private authenticator: Authenticator | null = null;
  private bound: BoundAddress | null = null;
  closing = false;
  readonly limit: number;

  constructor(
    private readonly id: string,
    private readonly config: HttpConfig,
    readonly core: ExportCore,
    readonly metrics: TransportMetrics,
    readonly logger: Logger,
  ) {
    this.limit = config.max_request_body_size;
  }

  get address(): BoundAddress | null {
    return this.bound;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  async start(authenticator: Authenticator | null): Promise<void> {
    this.authenticator = authenticator;
    const onRequest = (req: Request, res: http.ServerResponse): void => this.onRequest(req, res);
    const server = this.config.tls ? https.createServer({ ...(await loadTls(this.config.tls)), keepAlive: true }, onRequest) : http.createServer({ keepAlive: true }, onRequest);
    server.on('tlsClientError', ignore);
    this.server = server;
    this.bound = await listen(server, this.config.endpoint, 'otlp/http');
  }

  /** Stop listening, close idle keep-alive connections, let in-flight requests answer, cut the rest at the deadline. */
  async shutdown(deadline: number): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    this.closing = true;
    const closed = closeServer(server);
    server.closeIdleConnections();
    if (!(await settlesBy(closed, deadline))) {
      server.closeAllConnections();
      await closed;
    }
  }

  private onRequest(req: Request, res: http.ServerResponse): void {
    req.on('error', ignore);
    res.on('error', ignore);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const format = formatOf(req.headers['content-type']);
    if (path !== this.config.traces_url_path) {
      this.metrics.count('not_found');
      return this.respondError(res, format ?? 'json', 404, 5, 'not found', '');
    }
    if (req.method !== 'POST') {
      this.metrics.count('not_found');
      res.setHeader('Allow', 'POST');
      return this.respondError(res, format ?? 'json', 405, 12, 'only POST is allowed', '');
    }
    if (format === null) {
      this.metrics.count('unsupported_media_type');
      return this.respondError(res, 'json', 415, 3, `unsupported content type; use ${PROTOBUF} or ${JSON_TYPE}`, '');
    }
    const encoding = parseEncoding(req.headers['content-encoding']);
    if (encoding === null) {
      this.metrics.count('invalid');
      return this.respondError(res, format, 400, 3, 'unsupported content encoding; use gzip, deflate or identity', '');
    }
    const declared = Number(req.headers['content-length']);
    if (declared > this.limit) {
      this.metrics.count('too_large');
      return this.respondError(res, format, 413, 8, tooLarge(this.limit).message, '', true);
    }
    const ctx: RequestContext = { receiver: this.id, transport: 'http', peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`, auth: null };
    const ex = new HttpExchange(this, req, res, format, encoding, ctx);
    req[EXCHANGE] = ex;
    if (this.authenticator === null) startReading(req);
    else void this.authenticateThenRead(ex, this.authenticator);
  }

  private async authenticateThenRead(ex: HttpExchange, authenticator: Authenticator): Promise<void> {
    try {
      ex.ctx.auth = await this.core.authenticate(authenticator, ex.req.headers);
    } catch (err) {
      fail(ex, this.core.refusal(err, ex.ctx));
      return;
    }
    startReading(ex.req);
  }

  /** The whole body is in: decompress, convert JSON, ingest, answer. */
  async complete(ex: HttpExchange): Promise<void> {
    let bytes: Uint8Array;
    try {
      const body = ex.chunks.length === 1 ? ex.chunks[0]! : Buffer.concat(ex.chunks, ex.received);
      ex.chunks = [];
      const plain = await decompress(body, ex.encoding, this.limit);
      bytes = ex.format === 'json' ? otlpJsonToProtobuf(plain) : plain;
    } catch (err) {
      fail(ex, this.core.refusal(err, ex.ctx));
      return;
    }
    const err = await this.core.ingest(bytes, ex.ctx, this.metrics);
    if (err === null) {
      if (this.closing) ex.res.shouldKeepAlive = false;
      const body = ex.format === 'json' ? EMPTY_JSON : EMPTY;
      ex.res.writeHead(200, { 'Content-Type': ex.format === 'json' ? JSON_TYPE : PROTOBUF, 'Content-Length': body.length });
      ex.res.end(body);
    } else {
      this.respondError(ex.res, ex.format, httpStatusOf(err.code), grpcCodeOf(err.code), err.message, err.retryable ? retryAfterSeconds(err) : '');
    }
  }

  /** A google.rpc.Status body in the request's format; `close` when the rest of the body is not read. */
  respondError(res: http.ServerResponse, format: Format, status: number, code: number, message: string, retryAfter: string, close = false): void {
    if (res.headersSent || res.destroyed) return;
    const body = format === 'json' ? Buffer.from(JSON.stringify({ code, message })) : Buffer.from(encodeRpcStatus(code, message));
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': format === 'json' ? JSON_TYPE : PROTOBUF, 'Content-Length': body.length };
    if (retryAfter !== '') headers['Retry-After'] = retryAfter;
    if (close || this.closing) res.shouldKeepAlive = false;
    res.writeHead(status, headers);
    res.end(body);
  }
}

function ignore(): void {}

/** The body format named by Content-Type (parameters such as charset allowed), or null. */
function formatOf(contentType: string | undefined): Format | null {
  if (contentType === undefined) return null;
  const semi = contentType.indexOf(';');
  const base = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (base === PROTOBUF) return 'proto';
  if (base === JSON_TYPE) return 'json';
  return null;
}


function startReading(req: Request): void {
  req.on('data', onData);
  req.on('end', onEnd);
}

function onData(this: Request, chunk: Buffer): void {
  const ex = this[EXCHANGE]!;
  if (ex.finished) return;
  ex.received += chunk.length;
  if (ex.received > ex.server.limit) {
    fail(ex, tooLarge(ex.server.limit));
    return;
  }
  ex.chunks.push(chunk);
}

function onEnd(this: Request): void {
  const ex = this[EXCHANGE]!;
  if (ex.finished) return;
  ex.finished = true;
  ex.server.complete(ex).catch((err: unknown) => {
    ex.server.logger.error('otlp/http request failed', { error: err instanceof Error ? err.name : 'unknown' });
    ex.server.respondError(ex.res, ex.format, 500, 13, 'internal error', '');
  });
}

/** Answers a request refused before it reached the pipeline; an unread body closes the connection. */
function fail(ex: HttpExchange, err: PipelineError): void {
  const unread = !ex.req.complete;
  ex.finished = true;
  ex.chunks = [];
  ex.server.metrics.countError(err);
  ex.server.core.logRejected(ex.ctx, err);
  ex.server.respondError(ex.res, ex.format, httpStatusOf(err.code), grpcCodeOf(err.code), err.message, err.retryable ? retryAfterSeconds(err) : '', unread);
}
