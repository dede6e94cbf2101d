/**
 * Sender authentication end to end: the daemon built from YAML with the `oidc` extension in front of the
 * otlp receiver (gRPC and HTTP), tokens issued by a real OpenID provider (oidc-provider) on loopback, the
 * official OpenTelemetry exporters as senders, and a real OTLP/gRPC backend. The identity processor writes
 * the authenticated sender's `sub` to the resource, which shows the claims travel in the request context.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata } from '@grpc/grpc-js';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { OidcAuthenticator } from '../../extensions/oidc/oidc-authenticator.js';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { algNone, expired, tamperedPayload, withEmbeddedJwk } from '../helpers/forged-tokens.js';
import { makeSigningKey } from '../helpers/jwks-server.js';
import { startTestIdp, type TestIdp } from '../helpers/oidc-provider.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { decodeSpans } from '../helpers/otlp.js';
import { exportOnce } from '../helpers/receiver-sdk.js';

const SENDER = 'svc-checkout-prod';

/** Ended spans from the real SDK; the resource claims a sender id, which the daemon must not believe. */
async function spans(n: number, prefix: string): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout', 'telemetry.sender.id': 'forged-by-sender' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('sender-auth-test');
  for (let i = 0; i < n; i++) tracer.startSpan(`${prefix}-${i}`).end();
  await provider.forceFlush();
  const out = memory.getFinishedSpans();
  await provider.shutdown();
  return out;
}

describe('sender authentication with the oidc extension', () => {
  let idp: TestIdp;
  let backend: OtlpGrpcTestServer;
  let daemon: RunningDaemon;
  /** Every credential sent, good or bad: none may appear in logs, metrics or what the backend receives. */
  const sent: string[] = [];
  let goodToken = '';

  const grpcExporter = (token: string | null) => {
    const metadata = new Metadata();
    if (token !== null) metadata.set('authorization', `Bearer ${token}`);
    return new GrpcExporter({ url: `http://127.0.0.1:${daemon.grpcPort()}`, metadata });
  };
  const httpExporter = (token: string | null) =>
    new ProtoExporter({ url: `http://127.0.0.1:${daemon.httpPort()}/v1/traces`, headers: token === null ? {} : { authorization: `Bearer ${token}` } });

  async function send(transport: 'grpc' | 'http', token: string | null, batch: ReadableSpan[]): Promise<{ code: number; errorCode: unknown }> {
    if (token !== null) sent.push(token);
    const exporter = transport === 'grpc' ? grpcExporter(token) : httpExporter(token);
    try {
      const r = await exportOnce(exporter, batch);
      return { code: r.code, errorCode: (r.error as { code?: unknown } | undefined)?.code };
    } finally {
      await exporter.shutdown();
    }
  }

  const authCount = (result: string) => daemon.service.telemetry.value('tracewarden_auth_requests_total', { authenticator: 'oidc', result });

  before(async () => {
    idp = await startTestIdp();
    backend = await OtlpGrpcTestServer.start();
    daemon = await startDaemon(`
extensions:
  oidc:
    providers:
      - issuer_url: ${idp.issuer}
        audience: ${idp.audience}
        allow_insecure_http: true
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, auth: { authenticator: oidc } }
      http: { endpoint: 127.0.0.1:0, auth: { authenticator: oidc } }
processors:
  identity:
    issuers:
      - issuer: ${idp.issuer}
        audiences: [${idp.audience}]
        allow_insecure_http: true
    sender:
      attributes:
        telemetry.sender.id: sub
exporters:
  otlp:
    endpoint: ${backend.endpoint}
    tls: { insecure: true }
    retry_on_failure: { initial_interval: 10ms, max_interval: 50ms }
service:
  extensions: [oidc]
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], processors: [identity], exporters: [otlp] }
`);
    goodToken = await idp.token({ claims: { sub: SENDER, groups: ['writers'] } });
  });

  after(async () => {
    await daemon?.stop();
    await backend?.close();
    await idp?.stop();
  });

  test('the oidc extension loads the provider keys in the background and becomes ready', async () => {
    const oidc = daemon.service.component('oidc') as OidcAuthenticator;
    await oidc.keysSettled();
    assert.equal(oidc.isReady(), true);
    assert.ok(idp.requests('/jwks') >= 1, 'keys come from the provider’s discovery document');
  });

  test('a valid token over gRPC and HTTP: spans delivered, with the sender’s sub on the resource', async () => {
    const before = backend.requests.length;
    const g = await send('grpc', goodToken, await spans(3, 'grpc'));
    assert.equal(g.code, 0, `grpc export failed: ${String(g.errorCode)}`);
    const h = await send('http', goodToken, await spans(2, 'http'));
    assert.equal(h.code, 0, `http export failed: ${String(h.errorCode)}`);
    await backend.waitForRequests(before + 2);
    const got = backend.requests.slice(before).flatMap((r) => decodeSpans(r.bytes));
    assert.deepEqual(got.map((s) => s.name).sort(), ['grpc-0', 'grpc-1', 'grpc-2', 'http-0', 'http-1']);
    for (const s of got) {
      assert.equal(s.resource['telemetry.sender.id'], SENDER, 'the sender id comes from the token, not from the data');
      assert.equal(s.resource['service.name'], 'checkout');
    }
    assert.equal(await authCount('ok'), 2);
  });

  test('missing, expired, wrong-audience and forged tokens: UNAUTHENTICATED / 401, nothing delivered', async () => {
    const victim = { iss: idp.issuer, aud: idp.audience };
    const realKey = await idp.signingKey();
    const attacker = await makeSigningKey('RS256');
    const bad: [string, string | null, string][] = [
      ['missing', null, 'missing'],
      ['expired', await expired(realKey, victim, { sub: SENDER }), 'expired'],
      ['wrong audience', await idp.token({ audience: 'someone-else', claims: { sub: SENDER } }), 'audience_mismatch'],
      ['tampered payload', tamperedPayload(goodToken), 'bad_signature'],
      ['attacker key embedded in the header', await withEmbeddedJwk(attacker, victim, attacker.kid, { sub: SENDER }), 'unknown_key'],
      ['unsigned (alg none)', algNone(victim, { sub: SENDER }), 'algorithm_not_allowed'],
    ];
    const acceptedBefore = await daemon.service.telemetry.value('otelcol_receiver_accepted_spans_total');
    for (const [name, token, result] of bad) {
      const countBefore = await authCount(result);
      const g = await send('grpc', token, await spans(2, 'refused'));
      assert.notEqual(g.code, 0, `${name}: grpc export must fail`);
      assert.equal(g.errorCode, 16, `${name}: grpc status UNAUTHENTICATED`);
      const h = await send('http', token, await spans(2, 'refused'));
      assert.notEqual(h.code, 0, `${name}: http export must fail`);
      assert.equal(h.errorCode, 401, `${name}: HTTP 401`);
      assert.equal(await authCount(result), countBefore + 2, `${name}: counted as ${result}`);
    }
    assert.equal(await daemon.service.telemetry.value('otelcol_receiver_accepted_spans_total'), acceptedBefore, 'no refused span was accepted');
    assert.equal(await daemon.service.telemetry.value('tracewarden_receiver_requests_total', { outcome: 'unauthenticated' }), bad.length * 2);
  });

  test('no token appears in the logs, the metrics or anything the backend receives', async () => {
    assert.ok(sent.length >= 10);
    const metricsText = await (await fetch(`${daemon.metricsUrl}/metrics`)).text();
    assert.match(metricsText, /tracewarden_auth_requests_total\{authenticator="oidc",result="ok"\} 2/);
    // Stopping drains the exporter: after it, everything the daemon will ever send has been received.
    await daemon.stop();
    const delivered = backend.requests.flatMap((r) => decodeSpans(r.bytes));
    assert.equal(delivered.length, 5, 'only the authenticated spans were delivered');
    assert.ok(!delivered.some((s) => s.name.startsWith('refused')));
    const logs = daemon.logs.text;
    assert.ok(logs.length > 0);
    assert.match(logs, /sender authentication failed/, 'failures are logged (by reason only)');
    for (const token of new Set(sent)) {
      const signature = token.split('.')[2] || token.split('.')[1]!;
      for (const [where, text] of [
        ['logs', logs],
        ['metrics', metricsText],
      ] as const) {
        assert.ok(!text.includes(token) && !text.includes(signature), `a token reached the ${where}`);
      }
      for (const r of backend.requests) {
        assert.ok(!r.bytes.includes(token) && !r.bytes.includes(signature), 'a token reached the backend’s data');
        assert.ok(!JSON.stringify(r.headers).includes(signature), 'a token reached the backend’s headers');
      }
    }
  });
});
