/**
 * End to end through the daemon built from YAML: the official OpenTelemetry JS exporters send spans into
 * the running receivers; real OTLP servers on loopback receive what the daemon exports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { OtlpHttpTestServer } from '../helpers/exporter-http-server.js';
import { startDaemon } from '../helpers/daemon.js';
import { decodeSpans, syntheticRequest } from '../helpers/otlp.js';
import { exportOnce, sdkSpans } from '../helpers/receiver-sdk.js';
import { grpcRaw, grpcFrame, httpRequest } from '../helpers/receiver-harness.js';

const FAST_RETRY = 'retry_on_failure: { initial_interval: 10ms, max_interval: 50ms }';

test('spans from the official grpc, proto and json exporters arrive at the backend with ids, names and attributes', async () => {
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  batch: { timeout: 20ms }
exporters:
  otlp:
    endpoint: ${backend.endpoint}
    tls: { insecure: true }
    ${FAST_RETRY}
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [otlp] }
`);
  try {
    const spans = await sdkSpans(5);
    const clients = [
      new GrpcExporter({ url: `http://127.0.0.1:${daemon.grpcPort()}` }),
      new ProtoExporter({ url: `http://127.0.0.1:${daemon.httpPort()}/v1/traces` }),
      new JsonExporter({ url: `http://127.0.0.1:${daemon.httpPort()}/v1/traces` }),
    ];
    for (const c of clients) {
      const r = await exportOnce(c, spans);
      assert.equal(r.code, 0, `export failed: ${r.error?.message}`);
      await c.shutdown();
    }
    // Each export is flushed by the batch timeout; all 15 spans must arrive, whatever the grouping.
    // Stopping flushes the batch processor and drains the exporter's queue: after it, every accepted span
    // has been delivered and every counter is final.
    await daemon.stop();
    const got = backend.requests.flatMap((r) => decodeSpans(r.bytes));
    assert.equal(got.length, 15);
    const want = spans.map((s) => ({ traceId: s.spanContext().traceId, spanId: s.spanContext().spanId, name: s.name }));
    for (const client of [0, 1, 2]) {
      const slice = got.slice(client * 5, client * 5 + 5);
      assert.deepEqual(slice.map((s) => ({ traceId: s.traceId, spanId: s.spanId, name: s.name })), want);
      assert.deepEqual(slice[3]!.attributes, { i: 3, 'checkout.step': 'step-3' });
      assert.equal(slice[0]!.resource['service.name'], 'checkout');
    }
    assert.equal(await daemon.service.telemetry.value('otelcol_receiver_accepted_spans_total'), 15);
    assert.equal(await daemon.service.telemetry.value('otelcol_exporter_sent_spans_total', { exporter: 'otlp' }), 15);
  } finally {
    await daemon.stop();
    await backend.close();
  }
});

test('an unedited batch reaches the backend byte-identical, over gRPC and HTTP', async () => {
  const grpcBackend = await OtlpGrpcTestServer.start();
  const httpBackend = await OtlpHttpTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
exporters:
  otlp: { endpoint: ${grpcBackend.endpoint}, tls: { insecure: true }, compression: none }
  otlphttp: { endpoint: ${httpBackend.url}, compression: none }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp, otlphttp] }
`);
  try {
    const viaGrpc = syntheticRequest(200, 20);
    const viaHttp = syntheticRequest(300, 20);
    const g = await grpcRaw(daemon.grpcPort(), grpcFrame(viaGrpc));
    assert.equal(g.grpcStatus, 0);
    const h = await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/x-protobuf' }, body: viaHttp });
    assert.equal(h.status, 200);
    await grpcBackend.waitForRequests(2);
    await httpBackend.waitForRequests(2);
    for (const backend of [grpcBackend.requests, httpBackend.requests]) {
      const bodies = backend.map((r) => Buffer.from(r.bytes));
      assert.ok(bodies.some((b) => b.equals(Buffer.from(viaGrpc))), 'the gRPC request arrived byte-identical');
      assert.ok(bodies.some((b) => b.equals(Buffer.from(viaHttp))), 'the HTTP request arrived byte-identical');
    }
  } finally {
    await daemon.stop();
    await grpcBackend.close();
    await httpBackend.close();
  }
});

test('two pipelines share a receiver; one fans out to two exporters', async () => {
  const a = await OtlpGrpcTestServer.start();
  const b = await OtlpGrpcTestServer.start();
  const c = await OtlpHttpTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
exporters:
  otlp/a: { endpoint: ${a.endpoint}, tls: { insecure: true } }
  otlp/b: { endpoint: ${b.endpoint}, tls: { insecure: true } }
  otlphttp/c: { endpoint: ${c.url} }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces/main: { receivers: [otlp], exporters: [otlp/a, otlp/b] }
    traces/audit: { receivers: [otlp], exporters: [otlphttp/c] }
`);
  try {
    const req = syntheticRequest(50, 5);
    const g = await grpcRaw(daemon.grpcPort(), grpcFrame(req));
    assert.equal(g.grpcStatus, 0);
    await Promise.all([a.waitForRequests(1), b.waitForRequests(1), c.waitForRequests(1)]);
    const want = decodeSpans(req).map((s) => s.spanId);
    for (const bytes of [a.requests[0]!.bytes, b.requests[0]!.bytes, c.requests[0]!.bytes]) {
      assert.deepEqual(decodeSpans(bytes).map((s) => s.spanId), want);
    }
    await daemon.stop();
    const t = daemon.service.telemetry;
    for (const id of ['otlp/a', 'otlp/b', 'otlphttp/c']) assert.equal(await t.value('otelcol_exporter_sent_spans_total', { exporter: id }), 50);
  } finally {
    await daemon.stop();
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test('the lightstep exporter reads its token file at start and sends it as lightstep-access-token', async () => {
  const backend = await OtlpGrpcTestServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'tw-ls-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'ls-secret-token-123\n');
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
exporters:
  lightstep:
    endpoint: ${backend.endpoint}
    tls: { insecure: true }
    access_token_file: ${tokenFile}
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], exporters: [lightstep] }
`);
  try {
    // Changing the file after start has no effect: it was read once.
    writeFileSync(tokenFile, 'rotated-later\n');
    const g = await grpcRaw(daemon.grpcPort(), grpcFrame(syntheticRequest(3, 2)));
    assert.equal(g.grpcStatus, 0);
    await backend.waitForRequests(1);
    assert.equal(backend.requests[0]!.headers['lightstep-access-token'], 'ls-secret-token-123');
    assert.equal(decodeSpans(backend.requests[0]!.bytes).length, 3);
    const metrics = await (await fetch(`${daemon.metricsUrl}/metrics`)).text();
    assert.ok(!daemon.logs.text.includes('ls-secret-token-123'), 'the token is not logged');
    assert.ok(!metrics.includes('ls-secret-token-123'), 'the token is not in metrics');
  } finally {
    await daemon.stop();
    await backend.close();
  }
});

test('a retryable refusal downstream loses nothing: the exporter retries until the backend accepts', async () => {
  const backend = await OtlpGrpcTestServer.start();
  backend.replyWith({ code: 14 }, { code: 14, retryDelayMs: 20 });
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
exporters:
  otlp: { endpoint: ${backend.endpoint}, tls: { insecure: true }, ${FAST_RETRY} }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`);
  try {
    const req = syntheticRequest(10, 3);
    const h = await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/x-protobuf' }, body: req });
    assert.equal(h.status, 200);
    await backend.waitForRequests(3);
    assert.ok(Buffer.from(backend.requests[2]!.bytes).equals(Buffer.from(req)));
    await daemon.stop();
    assert.equal(await daemon.service.telemetry.value('otelcol_exporter_sent_spans_total'), 10);
    assert.equal(await daemon.service.telemetry.value('otelcol_exporter_send_failed_spans_total'), 0);
  } finally {
    await daemon.stop();
    await backend.close();
  }
});

test('bad input costs only itself: the daemon answers each with the right status and keeps serving', async () => {
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, max_recv_msg_size_mib: 1 }
      http: { endpoint: 127.0.0.1:0, max_request_body_size: 65536 }
exporters:
  otlp: { endpoint: ${backend.endpoint}, tls: { insecure: true } }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`);
  try {
    const good = syntheticRequest(4, 2);
    const proto = { 'content-type': 'application/x-protobuf' };
    const cases: [string, Promise<number>, number][] = [
      ['garbage over http', httpRequest(daemon.httpPort(), { headers: proto, body: Buffer.from('garbage!garbage!') }).then((r) => r.status), 400],
      ['truncated over http', httpRequest(daemon.httpPort(), { headers: proto, body: good.subarray(0, good.length - 5) }).then((r) => r.status), 400],
      ['wrong content type', httpRequest(daemon.httpPort(), { headers: { 'content-type': 'text/plain' }, body: good }).then((r) => r.status), 415],
      ['bad json', httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/json' }, body: Buffer.from('{"resourceSpans":') }).then((r) => r.status), 400],
      ['oversized over http', httpRequest(daemon.httpPort(), { headers: proto, body: syntheticRequest(2000, 10) }).then((r) => r.status), 413],
      ['garbage over grpc', grpcRaw(daemon.grpcPort(), grpcFrame(Buffer.from('garbage!garbage!'))).then((r) => r.grpcStatus), 3],
      ['truncated over grpc', grpcRaw(daemon.grpcPort(), grpcFrame(good.subarray(0, good.length - 5))).then((r) => r.grpcStatus), 3],
      ['oversized over grpc', grpcRaw(daemon.grpcPort(), grpcFrame(new Uint8Array(2 * 1024 * 1024))).then((r) => r.grpcStatus), 8],
    ];
    for (const [name, result, want] of cases) assert.equal(await result, want, name);
    assert.equal((await grpcRaw(daemon.grpcPort(), grpcFrame(good))).grpcStatus, 0);
    assert.equal((await httpRequest(daemon.httpPort(), { headers: proto, body: good })).status, 200);
    await backend.waitForRequests(2);
    assert.equal(backend.requests.length, 2, 'only the two good requests reached the backend');
  } finally {
    await daemon.stop();
    await backend.close();
  }
});
