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
      compression: s.enum('gzip', 'none').default('gzip'),
      timeout: s.duration().default(30_000),
      encoding: s.enum('proto').default('proto'),
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
      compression_params: 'gzip uses its default level',
    },
  )
  .refine((c) => (c.endpoint === undefined && c.traces_endpoint === undefined ? 'set endpoint (base URL) or traces_endpoint' : null));

export type OtlpHttpConfig = Infer<typeof otlphttpConfigSchema>;

/** The URL traces are posted to. */
export function tracesUrl(c: OtlpHttpConfig): URL {
  if (c.traces_endpoint !== undefined) return new URL(c.traces_endpoint);
  const base = c.endpoint!;
  return new URL(base.endsWith('/') ? `${base}v1/traces` : `${base}/v1/traces`);
}
