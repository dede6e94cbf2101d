/**
 * `tracewarden run` as a real child process: it serves, flushes what it holds on SIGTERM or SIGINT and exits
 * 0, refuses to start on a bad config or a busy port, and runs on its embedded default config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { runCli } from '../helpers/daemon.js';
import { freePort } from '../helpers/net.js';
import { exportOnce, sdkSpans } from '../helpers/receiver-sdk.js';

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-cli-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, text);
  return file;
}

async function daemonConfig(): Promise<{ file: string; grpc: number; metrics: number }> {
  const grpc = await freePort();
  const metrics = await freePort();
  // A long batch timeout: the spans are still held when the signal arrives, so exit must flush them.
  const file = configFile(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:${grpc} }
processors:
  batch: { timeout: 60s }
exporters:
  debug: { verbosity: normal }
service:
  telemetry: { metrics: { address: 127.0.0.1:${metrics} } }
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [debug] }
`);
  return { file, grpc, metrics };
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`on ${signal} the daemon stops receiving, flushes held spans and exits 0`, async () => {
    const { file, grpc, metrics } = await daemonConfig();
    const cli = runCli(['run', '--config', file]);
    try {
      await cli.waitForLog('tracewarden is running');
      const health = await fetch(`http://127.0.0.1:${metrics}/health`);
      assert.equal(health.status, 200);
      const spans = await sdkSpans(3, 'cli-test');
      const exporter = new GrpcExporter({ url: `http://127.0.0.1:${grpc}` });
      assert.equal((await exportOnce(exporter, spans)).code, 0);
      await exporter.shutdown();
      assert.ok(!cli.stdout().includes('op-0'), 'nothing is printed before the batch is flushed');
      cli.child.kill(signal);
      const { code } = await cli.exit;
      assert.equal(code, 0, cli.stderr());
      for (const s of spans) assert.ok(cli.stdout().includes(s.spanContext().spanId), `span ${s.name} was flushed on ${signal}`);
      assert.match(cli.stderr(), new RegExp(`received ${signal}; stopping receivers and flushing`));
      assert.match(cli.stderr(), /"msg":"tracewarden stopped"/);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });
}

test('run refuses an invalid config with every problem and exits 1', async () => {
  const file = configFile('receivers:\n  otlp:\n    protocols:\n      grpc: { endpoint: nowhere }\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: { receivers: [otlp], exporters: [debug, missing] }\n');
  const cli = runCli(['run', '--config', file]);
  const { code } = await cli.exit;
  assert.equal(code, 1);
  assert.match(cli.stderr(), /invalid configuration: 2 problems/);
  assert.match(cli.stderr(), /config\.yaml:4:\d+: receivers\.otlp\.protocols\.grpc\.endpoint: expected host:port/);
  assert.match(cli.stderr(), /references exporter "missing"/);
});

test('run exits 1 with a clear message when a port is taken, leaving nothing listening', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = (blocker.address() as { port: number }).port;
  const metrics = await freePort();
  const file = configFile(`receivers:\n  otlp:\n    protocols:\n      grpc: { endpoint: 127.0.0.1:${taken} }\nexporters:\n  debug:\nservice:\n  telemetry: { metrics: { address: 127.0.0.1:${metrics} } }\n  pipelines:\n    traces: { receivers: [otlp], exporters: [debug] }\n`);
  try {
    const cli = runCli(['run', '--config', file]);
    const { code } = await cli.exit;
    assert.equal(code, 1);
    assert.match(cli.stderr(), new RegExp(`tracewarden failed to start: cannot listen for otlp/grpc on 127\\.0\\.0\\.1:${taken}: EADDRINUSE`));
    // The telemetry server it had started was closed again.
    await assert.rejects(fetch(`http://127.0.0.1:${metrics}/health`));
  } finally {
    blocker.close();
  }
});

test('run with no --config serves the embedded default: OTLP on 4317/4318, metrics and health on 8888', async () => {
  const cli = runCli(['run']);
  try {
    await cli.waitForLog('tracewarden is running');
    const ready = await fetch('http://localhost:8888/ready');
    assert.equal(ready.status, 200);
    const before = await (await fetch('http://localhost:8888/metrics')).text();
    assert.match(before, /otelcol_receiver_accepted_spans_total\{receiver="otlp",transport="grpc"\} 0\n/);
    const exporter = new GrpcExporter({ url: 'http://localhost:4317' });
    const spans = await sdkSpans(2, 'default-config');
    assert.equal((await exportOnce(exporter, spans)).code, 0);
    await exporter.shutdown();
    const res = await fetch('http://localhost:4318/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceSpans":[]}' });
    assert.equal(res.status, 200);
    const after = await (await fetch('http://localhost:8888/metrics')).text();
    assert.match(after, /otelcol_receiver_accepted_spans_total\{receiver="otlp",transport="grpc"\} 2\n/);
    cli.child.kill('SIGTERM');
    const { code } = await cli.exit;
    assert.equal(code, 0, cli.stderr());
    // The default prints a summary line per batch with the debug exporter.
    assert.match(cli.stdout(), /"spans": 2\}/);
  } finally {
    cli.child.kill('SIGKILL');
  }
});
