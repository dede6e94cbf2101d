/**
 * A Collector config's filter, transform and attributes processors and routing connector, as written for
 * the Collector, in the daemon: spans from the official OpenTelemetry SDK over its gRPC and HTTP/JSON
 * exporters, what each backend receives decoded independently and compared with what the Collector's
 * documentation says the config produces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { startDaemon } from '../helpers/daemon.js';
import { decodeSpans } from '../helpers/otlp.js';
import { exportOnce, sdkSpans } from '../helpers/receiver-sdk.js';
import { sample } from '../helpers/prometheus-text.js';

test('filter, transform, attributes and routing from a Collector config: SDK spans in, the documented result out', async () => {
  const backend = await OtlpGrpcTestServer.start();
  const early = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  filter/noise:
    error_mode: ignore
    traces:
      span:
        - 'attributes["i"] >= 8'
        - 'name == "op-0"'
  transform:
    error_mode: ignore
    trace_statements:
      - context: resource
        statements:
          - set(attributes["deployment.environment.name"], "test")
      - context: span
        statements:
          - set(attributes["step.upper"], ToUpperCase(attributes["checkout.step"]))
          - set(name, Concat(["checkout", name], ":")) where attributes["i"] < 3
          - delete_key(attributes, "checkout.step")
  attributes:
    actions:
      - { key: team, value: payments, action: insert }
      - { key: i, action: convert, converted_type: string }
  batch: { timeout: 10ms }
connectors:
  routing:
    default_pipelines: [traces/out]
    table:
      - context: span
        condition: attributes["i"] == "1" or attributes["i"] == "2"
        pipelines: [traces/early]
exporters:
  otlp: { endpoint: ${backend.endpoint}, tls: { insecure: true }, compression: none }
  otlp/early: { endpoint: ${early.endpoint}, tls: { insecure: true }, compression: none }
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], processors: [filter/noise, transform, attributes], exporters: [routing] }
    traces/out: { receivers: [routing], processors: [batch], exporters: [otlp] }
    traces/early: { receivers: [routing], processors: [batch], exporters: [otlp/early] }
`);
  try {
    const spans = await sdkSpans(10);
    for (const c of [new GrpcExporter({ url: `http://127.0.0.1:${daemon.grpcPort()}` }), new JsonExporter({ url: `http://127.0.0.1:${daemon.httpPort()}/v1/traces` })]) {
      const r = await exportOnce(c, spans);
      assert.equal(r.code, 0, `export failed: ${r.error?.message}`);
      await c.shutdown();
    }
    // Stopping flushes the batch processor and drains the exporter: every accepted span is delivered.
    await daemon.stop();
    const metrics = await daemon.service.telemetry.registry.metrics();
    const strip = (s: ReturnType<typeof decodeSpans>[number]) => ({ name: s.name, attributes: s.attributes, resource: s.resource });
    const byI = (a: { attributes: Record<string, unknown> }, b: { attributes: Record<string, unknown> }) => Number(a.attributes.i) - Number(b.attributes.i);
    const expected = [1, 2, 3, 4, 5, 6, 7].map((i) => ({
      name: i < 3 ? `checkout:op-${i}` : `op-${i}`,
      attributes: { i: String(i), 'step.upper': `STEP-${i}`, team: 'payments' },
      resource: { 'service.name': 'checkout', 'deployment.environment.name': 'test' },
    }));
    // op-0 and op-8, op-9 are filtered; each surviving span arrives twice (two exporters), at the backend its route chose.
    const late = backend.requests.flatMap((r) => decodeSpans(r.bytes)).map(strip).sort(byI);
    const first = early.requests.flatMap((r) => decodeSpans(r.bytes)).map(strip).sort(byI);
    assert.deepEqual(first, expected.slice(0, 2).flatMap((e) => [e, e]));
    assert.deepEqual(late, expected.slice(2).flatMap((e) => [e, e]));
    assert.equal(sample(metrics, 'tracewarden_dropped_spans_total', { component: 'filter/noise', reason: 'filtered' }), 6);
    assert.equal(sample(metrics, 'tracewarden_ottl_errors_total', { component: 'transform' }), 0);
  } finally {
    await daemon.stop();
    await Promise.all([backend.close(), early.close()]);
  }
});
