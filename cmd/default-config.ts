/**
 * The embedded default: runs with no external service. OTLP in on localhost, spans printed by the debug
 * exporter, metrics for Prometheus on localhost:8888.
 */
export const DEFAULT_CONFIG = `# tracewarden embedded default configuration
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: localhost:4317
      http:
        endpoint: localhost:4318
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch: {}
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      address: localhost:8888
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [debug]
`;
