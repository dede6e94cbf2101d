/**
 * Hostile clients against the running daemon cost only themselves: clients pinning memory with half-sent
 * bodies over HTTP and gRPC (legitimate traffic keeps being accepted, during and after), HTTP's read and
 * idle timeouts, and ambiguous or blank-padded authorization values treated the same on both transports.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { jwksOf, makeSigningKey, signJwt, startJwksServer, validClaims, type JwksServer, type SigningKey } from '../helpers/jwks-server.js';
import { syntheticRequest } from '../helpers/otlp.js';
import { grpcFrame, grpcRaw, httpRequest } from '../helpers/receiver-harness.js';
import { rawH2Request } from '../helpers/raw-h2.js';
import { heldMemory } from '../../processors/memory_limiter/memory-limiter.js';

const MIB = 1024 * 1024;
const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with what the server sent and how long until it closed the connection (bounded). */
function untilClosed(s: Socket, timeoutMs: number): Promise<{ ms: number; text: string }> {
  const t0 = Date.now();
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString('latin1')));
  s.on('error', () => {});
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ms: -1, text });
    }, timeoutMs);
    s.once('close', () => {
      clearTimeout(timer);
      resolve({ ms: Date.now() - t0, text });
    });
  });
}

async function exportHttp(port: number, spans = 2, headers: Record<string, string> = {}): Promise<number> {
  return (await httpRequest(port, { headers: { 'content-type': 'application/x-protobuf', ...headers }, body: syntheticRequest(spans) })).status;
}

test('memory-pinning clients (half-sent 20 MiB bodies over HTTP, 4 MiB messages over gRPC) cost only themselves', async (t) => {
  // The limiter's soft limit sits 184 MiB above what the process holds now; the receivers' in-flight budgets
  // (64 MiB over HTTP, 32 MiB over gRPC) keep the attackers well under it however many they are.
  const base = heldMemory();
  const limitMib = Math.ceil((base + 200 * MIB) / MIB);
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, max_inflight_mib: 32, max_inflight_mib_per_connection: 16, message_timeout: 1h }
      http: { endpoint: 127.0.0.1:0, max_inflight_mib: 64, read_timeout: 1h, read_header_timeout: 1h }
processors:
  memory_limiter: { limit_mib: ${limitMib}, spike_limit_mib: 16, check_interval: 100ms, min_gc_interval_when_soft_limited: 0s }
exporters:
  debug: { verbosity: basic }
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter], exporters: [debug] }
`);
  const attackers: Socket[] = [];
  const sessions: http2.ClientHttp2Session[] = [];
  try {
    // 30 HTTP connections each send 19.5 MiB of a declared 20 MiB body and wait.
    const chunk = Buffer.alloc(MIB, 7);
    let refusedHttp = 0;
    for (let i = 0; i < 30; i++) {
      const s = await rawSocket(daemon.httpPort());
      attackers.push(s);
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        if (d.toString('latin1').startsWith('HTTP/1.1 503')) refusedHttp++;
      });
      s.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${20 * MIB}\r\n\r\n`);
      for (let k = 0; k < 19; k++) s.write(chunk);
      s.write(chunk.subarray(0, MIB / 2));
    }
    // 120 gRPC calls each holding 4 MiB − 16 bytes of a message, 12 per connection.
    const held: Promise<unknown>[] = [];
    const grpcPayload = Buffer.alloc(4 * MIB - 16, 1);
    for (let c = 0; c < 10; c++) {
      const session = http2.connect(`http://127.0.0.1:${daemon.grpcPort()}`);
      session.on('error', () => {});
      sessions.push(session);
      for (let i = 0; i < 12; i++) {
        const stream = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers' });
        stream.on('error', () => {});
        held.push(new Promise((resolve) => stream.on('close', resolve)));
        const head = Buffer.alloc(5);
        head.writeUInt32BE(4 * MIB, 1);
        stream.write(head);
        // One buffer for every call: the test runs in the daemon's process, and its own memory must not count.
        stream.write(grpcPayload);
      }
    }
    // Give the attack time to arrive, measured by what the receivers hold (bounded wait).
    const receiving = () => daemon.service.telemetry.value('tracewarden_memory_limiter_held_bytes', { processor: 'memory_limiter' });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (await receiving()) < base + 64 * MIB) await new Promise((r) => setTimeout(r, 100));
    t.diagnostic(`held while attacked: ${Math.round(((await receiving()) - base) / MIB)} MiB above the start; ${refusedHttp} HTTP attackers refused so far`);
    // While the attackers stay (no authentication here), a legitimate request is accepted or, when the
    // budget is full at that instant, refused as retryable: never lost, never a memory-limit refusal.
    assert.ok([200, 503].includes(await exportHttp(daemon.httpPort())), 'HTTP: accepted or retryable');
    assert.ok([0, 14].includes((await grpcRaw(daemon.grpcPort(), grpcFrame(syntheticRequest(2)))).grpcStatus), 'gRPC: accepted or UNAVAILABLE');
    const refusedLimiter = await daemon.service.telemetry.value('otelcol_processor_refused_spans_total', { processor: 'memory_limiter' });
    assert.equal(refusedLimiter, 0, 'the budgets kept memory below the limiter: it never had to refuse');
    // The attackers leave; legitimate traffic is accepted again within seconds (bounded retries).
    for (const s of attackers) s.destroy();
    for (const s of sessions) s.destroy();
    await Promise.all(held);
    const t0 = Date.now();
    let httpOk = false;
    let grpcOk = false;
    while (Date.now() - t0 < 10_000 && !(httpOk && grpcOk)) {
      httpOk ||= (await exportHttp(daemon.httpPort())) === 200;
      grpcOk ||= (await grpcRaw(daemon.grpcPort(), grpcFrame(syntheticRequest(2)))).grpcStatus === 0;
    }
    assert.ok(httpOk && grpcOk, 'accepted again after the attackers left');
    t.diagnostic(`accepted ${Date.now() - t0} ms after the attackers left`);
  } finally {
    for (const s of attackers) s.destroy();
    for (const s of sessions) s.destroy();
    await daemon.stop();
  }
});

test('HTTP read and idle timeouts: partial headers, a half-sent body and an idle keep-alive connection are closed', async (t) => {
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0, read_header_timeout: 1s, read_timeout: 2s, idle_timeout: 1s }
exporters:
  debug: { verbosity: basic }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [debug] }
`);
  try {
    const port = daemon.httpPort();
    const partialHeaders = await rawSocket(port);
    partialHeaders.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\n');
    const halfBody = await rawSocket(port);
    halfBody.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789');
    const idle = await rawSocket(port);
    const body = Buffer.from(syntheticRequest(1));
    idle.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n\r\n`);
    idle.write(body);
    const [a, b, c] = await Promise.all([untilClosed(partialHeaders, 10_000), untilClosed(halfBody, 10_000), untilClosed(idle, 10_000)]);
    t.diagnostic(`closed after: partial headers ${a.ms} ms, half-sent body ${b.ms} ms, idle keep-alive ${c.ms} ms`);
    assert.ok(a.ms > 0 && a.ms < 5000, `partial headers closed (${a.ms} ms)`);
    assert.ok(b.ms > 0 && b.ms < 6000, `half-sent body closed (${b.ms} ms)`);
    assert.match(b.text, /^HTTP\/1\.1 408/, 'the half-sent body was answered 408');
    assert.match(c.text, /^HTTP\/1\.1 200/, 'the idle connection had been served');
    assert.ok(c.ms > 0 && c.ms < 5000, `idle keep-alive closed (${c.ms} ms)`);
    assert.equal(await exportHttp(port), 200, 'still serving');
  } finally {
    await daemon.stop();
  }
});

describe_auth();

function describe_auth(): void {
  let jwks: JwksServer;
  let key: SigningKey;
  let daemon: RunningDaemon;
  let good: string;
  before(async () => {
    key = await makeSigningKey('ES256', 'auth-1');
    jwks = await startJwksServer({ keys: jwksOf(key) });
    good = await signJwt(validClaims(jwks.issuer, 'tracewarden', { sub: 'svc' }), key);
    daemon = await startDaemon(`
extensions:
  oidc:
    providers:
      - issuer_url: ${jwks.issuer}
        jwks_uri: ${jwks.jwksUri}
        audience: tracewarden
        allow_insecure_http: true
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, auth: { authenticator: oidc } }
      http: { endpoint: 127.0.0.1:0, auth: { authenticator: oidc } }
exporters:
  debug: { verbosity: basic }
service:
  extensions: [oidc]
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [debug] }
`);
  });
  after(async () => {
    await daemon?.stop();
    await jwks?.stop();
  });

  test('two authorization values are refused as ambiguous over HTTP/1.1 and HTTP/2 alike, valid first or forged first', async () => {
    const ambiguous = () => daemon.service.telemetry.value('tracewarden_auth_requests_total', { authenticator: 'oidc', result: 'ambiguous' });
    const forged = 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.';
    for (const pair of [[`Bearer ${good}`, forged], [forged, `Bearer ${good}`]]) {
      const s = await rawSocket(daemon.httpPort());
      const body = Buffer.from(syntheticRequest(1));
      s.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nAuthorization: ${pair[0]}\r\nAuthorization: ${pair[1]}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      s.write(body);
      const r = await untilClosed(s, 10_000);
      assert.match(r.text, /^HTTP\/1\.1 401/, r.text.slice(0, 40));
      assert.ok(!r.text.includes(good), 'no token in the answer');
      const before = await ambiguous();
      const h2 = await rawH2Request(
        daemon.grpcPort(),
        [[':method', 'POST'], [':scheme', 'http'], [':path', EXPORT], [':authority', 'x'], ['content-type', 'application/grpc'], ['te', 'trailers'], ['authorization', pair[0]!], ['authorization', pair[1]!]],
        grpcFrame(syntheticRequest(1)),
      );
      assert.ok(h2.answered);
      assert.equal(await ambiguous(), before + 1, 'gRPC counted as ambiguous');
    }
  });

  test('with authentication on, an unauthenticated client holds no body: it is answered 401 before its body is read', async () => {
    const attackers: Socket[] = [];
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const s = await rawSocket(daemon.httpPort());
          attackers.push(s);
          s.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nAuthorization: Bearer forged.token.here\r\nContent-Length: ${20 * MIB}\r\n\r\n`);
          s.write(Buffer.alloc(64 * 1024, 1));
          return untilClosed(s, 10_000);
        }),
      );
      for (const a of answers) assert.match(a.text, /^HTTP\/1\.1 401/, 'refused on its headers, with 20 MiB still unsent');
      const ok = await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${good}` }, body: syntheticRequest(2) });
      assert.equal(ok.status, 200, 'the authenticated sender is served');
    } finally {
      for (const s of attackers) s.destroy();
    }
  });

  test('blanks around the authorization value: each transport applies its protocol’s rule, and no padded value is ever half-read', async () => {
    for (const value of [`Bearer ${good}`, `  Bearer ${good}  `, `\tBearer ${good}`]) {
      const padded = value !== `Bearer ${good}`;
      // HTTP/1.1: blanks around a field value are not part of it (RFC 9110): accepted.
      const s = await rawSocket(daemon.httpPort());
      const body = Buffer.from(syntheticRequest(1));
      s.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nAuthorization: ${value}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      s.write(body);
      assert.match((await untilClosed(s, 10_000)).text, /^HTTP\/1\.1 200/, JSON.stringify(value.slice(0, 3)));
      // HTTP/2 forbids them (RFC 9113 §8.2.1): the HTTP/2 layer discards such a field, so the call has no
      // credential and is refused as missing one; an unpadded value is accepted.
      const g = await rawH2Request(
        daemon.grpcPort(),
        [[':method', 'POST'], [':scheme', 'http'], [':path', EXPORT], [':authority', 'x'], ['content-type', 'application/grpc'], ['te', 'trailers'], ['authorization', value]],
        grpcFrame(syntheticRequest(1)),
      );
      assert.ok(g.answered);
      const missing = await daemon.service.telemetry.value('tracewarden_auth_requests_total', { authenticator: 'oidc', result: 'missing' });
      if (padded) assert.ok(missing > 0, 'refused as missing a credential');
      else assert.equal((await grpcRaw(daemon.grpcPort(), grpcFrame(syntheticRequest(1)), { headers: { authorization: value } })).grpcStatus, 0);
    }
  });
}
