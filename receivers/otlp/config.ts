/**
 * The otlp receiver's configuration, in the OpenTelemetry Collector's shape so an existing collector
 * config works unchanged. Only the protocols present are enabled; `grpc:` with no value means "enabled,
 * with defaults".
 */
import { endpointSchema, s, type Infer } from '../../pipeline/config/schema.js';

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

/** gRPC keepalive in the Collector's shape (configgrpc), with grpc-go's meanings. */
const keepaliveSchema = s.object({
  server_parameters: s.object({
    /** A connection with no call for this long is closed (GOAWAY). */
    max_connection_idle: s.duration().default(60_000),
    /** A connection older than this is asked to go away (GOAWAY), then closed after the grace. */
    max_connection_age: s.duration().optional(),
    max_connection_age_grace: s.duration().default(30_000),
    /** After this long without activity the server pings; no answer within `timeout` closes it. */
    time: s.duration().default(2 * 3_600_000),
    timeout: s.duration().default(20_000),
  }),
  enforcement_policy: s.object({
    /** Clients pinging more often than this are told to go away (ENHANCE_YOUR_CALM), as grpc-go does. */
    min_time: s.duration().default(300_000),
    /** Whether pings are allowed while no call is open. */
    permit_without_stream: s.bool().default(false),
  }),
});

const grpcSchema = s.object(
  {
    endpoint: endpointSchema().default('localhost:4317'),
    max_recv_msg_size_mib: s.int({ min: 1, max: 1024 }).default(4),
    max_concurrent_streams: s.int({ min: 1 }).default(100),
    keepalive: keepaliveSchema,
    /** tracewarden's own: a request message not fully received this long after its call began is cut. */
    message_timeout: s.duration().default(30_000),
    /** tracewarden's own: request bytes being received at once, on this endpoint and on one connection. */
    max_inflight_mib: s.int({ min: 1 }).default(256),
    max_inflight_mib_per_connection: s.int({ min: 1 }).default(64),
    tls: tlsSchema.optional(),
    auth: authSchema.optional(),
  },
  {
    transport: 'only tcp is supported',
    read_buffer_size: 'the HTTP/2 receive window is fixed at 8 MiB',
    write_buffer_size: 'responses are a few bytes',
    include_metadata: 'request metadata is passed only to the authenticator',
  },
);

const httpSchema = s.object(
  {
    endpoint: endpointSchema().default('localhost:4318'),
    traces_url_path: s.string({ pattern: /^\//, patternHint: 'a path starting with /' }).default('/v1/traces'),
    max_request_body_size: s.int({ min: 1 }).default(20 * 1024 * 1024),
    /** As the Collector's confighttp: time to receive a request's headers, the whole request, and idle keep-alive. */
    read_header_timeout: s.duration().default(60_000),
    read_timeout: s.duration().default(60_000),
    idle_timeout: s.duration().default(60_000),
    /** tracewarden's own: request body bytes being received at once on this endpoint. */
    max_inflight_mib: s.int({ min: 1 }).default(256),
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
    compression_algorithms: 'gzip, deflate, zlib, zstd, snappy, x-snappy-framed, lz4 and identity request bodies are always accepted',
    write_timeout: 'responses are a few bytes',
  },
);

export const configSchema = s.object({
  protocols: s
    .object({
      grpc: grpcSchema.optional(),
      http: httpSchema.optional(),
    })
    .refine((p) => (p.grpc === undefined && p.http === undefined ? 'enable at least one of grpc, http' : null))
    .refine((p) => (p.grpc !== undefined && p.grpc.max_inflight_mib_per_connection < p.grpc.max_recv_msg_size_mib ? 'grpc.max_inflight_mib_per_connection must be at least grpc.max_recv_msg_size_mib' : null))
    .refine((p) => (p.http !== undefined && p.http.max_inflight_mib * 1024 * 1024 < p.http.max_request_body_size ? 'http.max_inflight_mib must hold at least one http.max_request_body_size' : null)),
});

export type OtlpReceiverConfig = Infer<typeof configSchema>;
export type GrpcConfig = NonNullable<OtlpReceiverConfig['protocols']['grpc']>;
export type HttpConfig = NonNullable<OtlpReceiverConfig['protocols']['http']>;
export type TlsConfig = NonNullable<GrpcConfig['tls']>;
export type AuthConfig = NonNullable<GrpcConfig['auth']>;
