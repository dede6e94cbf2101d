import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gzipSync, deflateSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import type { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { PipelineError } from '../../pipeline/service/errors.js';
import { decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import { MapHost, grpcFrame, grpcRaw, startReceiver, type RunningReceiver } from '../../test/helpers/receiver-harness.js';
import type { TracesConsumer } from '../../pipeline/service/component.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { Telemetry } from '../../pipeline/telemetry/telemetry.js';
import { factory } from './index.js';
import type { OtlpReceiver } from './receiver.js';
import { decodeRetryDelayMs, decodeRpcStatus, exportOnce, sdkSpans } from '../../test/helpers/receiver-sdk.js';

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

function unary(client: grpc.Client, body: Uint8Array, metadata = new grpc.Metadata()): Promise<{ err: grpc.ServiceError | null; resp?: Buffer }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      EXPORT,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(body),
      metadata,
      {},
      (err, resp) => resolve({ err: err ?? null, resp }),
    );
  });
}

describe('otlp receiver over gRPC', () => {
  let r: RunningReceiver;
  before(async () => {
    r = await startReceiver({ grpc: { max_recv_msg_size_mib: 1 } });
  });
  after(async () => {
    await r.stop();
  });

  /** A fresh valid request must still be accepted: bad input costs only itself. */
  async function assertStillServing(): Promise<void> {
    const before = r.consumer.batches.length;
    const res = await grpcRaw(r.grpcPort, grpcFrame(syntheticRequest(2)));
    assert.equal(res.grpcStatus, 0);
    assert.equal(r.consumer.batches.length, before + 1);
  }

  test('the official gRPC exporter delivers spans with their ids, names and attributes', async () => {
    for (const compression of ['none', 'gzip']) {
      const spans = await sdkSpans(5);
      const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${r.grpcPort}`, compression: compression as CompressionAlgorithm });
      const before = r.consumer.batches.length;
      const result = await exportOnce(exporter, spans);
      await exporter.shutdown();
      assert.equal(result.code, 0, String(result.error));
      assert.equal(r.consumer.batches.length, before + 1);
      const batch = r.consumer.batches.at(-1)!;
      assert.equal(batch.spanCount, 5);
      const got = decodeSpans(batch.bytes);
      for (let i = 0; i < 5; i++) {
        assert.equal(got[i]!.traceId, spans[i]!.spanContext().traceId);
        assert.equal(got[i]!.spanId, spans[i]!.spanContext().spanId);
        assert.equal(got[i]!.name, `op-${i}`);
        assert.equal(got[i]!.attributes['i'], i);
        assert.equal(got[i]!.attributes['checkout.step'], `step-${i}`);
        assert.equal(got[i]!.resource['service.name'], 'checkout');
      }
      const ctx = r.consumer.contexts.at(-1)!;
      assert.equal(ctx.transport, 'grpc');
      assert.equal(ctx.receiver, 'otlp');
      assert.equal(ctx.auth, null);
      assert.match(ctx.peer, /^127\.0\.0\.1:\d+$/);
    }
    assert.equal(await r.telemetry.value('otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'grpc' }), 10);
  });

  test('a raw request arrives byte-identical and gets an empty framed response with grpc-status 0', async () => {
    const body = syntheticRequest(20);
    const res = await grpcRaw(r.grpcPort, grpcFrame(body));
    assert.equal(res.httpStatus, 200);
    assert.equal(res.headers['content-type'], 'application/grpc');
    assert.equal(res.grpcStatus, 0);
    assert.deepEqual(res.data, Buffer.alloc(5));
    const batch = r.consumer.batches.at(-1)!;
    assert.deepEqual(Buffer.from(batch.bytes), Buffer.from(body));
    assert.equal(batch.spanCount, 20);
  });

  test('gzip and deflate messages are inflated to the very bytes that were compressed', async () => {
    for (const [name, fn] of [['gzip', gzipSync], ['deflate', deflateSync]] as const) {
      const body = syntheticRequest(30);
      const res = await grpcRaw(r.grpcPort, grpcFrame(fn(body), true), { headers: { 'grpc-encoding': name } });
      assert.equal(res.grpcStatus, 0, name);
      assert.deepEqual(Buffer.from(r.consumer.batches.at(-1)!.bytes), Buffer.from(body));
    }
  });

  test('grpc-js: success, then UNAVAILABLE with a parseable RetryInfo when the pipeline refuses', async () => {
    const client = new grpc.Client(`127.0.0.1:${r.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const ok = await unary(client, syntheticRequest(3));
      assert.equal(ok.err, null);
      assert.equal(ok.resp!.length, 0);

      const refusedBefore = await r.telemetry.value('otelcol_receiver_refused_spans_total', { transport: 'grpc' });
      r.consumer.refuseWith = new PipelineError('MEMORY_LIMIT', 'memory limit reached', 2000);
      const refused = await unary(client, syntheticRequest(4));
      assert.equal(refused.err?.code, grpc.status.UNAVAILABLE);
      assert.equal(refused.err?.details, 'memory limit reached');
      const details = refused.err!.metadata.get('grpc-status-details-bin');
      assert.equal(details.length, 1);
      const st = decodeRpcStatus(details[0] as Buffer);
      assert.equal(st.code, grpc.status.UNAVAILABLE);
      assert.equal(st.message, 'memory limit reached');
      assert.equal(st.details[0]!.typeUrl, 'type.googleapis.com/google.rpc.RetryInfo');
      assert.equal(decodeRetryDelayMs(st.details[0]!.value), 2000);
      assert.equal(await r.telemetry.value('otelcol_receiver_refused_spans_total', { transport: 'grpc' }), refusedBefore + 4);

      // No delay from the refusing stage: the sender is told to wait one second.
      r.consumer.refuseWith = new PipelineError('QUEUE_FULL', 'queue is full');
      const full = await unary(client, syntheticRequest(1));
      assert.equal(full.err?.code, grpc.status.UNAVAILABLE);
      const st2 = decodeRpcStatus(full.err!.metadata.get('grpc-status-details-bin')[0] as Buffer);
      assert.equal(decodeRetryDelayMs(st2.details[0]!.value), 1000);

      // A permanent refusal is not retryable and carries no RetryInfo.
      r.consumer.refuseWith = new PipelineError('INVALID_ARGUMENT', 'span has no trace id');
      const bad = await unary(client, syntheticRequest(1));
      assert.equal(bad.err?.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(bad.err!.metadata.get('grpc-status-details-bin').length, 0);
      r.consumer.refuseWith = null;

      const garbage = await unary(client, Buffer.from('definitely not protobuf \xff\xff\xff'));
      assert.equal(garbage.err?.code, grpc.status.INVALID_ARGUMENT);

      const unknown = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.makeUnaryRequest('/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (err) => resolve(err ?? null)),
      );
      assert.equal(unknown?.code, grpc.status.UNIMPLEMENTED);

      const ok2 = await unary(client, syntheticRequest(3));
      assert.equal(ok2.err, null);
    } finally {
      client.close();
    }
  });

  test('bad input gets its exact status and the next valid request still succeeds', async () => {
    const valid = syntheticRequest(10);
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    const cases: { name: string; body: Uint8Array; headers?: Record<string, string>; path?: string; grpc?: number; http?: number }[] = [
      { name: 'garbage message', body: grpcFrame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02])), grpc: 3 },
      { name: 'truncated protobuf', body: grpcFrame(valid.subarray(0, valid.length - 7)), grpc: 3 },
      { name: 'truncated frame', body: grpcFrame(valid).subarray(0, 100), grpc: 3 },
      { name: 'two messages', body: Buffer.concat([grpcFrame(valid), grpcFrame(valid)]), grpc: 3 },
      { name: 'bad prefix flag', body: Buffer.from([7, 0, 0, 0, 0]), grpc: 3 },
      { name: 'empty body', body: Buffer.alloc(0), grpc: 3 },
      { name: 'over the size limit', body: grpcFrame(Buffer.alloc(1024 * 1024 + 1)), grpc: 8 },
      { name: 'gzip bomb', body: grpcFrame(bomb, true), headers: { 'grpc-encoding': 'gzip' }, grpc: 8 },
      { name: 'corrupt gzip', body: grpcFrame(Buffer.from('not gzip at all'), true), headers: { 'grpc-encoding': 'gzip' }, grpc: 3 },
      { name: 'compressed without encoding', body: grpcFrame(gzipSync(valid), true), grpc: 3 },
      { name: 'unknown encoding', body: grpcFrame(valid), headers: { 'grpc-encoding': 'br' }, grpc: 12 },
      { name: 'unknown method', body: grpcFrame(valid), path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export', grpc: 12 },
      { name: 'wrong content type', body: grpcFrame(valid), headers: { 'content-type': 'application/json' }, http: 415 },
    ];
    const outcome = (o: string): Promise<number> => r.telemetry.value('tracewarden_receiver_requests_total', { transport: 'grpc', outcome: o });
    const before = { tooLarge: await outcome('too_large'), media: await outcome('unsupported_media_type'), notFound: await outcome('not_found') };
    r.consumer.batches.length = 0;
    r.consumer.contexts.length = 0;
    for (const c of cases) {
      const res = await grpcRaw(r.grpcPort, c.body, { headers: c.headers, path: c.path });
      if (c.http !== undefined) {
        assert.equal(res.httpStatus, c.http, c.name);
      } else {
        assert.equal(res.httpStatus, 200, c.name);
        assert.equal(res.grpcStatus, c.grpc, `${c.name}: ${res.grpcMessage}`);
        assert.ok(res.grpcMessage.length > 0, c.name);
      }
      assert.equal(r.consumer.batches.length, 0, `${c.name}: nothing consumed`);
      await assertStillServing();
      r.consumer.batches.length = 0;
      r.consumer.contexts.length = 0;
    }
    assert.equal(await outcome('too_large'), before.tooLarge + 2);
    assert.equal(await outcome('unsupported_media_type'), before.media + 1);
    assert.equal(await outcome('not_found'), before.notFound + 1);
    assert.ok(!r.logs.text.includes('definitely not protobuf'));
  });
});

/** A next stage with a bug: it throws (synchronously or not) something that is not a PipelineError. */
class BuggyConsumer implements TracesConsumer {
  calls = 0;
  consume(): Promise<void> {
    this.calls++;
    // A foreign error's message may quote the data: here it carries a token that must go nowhere.
    if (this.calls % 2 === 1) throw new TypeError('cannot read tok-SECRET-1 of undefined');
    return Promise.reject(new Error('upstream said tok-SECRET-2'));
  }
}

async function startBuggy(protocol: 'grpc' | 'http') {
  const logs = new MemorySink();
  const consumer = new BuggyConsumer();
  const config = parseOrThrow(factory.schema, { protocols: { [protocol]: { endpoint: '127.0.0.1:0' } } });
  const receiver = factory.create({ id: 'otlp', logger: new Logger(logs, 'debug'), telemetry: new Telemetry({ processMetrics: false }) }, config, consumer) as OtlpReceiver;
  await receiver.start(new MapHost());
  return { receiver, consumer, logs };
}

function assertLoggedByNameOnly(logs: MemorySink, names: string[]): void {
  assert.ok(!logs.text.includes('SECRET'), 'the foreign message is logged nowhere');
  const errors = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['level'] === 'error');
  assert.deepEqual(
    errors.map((l) => [l['msg'], l['error']]),
    names.map((n) => ['unexpected failure while handling a request', n]),
  );
}

describe('otlp receiver over gRPC, with a pipeline that fails unexpectedly', () => {
  test("answers UNAVAILABLE 'internal error', never the foreign message, and logs only the error's name", async () => {
    const { receiver, consumer, logs } = await startBuggy('grpc');
    const client = new grpc.Client(`127.0.0.1:${receiver.grpcAddress!.port}`, grpc.credentials.createInsecure());
    try {
      const raw = await grpcRaw(receiver.grpcAddress!.port, grpcFrame(syntheticRequest(2)));
      assert.equal(raw.grpcStatus, grpc.status.UNAVAILABLE);
      assert.equal(raw.grpcMessage, 'internal error');
      const viaGrpcJs = await unary(client, syntheticRequest(3));
      assert.equal(viaGrpcJs.err?.code, grpc.status.UNAVAILABLE);
      assert.equal(viaGrpcJs.err?.details, 'internal error');
      const st = decodeRpcStatus(viaGrpcJs.err!.metadata.get('grpc-status-details-bin')[0] as Buffer);
      assert.equal(st.message, 'internal error');
      assert.equal(consumer.calls, 2);
      assertLoggedByNameOnly(logs, ['TypeError', 'Error']);
    } finally {
      client.close();
      await receiver.shutdown(Date.now() + 2000);
    }
  });
});
