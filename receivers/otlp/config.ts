/**
 * The otlp receiver's configuration, in the OpenTelemetry Collector's shape so an existing collector
 * config works unchanged. Only the protocols present are enabled; `grpc:` with no value means "enabled,
 * with defaults".
 */
import { endpointSchema, s, type Infer } from '../../pipeline/schema.js';

const tlsSchema = s.object(
  {
    cert_file: s.string({ nonEmpty: true }),
    key_file: s.string({ nonEmpty: true }),
    /** When set, clients must present a certificate signed by one of these CAs (mutual TLS). */
    client_ca_file: s.string({ nonEmpty: true }).optional(),
    min_version: s.enum('1.2', '1.3').default('1.2'),
  },
  {
    reload_interval: 'certificates are read once at start-up',
    include_system_ca_certs_pool: 'client certificates are checked against client_ca_file only',
  },
);

const authSchema = s.object({ authenticator: s.string({ nonEmpty: true }) });

const grpcSchema = s.object(
  {
    endpoint: endpointSchema().default('localhost:4317'),
    max_recv_msg_size_mib: s.int({ min: 1, max: 1024 }).default(4),
    max_concurrent_streams: s.int({ min: 1 }).optional(),
    tls: tlsSchema.optional(),
    auth: authSchema.optional(),
  },
  {
    transport: 'only tcp is supported',
    read_buffer_size: 'the HTTP/2 receive window is fixed at 8 MiB',
    write_buffer_size: 'responses are a few bytes',
    keepalive: 'HTTP/2 pings are answered by Node.js; idle connections are kept',
    include_metadata: 'request metadata is passed only to the authenticator',
  },
);

const httpSchema = s.object(
  {
    endpoint: endpointSchema().default('localhost:4318'),
    traces_url_path: s.string({ pattern: /^\//, patternHint: 'a path starting with /' }).default('/v1/traces'),
    max_request_body_size: s.int({ min: 1 }).default(20 * 1024 * 1024),
    tls: tlsSchema.optional(),
    auth: authSchema.optional(),
  },
  {
    metrics_url_path: 'only traces are received',
    logs_url_path: 'only traces are received',
    profiles_url_path: 'only traces are received',
    cors: 'browser exporters are not supported: no CORS headers are sent',
    include_metadata: 'request headers are passed only to the authenticator',
    response_headers: 'responses carry only the headers OTLP requires',
    compression_algorithms: 'gzip, deflate and identity request bodies are always accepted',
    read_timeout: "Node.js's request timeout applies",
    read_header_timeout: "Node.js's header timeout applies",
    write_timeout: 'responses are a few bytes',
    idle_timeout: "Node.js's keep-alive timeout applies",
  },
);

export const configSchema = s.object({
  protocols: s
    .object({
      grpc: grpcSchema.optional(),
      http: httpSchema.optional(),
    })
    .refine((p) => (p.grpc === undefined && p.http === undefined ? 'enable at least one of grpc, http' : null)),
});

export type OtlpReceiverConfig = Infer<typeof configSchema>;
export type GrpcConfig = NonNullable<OtlpReceiverConfig['protocols']['grpc']>;
export type HttpConfig = NonNullable<OtlpReceiverConfig['protocols']['http']>;
export type TlsConfig = NonNullable<GrpcConfig['tls']>;
export type AuthConfig = NonNullable<GrpcConfig['auth']>;
