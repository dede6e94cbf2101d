/**
 * Soak: sustained load at a fixed rate through the daemon (a child process, as deployed) with the identity
 * processor verifying a bearer JWT on every span and a persistent sending queue, for a set time; the backend
 * is taken down for the middle third and brought back. Reports what was delivered of what was acknowledged,
 * the daemon's RSS and the queue's size on disk over time, and latency percentiles (acknowledgement, and
 * delivery to the backend). Not run in CI.
 *
 *   npm run bench:soak                                    60 s at 5,000 spans/s, fsync off
 *   SOAK_SECONDS=600 SOAK_RATE=5000 SOAK_FSYNC=true npm run bench:soak
 *
 * Results are printed and written to bench/results/soak-<fsync>-<time>.json.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRequest, type SpanSpec } from '../test/helpers/otlp.js';
import { jwksOf, makeSigningKey, signJwt, validClaims } from '../test/helpers/jwks-server.js';
import { freePort } from '../test/helpers/net.js';
import { AUTH, spanAttributes } from './spans.js';

const SECONDS = Number(process.env['SOAK_SECONDS'] ?? 60);
const RATE = Number(process.env['SOAK_RATE'] ?? 5000);
const FSYNC = process.env['SOAK_FSYNC'] === 'true';
const BATCH = Number(process.env['SOAK_BATCH'] ?? 100);
const SAMPLE_MS = 5000;
const ISS = 'https://idp.soak.example';
const CLI = fileURLToPath(new URL('../cmd/tracewarden.js', import.meta.url));
const SEQ_MARK = Buffer.from('soak-seq-');

/** A gRPC OTLP backend that keeps only what the figures need: which requests arrived, and when. */
class CountingBackend {
  private server: http2.Http2Server | null = null;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  readonly arrivals = new Map<number, number>(); // seq -> first arrival (ms)
  duplicates = 0;
  spans = 0;

  constructor(readonly port: number) {}

  async up(): Promise<void> {
    const server = http2.createServer();
    server.on('session', (s) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
    });
    server.on('stream', (stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', () => {});
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.length < 5 || body.length < 5 + body.readUInt32BE(1)) return;
        const msg = body.subarray(5);
        const at = msg.indexOf(SEQ_MARK);
        const seq = at < 0 ? -1 : Number(msg.subarray(at + SEQ_MARK.length, at + SEQ_MARK.length + 10).toString('latin1'));
        if (this.arrivals.has(seq)) this.duplicates++;
        else this.arrivals.set(seq, Date.now());
        this.spans += BATCH;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sessions) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function dirBytes(dir: string): number {
  let n = 0;
  try {
    for (const f of fs.readdirSync(dir)) n += fs.statSync(join(dir, f)).size;
  } catch {
    // not created yet
  }
  return n;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tw-soak-'));
  const key = await makeSigningKey('RS256');
  fs.writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwksOf(key)));
  const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => signJwt(validClaims(ISS, 'orders', { sub: `user-${i}` }, SECONDS + 3600), key)));
  const [httpPort, metricsPort, backendPort] = [await freePort(), await freePort(), await freePort()];
  const queueDir = join(dir, 'queue');
  const config = join(dir, 'soak.yaml');
  fs.writeFileSync(
    config,
    `
extensions:
  file_storage: { directory: ${queueDir}, create_directory: true, fsync: ${FSYNC} }
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:${httpPort} }
processors:
  identity:
    issuers: [{ issuer: ${ISS}, jwks_file: ${join(dir, 'jwks.json')}, audiences: [orders] }]
    on_invalid: tag
    audit: { enabled: false }
exporters:
  otlp:
    endpoint: 127.0.0.1:${backendPort}
    tls: { insecure: true }
    compression: none
    retry_on_failure: { initial_interval: 200ms, max_interval: 2s, max_elapsed_time: 0 }
    sending_queue: { storage: file_storage, queue_size: 100000, max_storage_mib: 4096 }
service:
  extensions: [file_storage]
  telemetry: { metrics: { address: 127.0.0.1:${metricsPort} }, logs: { level: warn } }
  pipelines:
    traces: { receivers: [otlp], processors: [identity], exporters: [otlp] }
`,
  );
  const backend = new CountingBackend(backendPort);
  await backend.up();
  const daemon = spawn(process.execPath, [CLI, 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${metricsPort}/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const sentAt = new Map<number, number>();
  const ackLatency: number[] = [];
  let acked = 0;
  let refused = 0;
  let inFlight = 0;
  const post = (seq: number, body: Uint8Array): void => {
    inFlight++;
    const t0 = Date.now();
    const req = http.request({ host: '127.0.0.1', port: httpPort, path: '/v1/traces', method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf' } }, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight--;
        if (res.statusCode === 200) {
          acked++;
          sentAt.set(seq, t0);
          ackLatency.push(Date.now() - t0);
        } else refused++;
      });
    });
    req.on('error', () => {
      inFlight--;
      refused++;
    });
    req.end(body);
  };
  const request = (seq: number): Uint8Array => {
    const spans: SpanSpec[] = [];
    for (let i = 0; i < BATCH; i++) spans.push({ name: `GET /api/v1/orders/{id} ${i % 11}`, attributes: spanAttributes(i, { [AUTH]: [`Bearer ${tokens[(seq + i) % tokens.length]}`] }) });
    return buildRequest([{ attributes: { 'service.name': 'orders', 'soak.seq': `soak-seq-${String(seq).padStart(10, '0')}` }, scopes: [{ spans }] }]);
  };

  const start = Date.now();
  const end = start + SECONDS * 1000;
  const outage = [start + (SECONDS * 1000) / 3, start + (2 * SECONDS * 1000) / 3];
  const samples: { t: number; rss_mib: number; queue_disk_mib: number; queue_batches: number; backend: string }[] = [];
  let seq = 0;
  let phase: 'before' | 'outage' | 'after' = 'before';
  let nextSample = start;
  console.log(`soak: ${SECONDS} s at ${RATE} spans/s (${BATCH} a request), fsync ${FSYNC}, backend down from ${SECONDS / 3} s to ${(2 * SECONDS) / 3} s`);
  while (Date.now() < end) {
    const now = Date.now();
    const due = Math.floor(((now - start) / 1000) * (RATE / BATCH));
    while (seq < due && inFlight < 64) post(seq, request(seq++));
    if (phase === 'before' && now >= outage[0]!) {
      await backend.down();
      phase = 'outage';
    } else if (phase === 'outage' && now >= outage[1]!) {
      await backend.up();
      phase = 'after';
    }
    if (now >= nextSample) {
      nextSample += SAMPLE_MS;
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const q = /^otelcol_exporter_queue_size\{[^}]*\} (\d+)/m.exec(metrics);
      samples.push({
        t: Math.round((now - start) / 1000),
        rss_mib: Math.round(rssMiB(daemon.pid!)),
        queue_disk_mib: Math.round(dirBytes(join(queueDir, 'exporter_otlp__traces')) / 1048576),
        queue_batches: q ? Number(q[1]) : NaN,
        backend: phase === 'outage' ? 'down' : 'up',
      });
      const s = samples.at(-1)!;
      console.log(`  t=${String(s.t).padStart(4)} s  rss ${s.rss_mib} MiB  queue ${s.queue_batches} batches, ${s.queue_disk_mib} MiB on disk  backend ${s.backend}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // let it drain
  const drainStart = Date.now();
  while (inFlight > 0 || [...sentAt.keys()].some((k) => !backend.arrivals.has(k))) {
    if (Date.now() - drainStart > 120_000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const drainedAfter = Date.now() - drainStart;
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  await backend.down();
  agent.destroy();

  let lost = 0;
  const delivery: number[] = [];
  const deliveryOutsideOutage: number[] = [];
  for (const [s, t0] of sentAt) {
    const at = backend.arrivals.get(s);
    if (at === undefined) {
      lost++;
      continue;
    }
    delivery.push(at - t0);
    if (t0 < outage[0]! - 5000 || t0 > outage[1]! + 30_000) deliveryOutsideOutage.push(at - t0);
  }
  ackLatency.sort((a, b) => a - b);
  delivery.sort((a, b) => a - b);
  deliveryOutsideOutage.sort((a, b) => a - b);
  const pct = (xs: number[]) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: xs.at(-1) ?? NaN });
  const result = {
    seconds: SECONDS,
    rate_spans_per_s: RATE,
    fsync: FSYNC,
    requests_sent: seq,
    requests_acknowledged: acked,
    requests_refused: refused,
    acknowledged_delivered: acked - lost,
    acknowledged_lost: lost,
    duplicates_delivered: backend.duplicates,
    drained_after_ms: drainedAfter,
    ack_latency_ms: pct(ackLatency),
    delivery_latency_ms: pct(delivery),
    delivery_latency_outside_outage_ms: pct(deliveryOutsideOutage),
    rss_mib: { max: Math.max(...samples.map((s) => s.rss_mib)), last: samples.at(-1)?.rss_mib },
    queue_disk_mib_max: Math.max(...samples.map((s) => s.queue_disk_mib)),
    samples,
  };
  console.log(`delivered ${result.acknowledged_delivered} of ${acked} acknowledged requests (${lost} lost, ${backend.duplicates} duplicates), ${refused} refused`);
  console.log(`ack latency ms: p50 ${result.ack_latency_ms.p50}  p90 ${result.ack_latency_ms.p90}  p99 ${result.ack_latency_ms.p99}  max ${result.ack_latency_ms.max}`);
  console.log(`delivery latency ms (all): p50 ${result.delivery_latency_ms.p50}  p99 ${result.delivery_latency_ms.p99}  max ${result.delivery_latency_ms.max}`);
  console.log(`delivery latency ms (outside the outage): p50 ${result.delivery_latency_outside_outage_ms.p50}  p99 ${result.delivery_latency_outside_outage_ms.p99}`);
  console.log(`RSS max ${result.rss_mib.max} MiB; queue on disk max ${result.queue_disk_mib_max} MiB; drained ${drainedAfter} ms after the load stopped`);
  const out = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  fs.mkdirSync(out, { recursive: true });
  const file = join(out, `soak-fsync-${FSYNC}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`written to ${file}`);
  if (stderr.includes('"level":"error"')) console.log(`daemon errors:\n${stderr}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
