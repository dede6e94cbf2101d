/**
 * End to end through the daemon built from YAML: its self-telemetry as an operator sees it. A real
 * Prometheus scrapes `/metrics`; `/health`, `/ready` and the health_check extension are asked over HTTP;
 * spans go in through the real receivers and out to a real OTLP/gRPC server on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultRegistry } from '../../cmd/components.js';
import type { HealthCheckExtension } from '../../extensions/health_check/health-check.js';
import { formatProblems, loadConfig } from '../../pipeline/config/config.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { Service } from '../../pipeline/service/service.js';
import { TelemetryServer } from '../../pipeline/telemetry/telemetry-server.js';
import type { MemoryLimiter } from '../../processors/memory_limiter/memory-limiter.js';
import { startDaemon } from '../helpers/daemon.js';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { buildRequest, decodeSpans, syntheticRequest } from '../helpers/otlp.js';
import { prometheusBinary, startPrometheus } from '../helpers/prometheus.js';
import { sample } from '../helpers/prometheus-text.js';
import { grpcFrame, grpcRaw, httpRequest } from '../helpers/receiver-harness.js';

const PROTOBUF = { 'content-type': 'application/x-protobuf' };

async function get(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function exporterYaml(backend: OtlpGrpcTestServer, extra = ''): string {
  return `otlp: { endpoint: ${backend.endpoint}, tls: { insecure: true }, compression: none, retry_on_failure: { initial_interval: 10ms, max_interval: 50ms }${extra} }`;
}

test('a real Prometheus scrapes the daemon: target up, span counters exact, queue capacity and process metrics present', async (t) => {
  if (prometheusBinary() === null) {
    if (process.env['TRACEWARDEN_REQUIRE_PROMETHEUS'] === '1') {
      assert.fail('TRACEWARDEN_REQUIRE_PROMETHEUS=1 but the prometheus binary is not on PATH: apt-get install prometheus');
    }
    t.skip('prometheus is not installed: apt-get install prometheus');
    return;
  }
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
exporters:
  ${exporterYaml(backend, ', sending_queue: { queue_size: 37 }')}
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`);
  const prom = await startPrometheus([`127.0.0.1:${daemon.service.metricsPort}`]);
  try {
    const one = async (expr: string): Promise<number | null> => {
      const r = await prom.query(expr);
      return r.length === 1 ? r[0]!.value : null;
    };
    const accepted = 'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"}';
    const sent = 'otelcol_exporter_sent_spans_total{exporter="otlp"}';

    // The first scrape sees the bound counters at zero: a series exists before any span arrives.
    assert.ok(await prom.waitFor(async () => (await one('up{job="tracewarden"}')) === 1 && (await one(accepted)) === 0, 20), 'the daemon was never scraped');
    const targets = await prom.targets();
    assert.equal(targets.length, 1);
    assert.equal(targets[0]!.health, 'up', targets[0]!.lastError);
    assert.equal(targets[0]!.scrapeUrl, `${daemon.metricsUrl}/metrics`);

    const sizes = [7, 11, 13];
    for (const n of sizes) assert.equal((await grpcRaw(daemon.grpcPort(), grpcFrame(syntheticRequest(n, 3)))).grpcStatus, 0);
    const total = sizes.reduce((a, b) => a + b, 0);
    await backend.waitForRequests(sizes.length);
    assert.equal(backend.requests.flatMap((r) => decodeSpans(r.bytes)).length, total);

    let last: [number | null, number | null] = [null, null];
    const reached = await prom.waitFor(async () => {
      last = [await one(accepted), await one(sent)];
      return last[0] === total && last[1] === total;
    }, 20);
    assert.ok(reached, `Prometheus saw accepted/sent ${JSON.stringify(last)}, want ${total}/${total}`);
    assert.equal(await one('otelcol_exporter_queue_capacity{exporter="otlp"}'), 37);
    assert.equal(await one('otelcol_exporter_queue_size{exporter="otlp"}'), 0);
    assert.equal(await one('sum(otelcol_exporter_send_failed_spans_total)'), 0);
    const rss = await one('process_resident_memory_bytes{job="tracewarden"}');
    assert.ok(rss !== null && rss > 1024 * 1024, `process_resident_memory_bytes = ${rss}`);
    assert.ok((await prom.query('nodejs_heap_size_used_bytes')).length === 1, 'Node.js runtime metrics are exported');
  } finally {
    await prom.stop();
    await daemon.stop();
    await backend.close();
  }
});

test('/health, /ready, unknown paths and methods on the telemetry server; /ready is 503 while shutting down', async () => {
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
extensions:
  health_check: { endpoint: 127.0.0.1:0 }
exporters:
  ${exporterYaml(backend)}
service:
  extensions: [health_check]
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`);
  let stopping: Promise<void> | null = null;
  try {
    const base = daemon.metricsUrl;
    const health = await get(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.text), { status: 'ok' });
    const ready = await get(`${base}/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.text), { status: 'ready', waiting_for: [] });
    assert.equal((await get(`${base}/ready?verbose=1`)).status, 200, 'a query string does not change the path');

    const unknown = await get(`${base}/nope`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.text, /try \/metrics, \/health or \/ready/);
    for (const path of ['/metrics', '/health', '/ready']) {
      const post = await get(`${base}${path}`, { method: 'POST', body: 'x' });
      assert.equal(post.status, 405, `POST ${path}`);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
    }
    const head = await fetch(`${base}/health`, { method: 'HEAD' });
    assert.equal(head.status, 200);

    // Hold the backend so that shutdown sits in the exporter's drain: the receiver is already stopped,
    // the telemetry server and the health_check extension are still answering.
    backend.hold();
    assert.equal((await grpcRaw(daemon.grpcPort(), grpcFrame(syntheticRequest(5, 2)))).grpcStatus, 0);
    await backend.waitForRequests(1);
    stopping = daemon.stop();
    const draining = await get(`${base}/ready`);
    assert.equal(draining.status, 503);
    assert.deepEqual(JSON.parse(draining.text), { status: 'not_ready', waiting_for: ['service (stopping)', 'otlp'] });
    assert.equal((await get(`${base}/health`)).status, 200, 'alive while draining');
    const hc = daemon.service.component('health_check') as HealthCheckExtension;
    const hcDraining = await get(`http://127.0.0.1:${hc.port}/`);
    assert.equal(hcDraining.status, 503);
    assert.equal((JSON.parse(hcDraining.text) as { status: string }).status, 'Server not available');

    backend.release();
    await stopping;
    assert.equal(await daemon.service.telemetry.value('otelcol_exporter_sent_spans_total', { exporter: 'otlp' }), 5, 'the held batch was delivered by the drain');
    await assert.rejects(fetch(`${base}/health`), 'the telemetry server is closed after shutdown');
  } finally {
    backend.release();
    await (stopping ?? daemon.stop());
    await backend.close();
  }
});

test('/ready of a built but not yet started daemon is 503 and names every component it waits for', async () => {
  const { config, problems } = loadConfig(
    [
      {
        name: 'test.yaml',
        text: `
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
processors:
  batch: {}
exporters:
  debug: {}
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [debug] }
`,
      },
    ],
    defaultRegistry(),
    {},
  );
  assert.ok(config !== null, formatProblems(problems));
  const service = new Service(config, { logger: new Logger(new MemorySink(), 'debug') });
  const server = new TelemetryServer(service.telemetry, '127.0.0.1:0', () => service.readiness());
  await server.start();
  try {
    const r = await get(`http://127.0.0.1:${server.boundPort}/ready`);
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.text), { status: 'not_ready', waiting_for: ['service (built)', 'debug', 'traces/batch', 'otlp'] });
    assert.equal((await get(`http://127.0.0.1:${server.boundPort}/health`)).status, 200, 'alive even when not ready');
  } finally {
    await server.stop();
  }
});

test('the health_check extension answers 200 "Server available" on its configured path, 404 elsewhere', async () => {
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
extensions:
  health_check: { endpoint: 127.0.0.1:0, path: /healthz }
exporters:
  ${exporterYaml(backend)}
service:
  extensions: [health_check]
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`);
  try {
    const hc = daemon.service.component('health_check') as HealthCheckExtension;
    assert.ok(hc.port > 0);
    const ok = await get(`http://127.0.0.1:${hc.port}/healthz`);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(ok.text), { status: 'Server available', waiting_for: [] });
    assert.equal((await get(`http://127.0.0.1:${hc.port}/`)).status, 404);
    assert.equal(daemon.service.metricsPort, 0, 'metrics level none: no telemetry server');
  } finally {
    await daemon.stop();
    await backend.close();
  }
});

test('no label or value in /metrics carries span data, whatever the spans and bad requests contain', async () => {
  const MARKER = 'zq7Marker9xk';
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  batch: { timeout: 10ms }
exporters:
  ${exporterYaml(backend)}
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [otlp] }
`);
  try {
    const marked = (n: number) =>
      buildRequest([
        {
          attributes: { 'service.name': `svc-${MARKER}`, [`res.${MARKER}`]: MARKER },
          scopes: [
            {
              name: `scope-${MARKER}`,
              spans: Array.from({ length: n }, (_, i) => ({
                name: `GET /users/${MARKER}/${i}`,
                attributes: {
                  'enduser.id': `alice-${MARKER}`,
                  'http.request.header.authorization': [`Bearer ${MARKER}`],
                  [`key.${MARKER}`]: i,
                },
              })),
            },
          ],
        },
      ]);
    const headers = { ...PROTOBUF, 'user-agent': `agent-${MARKER}`, 'x-tenant': MARKER };
    assert.equal((await grpcRaw(daemon.grpcPort(), grpcFrame(marked(4)), { headers: { 'user-agent': `agent-${MARKER}`, 'x-tenant': MARKER } })).grpcStatus, 0);
    assert.equal((await httpRequest(daemon.httpPort(), { headers, body: marked(6) })).status, 200);
    const json = Buffer.from(JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: MARKER } }] }, scopeSpans: [{ spans: [{ traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708', name: MARKER, kind: 1, startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }] }));
    assert.equal((await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/json' }, body: json })).status, 200);
    // Requests that are refused must not leak either: their content, type, path or method.
    const bad = marked(3);
    assert.equal((await httpRequest(daemon.httpPort(), { headers, body: bad.subarray(0, bad.length - 3) })).status, 400);
    assert.equal((await httpRequest(daemon.httpPort(), { headers: { 'content-type': `text/${MARKER}` }, body: bad })).status, 415);
    assert.equal((await httpRequest(daemon.httpPort(), { path: `/v1/${MARKER}`, headers, body: bad })).status, 404);
    assert.equal((await grpcRaw(daemon.grpcPort(), grpcFrame(Buffer.from(`garbage ${MARKER}`)))).grpcStatus, 3);
    assert.notEqual((await grpcRaw(daemon.grpcPort(), grpcFrame(bad), { path: `/${MARKER}.Svc/Export` })).grpcStatus, 0);

    const delivered = () => backend.requests.reduce((n, r) => n + decodeSpans(r.bytes).length, 0);
    for (let i = 0; i < 20 && delivered() < 11; i++) await backend.waitForRequests(backend.requests.length + 1);
    assert.equal(delivered(), 11);
    assert.ok(backend.requests.some((r) => r.bytes.includes(MARKER)), 'the marker is in the spans the backend received');

    const text = (await get(`${daemon.metricsUrl}/metrics`)).text;
    // Not a vacuous check: the counters of exactly these requests are in the text that is searched.
    assert.equal(sample(text, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'grpc' }), 4);
    assert.equal(sample(text, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'http' }), 7);
    assert.equal(sample(text, 'tracewarden_receiver_requests_total', { receiver: 'otlp', transport: 'http', outcome: 'invalid' }), 1);
    assert.equal(sample(text, 'tracewarden_receiver_requests_total', { receiver: 'otlp', transport: 'http', outcome: 'unsupported_media_type' }), 1);
    assert.ok(!text.includes(MARKER), `the marker appears in /metrics:\n${text.split('\n').filter((l) => l.includes(MARKER)).join('\n')}`);
    assert.ok(!text.toLowerCase().includes(MARKER.toLowerCase()));
  } finally {
    await daemon.stop();
    await backend.close();
  }
});

test('memory_limiter above its limit: HTTP 429 with Retry-After, gRPC UNAVAILABLE, nothing reaches the backend, refusals counted', async () => {
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  memory_limiter: { limit_mib: 2, spike_limit_mib: 1, check_interval: 10ms }
exporters:
  ${exporterYaml(backend)}
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }
`);
  try {
    // The limiter samples the real RSS once in start(), so it refuses from the first request on: a
    // Node process is far above 1 MiB. Its state is asserted, not waited for.
    const limiter = daemon.service.component('memory_limiter') as MemoryLimiter;
    assert.ok(process.memoryUsage.rss() > 2 * 1024 * 1024);
    assert.equal(limiter.isRefusing, true);

    const http = await httpRequest(daemon.httpPort(), { headers: PROTOBUF, body: syntheticRequest(6, 2) });
    assert.equal(http.status, 429);
    assert.equal(http.headers['retry-after'], '1', 'a 10 ms check interval rounds up to one whole second');
    assert.match(http.body.toString('latin1'), /memory usage is above the soft limit of 1 MiB/);

    const grpc = await grpcRaw(daemon.grpcPort(), grpcFrame(syntheticRequest(4, 2)));
    assert.equal(grpc.grpcStatus, 14);
    assert.match(grpc.grpcMessage, /soft limit/);
    assert.ok(grpc.trailers['grpc-status-details-bin'] ?? grpc.headers['grpc-status-details-bin'], 'UNAVAILABLE carries RetryInfo');

    const health = await get(`${daemon.metricsUrl}/health`);
    assert.equal(health.status, 200, 'the daemon keeps serving while it refuses');
    const text = (await get(`${daemon.metricsUrl}/metrics`)).text;
    assert.equal(sample(text, 'otelcol_receiver_refused_spans_total', { receiver: 'otlp', transport: 'http' }), 6);
    assert.equal(sample(text, 'otelcol_receiver_refused_spans_total', { receiver: 'otlp', transport: 'grpc' }), 4);
    assert.equal(sample(text, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'http' }), 0);
    assert.equal(sample(text, 'otelcol_processor_refused_spans_total', { processor: 'memory_limiter' }), 10);
    assert.equal(sample(text, 'tracewarden_receiver_requests_total', { receiver: 'otlp', transport: 'grpc', outcome: 'refused' }), 1);

    await daemon.stop();
    assert.equal(backend.requests.length, 0, 'nothing refused reaches the backend');
    const t = daemon.service.telemetry;
    assert.equal(await t.value('otelcol_exporter_sent_spans_total'), 0);
    assert.equal(await t.value('tracewarden_dropped_spans_total'), 0, 'refused is not dropped: the sender retries');
  } finally {
    await daemon.stop();
    await backend.close();
  }
});

test('a permanent error from the backend counts every span as dropped (permanent) and send-failed', async () => {
  const backend = await OtlpGrpcTestServer.start();
  backend.replyWith({ code: 3, message: 'bad data' }, { code: 3, message: 'bad data' });
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
exporters:
  ${exporterYaml(backend)}
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`);
  try {
    // One request at a time, so the scripted replies meet known batches: 5 and 8 spans refused, 9 accepted.
    const sizes = [5, 8, 9];
    for (let i = 0; i < sizes.length; i++) {
      assert.equal((await grpcRaw(daemon.grpcPort(), grpcFrame(syntheticRequest(sizes[i]!, 2)))).grpcStatus, 0, 'queued counts as accepted');
      await backend.waitForRequests(i + 1);
    }
    // Shutdown drains the exporter: after it, every outcome has been counted.
    await daemon.stop();
    assert.equal(backend.requests.length, 3, 'a permanent error is not retried');
    const t = daemon.service.telemetry;
    assert.equal(await t.value('tracewarden_dropped_spans_total', { component: 'otlp', reason: 'permanent' }), 13);
    assert.equal(await t.value('tracewarden_dropped_spans_total'), 13, 'no other drop reason');
    assert.equal(await t.value('otelcol_exporter_send_failed_spans_total', { exporter: 'otlp' }), 13);
    assert.equal(await t.value('otelcol_exporter_sent_spans_total', { exporter: 'otlp' }), 9);
    assert.equal(await t.value('otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'grpc' }), 22);
  } finally {
    await daemon.stop();
    await backend.close();
  }
});
