/**
 * OTLP/HTTP on node:http (node:https with TLS), keep-alive. The body is read with a running byte count
 * and abandoned the moment it passes the limit, so no request ever holds more than the limit in memory.
 * Per-request state hangs off the request under a symbol so the event handlers are shared functions.
 *
 * A hostile client costs only itself: the Collector's confighttp timeouts bound how long headers, a whole
 * request and an idle keep-alive connection may take; the bytes of bodies being received are bounded for
 * the endpoint (past it a request is refused as retryable and its bytes released); with an authenticator,
 * a body is read only once its sender is authenticated, so unauthenticated clients hold none.
 */
import http from 'node:http';
import https from 'node:https';
import type { Authenticator, RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { otlpJsonToProtobufAsync } from '../../pipeline/batch/otlp-json-pool.js';
import type { HttpConfig } from './config.js';
import { acceptedEncodings, decompress, parseEncoding, tooLarge, type Encoding } from './decompress.js';
import type { ExportCore, TransportMetrics } from './export-core.js';
import { closeServer, listen, type BoundAddress } from '../../pipeline/service/net.js';
import { settlesBy } from '../../pipeline/service/deadline.js';
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
  /** Bytes counted against the endpoint's in-flight budget, released once the body is in (or abandoned). */
  held = 0;

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
  /** Body bytes being received on this endpoint, and the budget. */
  inflight = 0;
  readonly maxInflight: number;
  readonly overBudget: PipelineError;

  constructor(
    private readonly id: string,
    private readonly config: HttpConfig,
    readonly core: ExportCore,
    readonly metrics: TransportMetrics,
    readonly logger: Logger,
  ) {
    this.limit = config.max_request_body_size;
    this.maxInflight = config.max_inflight_mib * 1024 * 1024;
    this.overBudget = new PipelineError('UNAVAILABLE', 'too much request data is being received; retry later', 1000);
  }

  get address(): BoundAddress | null {
    return this.bound;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  async start(authenticator: Authenticator | null): Promise<void> {
    this.authenticator = authenticator;
    acceptedEncodings();
    const onRequest = (req: Request, res: http.ServerResponse): void => this.onRequest(req, res);
    const c = this.config;
    // Node checks these clocks every connectionsCheckingInterval (30 s by default): often enough here.
    const options = {
      keepAlive: true,
      requestTimeout: c.read_timeout,
      headersTimeout: Math.min(c.read_header_timeout, c.read_timeout),
      keepAliveTimeout: c.idle_timeout,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, c.read_header_timeout, c.read_timeout)),
    };
    const server = c.tls ? https.createServer({ ...(await loadTls(c.tls)), ...options }, onRequest) : http.createServer(options, onRequest);
    server.keepAliveTimeout = c.idle_timeout;
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
      return this.respondError(res, format, 400, 3, `unsupported content encoding; use one of ${acceptedEncodings().http}`, '');
    }
    const declared = Number(req.headers['content-length']);
    if (declared > this.limit) {
      this.metrics.count('too_large');
      return this.respondError(res, format, 413, 8, tooLarge(this.limit).message, '', true);
    }
    const ctx: RequestContext = { receiver: this.id, transport: 'http', peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`, auth: null };
    const ex = new HttpExchange(this, req, res, format, encoding, ctx);
    req[EXCHANGE] = ex;
    req.once('close', onClose);
    if (this.authenticator === null) startReading(req);
    else void this.authenticateThenRead(ex, this.authenticator);
  }

  /** Counts `n` more body bytes against the endpoint's budget; false (nothing counted) past it. */
  reserve(ex: HttpExchange, n: number): boolean {
    if (this.inflight + n > this.maxInflight) return false;
    this.inflight += n;
    ex.held += n;
    return true;
  }

  release(ex: HttpExchange): void {
    this.inflight -= ex.held;
    ex.held = 0;
  }

  private async authenticateThenRead(ex: HttpExchange, authenticator: Authenticator): Promise<void> {
    try {
      // headersDistinct: a header sent twice is two values (node:http would keep the first authorization).
      ex.ctx.auth = await this.core.authenticate(authenticator, distinct(ex.req.headersDistinct));
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
      bytes = ex.format === 'json' ? await otlpJsonToProtobufAsync(plain) : plain;
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


/** The connection went away mid-body (or the request timed out): what it held is released. */
function onClose(this: Request): void {
  const ex = this[EXCHANGE];
  if (ex === undefined || ex.finished) return;
  ex.finished = true;
  ex.chunks = [];
  ex.server.release(ex);
}

/** Headers as an authenticator takes them: one value as a string, a repeated header as its values. */
function distinct(headers: NodeJS.Dict<string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name]!;
    out[name] = v.length === 1 ? v[0]! : v;
  }
  return out;
}

function startReading(req: Request): void {
  req.on('data', onData);
  req.on('end', onEnd);
}

function onData(this: Request, chunk: Buffer): void {
  const ex = this[EXCHANGE]!;
  if (ex.finished) return;
  if (!ex.server.reserve(ex, chunk.length)) return fail(ex, ex.server.overBudget);
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
  ex.server.release(ex);
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
  ex.server.release(ex);
  ex.server.metrics.countError(err);
  ex.server.core.logRejected(ex.ctx, err);
  ex.server.respondError(ex.res, ex.format, httpStatusOf(err.code), grpcCodeOf(err.code), err.message, err.retryable ? retryAfterSeconds(err) : '', unread);
}
