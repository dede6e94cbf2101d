/**
 * Nothing lost, nothing silent, through the running daemon: a backend that is down, slow or pushing back
 * loses no acknowledged span and is reported in the log; with a persistent queue, kill -9 at random moments
 * loses no acknowledged span; damaged queue files cost only their damaged records; two daemons cannot share
 * a queue directory; SIGTERM explains itself and keeps its deadline.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { OtlpHttpTestServer } from '../helpers/exporter-http-server.js';
import { runCli, startDaemon, type CliProcess } from '../helpers/daemon.js';
import { decodeSpans, syntheticRequest } from '../helpers/otlp.js';
import { freePort } from '../helpers/net.js';
import { prng } from '../helpers/prng.js';
import { httpRequest } from '../helpers/receiver-harness.js';
import { sample } from '../helpers/prometheus-text.js';
import { until } from '../helpers/until.js';

const SECRET = 'Bearer s3cr3t-exporter-credential-0123456789';
const FAST_RETRY = 'retry_on_failure: { initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0 }';

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(join(tmpdir(), 'tw-nothing-lost-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The span ids a backend received, over every request (duplicates counted once); decoded as they come. */
const seen = new WeakMap<readonly unknown[], { read: number; ids: Set<string>; spans: number }>();
function receivedIds(requests: readonly { bytes: Uint8Array }[]): Set<string> {
  let s = seen.get(requests);
  if (s === undefined) seen.set(requests, (s = { read: 0, ids: new Set(), spans: 0 }));
  for (; s.read < requests.length; s.read++) {
    for (const span of decodeSpans(requests[s.read]!.bytes)) {
      s.ids.add(span.spanId);
      s.spans++;
    }
  }
  return s.ids;
}

function spanIds(req: Uint8Array): string[] {
  return decodeSpans(req).map((s) => s.spanId);
}

async function post(port: number, body: Uint8Array): Promise<number> {
  try {
    return (await httpRequest(port, { headers: { 'content-type': 'application/x-protobuf' }, body })).status;
  } catch {
    return 0; // the daemon went away mid-request: not acknowledged
  }
}

async function scrape(port: number, metric: string, labels: Record<string, string>): Promise<number | null> {
  return sample(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), metric, labels);
}

describe('backend trouble through the running daemon', () => {
  test('a backend refusing connections: warned at the default level within seconds with endpoint and cause, no secret logged; once it is up every acknowledged span arrives and the metrics match', async () => {
    const port = await freePort();
    const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
exporters:
  otlp: { endpoint: 127.0.0.1:${port}, tls: { insecure: true }, compression: none, headers: { authorization: "${SECRET}" }, ${FAST_RETRY} }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`);
    let backend: OtlpGrpcTestServer | null = null;
    try {
      const sent = new Set<string>();
      const t0 = Date.now();
      for (let i = 0; i < 12; i++) {
        const req = syntheticRequest(25, 3);
        assert.equal(await post(daemon.httpPort(), req), 200);
        for (const id of spanIds(req)) sent.add(id);
      }
      await until(() => daemon.logs.text.includes('exporter cannot deliver'), 'the warning');
      const warnedAfter = Date.now() - t0;
      const warning = daemon.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'exporter cannot deliver')!;
      assert.equal(warning.level, 'warn');
      assert.equal(warning.endpoint, `127.0.0.1:${port}`);
      assert.match(String(warning.cause), /^UNAVAILABLE \(ECONNREFUSED\)$/);
      assert.ok(warnedAfter < 5000, `warned after ${warnedAfter} ms`);
      const t = daemon.service.telemetry;
      assert.equal(await t.value('otelcol_exporter_queue_size', { exporter: 'otlp' }), 12, 'every batch is held, retrying');
      assert.ok((await t.value('tracewarden_exporter_retries_total', { exporter: 'otlp' })) > 0);

      backend = await OtlpGrpcTestServer.start({ port });
      await until(() => receivedIds(backend!.requests).size === sent.size, `all ${sent.size} spans at the backend`);
      assert.deepEqual([...receivedIds(backend.requests)].sort(), [...sent].sort());
      await until(() => daemon.logs.text.includes('exporter delivers again'), 'the recovery line');
      await daemon.stop();
      assert.equal(await t.value('otelcol_exporter_sent_spans_total', { exporter: 'otlp' }), sent.size);
      assert.equal(await t.value('otelcol_exporter_send_failed_spans_total', { exporter: 'otlp' }), 0);
      assert.equal(await t.value('tracewarden_dropped_spans_total'), 0);
      assert.equal(await t.value('otelcol_exporter_queue_size', { exporter: 'otlp' }), 0);
      assert.ok(!daemon.logs.text.includes('s3cr3t'), 'no header value in any log line');
      console.log(`# refused connections: warned after ${warnedAfter} ms; ${sent.size} spans delivered once the backend came up`);
    } finally {
      await daemon.stop();
      await backend?.close();
    }
  });

  test('UNAVAILABLE with RetryInfo and a slow backend (gRPC), HTTP 503 and 429 with Retry-After: every acknowledged span arrives and the metrics match', async () => {
    const grpcBackend = await OtlpGrpcTestServer.start();
    const httpBackend = await OtlpHttpTestServer.start();
    grpcBackend.replyWith({ code: 14, retryDelayMs: 50 }, { code: 14, retryDelayMs: 30 }, { code: 8, retryDelayMs: 20 });
    httpBackend.replyWith({ status: 503, retryAfter: '1' }, { status: 429, retryAfter: '0' }, { status: 503 });
    const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
exporters:
  otlp: { endpoint: ${grpcBackend.endpoint}, tls: { insecure: true }, timeout: 2s, ${FAST_RETRY} }
  otlphttp: { endpoint: ${httpBackend.url}, ${FAST_RETRY} }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp, otlphttp] }
`);
    try {
      const sent = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const req = syntheticRequest(20, 3);
        assert.equal(await post(daemon.httpPort(), req), 200);
        for (const id of spanIds(req)) sent.add(id);
      }
      // slow: hold the next calls for a while, then answer them
      grpcBackend.hold();
      const req = syntheticRequest(20, 3);
      assert.equal(await post(daemon.httpPort(), req), 200);
      for (const id of spanIds(req)) sent.add(id);
      await until(() => grpcBackend.heldCount > 0, 'a held call');
      await new Promise((r) => setTimeout(r, 300));
      grpcBackend.release();

      await until(() => receivedIds(grpcBackend.requests).size === sent.size, 'all spans at the gRPC backend');
      await until(() => receivedIds(httpBackend.requests).size === sent.size, 'all spans at the HTTP backend');
      await daemon.stop();
      const t = daemon.service.telemetry;
      for (const exporter of ['otlp', 'otlphttp']) {
        assert.equal(await t.value('otelcol_exporter_sent_spans_total', { exporter }), sent.size, exporter);
        assert.equal(await t.value('otelcol_exporter_send_failed_spans_total', { exporter }), 0, exporter);
        assert.equal(await t.value('tracewarden_exporter_retries_total', { exporter }), 3, exporter);
      }
      assert.equal(await t.value('tracewarden_dropped_spans_total'), 0);
      // each exporter warned at its first failure (a delivery in between may end an episode and start another)
      const warned = daemon.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'exporter cannot deliver');
      assert.deepEqual([...new Set(warned.map((l) => l.component))].sort(), ['otlp', 'otlphttp']);
      for (const l of warned) assert.match(String(l.cause), /^(UNAVAILABLE|RESOURCE_EXHAUSTED|HTTP 503|HTTP 429)$/);
      assert.equal(warned.find((l) => l.component === 'otlphttp')!.endpoint, `${httpBackend.url.replace(/\/$/, '')}/v1/traces`);
    } finally {
      await daemon.stop();
      await grpcBackend.close();
      await httpBackend.close();
    }
  });
});

/** A daemon as a child process with a persistent queue in `dir`, its ports fixed so a restart keeps them. */
class QueueDaemon {
  readonly configPath: string;
  private constructor(
    readonly dir: string,
    readonly httpPort: number,
    readonly metricsPort: number,
    backendPort: number,
    opts: { fsync: boolean; shutdownTimeout?: string },
  ) {
    this.configPath = join(dir, `config-${httpPort}.yaml`);
    fs.writeFileSync(
      this.configPath,
      `
extensions:
  file_storage: { directory: ${join(dir, 'queue')}, create_directory: true, fsync: ${opts.fsync}, timeout: 100ms }
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:${httpPort} }
exporters:
  otlp:
    endpoint: 127.0.0.1:${backendPort}
    tls: { insecure: true }
    compression: none
    timeout: 1s
    ${FAST_RETRY}
    sending_queue: { storage: file_storage, queue_size: 5000 }
service:
  extensions: [file_storage]
  shutdown_timeout: ${opts.shutdownTimeout ?? '5s'}
  telemetry: { metrics: { address: 127.0.0.1:${metricsPort} }, logs: { level: info } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`,
    );
  }

  /** A daemon on fresh ports, with its queue in `dir` and its exporter pointed at `backendPort`. */
  static async on(dir: string, backendPort: number, opts: { fsync: boolean; shutdownTimeout?: string }): Promise<QueueDaemon> {
    return new QueueDaemon(dir, await freePort(), await freePort(), backendPort, opts);
  }

  async start(): Promise<CliProcess> {
    const p = runCli(['run', '--config', this.configPath]);
    await p.waitForLog('tracewarden is running');
    return p;
  }
}

async function stopped(p: CliProcess): Promise<{ code: number | null }> {
  p.child.kill('SIGTERM');
  return p.exit;
}

describe('a persistent queue through the daemon process', () => {
  test('kill -9 at random moments with the backend down, then a restart with it up: every acknowledged span is delivered', async () => {
    const seed = Number(process.env['KILL_SEED'] ?? Date.now() % 100_000);
    console.log(`# seed ${seed} (KILL_SEED=${seed} replays it)`);
    const rand = prng(seed);
    const dir = tempDir();
    const backendPort = await freePort();
    const acked = new Set<string>();
    let requests = 0;
    let refused = 0;
    for (let round = 0; round < 4; round++) {
      const d = await QueueDaemon.on(dir, backendPort, { fsync: round % 2 === 0 });
      const p = await d.start();
      const killAt = Date.now() + 150 + Math.floor(rand() * 600);
      let killed = false;
      // two senders in parallel until the kill, so the kill lands mid-request as well as between requests
      const sender = async () => {
        while (!killed) {
          const req = syntheticRequest(10 + Math.floor(rand() * 40), 2);
          requests++;
          const status = await post(d.httpPort, req);
          if (status === 200) for (const id of spanIds(req)) acked.add(id);
          else refused++;
        }
      };
      const senders = [sender(), sender()];
      await new Promise((r) => setTimeout(r, Math.max(0, killAt - Date.now())));
      p.child.kill('SIGKILL');
      killed = true;
      await p.exit;
      await Promise.all(senders);
    }
    assert.ok(acked.size > 0);

    const backend = await OtlpGrpcTestServer.start({ port: backendPort });
    const d = await QueueDaemon.on(dir, backendPort, { fsync: false });
    const p = await d.start();
    try {
      const missing = () => [...acked].filter((id) => !receivedIds(backend.requests).has(id)).length;
      await until(() => missing() === 0, `${acked.size} acknowledged spans delivered`, 60_000).catch((err) => {
        throw new Error(`${(err as Error).message}: ${missing()} missing`);
      });
      const got = receivedIds(backend.requests);
      const delivered = seen.get(backend.requests)!.spans;
      // a record torn by the kill is counted as damaged; it was never acknowledged
      const torn = await scrape(d.metricsPort, 'tracewarden_queue_corrupt_records_total', { exporter: 'otlp' });
      assert.ok(torn !== null && torn <= 4, `${torn} damaged records after 4 kills`);
      console.log(
        `# 4 kills: ${requests} requests, ${acked.size} spans acknowledged, ${refused} requests cut by the kill, ${torn} torn records; ` +
          `${got.size} distinct spans delivered (${delivered - got.size} again: at least once)`,
      );
    } finally {
      await stopped(p);
      await backend.close();
    }
  });

  test('a queue file cut in the middle of a record and one with a flipped byte: the daemon starts, delivers the rest and counts the damage', async () => {
    const dir = tempDir();
    const backendPort = await freePort();
    const down = await QueueDaemon.on(dir, backendPort, { fsync: true, shutdownTimeout: '200ms' });
    const p = await down.start();
    const reqs: Uint8Array[] = [];
    for (let i = 0; i < 6; i++) {
      const req = syntheticRequest(10, 2);
      assert.equal(await post(down.httpPort, req), 200);
      reqs.push(req);
    }
    assert.equal((await stopped(p)).code, 0);
    assert.match(p.stderr(), /undelivered batches stay in the persistent queue for the next start/);

    const queueDir = join(dir, 'queue', 'exporter_otlp__traces');
    const seg = join(queueDir, fs.readdirSync(queueDir).find((f) => f.endsWith('.seg'))!);
    const bytes = fs.readFileSync(seg);
    const sizes = reqs.map((r) => 28 + r.length);
    // flip a byte inside the second record's payload, cut the last record in half
    const second = sizes[0]! + 28 + 40;
    bytes[second]! ^= 0x20;
    const cut = sizes.slice(0, 5).reduce((a, b) => a + b, 0) + Math.floor(sizes[5]! / 2);
    fs.writeFileSync(seg, bytes.subarray(0, cut));

    const backend = await OtlpGrpcTestServer.start({ port: backendPort });
    const up = await QueueDaemon.on(dir, backendPort, { fsync: true });
    const q = await up.start();
    try {
      const expected = new Set([0, 2, 3, 4].flatMap((i) => spanIds(reqs[i]!)));
      await until(() => receivedIds(backend.requests).size === expected.size, 'the intact batches delivered');
      assert.deepEqual([...receivedIds(backend.requests)].sort(), [...expected].sort());
      assert.equal(await scrape(up.metricsPort, 'tracewarden_queue_corrupt_records_total', { exporter: 'otlp' }), 2);
      assert.match(q.stderr(), /damaged records skipped/);
    } finally {
      await stopped(q);
      await backend.close();
    }
  });

  test('two daemons on one queue directory: the second refuses to start, naming the directory and the first', async () => {
    const dir = tempDir();
    const backendPort = await freePort();
    const first = await (await QueueDaemon.on(dir, backendPort, { fsync: false })).start();
    try {
      const second = runCli(['run', '--config', (await QueueDaemon.on(dir, backendPort, { fsync: false })).configPath]);
      const { code } = await second.exit;
      assert.notEqual(code, 0);
      assert.match(second.stderr(), new RegExp(`file_storage: directory ${join(dir, 'queue')} is in use by another tracewarden \\(pid ${first.child.pid} on `));
    } finally {
      await stopped(first);
    }
  });

  test('SIGTERM with the backend down: each step logged, exit 0 within shutdown_timeout plus a second; without storage what is left is counted as dropped', async () => {
    const dir = tempDir();
    const backendPort = await freePort();
    const httpPort = await freePort();
    const configPath = join(dir, 'memory.yaml');
    fs.writeFileSync(
      configPath,
      `
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:${httpPort} }
exporters:
  otlp: { endpoint: 127.0.0.1:${backendPort}, tls: { insecure: true }, ${FAST_RETRY} }
service:
  shutdown_timeout: 1500ms
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`,
    );
    const p = runCli(['run', '--config', configPath]);
    await p.waitForLog('tracewarden is running');
    for (let i = 0; i < 3; i++) assert.equal(await post(httpPort, syntheticRequest(7, 2)), 200);
    await p.waitForLog('exporter cannot deliver');
    const t0 = Date.now();
    p.child.kill('SIGTERM');
    const { code } = await p.exit;
    const took = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(took < 2500, `exited ${took} ms after SIGTERM`);
    const log = p.stderr();
    for (const step of ['shutting down: receivers first', '"component":"otlp"', 'draining the sending queue', 'export failed; spans dropped', 'tracewarden stopped']) {
      assert.ok(log.includes(step), `logged: ${step}`);
    }
    const drops = log.split('\n').filter((l) => l.includes('export failed; spans dropped')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(drops.reduce((n, l) => n + Number(l.spans), 0), 21);
    for (const l of drops) {
      assert.equal(l.reason, 'shutdown');
      assert.ok(Number(l.attempts) >= 1, 'the real attempt count');
    }
    console.log(`# SIGTERM with the backend down and shutdown_timeout 1.5 s: exited 0 after ${took} ms`);
  });
});
