/**
 * Hostile gRPC clients cost only themselves: streams per connection are capped, request bytes in flight
 * are bounded per connection and per endpoint, half-sent messages and idle, old or ping-flooding
 * connections are cut, and an unknown path is not echoed. Each attack runs against a real receiver on
 * loopback with raw HTTP/2 clients, while a well-behaved client on its own connection is served.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { test } from 'node:test';
import { syntheticRequest } from '../../test/helpers/otlp.js';
import { grpcFrame, grpcRaw, startReceiver } from '../../test/helpers/receiver-harness.js';
import { rawH2Request } from '../../test/helpers/raw-h2.js';

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const MIB = 1024 * 1024;

function connect(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    // The server's SETTINGS have arrived: its limits are known.
    s.once('remoteSettings', () => resolve(s));
    s.once('error', reject);
  });
}

/** Opens a call and sends `bytes` of a message that declares `declared` bytes; the call stays open. */
function partialCall(session: http2.ClientHttp2Session, declared: number, bytes: number): { stream: http2.ClientHttp2Stream; status: Promise<{ code: number; message: string }> } {
  const stream = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => {
    // Resets after an answer are how the server stops reading.
  });
  const status = new Promise<{ code: number; message: string }>((resolve) => {
    let headers: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (headers = { ...headers, ...t }));
    stream.on('close', () => resolve({ code: Number(headers['grpc-status'] ?? -1), message: decodeURIComponent(String(headers['grpc-message'] ?? '')) }));
  });
  const head = Buffer.alloc(5);
  head.writeUInt32BE(declared, 1);
  stream.write(head);
  if (bytes > 0) stream.write(Buffer.alloc(bytes, 7));
  return { stream, status };
}

function closed(session: http2.ClientHttp2Session): Promise<{ goawayCode: number | null; ms: number }> {
  const t0 = Date.now();
  let goawayCode: number | null = null;
  session.on('goaway', (code) => (goawayCode = code));
  session.on('error', () => {});
  return new Promise((resolve) => session.once('close', () => resolve({ goawayCode, ms: Date.now() - t0 })));
}

test('an unknown path is answered UNIMPLEMENTED without echoing it', async () => {
  const r = await startReceiver({ grpc: {} });
  try {
    const res = await grpcRaw(r.grpcPort, grpcFrame(syntheticRequest(1)), { path: '/evil.Service/Bearer.eyJhbGciOiJSUzI1NiJ9' });
    assert.equal(res.grpcStatus, 12);
    assert.ok(!res.grpcMessage.includes('evil') && !res.grpcMessage.includes('eyJ'), res.grpcMessage);
  } finally {
    await r.stop();
  }
});

test('max_concurrent_streams is announced and enforced; another connection is still served', async () => {
  const r = await startReceiver({ grpc: { max_concurrent_streams: 10 } });
  try {
    const session = await connect(r.grpcPort);
    assert.equal(session.remoteSettings.maxConcurrentStreams, 10);
    // 50 calls left half-sent: the server never has more than 10 of them open at once.
    const calls = Array.from({ length: 50 }, () => partialCall(session, 1000, 10));
    const served = await grpcRaw(r.grpcPort, grpcFrame(syntheticRequest(2)));
    assert.equal(served.grpcStatus, 0, 'a client on its own connection is served');
    assert.equal(r.consumer.spanCount, 2);
    session.destroy();
    await Promise.all(calls.map((c) => c.status));
  } finally {
    await r.stop();
  }
});

test('a half-sent message is cut after message_timeout; an idle connection after max_connection_idle', async () => {
  const r = await startReceiver({ grpc: { message_timeout: '1s', keepalive: { server_parameters: { max_connection_idle: '1500ms' } } } });
  try {
    const session = await connect(r.grpcPort);
    const gone = closed(session);
    const call = partialCall(session, 1000, 10);
    const st = await call.status;
    assert.equal(st.code, 3, 'INVALID_ARGUMENT');
    assert.match(st.message, /not received within message_timeout/);
    // The session has no call open now: it is told to go away once idle.
    const c = await gone;
    assert.equal(c.goawayCode, http2.constants.NGHTTP2_NO_ERROR);
    assert.ok(c.ms < 10_000, `closed after ${c.ms} ms`);
  } finally {
    await r.stop();
  }
});

test('max_connection_age sends GOAWAY and closes after the grace, even with a call held open', async () => {
  const r = await startReceiver({ grpc: { message_timeout: '1h', keepalive: { server_parameters: { max_connection_age: '1s', max_connection_age_grace: '1s' } } } });
  try {
    const session = await connect(r.grpcPort);
    const gone = closed(session);
    partialCall(session, 1000, 10);
    const c = await gone;
    assert.ok(c.ms >= 1000 && c.ms < 10_000, `closed after ${c.ms} ms`);
  } finally {
    await r.stop();
  }
});

test('a client that pings too often is told ENHANCE_YOUR_CALM and disconnected', async () => {
  const r = await startReceiver({ grpc: { message_timeout: '1h', keepalive: { enforcement_policy: { min_time: '10s', permit_without_stream: true } } } });
  try {
    const session = await connect(r.grpcPort);
    const gone = closed(session);
    for (let i = 0; i < 5 && !session.closed && !session.destroyed; i++) {
      await new Promise<void>((resolve) => {
        try {
          if (!session.ping(() => resolve())) resolve();
        } catch {
          resolve();
        }
      });
    }
    const c = await gone;
    assert.equal(c.goawayCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    const served = await grpcRaw(r.grpcPort, grpcFrame(syntheticRequest(1)));
    assert.equal(served.grpcStatus, 0);
  } finally {
    await r.stop();
  }
});

test('request bytes in flight are bounded per connection and per endpoint; a held body costs only its sender', async () => {
  const r = await startReceiver({ grpc: { max_recv_msg_size_mib: 4, max_inflight_mib_per_connection: 4, max_inflight_mib: 8, message_timeout: '1h' } });
  try {
    // One attacker connection: 3 MiB held on one call, then a second call pushing past 4 MiB is refused.
    const a = await connect(r.grpcPort);
    const first = partialCall(a, 4 * MIB - 16, 3 * MIB);
    const second = partialCall(a, 4 * MIB - 16, 2 * MIB);
    const refused = await second.status;
    assert.equal(refused.code, 14, 'UNAVAILABLE: retryable');
    assert.match(refused.message, /too much request data is being received/);
    // A second attacker connection takes the endpoint to its 8 MiB budget.
    const b = await connect(r.grpcPort);
    partialCall(b, 4 * MIB - 16, 3 * MIB);
    const c = await connect(r.grpcPort);
    const over = partialCall(c, 4 * MIB - 16, 3 * MIB);
    assert.equal((await over.status).code, 14, 'the endpoint budget holds');
    // A small request still fits, and once the attackers leave a large one does too.
    assert.equal((await grpcRaw(r.grpcPort, grpcFrame(syntheticRequest(2)))).grpcStatus, 0);
    a.destroy();
    b.destroy();
    c.destroy();
    await first.status;
    const big = syntheticRequest(10_000, 10);
    assert.ok(big.length > 2 * MIB, `${big.length} bytes`);
    const res = await grpcRaw(r.grpcPort, grpcFrame(big));
    assert.equal(res.grpcStatus, 0, res.grpcMessage);
  } finally {
    await r.stop();
  }
});

test('two authorization values over gRPC reach the authenticator as two, never as the first', async () => {
  const seen: unknown[] = [];
  const host = {
    getExtension: () => ({
      start: async () => {},
      shutdown: async () => {},
      authenticate: async (headers: Readonly<Record<string, string | string[] | undefined>>) => {
        seen.push(headers['authorization']);
        throw new (await import('../../pipeline/service/errors.js')).PipelineError('UNAUTHENTICATED', 'no');
      },
    }),
    readiness: () => ({ ready: true, notReady: [] }),
  };
  const r = await startReceiver({ grpc: { auth: { authenticator: 'a' } } }, host);
  try {
    // Node's own client will not send a header twice; an attacker's will.
    const res = await rawH2Request(
      r.grpcPort,
      [[':method', 'POST'], [':scheme', 'http'], [':path', EXPORT], [':authority', 'localhost'], ['content-type', 'application/grpc'], ['te', 'trailers'], ['authorization', 'Bearer valid'], ['authorization', 'Bearer forged']],
      grpcFrame(syntheticRequest(1)),
    );
    assert.ok(res.answered, 'answered');
    assert.deepEqual(seen, [['Bearer valid', 'Bearer forged']]);
    assert.equal(r.consumer.spanCount, 0);
  } finally {
    await r.stop();
  }
});
