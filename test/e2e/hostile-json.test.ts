/**
 * End to end through the daemon built from YAML: hostile clients cost only themselves.
 *
 * - Hostile OTLP/JSON (precision-losing 64-bit numbers, out-of-range enums, non-numeric doubles, a `null`
 *   body, all-zero ids) is answered 400 naming the field by its JSON path; valid 64-bit values reach the
 *   backend exactly.
 * - 3,000 pipelined `GET /metrics` on one keep-alive connection do not stall `/health` or OTLP clients.
 * - One ~12 MB OTLP/JSON request with a million attributes does not stall `/health`.
 *
 * Latency bounds follow the behaviour the issue states (/health answers within 100 ms while the daemon is
 * abused), measured over several rounds: the median of the rounds' worst latencies is under HEALTH_BOUND_MS and no
 * round comes near the pre-fix stalls. Every measurement is printed with t.diagnostic. The daemon runs in
 * this process, so /health is answered by the very event loop that handles the abuse; the flooding client
 * runs on a worker thread so that reading its 3,000 answers does not count against the daemon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Worker } from 'node:worker_threads';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { syntheticRequest } from '../helpers/otlp.js';
import { httpRequest } from '../helpers/receiver-harness.js';

/**
 * The issue's goal is /health within 100 ms while the daemon is abused; measured alone it answers in 9–70 ms
 * (printed below). The asserted bound is looser because the suite runs two test files at once on a 2-core
 * machine under coverage instrumentation, and a descheduled process is not a blocked loop: the median of the
 * rounds' worst latencies stays under 250 ms, far from the stalls the issue measured (1.2 s, 3.3 s).
 */
const HEALTH_BOUND_MS = 250;
/** No round may come near those stalls. */
const HEALTH_CEILING_MS = 600;
const ROUNDS = 5;
const JSON_CT = { 'content-type': 'application/json' };
const TRACE = '5b8efff798038103d269b633813fc60c';
const SPAN = 'eee19b7ec3c1b174';
const SPAN0 = '$.resourceSpans[0].scopeSpans[0].spans[0]';
const MARK = 'Hx9SecretMark';

function daemonYaml(backend: OtlpGrpcTestServer, http = ''): string {
  return `
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0${http} }
exporters:
  otlp: { endpoint: ${backend.endpoint}, tls: { insecure: true }, compression: none, retry_on_failure: { initial_interval: 10ms, max_interval: 50ms } }
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`;
}

/** One span as JSON text; `fields` is spliced in verbatim so that numbers keep their exact spelling. */
function oneSpan(fields: string, ids = `"traceId":"${TRACE}","spanId":"${SPAN}"`): Buffer {
  return Buffer.from(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"${MARK}"}}]},"scopeSpans":[{"spans":[{${ids},"name":"${MARK}"${fields === '' ? '' : `,${fields}`}}]}]}]}`);
}

interface Probe {
  latencies: number[];
  /** Latency percentile in ms (nearest rank). */
  p(q: number): number;
  max(): number;
}

function probe(latencies: number[]): Probe {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    latencies,
    p: (q) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!),
    max: () => (sorted.length === 0 ? NaN : sorted[sorted.length - 1]!),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Asserts the per-round worst /health latencies against the bound and the ceiling, after printing them. */
function assertResponsive(t: { diagnostic(msg: string): void }, what: string, worst: number[]): void {
  const med = median(worst);
  const max = Math.max(...worst);
  t.diagnostic(`/health worst latency per round during ${what}: [${worst.map((w) => w.toFixed(1)).join(', ')}] ms; median ${med.toFixed(1)} ms (bound ${HEALTH_BOUND_MS}), max ${max.toFixed(1)} ms (ceiling ${HEALTH_CEILING_MS})`);
  assert.ok(med < HEALTH_BOUND_MS, `/health took ${med.toFixed(1)} ms (median of per-round worst) during ${what}`);
  assert.ok(max < HEALTH_CEILING_MS, `/health took ${max.toFixed(1)} ms in one round of ${what}`);
}

function fmt(p: Probe): string {
  return `n=${p.latencies.length} p50=${p.p(0.5).toFixed(1)}ms p99=${p.p(0.99).toFixed(1)}ms max=${p.max().toFixed(1)}ms`;
}

/** GET on a keep-alive agent; resolves with the status once the body is read. */
function get(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/**
 * Asks `/health` one request after another while `busy()` holds (at least `min` times, at most `max`),
 * and returns each answer's latency. Every answer must be 200.
 */
async function probeHealth(daemon: RunningDaemon, busy: () => boolean, min: number, max = 20_000): Promise<Probe> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  try {
    for (let i = 0; i < max && (i < min || busy()); i++) {
      const t0 = performance.now();
      assert.equal(await get(`${daemon.metricsUrl}/health`, agent), 200);
      latencies.push(performance.now() - t0);
    }
  } finally {
    agent.destroy();
  }
  return probe(latencies);
}

test('hostile OTLP/JSON is answered 400 naming the field, never quoting it; exact 64-bit values reach the backend', async (t) => {
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(daemonYaml(backend));
  try {
    const cases: { name: string; body: Buffer; message: string }[] = [
      { name: 'kind 1e20', body: oneSpan('"kind":1e20'), message: `${SPAN0}.kind: out of range for SpanKind (0 to 5)` },
      { name: 'kind 6', body: oneSpan('"kind":6'), message: `${SPAN0}.kind: out of range for SpanKind (0 to 5)` },
      { name: 'status code 3', body: oneSpan('"status":{"code":3}'), message: `${SPAN0}.status.code: out of range for StatusCode (0 to 2)` },
      {
        name: 'doubleValue ""',
        body: oneSpan('"attributes":[{"key":"d","value":{"doubleValue":""}}]'),
        message: `${SPAN0}.attributes[0].value.doubleValue: expected a number, or a string holding a number, "NaN", "Infinity" or "-Infinity"`,
      },
      {
        name: 'doubleValue "0x10"',
        body: oneSpan('"attributes":[{"key":"d","value":{"doubleValue":"0x10"}}]'),
        message: `${SPAN0}.attributes[0].value.doubleValue: expected a number, or a string holding a number, "NaN", "Infinity" or "-Infinity"`,
      },
      { name: 'intValue 2^63', body: oneSpan('"attributes":[{"key":"i","value":{"intValue":9223372036854775808}}]'), message: `${SPAN0}.attributes[0].value.intValue: out of range for a signed 64-bit integer` },
      { name: 'intValue 1.5', body: oneSpan('"attributes":[{"key":"i","value":{"intValue":1.5}}]'), message: `${SPAN0}.attributes[0].value.intValue: expected an integer (a number or a decimal string)` },
      { name: 'startTimeUnixNano 2^64', body: oneSpan('"startTimeUnixNano":"18446744073709551616"'), message: `${SPAN0}.startTimeUnixNano: out of range for an unsigned 64-bit integer` },
      { name: 'droppedAttributesCount 2^32', body: oneSpan('"droppedAttributesCount":4294967296'), message: `${SPAN0}.droppedAttributesCount: out of range for an unsigned 32-bit integer` },
      { name: 'flags -1', body: oneSpan('"flags":-1'), message: `${SPAN0}.flags: out of range for an unsigned 32-bit integer` },
      { name: 'body null', body: Buffer.from('null'), message: '$: expected an object' },
      { name: 'body an array', body: Buffer.from('[]'), message: '$: expected an object' },
      { name: 'all-zero trace id', body: oneSpan('', `"traceId":"${'0'.repeat(32)}","spanId":"${SPAN}"`), message: `${SPAN0}.traceId: an all-zero trace id is invalid` },
      { name: 'all-zero span id', body: oneSpan('', `"traceId":"${TRACE}","spanId":"${'0'.repeat(16)}"`), message: `${SPAN0}.spanId: an all-zero span id is invalid` },
      { name: 'a null span', body: Buffer.from('{"resourceSpans":[{"scopeSpans":[{"spans":[null]}]}]}'), message: `${SPAN0}: expected an object` },
      { name: 'a marker where a kind belongs', body: oneSpan(`"kind":"${MARK}"`), message: `${SPAN0}.kind: expected a SpanKind (an integer or its name)` },
      { name: 'not JSON', body: Buffer.from(`{"resourceSpans":[${MARK}]}`), message: 'request body is not valid JSON' },
    ];
    for (const c of cases) {
      const res = await httpRequest(daemon.httpPort(), { headers: JSON_CT, body: c.body });
      assert.equal(res.status, 400, c.name);
      assert.equal(res.headers['content-type'], 'application/json', c.name);
      const status = JSON.parse(res.body.toString()) as { code: number; message: string };
      assert.deepEqual(status, { code: 3, message: c.message }, c.name);
      assert.ok(!res.body.toString().includes(MARK), `${c.name}: the answer quotes the request`);
    }
    // The same refusals over gzip: the converter sees the decompressed body.
    const { gzipSync } = await import('node:zlib');
    const gz = await httpRequest(daemon.httpPort(), { headers: { ...JSON_CT, 'content-encoding': 'gzip' }, body: gzipSync(oneSpan('"kind":1e20')) });
    assert.equal(gz.status, 400);
    assert.equal((JSON.parse(gz.body.toString()) as { message: string }).message, `${SPAN0}.kind: out of range for SpanKind (0 to 5)`);

    // Valid: 2^53+1 as a JSON number, and the largest fixed64, reach the backend exactly.
    const ok = await httpRequest(daemon.httpPort(), {
      headers: JSON_CT,
      body: oneSpan('"kind":2,"startTimeUnixNano":18446744073709551615,"endTimeUnixNano":"18446744073709551615","attributes":[{"key":"n","value":{"intValue":9007199254740993}},{"key":"s","value":{"intValue":"-9223372036854775808"}},{"key":"d","value":{"doubleValue":"NaN"}}]'),
    });
    assert.equal(ok.status, 200, ok.body.toString());
    await backend.waitForRequests(1);
    await daemon.stop();
    assert.equal(backend.requests.length, 1, 'nothing refused was forwarded');
    const T = otlpType('ExportTraceServiceRequest');
    const got = T.toObject(T.decode(backend.requests[0]!.bytes), { longs: String, defaults: false }) as {
      resourceSpans: { scopeSpans: { spans: { kind: number; startTimeUnixNano: string; endTimeUnixNano: string; attributes: { key: string; value: Record<string, unknown> }[] }[] }[] }[];
    };
    const span = got.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    assert.equal(span.kind, 2);
    assert.equal(span.startTimeUnixNano, '18446744073709551615');
    assert.equal(span.endTimeUnixNano, '18446744073709551615');
    assert.equal(span.attributes[0]!.value['intValue'], '9007199254740993');
    assert.equal(span.attributes[1]!.value['intValue'], '-9223372036854775808');
    assert.ok(Number.isNaN(span.attributes[2]!.value['doubleValue']));
    const refused = await daemon.service.telemetry.value('tracewarden_receiver_requests_total', { transport: 'http', outcome: 'invalid' });
    t.diagnostic(`refused as invalid: ${refused}`);
    assert.equal(refused, cases.length + 1);
  } finally {
    await daemon.stop();
    await backend.close();
  }
});

/**
 * The flooding client: on its own thread (as a remote client would be, its reading costs the daemon's
 * event loop nothing), it writes `n` pipelined `GET /metrics` on one raw keep-alive connection in one go,
 * reads the answers by their Content-Length, and reports how many came and how many were 200.
 */
const FLOOD_CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const { connect } = require('node:net');
const { port, n } = workerData;
let count = 0, ok = 0, missingLength = 0, buf = Buffer.alloc(0);
// need >= 0: body bytes still to skip; -1: reading a head; -2: reading a chunk-size line (chunked body).
let need = -1;
const sock = connect(port, '127.0.0.1');
sock.on('data', (chunk) => {
  buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
  for (;;) {
    if (need === -1) {
      const end = buf.indexOf('\\r\\n\\r\\n');
      if (end < 0) break;
      const head = buf.subarray(0, end).toString('latin1');
      const len = /\\r\\ncontent-length: *(\\d+)/i.exec(head);
      if (head.startsWith('HTTP/1.1 200 ')) ok++;
      buf = buf.subarray(end + 4);
      if (len !== null) need = Number(len[1]);
      else { missingLength++; need = -2; }
    }
    if (need === -2) {
      const eol = buf.indexOf('\\r\\n');
      if (eol < 0) break;
      const size = parseInt(buf.subarray(0, eol).toString('latin1'), 16);
      if (buf.length < eol + 2 + size + 2) break;
      buf = buf.subarray(eol + 2 + size + 2);
      if (size !== 0) continue;
      count++;
      need = -1;
      continue;
    }
    if (buf.length < need) break;
    buf = buf.subarray(need);
    need = -1;
    count++;
  }
  if (count >= n) sock.destroy();
});
sock.on('error', () => sock.destroy());
sock.on('close', () => parentPort.postMessage({ count, ok, missingLength }));
sock.write('GET /metrics HTTP/1.1\\r\\nHost: tracewarden\\r\\nConnection: keep-alive\\r\\n\\r\\n'.repeat(n));
`;

interface FloodResult {
  count: number;
  ok: number;
  missingLength: number;
}

function metricsFlood(port: number, n: number): { done: Promise<FloodResult>; finished: () => boolean } {
  let finished = false;
  const worker = new Worker(FLOOD_CLIENT, { eval: true, workerData: { port, n } });
  const done = new Promise<FloodResult>((resolve, reject) => {
    worker.once('message', (r: FloodResult) => resolve(r));
    worker.once('error', reject);
    worker.once('exit', () => reject(new Error('the flooding client exited without a report')));
  }).finally(() => {
    finished = true;
    void worker.terminate();
  });
  return { done, finished: () => finished };
}

test('3,000 pipelined GET /metrics on one connection: /health and OTLP clients keep answering (goal 100 ms)', async (t) => {
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(daemonYaml(backend));
  try {
    const port = Number(new URL(daemon.metricsUrl).port);
    const idle = await probeHealth(daemon, () => false, 50);
    t.diagnostic(`/health idle: ${fmt(idle)}`);

    const N = 3000;
    const worst: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const flood = metricsFlood(port, N);
      const t0 = performance.now();
      const [health, otlp, flooded] = await Promise.all([
        probeHealth(daemon, () => !flood.finished(), 20),
        (async () => {
          // An OTLP client during the flood: its requests are answered as promptly.
          const lat: number[] = [];
          for (let i = 0; i < 5; i++) {
            const s = performance.now();
            assert.equal((await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/x-protobuf' }, body: syntheticRequest(2, 2) })).status, 200);
            lat.push(performance.now() - s);
          }
          return probe(lat);
        })(),
        flood.done,
      ]);
      const elapsed = performance.now() - t0;
      t.diagnostic(`round ${round + 1}: ${N} pipelined /metrics answered in ${elapsed.toFixed(0)} ms; /health during: ${fmt(health)}; OTLP/HTTP during: ${fmt(otlp)}`);
      assert.deepEqual(flooded, { count: N, ok: N, missingLength: 0 }, 'every pipelined scrape is answered 200, with a Content-Length');
      worst.push(health.max());
    }
    assertResponsive(t, `${ROUNDS} floods of ${N} pipelined /metrics`, worst);

    // After the flood, a scrape still sees what changed before it was sent.
    const before = await daemon.service.telemetry.value('otelcol_receiver_accepted_spans_total', { transport: 'http' });
    assert.equal((await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/x-protobuf' }, body: syntheticRequest(3, 1) })).status, 200);
    const text = await (await fetch(`${daemon.metricsUrl}/metrics`)).text();
    assert.match(text, new RegExp(`^otelcol_receiver_accepted_spans_total\\{receiver="otlp",transport="http"\\} ${before + 3}$`, 'm'));
  } finally {
    await daemon.stop();
    await backend.close();
  }
});

/** About 12 MB of OTLP/JSON holding `spans` × `perSpan` attributes (1,000 × 1,000 = a million). */
function millionAttributes(spans = 1000, perSpan = 1000): Buffer {
  const attrs = new Array<string>(perSpan).fill('{"key":"a"}').join(',');
  const parts: string[] = [];
  for (let s = 0; s < spans; s++) {
    parts.push(`{"traceId":"${TRACE}","spanId":"${(s + 1).toString(16).padStart(16, '0')}","name":"s","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[${attrs}]}`);
  }
  return Buffer.from(`{"resourceSpans":[{"resource":{},"scopeSpans":[{"spans":[${parts.join(',')}]}]}]}`);
}

test('one ~12 MB OTLP/JSON request with a million attributes does not stall /health', async (t) => {
  const backend = await OtlpGrpcTestServer.start();
  // 12 MB is within the default 20 MiB max_request_body_size; it is set here so the test says so.
  const daemon = await startDaemon(daemonYaml(backend, ', max_request_body_size: 16777216'));
  try {
    const body = millionAttributes();
    t.diagnostic(`body: ${body.length} bytes, 1000000 attributes`);
    assert.ok(body.length > 11_000_000 && body.length < 16_777_216);
    const idle = await probeHealth(daemon, () => false, 30);
    t.diagnostic(`/health idle: ${fmt(idle)}`);

    const worst: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let inFlight = true;
      const t0 = performance.now();
      const sent = httpRequest(daemon.httpPort(), { headers: JSON_CT, body }).finally(() => (inFlight = false));
      const health = await probeHealth(daemon, () => inFlight, 5);
      const res = await sent;
      const elapsed = performance.now() - t0;
      assert.equal(res.status, 200, res.body.toString());
      t.diagnostic(`round ${round + 1}: request answered in ${elapsed.toFixed(0)} ms; /health during: ${fmt(health)}`);
      worst.push(health.max());
    }
    assertResponsive(t, `${ROUNDS} large JSON requests`, worst);

    await backend.waitForRequests(ROUNDS);
    const batch = new TraceBatch(backend.requests[0]!.bytes);
    assert.equal(batch.spanCount, 1000, 'every span was forwarded');
  } finally {
    await daemon.stop();
    await backend.close();
  }
});
