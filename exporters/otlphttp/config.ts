/** `otlphttp` exporter configuration: the Collector's otlphttpexporter keys and defaults (traces only). */
import { retrySchema, sendingQueueSchema } from '../../pipeline/exporterhelper/config.js';
import { s, type Infer } from '../../pipeline/config/schema.js';
import { tlsSchema } from '../otlp/tls.js';

const urlSchema = () =>
  s.string({ nonEmpty: true }).refine((v) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return `expected an http:// or https:// URL, got ${JSON.stringify(v)}`;
    }
    return u.protocol === 'http:' || u.protocol === 'https:' ? null : `expected an http:// or https:// URL, got ${JSON.stringify(v)}`;
  });

export const otlphttpConfigSchema = s
  .object(
    {
      /** Base URL; `/v1/traces` is appended. */
      endpoint: urlSchema().optional(),
      /** Full URL for traces; overrides `endpoint`. */
      traces_endpoint: urlSchema().optional(),
      tls: tlsSchema,
      headers: s.map(s.string()).default({}),
      /** As the Collector's confighttp client: the body is compressed and Content-Encoding names it. */
      compression: s.enum('gzip', 'zstd', 'snappy', 'x-snappy-framed', 'zlib', 'deflate', 'none').default('gzip'),
      /** `level`: 0 for the codec's default; gzip, zlib and deflate take -2 (Huffman only) and -1 to 9, zstd any. */
      compression_params: s.object({ level: s.int().default(0) }),
      timeout: s.duration().default(30_000),
      /** `proto` (application/x-protobuf) or `json` (OTLP/JSON, application/json). */
      encoding: s.enum('proto', 'json').default('proto'),
      sending_queue: sendingQueueSchema,
      retry_on_failure: retrySchema,
    },
    {
      metrics_endpoint: 'tracewarden exports traces only',
      logs_endpoint: 'tracewarden exports traces only',
      profiles_endpoint: 'tracewarden exports traces only',
      read_buffer_size: 'buffers are sized by Node',
      write_buffer_size: 'buffers are sized by Node',
      max_idle_conns: 'the keep-alive agent keeps up to num_consumers sockets',
      max_idle_conns_per_host: 'the keep-alive agent keeps up to num_consumers sockets',
      max_conns_per_host: 'the keep-alive agent keeps up to num_consumers sockets',
      idle_conn_timeout: "Node's keep-alive timeout is used",
      disable_keep_alives: 'connections are always kept alive',
      http2_read_idle_timeout: 'requests use HTTP/1.1',
      http2_ping_timeout: 'requests use HTTP/1.1',
      proxy_url: 'proxies are not supported',
      auth: 'authenticator extensions are not supported on exporters; use headers',
      cookies: 'cookies are not kept',
    },
  )
  .refine((c) => (c.endpoint === undefined && c.traces_endpoint === undefined ? 'set endpoint (base URL) or traces_endpoint' : null))
  .refine((c) => compressionParamsProblem(c.compression, c.compression_params.level));

/** configcompression's ValidateParams (checked only when compressing): zlib levels for gzip, zlib and deflate, any for zstd, none for snappy. */
function compressionParamsProblem(compression: string, level: number): string | null {
  if (level === 0 || compression === 'zstd' || compression === 'none') return null;
  if ((compression === 'gzip' || compression === 'zlib' || compression === 'deflate') && level >= -2 && level <= 9) return null;
  return `compression_params: unsupported level ${level} for compression ${JSON.stringify(compression)}`;
}

/**
 * The level handed to the codec for `compression_params.level`, as the Collector's confighttp picks it: 0
 * means the default (zlib's -1); for zstd the level goes through klauspost/compress's EncoderLevelFromZstd,
 * whose four encoder speeds are about libzstd's levels 1, 3, 7 and 11, so unset is the fastest.
 */
export function codecLevel(compression: string, level: number): number {
  if (compression !== 'zstd') return level === 0 ? -1 : level;
  if (level < 3) return 1;
  if (level < 6) return 3;
  if (level < 10) return 7;
  return 11;
}

export type OtlpHttpConfig = Infer<typeof otlphttpConfigSchema>;

/** The URL traces are posted to. */
export function tracesUrl(c: OtlpHttpConfig): URL {
  if (c.traces_endpoint !== undefined) return new URL(c.traces_endpoint);
  const base = c.endpoint!;
  return new URL(base.endsWith('/') ? `${base}v1/traces` : `${base}/v1/traces`);
}
