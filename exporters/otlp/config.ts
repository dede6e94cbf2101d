/**
 * `otlp` exporter configuration: the Collector's otlpexporter keys and defaults. The shape is exported
 * as a function so that `lightstep` can build the same schema with its own defaults.
 */
import { retrySchema, sendingQueueSchema } from '../../pipeline/exporterhelper/config.js';
import { s, type Infer, type Schema } from '../../pipeline/config/schema.js';
import { tlsSchema } from './tls.js';

export interface GrpcTarget {
  /** host:port as grpc-js expects it. */
  target: string;
  /** Whether the URL scheme decided TLS (https) or plain text (http); null when the endpoint had none. */
  schemeSecure: boolean | null;
}

/**
 * `host:port`, or an `http://`/`https://` URL whose scheme chooses plain text or TLS as in the Collector.
 * A missing port is 443 (the gRPC default), or 80 for http.
 */
export function parseGrpcEndpoint(endpoint: string): GrpcTarget | string {
  const m = /^(?:(https?):\/\/)?(\[[0-9a-fA-F:.]+\]|[^:/\s[\]]+)(?::(\d{1,5}))?\/?$/.exec(endpoint);
  if (m === null) return `expected host:port or an http(s):// URL, got ${JSON.stringify(endpoint)}`;
  const scheme = m[1];
  const port = m[3] !== undefined ? Number(m[3]) : scheme === 'http' ? 80 : 443;
  if (port < 1 || port > 65535) return `port ${port} is out of range`;
  return { target: `${m[2]}:${port}`, schemeSecure: scheme === undefined ? null : scheme === 'https' };
}

export const COLLECTOR_ONLY_GRPC_KEYS: Record<string, string> = {
  balancer_name: 'grpc-js picks the first address',
  keepalive: "grpc-js's keepalive defaults are used",
  write_buffer_size: 'buffers are sized by Node',
  read_buffer_size: 'buffers are sized by Node',
  auth: 'authenticator extensions are not supported on exporters; use headers',
  wait_for_ready: 'calls fail fast and are retried by retry_on_failure',
  authority: 'the authority is taken from the endpoint (or tls.server_name_override)',
  batcher: 'batching is done by the batch processor',
};

export function otlpGrpcShape(defaults: { endpoint?: string } = {}) {
  const endpoint = s.string({ nonEmpty: true }).refine((v) => {
    const p = parseGrpcEndpoint(v);
    return typeof p === 'string' ? p : null;
  });
  return {
    endpoint: (defaults.endpoint !== undefined ? endpoint.default(defaults.endpoint) : endpoint) as Schema<string>,
    tls: tlsSchema,
    headers: s.map(s.string()).default({}),
    /** As the Collector's configgrpc client: gzip (by grpc-js), zstd or snappy (framed; by H2GrpcClient), or none. */
    compression: s.enum('gzip', 'zstd', 'snappy', 'none').default('gzip'),
    timeout: s.duration().default(5000),
    sending_queue: sendingQueueSchema,
    retry_on_failure: retrySchema,
  };
}

export const otlpConfigSchema = s.object(otlpGrpcShape(), COLLECTOR_ONLY_GRPC_KEYS);

export type OtlpConfig = Infer<typeof otlpConfigSchema>;
