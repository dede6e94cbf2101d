import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { Telemetry } from '../../pipeline/telemetry/telemetry.js';
import { decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import {
  BearerAuthenticator,
  MapHost,
  RecordingConsumer,
  grpcFrame,
  grpcRaw,
  httpRequest,
  selfSignedCert,
  startReceiver,
  type SelfSignedCert,
} from '../../test/helpers/receiver-harness.js';
import { exportOnce, sdkSpans } from '../../test/helpers/receiver-sdk.js';
import { factory } from './index.js';

const PROTO = { 'content-type': 'application/x-protobuf' };

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('otlp receiver over TLS', () => {
  let cert: SelfSignedCert;
  before(() => {
    cert = selfSignedCert();
  });
  after(() => cert.remove());

  test('both transports serve TLS to clients that trust the certificate', async () => {
    const tls = { cert_file: cert.certFile, key_file: cert.keyFile };
    const r = await startReceiver({ grpc: { tls }, http: { tls } });
    try {
      const body = syntheticRequest(7);
      const g = await grpcRaw(r.grpcPort, grpcFrame(body), { ca: cert.cert });
      assert.equal(g.grpcStatus, 0);
      assert.deepEqual(Buffer.from(r.consumer.batches.at(-1)!.bytes), Buffer.from(body));

      const h = await httpRequest(r.httpPort, { headers: PROTO, body, ca: cert.cert });
      assert.equal(h.status, 200);
      assert.deepEqual(Buffer.from(r.consumer.batches.at(-1)!.bytes), Buffer.from(body));

      const spans = await sdkSpans(3);
      const ge = new GrpcExporter({ url: `https://localhost:${r.grpcPort}`, credentials: grpc.credentials.createSsl(cert.cert) });
      const gr = await exportOnce(ge, spans);
      await ge.shutdown();
      assert.equal(gr.code, 0, String(gr.error));
      assert.deepEqual(decodeSpans(r.consumer.batches.at(-1)!.bytes).map((s) => s.spanId), spans.map((s) => s.spanContext().spanId));

      const pe = new ProtoExporter({ url: `https://localhost:${r.httpPort}/v1/traces`, httpAgentOptions: { ca: cert.cert } });
      const pr = await exportOnce(pe, spans);
      await pe.shutdown();
      assert.equal(pr.code, 0, String(pr.error));
      assert.equal(r.consumer.batches.at(-1)!.spanCount, 3);

      // A plaintext client gets nowhere, and the server keeps serving TLS.
      await assert.rejects(httpRequest(r.httpPort, { headers: PROTO, body }));
      assert.equal((await httpRequest(r.httpPort, { headers: PROTO, body, ca: cert.cert })).status, 200);
    } finally {
      await r.stop();
    }
  });

  test('a missing certificate file fails start() naming the file', async () => {
    const config = parseOrThrow(factory.schema, { protocols: { http: { endpoint: '127.0.0.1:0', tls: { cert_file: '/nonexistent/cert.pem', key_file: cert.keyFile } } } });
    const receiver = factory.create({ id: 'otlp', logger: new Logger(new MemorySink()), telemetry: new Telemetry({ processMetrics: false }) }, config, new RecordingConsumer());
    await assert.rejects(receiver.start(new MapHost()), /cannot read tls cert_file \/nonexistent\/cert\.pem: ENOENT/);
  });
});

describe('otlp receiver authentication', () => {
  const auth = { authenticator: 'bearertokenauth' };
  const host = new MapHost({ bearertokenauth: new BearerAuthenticator(), health: { start: async () => {}, shutdown: async () => {} } });

  test('HTTP: 401 without a good bearer token, nothing consumed; the accepted request carries the sender', async () => {
    const r = await startReceiver({ http: { auth } }, host);
    try {
      for (const headers of [PROTO, { ...PROTO, authorization: 'Bearer s3cr3t-wrong-token' }]) {
        const res = await httpRequest(r.httpPort, { headers, body: syntheticRequest(2) });
        assert.equal(res.status, 401);
      }
      const json = await httpRequest(r.httpPort, { headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body: Buffer.from('{}') });
      assert.equal(json.status, 401);
      assert.deepEqual(JSON.parse(json.body.toString()), { code: 16, message: 'invalid bearer token' });
      assert.equal(r.consumer.batches.length, 0);

      const spans = await sdkSpans(2);
      const exporter = new ProtoExporter({ url: `http://127.0.0.1:${r.httpPort}/v1/traces`, headers: { authorization: 'Bearer good' } });
      const result = await exportOnce(exporter, spans);
      await exporter.shutdown();
      assert.equal(result.code, 0, String(result.error));
      assert.equal(r.consumer.batches.length, 1);
      assert.equal(r.consumer.contexts[0]!.auth?.subject, 'svc-checkout');
      assert.equal(await r.telemetry.value('tracewarden_receiver_requests_total', { transport: 'http', outcome: 'unauthenticated' }), 3);
      assert.ok(!r.logs.text.includes('s3cr3t-wrong-token'));
    } finally {
      await r.stop();
    }
  });

  test('gRPC: UNAUTHENTICATED without a good bearer token; the accepted call carries the sender', async () => {
    const r = await startReceiver({ grpc: { auth } }, host);
    const client = new grpc.Client(`127.0.0.1:${r.grpcPort}`, grpc.credentials.createInsecure());
    const call = (token: string | null): Promise<grpc.ServiceError | null> =>
      new Promise((resolve) => {
        const md = new grpc.Metadata();
        if (token !== null) md.set('authorization', token);
        client.makeUnaryRequest(
          '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from(syntheticRequest(3)),
          md,
          (err) => resolve(err ?? null),
        );
      });
    try {
      assert.equal((await call(null))?.code, grpc.status.UNAUTHENTICATED);
      const wrong = await call('Bearer s3cr3t-wrong-token');
      assert.equal(wrong?.code, grpc.status.UNAUTHENTICATED);
      assert.equal(wrong?.details, 'invalid bearer token');
      assert.equal(r.consumer.batches.length, 0);
      assert.equal(await call('Bearer good'), null);
      assert.equal(r.consumer.batches.length, 1);
      assert.equal(r.consumer.batches[0]!.spanCount, 3);
      assert.deepEqual(r.consumer.contexts[0]!.auth?.groups, ['writers']);
      assert.ok(!r.logs.text.includes('s3cr3t-wrong-token'));
    } finally {
      client.close();
      await r.stop();
    }
  });

  test('start() rejects an authenticator that is missing or is not an authenticator', async () => {
    await assert.rejects(startReceiver({ grpc: { auth: { authenticator: 'oidc' } } }, host), /extension oidc is not configured/);
    await assert.rejects(startReceiver({ http: { auth: { authenticator: 'health' } } }, host), /extension health is not an authenticator/);
  });
});

describe('otlp receiver shutdown', () => {
  test('is ready once listening; after shutdown both ports are closed', async () => {
    const r = await startReceiver();
    assert.equal(r.receiver.isReady(), true);
    assert.equal((await grpcRaw(r.grpcPort, grpcFrame(syntheticRequest(1)))).grpcStatus, 0);
    assert.equal((await httpRequest(r.httpPort, { headers: PROTO, body: syntheticRequest(1) })).status, 200);
    await r.stop();
    assert.equal(r.receiver.isReady(), false);
    assert.equal(await refused(r.grpcPort), true);
    assert.equal(await refused(r.httpPort), true);
  });

  test('in-flight requests on both transports finish before shutdown resolves', async () => {
    const r = await startReceiver();
    let release!: () => void;
    r.consumer.gate = new Promise((resolve) => (release = resolve));
    let arrived = 0;
    let bothArrived!: () => void;
    const waiting = new Promise<void>((resolve) => (bothArrived = resolve));
    r.consumer.onGate = () => {
      if (++arrived === 2) bothArrived();
    };
    const g = grpcRaw(r.grpcPort, grpcFrame(syntheticRequest(4)));
    const h = httpRequest(r.httpPort, { headers: PROTO, body: syntheticRequest(5) });
    await waiting;
    const stopped = r.receiver.shutdown(Date.now() + 10_000);
    assert.equal(await refused(r.httpPort), true);
    release();
    assert.equal((await g).grpcStatus, 0);
    const hr = await h;
    assert.equal(hr.status, 200);
    assert.equal(hr.headers['connection'], 'close');
    await stopped;
    assert.equal(r.consumer.spanCount, 9);
    assert.equal(await refused(r.grpcPort), true);
  });

  test('at the deadline, requests still held are cut off', async () => {
    const r = await startReceiver();
    r.consumer.gate = new Promise(() => {});
    let arrived!: () => void;
    const waiting = new Promise<void>((resolve) => (arrived = resolve));
    r.consumer.onGate = () => arrived();
    const h = httpRequest(r.httpPort, { headers: PROTO, body: syntheticRequest(1) });
    await waiting;
    await r.receiver.shutdown(Date.now() + 100);
    await assert.rejects(h);
    assert.equal(await refused(r.httpPort), true);
  });
});
