/**
 * Connectors in the daemon, from a Collector config: a routing connector splitting one pipeline's spans
 * between per-tenant pipelines and a forward connector feeding an audit pipeline, each ending at its own
 * real OTLP backend; what each backend receives decoded independently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { startDaemon } from '../helpers/daemon.js';
import { buildRequest, decodeSpans } from '../helpers/otlp.js';
import { grpcFrame, grpcRaw } from '../helpers/receiver-harness.js';
import { sample } from '../helpers/prometheus-text.js';

test('routing splits a mixed request by tenant and user, forward copies to an audit pipeline; nothing misrouted', async () => {
  const acme = await OtlpGrpcTestServer.start();
  const rest = await OtlpGrpcTestServer.start();
  const audit = await OtlpGrpcTestServer.start();
  const exporter = (b: OtlpGrpcTestServer) => `{ endpoint: ${b.endpoint}, tls: { insecure: true }, compression: none }`;
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
connectors:
  forward:
  routing:
    default_pipelines: [traces/rest]
    error_mode: ignore
    table:
      - statement: route() where attributes["tenant"] == "acme"
        pipelines: [traces/acme]
      - context: span
        condition: attributes["enduser.id"] == "root"
        pipelines: [traces/acme, traces/rest]
exporters:
  otlp/acme: ${exporter(acme)}
  otlp/rest: ${exporter(rest)}
  otlp/audit: ${exporter(audit)}
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces/in: { receivers: [otlp], exporters: [routing, forward] }
    traces/acme: { receivers: [routing], exporters: [otlp/acme] }
    traces/rest: { receivers: [routing], exporters: [otlp/rest] }
    traces/audit: { receivers: [forward], exporters: [otlp/audit] }
`);
  try {
    const req = buildRequest([
      { attributes: { tenant: 'acme' }, scopes: [{ spans: [{ name: 'acme-1' }, { name: 'acme-2', attributes: { 'enduser.id': 'root' } }] }] },
      { attributes: { tenant: 'globex' }, scopes: [{ spans: [{ name: 'globex-1' }, { name: 'globex-root', attributes: { 'enduser.id': 'root' } }] }] },
    ]);
    const g = await grpcRaw(daemon.grpcPort(), grpcFrame(req));
    assert.equal(g.grpcStatus, 0);
    await daemon.stop();
    const names = (b: OtlpGrpcTestServer) => b.requests.flatMap((r) => decodeSpans(r.bytes)).map((s) => s.name).sort();
    assert.deepEqual(names(acme), ['acme-1', 'acme-2', 'globex-root']);
    assert.deepEqual(names(rest), ['globex-1', 'globex-root']);
    assert.deepEqual(names(audit), ['acme-1', 'acme-2', 'globex-1', 'globex-root']);
    // Each backend saw only its spans' resources.
    for (const s of acme.requests.flatMap((r) => decodeSpans(r.bytes))) assert.ok(s.name.startsWith(String(s.resource.tenant)) || s.name === 'globex-root');
    const metrics = await daemon.service.telemetry.registry.metrics();
    assert.equal(sample(metrics, 'tracewarden_routing_spans_total', { connector: 'routing', pipeline: 'traces/acme' }), 3);
    assert.equal(sample(metrics, 'tracewarden_routing_spans_total', { connector: 'routing', pipeline: 'traces/rest' }), 2);
    assert.equal(sample(metrics, 'otelcol_exporter_sent_spans_total', { exporter: 'otlp/audit' }), 4);
  } finally {
    await daemon.stop();
    await Promise.all([acme.close(), rest.close(), audit.close()]);
  }
});
