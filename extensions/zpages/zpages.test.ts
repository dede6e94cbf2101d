/**
 * The zpages extension in a running daemon: the pipelines page lists each pipeline's components and their
 * readiness, the service page shows the recent warnings (a backend that refuses connections), HTML-escaped
 * and without any field of the log line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon } from '../../test/helpers/daemon.js';
import { freePort } from '../../test/helpers/net.js';
import { buildRequest } from '../../test/helpers/otlp.js';
import { grpcFrame, grpcRaw } from '../../test/helpers/receiver-harness.js';
import { until } from '../../test/helpers/until.js';
import type { ZpagesExtension } from './zpages-extension.js';

test('pipelinez lists components and readiness; servicez shows recent warnings', async () => {
  const closed = await freePort();
  const daemon = await startDaemon(`
extensions:
  zpages: { endpoint: 127.0.0.1:0 }
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
processors:
  batch: { timeout: 10ms }
exporters:
  otlp: { endpoint: 127.0.0.1:${closed}, tls: { insecure: true }, retry_on_failure: { initial_interval: 50ms, max_interval: 100ms } }
service:
  extensions: [zpages]
  telemetry: { metrics: { level: none } }
  pipelines:
    traces/main: { receivers: [otlp], processors: [batch], exporters: [otlp] }
`);
  try {
    const z = daemon.service.getExtension('zpages') as ZpagesExtension;
    const base = `http://127.0.0.1:${z.port}/debug`;
    const pipelinez = await (await fetch(`${base}/pipelinez`)).text();
    assert.match(pipelinez, /<td>traces\/main<\/td><td>otlp \(ready\)<\/td><td>batch \(ready\)<\/td><td>otlp \(ready\)<\/td>/);
    const g = await grpcRaw(daemon.grpcPort(), grpcFrame(buildRequest([{ scopes: [{ spans: [{ attributes: { 'http.request.header.authorization': 'Bearer secret-value' } }] }] }])));
    assert.equal(g.grpcStatus, 0);
    await until(() => daemon.logs.text.includes('exporter cannot deliver'), 'the delivery warning');
    const servicez = await (await fetch(`${base}/servicez`)).text();
    assert.match(servicez, /<td>warn<\/td><td>otlp<\/td><td>exporter cannot deliver<\/td>/);
    assert.ok(!servicez.includes('secret-value'));
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.match(await (await fetch(`${base}/tracez`)).text(), /does not trace itself/);
  } finally {
    await daemon.stop();
  }
});
