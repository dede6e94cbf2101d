/**
 * The otlphttp exporter's `compression` (every confighttp type but lz4) and `encoding: json`. A real HTTP
 * server records each body as it arrived; bodies are decompressed by implementations other than the
 * exporter's (fzstd, snappyjs, the snappy package's framed Decompressor, node:zlib) and OTLP/JSON is read
 * with protobufjs's JSON support and with the receiver's converter. The same requests also reach
 * tracewarden's own receiver.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, inflateSync } from 'node:zlib';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import { otlpJsonToProtobuf } from '../../pipeline/batch/otlp-json.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { OtlpHttpTestServer } from '../../test/helpers/exporter-http-server.js';
import { exporterSettings, exporterTestHost as host } from '../../test/helpers/exporter-settings.js';
import { syntheticRequest } from '../../test/helpers/otlp.js';
import { startReceiver } from '../../test/helpers/receiver-harness.js';
import { codecLevel } from './config.js';
import { factory } from './index.js';

const require = createRequire(import.meta.url);
const fzstd = require('fzstd') as { decompress(b: Uint8Array): Uint8Array };
const snappyjs = require('snappyjs') as { uncompress(b: Uint8Array): Uint8Array };
const snappy = require('snappy') as typeof import('snappy');

const ctx: RequestContext = { receiver: 'r', transport: 'http', peer: '', auth: null };
const T = otlpType('ExportTraceServiceRequest');

function exporter(endpoint: string, extra: Record<string, unknown> = {}) {
  const settings = exporterSettings('otlphttp/enc');
  const config = parseOrThrow(factory.schema, { endpoint, retry_on_failure: { initial_interval: '5ms', max_interval: '20ms' }, ...extra });
  return { exp: factory.create(settings, config), settings };
}

async function unframe(data: Buffer): Promise<Buffer> {
  const d = new snappy.Decompressor();
  const first = d.update(data);
  return Buffer.concat([first, await d.finish()]);
}

/** protobufjs's reading of a message, defaults filled in (absent and default read alike in proto3). */
function decoded(bytes: Uint8Array): unknown {
  return T.toObject(T.decode(bytes), { longs: String, enums: Number, bytes: String, defaults: true, arrays: true });
}

describe('otlphttp exporter: compression and OTLP/JSON', () => {
  let server: OtlpHttpTestServer;
  before(async () => {
    server = await OtlpHttpTestServer.start();
  });
  after(() => server.close());

  it('compresses with each Collector type, named in Content-Encoding, read back by an independent decoder', async () => {
    const bytes = Buffer.from(syntheticRequest(300, 8));
    const decoders: Record<string, (raw: Buffer) => Promise<Buffer> | Buffer> = {
      zstd: (raw) => Buffer.from(fzstd.decompress(raw)),
      snappy: (raw) => Buffer.from(snappyjs.uncompress(raw)),
      'x-snappy-framed': unframe,
      zlib: (raw) => inflateSync(raw),
      deflate: (raw) => inflateSync(raw),
      gzip: (raw) => gunzipSync(raw),
    };
    for (const [compression, decode] of Object.entries(decoders)) {
      server.requests.length = 0;
      const { exp, settings } = exporter(server.url, { compression });
      await exp.start(host);
      await exp.consume(new TraceBatch(bytes), ctx);
      await exp.shutdown(Date.now() + 2000);
      const got = server.requests[0]!;
      assert.equal(got.headers['content-encoding'], compression);
      assert.equal(got.headers['content-type'], 'application/x-protobuf');
      assert.ok(got.raw.length < bytes.length / 2, `${compression} compresses`);
      assert.ok((await decode(got.raw)).equals(bytes), `${compression}: the exact batch bytes`);
      assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 300);
    }
    // The snappy block is not framed (the framing format is x-snappy-framed), as in the Collector since 0.126.
    assert.notEqual(server.requests[0]!.raw.subarray(0, 10).toString('latin1'), '\xff\x06\x00\x00sNaPpY');
  });

  it('compression_params.level is applied and validated as configcompression does', async () => {
    const bytes = Buffer.from(syntheticRequest(400, 10));
    for (const level of [1, 10]) {
      server.requests.length = 0;
      const { exp } = exporter(server.url, { compression: 'zstd', compression_params: { level } });
      await exp.start(host);
      await exp.consume(new TraceBatch(bytes), ctx);
      await exp.shutdown(Date.now() + 2000);
      assert.ok(Buffer.from(fzstd.decompress(server.requests[0]!.raw)).equals(bytes), `level ${level}`);
    }
    // klauspost's four speeds, as libzstd levels; unset is the fastest. zlib levels pass through, 0 is -1.
    assert.deepEqual([0, 1, 2, 3, 5, 6, 9, 10, 22, -5].map((l) => codecLevel('zstd', l)), [1, 1, 1, 3, 3, 7, 7, 11, 11, 1]);
    assert.deepEqual([0, -2, -1, 1, 9].map((l) => codecLevel('gzip', l)), [-1, -2, -1, 1, 9]);
    const ok = (c: Record<string, unknown>): unknown => parseOrThrow(factory.schema, { endpoint: 'http://x', ...c });
    ok({ compression: 'zstd', compression_params: { level: 22 } });
    ok({ compression: 'gzip', compression_params: { level: -2 } });
    ok({ compression: 'none', compression_params: { level: 4 } });
    assert.throws(() => ok({ compression: 'gzip', compression_params: { level: 10 } }), /compression_params: unsupported level 10 for compression "gzip"/);
    assert.throws(() => ok({ compression: 'snappy', compression_params: { level: 1 } }), /unsupported level 1 for compression "snappy"/);
    assert.throws(() => ok({ compression: 'lz4' }), /compression: expected one of gzip, zstd, snappy, x-snappy-framed, zlib, deflate, none/);
  });

  it('encoding: json sends OTLP/JSON that protobufjs and the receiver converter read as the batch', async () => {
    server.requests.length = 0;
    const { exp, settings } = exporter(server.url, { encoding: 'json', compression: 'none' });
    await exp.start(host);
    const bytes = syntheticRequest(25, 6);
    const batch = new TraceBatch(bytes);
    batch.setSpanString(3, new TextEncoder().encode('enduser.id'), 'alice');
    const sent = batch.encode();
    await exp.consume(batch, ctx);
    await exp.shutdown(Date.now() + 2000);
    const got = server.requests[0]!;
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers['content-encoding'], undefined);
    const doc = JSON.parse(got.raw.toString('utf8')) as { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
    const span = doc.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    assert.match(String(span['traceId']), /^[0-9a-f]{32}$/);
    assert.match(String(span['spanId']), /^[0-9a-f]{16}$/);
    assert.equal(typeof span['startTimeUnixNano'], 'string');
    assert.equal(span['kind'], 2);
    // protobufjs reads proto3 JSON itself (base64 ids aside): the same message as the batch.
    const viaProtobufjs = T.fromObject(
      JSON.parse(got.raw.toString('utf8'), (key, value: unknown) =>
        (key === 'traceId' || key === 'spanId' || key === 'parentSpanId') && typeof value === 'string' ? Buffer.from(value, 'hex').toString('base64') : value,
      ) as Record<string, unknown>,
    );
    assert.deepEqual(decoded(T.encode(viaProtobufjs).finish()), decoded(sent));
    assert.deepEqual(decoded(otlpJsonToProtobuf(got.raw)), decoded(sent));
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 25);
  });

  it('json with zstd, and JSON answers: partial success counted, error messages read', async () => {
    server.requests.length = 0;
    server.replyWith(
      { status: 400, contentType: 'application/json', body: JSON.stringify({ code: 3, message: 'span name too long' }) },
      { status: 200, contentType: 'application/json', body: JSON.stringify({ partialSuccess: { rejectedSpans: '2', errorMessage: 'too old' } }) },
    );
    const { exp, settings } = exporter(server.url, { encoding: 'json', compression: 'zstd' });
    await exp.start(host);
    const second = syntheticRequest(5, 1);
    await exp.consume(new TraceBatch(syntheticRequest(3, 1)), ctx);
    await exp.consume(new TraceBatch(second), ctx);
    await server.waitForRequests(2);
    await exp.shutdown(Date.now() + 2000);
    const got = server.requests[1]!;
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers['content-encoding'], 'zstd');
    const json = Buffer.from(fzstd.decompress(got.raw)).toString('utf8');
    assert.deepEqual(decoded(otlpJsonToProtobuf(json)), decoded(second));
    assert.match(settings.sink.text, /HTTP 400: span name too long/);
    assert.equal(await settings.dropped('permanent'), 3);
    assert.equal(await settings.dropped('partial_success'), 2);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 3);
  });

  it("reaches tracewarden's own receiver in every combination", async () => {
    const r = await startReceiver({ http: {} });
    try {
      for (const encoding of ['proto', 'json']) {
        for (const compression of ['zstd', 'snappy', 'x-snappy-framed', 'zlib', 'gzip', 'none']) {
          const { exp, settings } = exporter(`http://127.0.0.1:${r.httpPort}`, { encoding, compression });
          await exp.start(host);
          const bytes = syntheticRequest(30, 5);
          await exp.consume(new TraceBatch(bytes), ctx);
          await exp.shutdown(Date.now() + 3000);
          const label = `${encoding}+${compression}`;
          assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 30, label);
          const received = r.consumer.batches.at(-1)!.bytes;
          if (encoding === 'proto') assert.ok(Buffer.from(received).equals(Buffer.from(bytes)), label);
          else assert.deepEqual(decoded(received), decoded(bytes), label);
        }
      }
    } finally {
      await r.stop();
    }
  });
});
