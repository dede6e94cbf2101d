import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { OtlpGrpcTestServer } from '../../test/helpers/exporter-grpc-server.js';
import { encodePartialSuccess } from '../../test/helpers/exporter-rpc-status.js';
import { exporterSettings, exporterTestHost } from '../../test/helpers/exporter-settings.js';
import { TEST_CA_PEM } from '../../test/helpers/exporter-tls.js';
import { buildRequest, decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import { parseGrpcEndpoint } from './config.js';
import { OtlpGrpcExporter } from './grpc-exporter.js';
import { factory } from './index.js';

const host = exporterTestHost;
const FAST_RETRY = { initial_interval: '5ms', max_interval: '20ms' };

function exporter(endpoint: string, extra: Record<string, unknown> = {}) {
  const settings = exporterSettings('otlp/test');
  const config = parseOrThrow(factory.schema, { endpoint, tls: { insecure: true }, retry_on_failure: FAST_RETRY, ...extra });
  return { exp: factory.create(settings, config) as OtlpGrpcExporter, settings };
}

describe('otlp exporter (gRPC)', () => {
  let server: OtlpGrpcTestServer;
  before(async () => {
    server = await OtlpGrpcTestServer.start();
  });
  after(() => server.close());

  it('sends the batch bytes unchanged, with the configured headers', async () => {
    server.requests.length = 0;
    const { exp, settings } = exporter(server.endpoint, { compression: 'none', headers: { 'X-Tenant': 'acme' } });
    await exp.start(host);
    const bytes = syntheticRequest(25, 5);
    await exp.consume(new TraceBatch(bytes), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    await server.waitForRequests(1);
    const got = server.requests[0]!;
    assert.equal(got.compressed, false);
    assert.ok(got.bytes.equals(Buffer.from(bytes)), 'bytes are identical');
    assert.equal(got.headers['x-tenant'], 'acme');
    assert.equal(got.headers['content-type'], 'application/grpc');
    const spans = decodeSpans(got.bytes);
    assert.deepEqual(
      spans.map((s) => s.spanId),
      decodeSpans(bytes).map((s) => s.spanId),
    );
    assert.equal(spans[3]!.attributes['attr.0'], 'value-3-0');
    await exp.shutdown(Date.now() + 2000);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 25);
  });

  it('gzips by default, and the message decompresses to the batch', async () => {
    server.requests.length = 0;
    const { exp } = exporter(server.endpoint);
    await exp.start(host);
    const bytes = syntheticRequest(50, 10);
    await exp.consume(new TraceBatch(bytes), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    await server.waitForRequests(1);
    assert.equal(server.requests[0]!.compressed, true);
    assert.equal(server.requests[0]!.headers['grpc-encoding'], 'gzip');
    assert.ok(server.requests[0]!.bytes.equals(Buffer.from(bytes)));
    await exp.shutdown(Date.now() + 2000);
  });

  it('sends an edited batch as its edited encoding', async () => {
    server.requests.length = 0;
    const { exp, settings } = exporter(server.endpoint);
    await exp.start(host);
    const b = new TraceBatch(syntheticRequest(4, 2));
    b.dropSpan(0);
    b.setSpanString(1, new TextEncoder().encode('enduser.id'), 'alice');
    await exp.consume(b, { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    await exp.shutdown(Date.now() + 2000);
    const spans = decodeSpans(server.requests[0]!.bytes);
    assert.equal(spans.length, 3);
    assert.equal(spans[0]!.attributes['enduser.id'], 'alice');
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 3);
  });

  it('retries UNAVAILABLE and then delivers, losing nothing', async () => {
    server.requests.length = 0;
    server.replyWith({ code: 14, message: 'overloaded' }, { code: 14 });
    const { exp, settings } = exporter(server.endpoint);
    await exp.start(host);
    const bytes = syntheticRequest(6, 1);
    await exp.consume(new TraceBatch(bytes), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    await server.waitForRequests(3);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(server.requests.length, 3);
    for (const r of server.requests) assert.ok(r.bytes.equals(Buffer.from(bytes)));
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 6);
    assert.equal(await settings.metric('otelcol_exporter_send_failed_spans_total'), 0);
  });

  it('honours RetryInfo, and retries RESOURCE_EXHAUSTED only when it carries one', async () => {
    server.requests.length = 0;
    server.replyWith({ code: 8, message: 'slow down', retryDelayMs: 150 });
    const { exp, settings } = exporter(server.endpoint, { retry_on_failure: { initial_interval: '1ms' } });
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(2, 1)), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    await server.waitForRequests(2);
    const gap = server.requests[1]!.at - server.requests[0]!.at;
    assert.ok(gap >= 150, `retried after ${gap} ms; RetryInfo asked for 150`);

    server.replyWith({ code: 8, message: 'quota exhausted for good' });
    await exp.consume(new TraceBatch(syntheticRequest(3, 1)), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    await server.waitForRequests(3);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(server.requests.length, 3, 'RESOURCE_EXHAUSTED without RetryInfo is not retried');
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 2);
    assert.equal(await settings.dropped('permanent'), 3);
  });

  it('counts a permanent error as failed without retrying, logging the status', async () => {
    server.requests.length = 0;
    server.replyWith({ code: 3, message: 'malformed spans' });
    const { exp, settings } = exporter(server.endpoint);
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(4, 1)), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    await server.waitForRequests(1);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(server.requests.length, 1);
    assert.equal(await settings.metric('otelcol_exporter_send_failed_spans_total'), 4);
    assert.equal(await settings.dropped('permanent'), 4);
    assert.match(settings.sink.text, /INVALID_ARGUMENT: malformed spans/);
  });

  it('counts the rejected spans of a partial success', async () => {
    server.requests.length = 0;
    server.replyWith({ response: encodePartialSuccess(3, 'spans too old') });
    const { exp, settings } = exporter(server.endpoint);
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(10, 1)), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    await exp.shutdown(Date.now() + 2000);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 7);
    assert.equal(await settings.dropped('partial_success'), 3);
    assert.match(settings.sink.text, /spans too old/);
  });

  it('refuses with QUEUE_FULL when the peer stalls and the queue fills (the batch being sent counts)', async () => {
    server.requests.length = 0;
    server.hold();
    const { exp, settings } = exporter(server.endpoint, { sending_queue: { num_consumers: 1, queue_size: 3 } });
    await exp.start(host);
    const ctx = { receiver: 'r', transport: 'grpc' as const, peer: '', auth: null };
    await exp.consume(new TraceBatch(syntheticRequest(1, 1)), ctx);
    await server.waitForRequests(1);
    await exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
    await exp.consume(new TraceBatch(syntheticRequest(3, 1)), ctx);
    await assert.rejects(exp.consume(new TraceBatch(syntheticRequest(5, 1)), ctx), (e: unknown) => e instanceof PipelineError && e.code === 'QUEUE_FULL');
    assert.equal(await settings.metric('otelcol_exporter_enqueue_failed_spans_total'), 5);
    // Refused, not dropped: the caller still holds the spans (the receiver answers its sender).
    assert.equal(await settings.dropped('queue_full'), 0);
    server.release();
    await exp.shutdown(Date.now() + 5000);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 6);
    assert.equal(server.requests.length, 3);
  });

  it('drains the queue on shutdown', async () => {
    server.requests.length = 0;
    const { exp, settings } = exporter(server.endpoint, { sending_queue: { num_consumers: 2 } });
    await exp.start(host);
    const ctx = { receiver: 'r', transport: 'grpc' as const, peer: '', auth: null };
    for (let i = 0; i < 30; i++) await exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
    await exp.shutdown(Date.now() + 5000);
    assert.equal(server.requests.length, 30);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 60);
  });

  it('counts what is still held at the shutdown deadline as dropped', async () => {
    server.requests.length = 0;
    server.hold();
    const { exp, settings } = exporter(server.endpoint, { sending_queue: { num_consumers: 1 } });
    await exp.start(host);
    const ctx = { receiver: 'r', transport: 'grpc' as const, peer: '', auth: null };
    for (let i = 0; i < 4; i++) await exp.consume(new TraceBatch(syntheticRequest(5, 1)), ctx);
    await server.waitForRequests(1);
    const t0 = Date.now();
    await exp.shutdown(t0 + 150);
    assert.ok(Date.now() - t0 < 3000);
    server.release();
    assert.equal(await settings.dropped('shutdown'), 20);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 0);
  });

  it('retries while the peer is unreachable and delivers once it is back', async () => {
    const late = await OtlpGrpcTestServer.start();
    const port = late.port;
    await late.close();
    const { exp, settings } = exporter(`127.0.0.1:${port}`, { retry_on_failure: { initial_interval: '20ms', max_interval: '50ms' } });
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(3, 1)), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
    // Nothing listens: the send fails as UNAVAILABLE and is retried; count on the logs at debug level.
    for (let i = 0; i < 200 && !settings.sink.text.includes('will retry'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(settings.sink.text, /will retry/);
    assert.equal(await settings.metric('otelcol_exporter_send_failed_spans_total'), 0);
    await exp.shutdown(Date.now() + 100);
    assert.equal(await settings.dropped('shutdown'), 3);
  });

  it('speaks TLS with a configured CA, and https:// chooses TLS over tls.insecure', async () => {
    const tlsServer = await OtlpGrpcTestServer.start({ tls: true });
    const dir = await mkdtemp(join(tmpdir(), 'tw-otlp-tls-'));
    try {
      const caFile = join(dir, 'ca.pem');
      await writeFile(caFile, TEST_CA_PEM);
      for (const endpoint of [`localhost:${tlsServer.port}`, `https://localhost:${tlsServer.port}`]) {
        const settings = exporterSettings('otlp/tls');
        const config = parseOrThrow(factory.schema, { endpoint, tls: { ca_file: caFile, insecure: endpoint.startsWith('https') } });
        const exp = factory.create(settings, config);
        await exp.start(host);
        await exp.consume(new TraceBatch(syntheticRequest(2, 1)), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
        await exp.shutdown(Date.now() + 3000);
        assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 2, endpoint);
      }
      assert.equal(tlsServer.requests.length, 2);
      const bad = factory.create(exporterSettings('otlp/bad'), parseOrThrow(factory.schema, { endpoint: 'localhost:1', tls: { ca_file: join(dir, 'missing.pem') } }));
      await assert.rejects(bad.start(host), /cannot read TLS CA file .*missing\.pem: ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await tlsServer.close();
    }
  });

  it('interoperates with a grpc-js server', async () => {
    const grpc = await import('@grpc/grpc-js');
    const received: Buffer[] = [];
    const srv = new grpc.Server();
    const pass = (b: Buffer) => b;
    srv.addService(
      {
        Export: {
          path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
          requestStream: false,
          responseStream: false,
          requestSerialize: pass,
          requestDeserialize: pass,
          responseSerialize: pass,
          responseDeserialize: pass,
        },
      },
      {
        Export: (call: { request: Buffer }, cb: (err: null, res: Buffer) => void) => {
          received.push(call.request);
          cb(null, Buffer.alloc(0));
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    try {
      const { exp, settings } = exporter(`127.0.0.1:${port}`);
      await exp.start(host);
      const bytes = buildRequest([{ attributes: { 'service.name': 'a' }, scopes: [{ spans: [{ name: 'x' }, { name: 'y' }] }] }]);
      await exp.consume(new TraceBatch(bytes), { receiver: 'r', transport: 'grpc', peer: '', auth: null });
      await exp.shutdown(Date.now() + 3000);
      assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 2);
      assert.ok(received[0]!.equals(Buffer.from(bytes)));
    } finally {
      await new Promise<void>((resolve) => srv.tryShutdown(() => resolve()));
    }
  });
});

describe('otlp exporter config', () => {
  it("has the Collector's defaults", () => {
    const c = parseOrThrow(factory.schema, { endpoint: 'collector:4317' });
    assert.equal(c.compression, 'gzip');
    assert.equal(c.timeout, 5000);
    assert.equal(c.tls.insecure, false);
    assert.deepEqual(c.sending_queue, { enabled: true, num_consumers: 10, queue_size: 1000 });
    assert.deepEqual(c.retry_on_failure, {
      enabled: true,
      initial_interval: 5000,
      randomization_factor: 0.5,
      multiplier: 1.5,
      max_interval: 30_000,
      max_elapsed_time: 300_000,
    });
  });

  it('requires an endpoint, rejects bad ones and warns on Collector-only keys', () => {
    assert.throws(() => parseOrThrow(factory.schema, {}), /endpoint: required/);
    assert.throws(() => parseOrThrow(factory.schema, { endpoint: 'ftp://x:1' }), /endpoint: expected host:port/);
    // configgrpc compresses with gzip, zstd and snappy only; lz4, zlib and deflate are HTTP's.
    assert.throws(() => parseOrThrow(factory.schema, { endpoint: 'x:1', compression: 'lz4' }), /compression: expected one of gzip, zstd, snappy, none/);
    assert.throws(() => parseOrThrow(factory.schema, { endpoint: 'x:1', compression: 'zlib' }), /compression: expected one of gzip, zstd, snappy, none/);
    assert.throws(() => parseOrThrow(factory.schema, { endpoint: 'x:1', tls: { cert_file: '/c.pem' } }), /needs both cert_file and key_file/);
    const ctx = new ParseContext();
    factory.schema.parse({ endpoint: 'x:1', keepalive: { time: '10s' }, balancer_name: 'round_robin' }, [], ctx);
    assert.deepEqual(
      ctx.issues.map((i) => [i.path.join('.'), i.warning]),
      [
        ['keepalive', true],
        ['balancer_name', true],
      ],
    );
  });

  it('parses endpoint forms', () => {
    assert.deepEqual(parseGrpcEndpoint('collector:4317'), { target: 'collector:4317', schemeSecure: null });
    assert.deepEqual(parseGrpcEndpoint('https://ingest.example.com'), { target: 'ingest.example.com:443', schemeSecure: true });
    assert.deepEqual(parseGrpcEndpoint('http://[::1]:4317/'), { target: '[::1]:4317', schemeSecure: false });
    assert.equal(typeof parseGrpcEndpoint('x:70000'), 'string');
  });
});
