import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { OtlpHttpTestServer } from '../../test/helpers/exporter-http-server.js';
import { encodePartialSuccess, encodeRpcStatus } from '../../test/helpers/exporter-rpc-status.js';
import { exporterSettings, exporterTestHost as host } from '../../test/helpers/exporter-settings.js';
import { TEST_CA_PEM } from '../../test/helpers/exporter-tls.js';
import { decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import { tracesUrl } from './config.js';
import { parseRetryAfter } from './http-exporter.js';
import { factory } from './index.js';

const ctx: RequestContext = { receiver: 'r', transport: 'http', peer: '', auth: null };
const FAST_RETRY = { initial_interval: '5ms', max_interval: '20ms' };

function exporter(endpoint: string, extra: Record<string, unknown> = {}) {
  const settings = exporterSettings('otlphttp/test');
  const config = parseOrThrow(factory.schema, { endpoint, retry_on_failure: FAST_RETRY, ...extra });
  return { exp: factory.create(settings, config), settings };
}

describe('otlphttp exporter', () => {
  let server: OtlpHttpTestServer;
  before(async () => {
    server = await OtlpHttpTestServer.start();
  });
  after(() => server.close());

  it('POSTs the batch bytes unchanged to /v1/traces as protobuf, with headers', async () => {
    server.requests.length = 0;
    const { exp, settings } = exporter(server.url, { compression: 'none', headers: { 'X-Tenant': 'acme' } });
    await exp.start(host);
    const bytes = syntheticRequest(20, 4);
    await exp.consume(new TraceBatch(bytes), ctx);
    await exp.shutdown(Date.now() + 2000);
    const got = server.requests[0]!;
    assert.equal(got.method, 'POST');
    assert.equal(got.path, '/v1/traces');
    assert.equal(got.headers['content-type'], 'application/x-protobuf');
    assert.equal(got.headers['content-encoding'], undefined);
    assert.equal(got.headers['x-tenant'], 'acme');
    assert.ok(got.raw.equals(Buffer.from(bytes)), 'bytes are identical');
    assert.equal(decodeSpans(got.bytes)[5]!.attributes['attr.0'], 'value-5-0');
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 20);
  });

  it('gzips by default, and traces_endpoint overrides the path', async () => {
    server.requests.length = 0;
    const { exp } = exporter(server.url, { traces_endpoint: `${server.url}/custom/traces` });
    await exp.start(host);
    const bytes = syntheticRequest(40, 8);
    await exp.consume(new TraceBatch(bytes), ctx);
    await exp.shutdown(Date.now() + 2000);
    const got = server.requests[0]!;
    assert.equal(got.path, '/custom/traces');
    assert.equal(got.headers['content-encoding'], 'gzip');
    assert.ok(got.raw.length < bytes.length);
    assert.ok(gunzipSync(got.raw).equals(Buffer.from(bytes)));
  });

  it('retries 503 and 429 and then delivers, losing nothing', async () => {
    server.requests.length = 0;
    server.replyWith({ status: 503 }, { status: 429 }, { status: 502 });
    const { exp, settings } = exporter(server.url);
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(6, 1)), ctx);
    await server.waitForRequests(4);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(server.requests.length, 4);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 6);
    assert.equal(await settings.metric('otelcol_exporter_send_failed_spans_total'), 0);
  });

  it('honours Retry-After', async () => {
    server.requests.length = 0;
    // Retry-After has one-second resolution: the smallest honest delay is 1 s.
    server.replyWith({ status: 503, retryAfter: '1' });
    const { exp, settings } = exporter(server.url, { retry_on_failure: { initial_interval: '1ms' } });
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
    await server.waitForRequests(2);
    const gap = server.requests[1]!.at - server.requests[0]!.at;
    assert.ok(gap >= 1000, `retried after ${gap} ms; Retry-After asked for 1 s`);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 2);
  });

  it('counts a 400 as a permanent failure without retrying, logging the peer message', async () => {
    server.requests.length = 0;
    server.replyWith({ status: 400, body: encodeRpcStatus(3, 'bad trace id') });
    const { exp, settings } = exporter(server.url);
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(4, 1)), ctx);
    await server.waitForRequests(1);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(server.requests.length, 1);
    assert.equal(await settings.metric('otelcol_exporter_send_failed_spans_total'), 4);
    assert.equal(await settings.dropped('permanent'), 4);
    assert.match(settings.sink.text, /HTTP 400: bad trace id/);
  });

  it('counts the rejected spans of a partial success', async () => {
    server.requests.length = 0;
    server.replyWith({ status: 200, body: encodePartialSuccess(4, 'too many attributes') });
    const { exp, settings } = exporter(server.url);
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(10, 1)), ctx);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 6);
    assert.equal(await settings.metric('otelcol_exporter_send_failed_spans_total'), 4);
    assert.equal(await settings.dropped('partial_success'), 4);
  });

  it('refuses with QUEUE_FULL when the peer stalls (the batch being sent counts), then drains on shutdown', async () => {
    server.requests.length = 0;
    server.hold();
    const { exp, settings } = exporter(server.url, { sending_queue: { num_consumers: 1, queue_size: 2 } });
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(1, 1)), ctx);
    await server.waitForRequests(1);
    await exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
    await assert.rejects(exp.consume(new TraceBatch(syntheticRequest(4, 1)), ctx), (e: unknown) => e instanceof PipelineError && e.code === 'QUEUE_FULL');
    assert.equal(await settings.metric('otelcol_exporter_enqueue_failed_spans_total'), 4);
    const done = exp.shutdown(Date.now() + 5000);
    server.release();
    await done;
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 3);
    assert.equal(await settings.dropped('shutdown'), 0);
  });

  it('counts what is still held at the shutdown deadline as dropped', async () => {
    server.requests.length = 0;
    server.hold();
    const { exp, settings } = exporter(server.url, { sending_queue: { num_consumers: 1 } });
    await exp.start(host);
    for (let i = 0; i < 3; i++) await exp.consume(new TraceBatch(syntheticRequest(4, 1)), ctx);
    await server.waitForRequests(1);
    await exp.shutdown(Date.now() + 150);
    server.release();
    assert.equal(await settings.dropped('shutdown'), 12);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 0);
  });

  it('speaks HTTPS with a configured CA', async () => {
    const tlsServer = await OtlpHttpTestServer.start({ tls: true });
    const dir = await mkdtemp(join(tmpdir(), 'tw-otlphttp-tls-'));
    try {
      const caFile = join(dir, 'ca.pem');
      await writeFile(caFile, TEST_CA_PEM);
      const { exp, settings } = exporter(`https://localhost:${tlsServer.port}`, { tls: { ca_file: caFile } });
      await exp.start(host);
      await exp.consume(new TraceBatch(syntheticRequest(3, 1)), ctx);
      await exp.shutdown(Date.now() + 3000);
      assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 3);
      assert.equal(tlsServer.requests.length, 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await tlsServer.close();
    }
  });
});

describe('otlphttp config and answers', () => {
  it("has the Collector's defaults and builds the traces URL", () => {
    const c = parseOrThrow(factory.schema, { endpoint: 'https://otlp.example.com:4318' });
    assert.equal(c.timeout, 30_000);
    assert.equal(c.compression, 'gzip');
    assert.equal(c.encoding, 'proto');
    assert.equal(tracesUrl(c).href, 'https://otlp.example.com:4318/v1/traces');
    assert.equal(tracesUrl(parseOrThrow(factory.schema, { endpoint: 'http://x:4318/base/' })).href, 'http://x:4318/base/v1/traces');
    assert.throws(() => parseOrThrow(factory.schema, {}), /set endpoint \(base URL\) or traces_endpoint/);
    assert.throws(() => parseOrThrow(factory.schema, { endpoint: 'otlp.example.com:4318' }), /endpoint: expected an http:\/\/ or https:\/\/ URL/);
    assert.equal(parseOrThrow(factory.schema, { endpoint: 'http://x', encoding: 'json' }).encoding, 'json');
    assert.throws(() => parseOrThrow(factory.schema, { endpoint: 'http://x', encoding: 'xml' }), /encoding: expected one of proto, json/);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('3', now), 3000);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now), 10_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), 0);
    assert.equal(parseRetryAfter(undefined, now), 0);
  });
});
