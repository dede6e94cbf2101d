/**
 * The OTLP/HTTP exporter: POSTs the batch bytes as application/x-protobuf, or as OTLP/JSON with
 * `encoding: json`, compressed as configured (gzip by default; zstd, snappy, x-snappy-framed, zlib, deflate
 * as the Collector's confighttp), over a keep-alive agent, and maps the answer to a SendOutcome as the OTLP
 * specification says: 2xx success (with possible partial success), 429/502/503/504 retryable honouring
 * Retry-After, anything else permanent.
 */
import http from 'node:http';
import https from 'node:https';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import { compress, ensureCodec, type CompressionCodec } from '../../pipeline/compression/compression.js';
import { otlpProtobufToJsonBytes } from '../../pipeline/batch/otlp-json-writer.js';
import type { ComponentSettings, Exporter, Host, RequestContext } from '../../pipeline/service/component.js';
import {
  ExporterHelper,
  SENT,
  partialSuccessOutcome,
  permanentOutcome,
  retryableOutcome,
  type SendOutcome,
} from '../../pipeline/exporterhelper/exporter-helper.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { parsePartialSuccess, parseRpcStatus } from '../otlp/response.js';
import { checkHeader } from '../otlp/headers.js';
import { loadTls } from '../otlp/tls.js';
import { codecLevel, tracesUrl, type OtlpHttpConfig } from './config.js';

const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 502, 503, 504]);
/** Answers are small; a peer that sends more is cut off rather than buffered. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** Retry-After as delay-seconds or an HTTP date, in ms from `now`; 0 when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number {
  if (value === undefined || value === '') return 0;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

/** Maps a finished response to an outcome. */
export function httpOutcome(status: number, headers: http.IncomingHttpHeaders, body: Buffer): SendOutcome {
  const contentType = headers['content-type'] ?? '';
  const isProto = contentType.startsWith('application/x-protobuf');
  if (status >= 200 && status < 300) {
    const partial = isProto ? parsePartialSuccess(body) : jsonPartialSuccess(body);
    return partial === null ? SENT : partialSuccessOutcome(partial.rejectedSpans, `partial success: ${partial.message}`);
  }
  let message = `HTTP ${status}`;
  const detail = isProto
    ? parseRpcStatus(body)?.message
    : (contentType.startsWith('application/json') ? jsonStatusMessage(body) : undefined) ?? (body.length > 0 && body.length < 512 ? body.toString('utf8').trim() : undefined);
  if (detail) message += `: ${detail.slice(0, 200)}`;
  if (RETRYABLE_STATUS.has(status)) return retryableOutcome(message, parseRetryAfter(headers['retry-after'] as string | undefined));
  return permanentOutcome(message);
}

function jsonPartialSuccess(body: Buffer): { rejectedSpans: number; message: string } | null {
  if (body.length === 0 || body[0] !== 0x7b) return null;
  try {
    const p = (JSON.parse(body.toString('utf8')) as { partialSuccess?: { rejectedSpans?: string | number; errorMessage?: string } }).partialSuccess;
    const rejected = Number(p?.rejectedSpans ?? 0);
    return rejected > 0 ? { rejectedSpans: rejected, message: p?.errorMessage ?? '' } : null;
  } catch {
    return null;
  }
}

/** The message of a google.rpc.Status in its JSON form (an OTLP/JSON error body), if that is what `body` is. */
function jsonStatusMessage(body: Buffer): string | undefined {
  if (body.length === 0 || body[0] !== 0x7b) return undefined;
  try {
    const m = (JSON.parse(body.toString('utf8')) as { message?: unknown }).message;
    return typeof m === 'string' && m !== '' ? m : undefined;
  } catch {
    return undefined;
  }
}

export class OtlpHttpExporter implements Exporter {
  private readonly helper: ExporterHelper;
  private readonly logger: Logger;
  private readonly url: URL;
  private agent: http.Agent | null = null;
  private request: typeof http.request = http.request;
  private baseHeaders: Record<string, string> = {};
  /** The body's compression, or null for none; with its level. */
  private readonly codec: CompressionCodec | null;
  private readonly level: number;
  private readonly json: boolean;

  constructor(
    settings: ComponentSettings,
    private readonly config: OtlpHttpConfig,
  ) {
    this.logger = settings.logger;
    this.url = tracesUrl(config);
    this.codec = config.compression === 'none' ? null : config.compression;
    this.level = codecLevel(config.compression, config.compression_params.level);
    this.json = config.encoding === 'json';
    const endpoint = `${this.url.protocol}//${this.url.host}${this.url.pathname}`;
    this.helper = ExporterHelper.forComponent(settings, config, endpoint, (bytes, spans, deadline, signal) => this.send(bytes, spans, deadline, signal));
  }

  async start(host: Host): Promise<void> {
    const c = this.config;
    // A codec whose native binary is missing on this platform fails start-up, not every send.
    if (this.codec !== null) ensureCodec(this.codec);
    const maxSockets = c.sending_queue.enabled ? c.sending_queue.num_consumers : 64;
    if (this.url.protocol === 'https:') {
      const t = await loadTls(c.tls);
      const opts: https.AgentOptions = { keepAlive: true, maxSockets, rejectUnauthorized: t.rejectUnauthorized };
      if (t.ca !== undefined) opts.ca = t.ca;
      if (t.cert !== undefined) opts.cert = t.cert;
      if (t.key !== undefined) opts.key = t.key;
      if (t.servername !== undefined) opts.servername = t.servername;
      this.agent = new https.Agent(opts);
      this.request = https.request;
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets });
      this.request = http.request;
    }
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.headers)) h[checkHeader(k, v)] = v;
    h['content-type'] = this.json ? 'application/json' : 'application/x-protobuf';
    h['user-agent'] = 'tracewarden';
    if (this.codec !== null) h['content-encoding'] = this.codec;
    this.baseHeaders = h;
    await this.helper.start(host);
    this.logger.info('exporter started', { url: `${this.url.protocol}//${this.url.host}${this.url.pathname}`, compression: c.compression, encoding: c.encoding });
  }

  consume(batch: TraceBatch, _ctx?: RequestContext): Promise<void> {
    return this.helper.consume(batch);
  }

  async shutdown(deadline: number): Promise<void> {
    await this.helper.shutdown(deadline);
    this.agent?.destroy();
    this.agent = null;
  }

  private async send(bytes: Uint8Array, _spans: number, deadline: number, signal: AbortSignal): Promise<SendOutcome> {
    const agent = this.agent;
    if (agent === null) return retryableOutcome('exporter not started');
    let payload: Uint8Array = bytes;
    if (this.json) {
      try {
        payload = otlpProtobufToJsonBytes(bytes);
      } catch (err) {
        // Only a batch that breaks the one-view rule (which the receivers refuse) can get here.
        return permanentOutcome(`the batch cannot be written as OTLP/JSON: ${(err as Error).message}`);
      }
    }
    let body = payload;
    if (this.codec !== null) {
      try {
        body = await compress(payload, this.codec, this.level);
      } catch (err) {
        return permanentOutcome(`${this.codec} compression failed: ${(err as Error).message}`);
      }
    }
    const timeout = deadline - Date.now();
    if (timeout <= 0) return retryableOutcome('deadline reached before sending');
    return new Promise<SendOutcome>((resolve) => {
      // Node sets Content-Length itself when the whole body is given to end().
      const req = this.request(this.url, { method: 'POST', agent, headers: this.baseHeaders, signal, timeout }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
        });
        res.on('end', () => resolve(httpOutcome(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
        res.on('error', (err) => resolve(retryableOutcome(`response: ${err.message}`)));
      });
      // Idle timeout on the socket: a peer that stops answering frees the worker.
      req.on('timeout', () => req.destroy(new Error(`timed out after ${timeout} ms`)));
      req.on('error', (err) => resolve(retryableOutcome(`${(err as NodeJS.ErrnoException).code ?? 'error'}: ${err.message}`)));
      req.end(body);
    });
  }
}
