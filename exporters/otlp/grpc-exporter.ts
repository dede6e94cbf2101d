/**
 * The OTLP/gRPC exporter: batch bytes go out as the Export call's message untouched (identity
 * serializers), so an unedited batch reaches the peer byte for byte as it was received. Queueing and
 * retries are the ExporterHelper's; this file only maps one call's result to a SendOutcome.
 *
 * `compression: gzip` or `none` is sent by grpc-js. zstd and snappy, which grpc-js cannot send (it has no way
 * to register a codec), go through H2GrpcClient, a unary gRPC client on node:http2, compressing as the
 * Collector's configgrpc does: zstd (libzstd's default level, as klauspost's SpeedDefault) and snappy in the
 * framing format, under grpc-encoding `zstd` and `snappy`.
 */
import * as grpc from '@grpc/grpc-js';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import { compress, ensureCodec } from '../../pipeline/compression/compression.js';
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
import { parseGrpcEndpoint, type OtlpConfig } from './config.js';
import { H2GrpcClient, type H2CallResult } from './h2-client.js';
import { checkHeader } from './headers.js';
import { parsePartialSuccess, parseRpcStatus } from './response.js';
import { loadTls } from './tls.js';

export const EXPORT_METHOD = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

const identity = (b: Buffer): Buffer => b;
const toBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

// Retryable per the OTLP specification; RESOURCE_EXHAUSTED only when the peer says when to come back.
const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

/** Connection-specific headers, which HTTP/2 forbids (RFC 9113 8.2.2). */
const HTTP2_FORBIDDEN_HEADERS: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);
const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k]));

export interface OtlpGrpcExporterOptions {
  /**
   * Headers resolved at start and sent with every call, kept apart from `headers` because they are
   * secret (an access token read from a file): they are never logged.
   */
  secretHeaders?: () => Promise<Record<string, string>>;
}

/** Maps a finished unary call to an outcome. Exported for the unit tests of the mapping. */
export function grpcOutcome(err: grpc.ServiceError | null, response: Buffer | undefined): SendOutcome {
  if (err === null) return statusOutcome(grpc.status.OK, '', undefined, response);
  const details = err.metadata?.get('grpc-status-details-bin')[0];
  return statusOutcome(err.code, err.details, details !== undefined && typeof details !== 'string' ? details : undefined, response);
}

/** The same for a call made by H2GrpcClient. */
export function h2Outcome(r: H2CallResult): SendOutcome {
  return statusOutcome(r.code, r.details, r.statusDetails, r.response);
}

function statusOutcome(code: number, detailsText: string, statusDetails: Buffer | undefined, response: Buffer | undefined): SendOutcome {
  if (code === grpc.status.OK) {
    const partial = response !== undefined ? parsePartialSuccess(response) : null;
    return partial === null ? SENT : partialSuccessOutcome(partial.rejectedSpans, `partial success: ${partial.message}`);
  }
  let retryDelayMs = -1;
  if (statusDetails !== undefined) {
    const st = parseRpcStatus(statusDetails);
    if (st !== null) retryDelayMs = st.retryDelayMs;
  }
  const message = `${STATUS_NAMES[code] ?? `code ${code}`}: ${detailsText}`;
  if (RETRYABLE_CODES.has(code) || (code === grpc.status.RESOURCE_EXHAUSTED && retryDelayMs >= 0)) {
    return retryableOutcome(message, retryDelayMs > 0 ? retryDelayMs : 0);
  }
  return permanentOutcome(message);
}

export class OtlpGrpcExporter implements Exporter {
  private readonly helper: ExporterHelper;
  private readonly logger: Logger;
  private client: grpc.Client | null = null;
  private metadata = new grpc.Metadata();
  /** For zstd and snappy: the node:http2 client, and the headers of every call. */
  private h2: H2GrpcClient | null = null;
  private h2Headers: Record<string, string> = {};

  constructor(
    settings: ComponentSettings,
    private readonly config: OtlpConfig,
    private readonly options: OtlpGrpcExporterOptions = {},
  ) {
    this.logger = settings.logger;
    const target = parseGrpcEndpoint(config.endpoint);
    const endpoint = typeof target === 'string' ? config.endpoint : target.target;
    this.helper = ExporterHelper.forComponent(settings, config, endpoint, (bytes, spans, deadline, signal) => this.send(bytes, spans, deadline, signal));
  }

  async start(host: Host): Promise<void> {
    const c = this.config;
    const parsed = parseGrpcEndpoint(c.endpoint);
    if (typeof parsed === 'string') throw new Error(`endpoint: ${parsed}`);
    const secure = parsed.schemeSecure ?? !c.tls.insecure;
    let creds: grpc.ChannelCredentials;
    const channelOptions: grpc.ChannelOptions = {
      // Batches are bounded upstream (receiver limits, batch processor); grpc-js's 4 MiB default is not ours to impose.
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.primary_user_agent': 'tracewarden',
      // retry_on_failure paces the retries; the channel itself must not wait up to grpc's default 120 s
      // before reconnecting to a backend that is back (measured: a 200 s outage took 50 s more to drain).
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5000,
    };
    if (c.compression === 'gzip') channelOptions['grpc.default_compression_algorithm'] = grpc.compressionAlgorithms.gzip;
    const useH2 = c.compression === 'zstd' || c.compression === 'snappy';
    // A codec whose native binary is missing on this platform fails start-up, not every send.
    if (useH2) ensureCodec(c.compression === 'zstd' ? 'zstd' : 'x-snappy-framed');
    const tls = secure ? await loadTls(c.tls) : undefined;
    if (secure) {
      const t = tls!;
      const verify: grpc.VerifyOptions = {};
      if (!t.rejectUnauthorized) {
        verify.rejectUnauthorized = false;
        verify.checkServerIdentity = () => undefined;
      }
      creds = grpc.credentials.createSsl(t.ca ?? null, t.key ?? null, t.cert ?? null, verify);
      if (t.servername !== undefined) {
        channelOptions['grpc.ssl_target_name_override'] = t.servername;
        channelOptions['grpc.default_authority'] = t.servername;
      }
    } else {
      creds = grpc.credentials.createInsecure();
    }
    const md = new grpc.Metadata();
    const plain: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.headers)) {
      md.set(checkHeader(k, v), v);
      if (useH2 && HTTP2_FORBIDDEN_HEADERS.has(k.toLowerCase())) throw new Error(`header ${k.toLowerCase()} cannot be sent over HTTP/2`);
      plain[k.toLowerCase()] = v;
    }
    if (this.options.secretHeaders !== undefined) {
      for (const [k, v] of Object.entries(await this.options.secretHeaders())) {
        md.set(checkHeader(k, v), v);
        plain[k.toLowerCase()] = v;
      }
    }
    this.metadata = md;
    if (useH2) {
      // configgrpc's codecs: zstd at klauspost's default speed (about libzstd's level 3), snappy framed.
      const codec = c.compression === 'zstd' ? 'zstd' : 'x-snappy-framed';
      const level = c.compression === 'zstd' ? 3 : 0;
      this.h2Headers = plain;
      this.h2 = new H2GrpcClient({
        target: parsed.target,
        secure,
        ...(tls !== undefined ? { tls } : {}),
        userAgent: 'tracewarden',
        encoding: c.compression,
        compress: (m) => compress(m, codec, level),
      });
    } else {
      this.client = new grpc.Client(parsed.target, creds, channelOptions);
    }
    await this.helper.start(host);
    this.logger.info('exporter started', { endpoint: parsed.target, tls: secure, compression: c.compression });
  }

  consume(batch: TraceBatch, _ctx?: RequestContext): Promise<void> {
    return this.helper.consume(batch);
  }

  async shutdown(deadline: number): Promise<void> {
    await this.helper.shutdown(deadline);
    this.client?.close();
    this.client = null;
    this.h2?.close();
    this.h2 = null;
  }

  private send(bytes: Uint8Array, _spans: number, deadline: number, signal: AbortSignal): Promise<SendOutcome> {
    const h2 = this.h2;
    if (h2 !== null) return h2.call(EXPORT_METHOD, toBuffer(bytes), this.h2Headers, deadline, signal).then(h2Outcome);
    const client = this.client;
    if (client === null) return Promise.resolve(retryableOutcome('exporter not started'));
    return new Promise<SendOutcome>((resolve) => {
      // grpc-js adds its own headers to the metadata it is given, so each call gets a copy.
      const call = client.makeUnaryRequest<Buffer, Buffer>(
        EXPORT_METHOD,
        identity,
        identity,
        toBuffer(bytes),
        this.metadata.clone(),
        { deadline },
        (err, response) => {
          signal.removeEventListener('abort', onAbort);
          resolve(grpcOutcome(err, response));
        },
      );
      const onAbort = (): void => call.cancel();
      if (signal.aborted) call.cancel();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
