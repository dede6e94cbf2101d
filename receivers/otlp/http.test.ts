import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { deflateSync, gzipSync } from 'node:zlib';
import { OTLPTraceExporter as HttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as HttpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { PipelineError } from '../../pipeline/service/errors.js';
import { decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import { MapHost, httpRequest, startReceiver, type RunningReceiver } from '../../test/helpers/receiver-harness.js';
import type { TracesConsumer } from '../../pipeline/service/component.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { Telemetry } from '../../pipeline/telemetry/telemetry.js';
import { factory } from './index.js';
import type { OtlpReceiver } from './receiver.js';
import { decodeRpcStatus, exportOnce, sdkSpans } from '../../test/helpers/receiver-sdk.js';

const PROTO = { 'content-type': 'application/x-protobuf' };
const JSON_CT = { 'content-type': 'application/json' };
const LIMIT = 64 * 1024;

function jsonRequest(traceId = '5b8efff798038103d269b633813fc60c'): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'cart' } }] },
          scopeSpans: [
            {
              scope: { name: 'manual' },
              spans: [
                {
                  traceId,
                  spanId: 'eee19b7ec3c1b174',
                  name: 'add-item',
                  kind: 2,
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000100000000',
                  attributes: [{ key: 'cart.items', value: { intValue: '3' } }],
                },
              ],
            },
          ],
        },
      ],
    }),
  );
}

describe('otlp receiver over HTTP', () => {
  let r: RunningReceiver;
  before(async () => {
    r = await startReceiver({ http: { max_request_body_size: LIMIT } });
  });
  after(async () => {
    await r.stop();
  });

  async function assertStillServing(): Promise<void> {
    const count = r.consumer.batches.length;
    const res = await httpRequest(r.httpPort, { headers: PROTO, body: syntheticRequest(2) });
    assert.equal(res.status, 200);
    assert.equal(r.consumer.batches.length, count + 1);
  }

  test('the official proto and JSON exporters deliver spans with their ids, names and attributes', async () => {
    const url = `http://127.0.0.1:${r.httpPort}/v1/traces`;
    let expected = 0;
    for (const Exporter of [HttpProtoExporter, HttpJsonExporter]) {
      for (const compression of ['none', 'gzip']) {
        const spans = await sdkSpans(4);
        const exporter = new Exporter({ url, compression: compression as CompressionAlgorithm });
        const count = r.consumer.batches.length;
        const result = await exportOnce(exporter, spans);
        await exporter.shutdown();
        assert.equal(result.code, 0, `${Exporter === HttpProtoExporter ? 'proto' : 'json'}/${compression}: ${String(result.error)}`);
        assert.equal(r.consumer.batches.length, count + 1);
        const got = decodeSpans(r.consumer.batches.at(-1)!.bytes);
        assert.equal(got.length, 4);
        for (let i = 0; i < 4; i++) {
          assert.equal(got[i]!.traceId, spans[i]!.spanContext().traceId);
          assert.equal(got[i]!.spanId, spans[i]!.spanContext().spanId);
          assert.equal(got[i]!.name, `op-${i}`);
          assert.equal(got[i]!.attributes['i'], i);
          assert.equal(got[i]!.attributes['checkout.step'], `step-${i}`);
          assert.equal(got[i]!.resource['service.name'], 'checkout');
        }
        assert.equal(r.consumer.contexts.at(-1)!.transport, 'http');
        expected += 4;
      }
    }
    assert.equal(await r.telemetry.value('otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'http' }), expected);
  });

  test('a raw protobuf body arrives byte-identical; the answer is an empty protobuf response', async () => {
    const body = syntheticRequest(25);
    const res = await httpRequest(r.httpPort, { headers: PROTO, body });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/x-protobuf');
    assert.equal(res.body.length, 0);
    const batch = r.consumer.batches.at(-1)!;
    assert.deepEqual(Buffer.from(batch.bytes), Buffer.from(body));
    assert.equal(batch.spanCount, 25);
  });

  test('gzip and deflate bodies are inflated to the very bytes that were compressed', async () => {
    for (const [name, fn] of [['gzip', gzipSync], ['deflate', deflateSync]] as const) {
      const body = syntheticRequest(15);
      const res = await httpRequest(r.httpPort, { headers: { ...PROTO, 'content-encoding': name }, body: fn(body) });
      assert.equal(res.status, 200, name);
      assert.deepEqual(Buffer.from(r.consumer.batches.at(-1)!.bytes), Buffer.from(body));
    }
  });

  test('OTLP/JSON with hex ids and string int64s is converted once; the answer is {}', async () => {
    const res = await httpRequest(r.httpPort, { headers: { 'content-type': 'application/json; charset=utf-8' }, body: jsonRequest() });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.body.toString(), '{}');
    const [span] = decodeSpans(r.consumer.batches.at(-1)!.bytes);
    assert.equal(span!.traceId, '5b8efff798038103d269b633813fc60c');
    assert.equal(span!.spanId, 'eee19b7ec3c1b174');
    assert.equal(span!.name, 'add-item');
    assert.equal(span!.attributes['cart.items'], 3);
    assert.equal(span!.resource['service.name'], 'cart');
  });

  test('retryable refusals answer 429 or 503 with Retry-After; permanent ones 400', async () => {
    const cases: [PipelineError, number, string][] = [
      [new PipelineError('MEMORY_LIMIT', 'memory limit reached', 2000), 429, '2'],
      [new PipelineError('QUEUE_FULL', 'queue is full', 1500), 429, '2'],
      [new PipelineError('UNAVAILABLE', 'exporter unavailable'), 503, '1'],
      [new PipelineError('SHUTTING_DOWN', 'shutting down', 200), 503, '1'],
    ];
    const refusedBefore = await r.telemetry.value('otelcol_receiver_refused_spans_total', { transport: 'http' });
    try {
      for (const [err, status, retryAfter] of cases) {
        r.consumer.refuseWith = err;
        const proto = await httpRequest(r.httpPort, { headers: PROTO, body: syntheticRequest(3) });
        assert.equal(proto.status, status, err.code);
        assert.equal(proto.headers['retry-after'], retryAfter, err.code);
        const st = decodeRpcStatus(proto.body);
        assert.equal(st.code, 14);
        assert.equal(st.message, err.message);
        const json = await httpRequest(r.httpPort, { headers: JSON_CT, body: jsonRequest() });
        assert.equal(json.status, status);
        assert.deepEqual(JSON.parse(json.body.toString()), { code: 14, message: err.message });
      }
      r.consumer.refuseWith = new PipelineError('INVALID_ARGUMENT', 'rejected by a processor');
      const bad = await httpRequest(r.httpPort, { headers: PROTO, body: syntheticRequest(1) });
      assert.equal(bad.status, 400);
      assert.equal(bad.headers['retry-after'], undefined);
    } finally {
      r.consumer.refuseWith = null;
    }
    assert.equal(await r.telemetry.value('otelcol_receiver_refused_spans_total', { transport: 'http' }), refusedBefore + 4 * 3 + 4 * 1 + 1);
  });

  test('bad input gets its exact status and the next valid request still succeeds', async () => {
    const valid = syntheticRequest(10);
    const big = Buffer.alloc(LIMIT * 3, 1);
    const cases: { name: string; status: number; body?: Uint8Array; headers?: Record<string, string>; method?: string; path?: string; code?: number; message?: RegExp }[] = [
      { name: 'garbage bytes', status: 400, body: Buffer.from('\xff\xff\xff\xff\x0f not protobuf'), headers: PROTO, code: 3 },
      { name: 'truncated protobuf', status: 400, body: valid.subarray(0, valid.length - 5), headers: PROTO, code: 3 },
      { name: 'bad JSON', status: 400, body: Buffer.from('{"resourceSpans": [ secret-looking-token'), headers: JSON_CT, code: 3, message: /^request body is not valid JSON$/ },
      { name: 'JSON with a bad trace id', status: 400, body: jsonRequest('not-hex'), headers: JSON_CT, code: 3, message: /traceId/ },
      { name: 'wrong content type', status: 415, body: valid, headers: { 'content-type': 'text/plain' } },
      { name: 'no content type', status: 415, body: valid },
      { name: 'oversized body with a length', status: 413, body: big, headers: PROTO, code: 8 },
      { name: 'oversized chunked body', status: 413, body: big, headers: { ...PROTO, 'transfer-encoding': 'chunked' }, code: 8 },
      { name: 'gzip bomb', status: 413, body: gzipSync(Buffer.alloc(50 * 1024 * 1024)), headers: { ...PROTO, 'content-encoding': 'gzip' }, code: 8 },
      { name: 'corrupt gzip', status: 400, body: Buffer.from('not gzip'), headers: { ...PROTO, 'content-encoding': 'gzip' }, code: 3 },
      { name: 'unknown encoding', status: 400, body: valid, headers: { ...PROTO, 'content-encoding': 'br' }, code: 3 },
      { name: 'wrong path', status: 404, body: valid, headers: PROTO, path: '/v1/metrics' },
      { name: 'wrong method', status: 405, headers: PROTO, method: 'GET' },
    ];
    r.consumer.batches.length = 0;
    for (const c of cases) {
      const res = await httpRequest(r.httpPort, { body: c.body, headers: c.headers, method: c.method, path: c.path });
      assert.equal(res.status, c.status, c.name);
      if (c.code !== undefined) {
        const st = res.headers['content-type'] === 'application/json' ? JSON.parse(res.body.toString()) : decodeRpcStatus(res.body);
        assert.equal(st.code, c.code, c.name);
        if (c.message) assert.match(st.message, c.message, c.name);
      }
      assert.equal(r.consumer.batches.length, 0, `${c.name}: nothing consumed`);
      await assertStillServing();
      r.consumer.batches.length = 0;
      r.consumer.contexts.length = 0;
    }
    assert.ok(!r.logs.text.includes('secret-looking-token'));
  });

  test('several requests on one keep-alive connection, one of them bad', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const send = (body: Uint8Array): Promise<number> =>
      new Promise((resolve, reject) => {
        const q = http.request({ host: '127.0.0.1', port: r.httpPort, method: 'POST', path: '/v1/traces', headers: PROTO, agent }, (res) => {
          sockets.add(res.socket);
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        q.on('error', reject);
        q.end(Buffer.from(body));
      });
    try {
      assert.equal(await send(syntheticRequest(1)), 200);
      assert.equal(await send(Buffer.from('garbage')), 400);
      assert.equal(await send(syntheticRequest(1)), 200);
      assert.equal(sockets.size, 1);
    } finally {
      agent.destroy();
    }
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

describe('otlp receiver over HTTP, with a pipeline that fails unexpectedly', () => {
  test("answers 503 'internal error', never the foreign message, and logs only the error's name", async () => {
    const { receiver, consumer, logs } = await startBuggy('http');
    try {
      const port = receiver.httpAddress!.port;
      const proto = await httpRequest(port, { headers: PROTO, body: syntheticRequest(2) });
      assert.equal(proto.status, 503);
      assert.equal(proto.headers['retry-after'], '1');
      const st = decodeRpcStatus(proto.body);
      assert.equal(st.code, 14);
      assert.equal(st.message, 'internal error');
      const json = await httpRequest(port, { headers: JSON_CT, body: jsonRequest() });
      assert.equal(json.status, 503);
      assert.deepEqual(JSON.parse(json.body.toString()), { code: 14, message: 'internal error' });
      assert.equal(consumer.calls, 2);
      assertLoggedByNameOnly(logs, ['TypeError', 'Error']);
    } finally {
      await receiver.shutdown(Date.now() + 2000);
    }
  });
});
