/**
 * The telemetry server's /metrics under load: scrapes share renders (at most one per interval), yet no
 * scrape is answered with a render older than the scrape itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { connect } from 'node:net';
import { Telemetry } from './telemetry.js';
import { MIN_RENDER_INTERVAL_MS, TelemetryServer } from './telemetry-server.js';

function get(port: number, path: string, agent: http.Agent): Promise<{ status: number; type: string | undefined; length: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], length: res.headers['content-length'], text }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function sample(text: string, line: string): number | null {
  const m = new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m === null ? null : Number(m[1]);
}

async function started(): Promise<{ telemetry: Telemetry; server: TelemetryServer; agent: http.Agent }> {
  const telemetry = new Telemetry();
  const server = new TelemetryServer(telemetry, '127.0.0.1:0', () => ({ ready: true, notReady: [] }));
  await server.start();
  return { telemetry, server, agent: new http.Agent({ keepAlive: true, maxSockets: 64 }) };
}

test('every scrape sees what changed before it was sent, even right after another scrape', async () => {
  const { telemetry, server, agent } = await started();
  try {
    const c = telemetry.receiverAccepted.labels('otlp', 'http');
    for (let i = 1; i <= 5; i++) {
      c.inc(1);
      const r = await get(server.boundPort, '/metrics', agent);
      assert.equal(r.status, 200);
      assert.equal(r.type, telemetry.registry.contentType);
      assert.equal(Number(r.length), Buffer.byteLength(r.text));
      assert.equal(sample(r.text, 'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"}'), i, `scrape ${i}`);
    }
    assert.equal(server.metrics.renders, 5, 'sequential scrapes each get a render (a later one waits for the interval instead of a stale page)');
  } finally {
    agent.destroy();
    await server.stop();
  }
});

test('concurrent scrapes share one render; a pipelined flood costs a few renders, not one each', async () => {
  const { telemetry, server, agent } = await started();
  try {
    const c = telemetry.receiverAccepted.labels('otlp', 'grpc');
    c.inc(7);
    const all = await Promise.all(Array.from({ length: 50 }, () => get(server.boundPort, '/metrics', agent)));
    for (const r of all) assert.equal(sample(r.text, 'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"}'), 7);
    assert.ok(server.metrics.renders <= 3, `50 concurrent scrapes took ${server.metrics.renders} renders`);

    // 1,000 pipelined GETs on one connection, as one write.
    const before = server.metrics.renders;
    const N = 1000;
    const sock = connect(server.boundPort, '127.0.0.1');
    let seen = 0;
    let tail = '';
    const done = new Promise<void>((resolve, reject) => {
      sock.on('data', (d: Buffer) => {
        const s = tail + d.toString('latin1');
        let i = -1;
        while ((i = s.indexOf('HTTP/1.1 200 OK\r\n', i + 1)) >= 0) seen++;
        tail = s.slice(-16);
        if (seen >= N) resolve();
      });
      sock.on('error', reject);
      sock.on('close', () => (seen >= N ? resolve() : reject(new Error(`closed after ${seen} responses`))));
    });
    sock.write('GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n'.repeat(N));
    const t0 = performance.now();
    await done;
    const elapsed = performance.now() - t0;
    sock.destroy();
    const renders = server.metrics.renders - before;
    assert.equal(seen, N);
    assert.ok(renders >= 1 && renders <= 1 + Math.ceil(elapsed / MIN_RENDER_INTERVAL_MS), `${renders} renders in ${elapsed.toFixed(0)} ms`);
  } finally {
    agent.destroy();
    await server.stop();
  }
});

test('HEAD /metrics answers headers only; a failing collection is a 500 to every waiting scrape', async () => {
  const { telemetry, server, agent } = await started();
  try {
    const head = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.boundPort, path: '/metrics', method: 'HEAD', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-type'], telemetry.registry.contentType);

    telemetry.gauge('test_broken', 'a collect callback that throws', []);
    const broken = telemetry.registry.getSingleMetric('test_broken') as unknown as { collect?: () => void };
    broken.collect = () => {
      throw new Error('collect failed');
    };
    const both = await Promise.all([get(server.boundPort, '/metrics', agent), get(server.boundPort, '/metrics', agent)]);
    for (const r of both) {
      assert.equal(r.status, 500);
      assert.equal(r.text, 'metrics collection failed\n');
    }
    assert.equal((await get(server.boundPort, '/health', agent)).status, 200);
  } finally {
    agent.destroy();
    await server.stop();
  }
});

test('stopping with scrapes waiting for a render neither throws nor hangs', async () => {
  const { server, agent } = await started();
  await get(server.boundPort, '/metrics', agent);
  // The next scrape waits for the interval; the server stops meanwhile.
  const pending = get(server.boundPort, '/metrics', agent).then(
    () => 'answered',
    () => 'cut',
  );
  await new Promise((r) => setImmediate(r));
  agent.destroy();
  await server.stop();
  assert.ok(['answered', 'cut'].includes(await pending));
});
