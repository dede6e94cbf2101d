/**
 * Helpers for the identity end-to-end tests: SDK spans carrying bearer tokens the way OpenTelemetry HTTP
 * instrumentation records request headers, a daemon config around the identity processor, waiting for
 * spans at the backend, readiness polling, and an attacker server that counts every request it gets.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { IdentityProcessor } from '../../processors/identity/identity-processor.js';
import { startDaemon, type RunningDaemon } from './daemon.js';
import type { OtlpGrpcTestServer } from './exporter-grpc-server.js';
import { decodeSpans, type DecodedSpan } from './otlp.js';

export const AUTH = 'http.request.header.authorization';

/**
 * One ended SDK span per entry, named `<prefix>-<i>`; a token becomes `http.request.header.authorization:
 * ['Bearer <token>']` (headers are string arrays in OpenTelemetry), null leaves the span without one.
 */
export async function tokenSpans(tokens: readonly (string | null)[], prefix: string): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('identity-e2e', '1.0.0');
  tokens.forEach((t, i) => {
    const attributes = t === null ? { i } : { i, [AUTH]: [`Bearer ${t}`] };
    tracer.startSpan(`${prefix}-${i}`, { attributes }).end();
  });
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

export interface IdentityDaemonOptions {
  issuer: string;
  audience: string;
  backend: OtlpGrpcTestServer;
  /** Extra YAML lines for the identity processor, each a `key: value` at the processor's level. */
  identity?: string[];
}

/** The daemon: otlp in (gRPC and HTTP), identity then batch, otlp out to the test backend, metrics on. */
export function startIdentityDaemon(o: IdentityDaemonOptions): Promise<RunningDaemon> {
  const extra = (o.identity ?? []).map((l) => `    ${l}`).join('\n');
  return startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  identity:
    issuers:
      - issuer: ${o.issuer}
        audiences: [${o.audience}]
        allow_insecure_http: true
${extra}
  batch: { timeout: 10ms }
exporters:
  otlp:
    endpoint: ${o.backend.endpoint}
    tls: { insecure: true }
    retry_on_failure: { initial_interval: 10ms, max_interval: 50ms }
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], processors: [identity, batch], exporters: [otlp] }
`);
}

export function identityProcessor(daemon: RunningDaemon): IdentityProcessor {
  return daemon.service.component('identity') as IdentityProcessor;
}

/** Every span the backend has received so far. */
export function backendSpans(backend: OtlpGrpcTestServer): DecodedSpan[] {
  return backend.requests.flatMap((r) => decodeSpans(r.bytes));
}

/** Waits (on each export call the backend receives) until it holds at least `n` spans; bounded. */
export async function waitForSpans(backend: OtlpGrpcTestServer, n: number, timeoutMs = 10_000): Promise<DecodedSpan[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = backendSpans(backend);
    if (spans.length >= n) return spans;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out: expected ${n} spans at the backend, got ${spans.length}`);
    await backend.waitForRequests(backend.requests.length + 1, left).catch(() => undefined);
  }
}

/** Spans by name, failing when one named is missing or appears twice. */
export function byName(spans: readonly DecodedSpan[], names: readonly string[]): DecodedSpan[] {
  return names.map((name) => {
    const found = spans.filter((s) => s.name === name);
    assert.equal(found.length, 1, `span ${name} arrived exactly once (got ${found.length})`);
    return found[0]!;
  });
}

export async function readyStatus(daemon: RunningDaemon): Promise<{ status: number; body: string }> {
  const res = await fetch(`${daemon.metricsUrl}/ready`);
  return { status: res.status, body: await res.text() };
}

/**
 * Polls /ready until it answers `want`. Readiness changes on the key source's own schedule (a retry timer,
 * or max_stale running out), which the daemon exposes only through /ready: bounded polling with short
 * waits is the event-free way to observe it.
 */
export async function pollReady(daemon: RunningDaemon, want: 200 | 503, timeoutMs = 8_000): Promise<number> {
  const t0 = Date.now();
  let last = 0;
  while (Date.now() - t0 < timeoutMs) {
    last = (await readyStatus(daemon)).status;
    if (last === want) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`/ready did not answer ${want} within ${timeoutMs} ms (last ${last})`);
}

/** Polls a metric (same reason as pollReady: it moves on a timer inside the daemon) until `ok` holds. */
export async function pollMetric(daemon: RunningDaemon, read: () => Promise<number>, ok: (v: number) => boolean, what: string, timeoutMs = 8_000): Promise<number> {
  const t0 = Date.now();
  let v = await read();
  while (!ok(v)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what} (last ${v})`);
    await new Promise((r) => setTimeout(r, 20));
    v = await read();
  }
  return v;
}

/** Key set loads that failed, across issuers (every outcome but ok). */
export async function failedKeyFetches(daemon: RunningDaemon): Promise<number> {
  const t = daemon.service.telemetry;
  return (await t.value('tracewarden_identity_key_fetches_total')) - (await t.value('tracewarden_identity_key_fetches_total', { outcome: 'ok' }));
}

/**
 * No credential may leave the daemon: neither the whole token nor its signature (the part no one else can
 * produce) appears in what the backend received, the daemon's log lines, or its /metrics page.
 */
export async function assertNoTokensLeaked(tokens: readonly string[], daemon: RunningDaemon, backend: OtlpGrpcTestServer, extra: readonly string[] = []): Promise<void> {
  const exported = Buffer.concat(backend.requests.map((r) => r.bytes)).toString('latin1');
  const metrics = await (await fetch(`${daemon.metricsUrl}/metrics`)).text();
  const logs = daemon.logs.text;
  assert.ok(logs.length > 0, 'the daemon logged something (the check below is not vacuous)');
  for (const t of tokens) {
    const needles = [t];
    const sig = t.split('.')[2] ?? '';
    if (sig.length >= 16) needles.push(sig);
    for (const n of needles) {
      assert.ok(!exported.includes(n), 'a token reached the backend');
      assert.ok(!logs.includes(n), 'a token was logged');
      assert.ok(!metrics.includes(n), 'a token is in /metrics');
      for (const e of extra) assert.ok(!e.includes(n), 'a token is in an error answered to the sender');
    }
  }
}

/** An attacker-controlled HTTP server (a `jku`/`x5u` target) that counts every request, whatever the path. */
export interface AttackerServer {
  url: string;
  requests(): number;
  close(): Promise<void>;
}

/** Answers every request with `body` as JSON (the attacker's JWKS, so following a `jku` would "work"). */
export async function startAttackerServer(body: unknown): Promise<AttackerServer> {
  let count = 0;
  const text = JSON.stringify(body);
  const server: Server = createServer((_req, res) => {
    count++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
