/**
 * The redaction processor in the daemon built from YAML (a Collector config's processor section as is):
 * spans in over gRPC, what a real OTLP backend receives decoded independently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { startDaemon } from '../helpers/daemon.js';
import { buildRequest, decodeSpans } from '../helpers/otlp.js';
import { grpcFrame, grpcRaw } from '../helpers/receiver-harness.js';

test('redaction from a Collector config: unlisted keys removed, card numbers and token keys masked, summary written', async () => {
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
processors:
  redaction:
    allow_all_keys: false
    allowed_keys: [service.name, description, group, id, name, api_token]
    ignored_keys: [safe_attribute]
    blocked_key_patterns: [".*token.*"]
    blocked_values:
      - "4[0-9]{12}(?:[0-9]{3})?" ## Visa credit card number
      - "(5[1-5][0-9]{14})"       ## MasterCard number
    summary: debug
  batch: { timeout: 10ms }
exporters:
  otlp: { endpoint: ${backend.endpoint}, tls: { insecure: true }, compression: none }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [redaction, batch], exporters: [otlp] }
`);
  try {
    const req = buildRequest([
      {
        attributes: { 'service.name': 'checkout', 'host.name': 'node-1' },
        scopes: [
          {
            spans: [
              {
                name: 'pay',
                attributes: {
                  description: 'paid with 5105105105105100 today',
                  group: 'temporary',
                  id: 5,
                  api_token: 'abc123',
                  safe_attribute: '4111111111111111',
                  'user.email': 'alice@example.com',
                },
              },
            ],
          },
        ],
      },
    ]);
    const g = await grpcRaw(daemon.grpcPort(), grpcFrame(req));
    assert.equal(g.grpcStatus, 0);
    await backend.waitForRequests(1);
    const [span] = decodeSpans(backend.requests[0]!.bytes);
    assert.deepEqual(span!.attributes, {
      description: 'paid with **** today',
      group: 'temporary',
      id: 5,
      api_token: '****',
      safe_attribute: '4111111111111111',
      'redaction.redacted.keys': 'user.email',
      'redaction.redacted.count': 1,
      'redaction.masked.keys': 'api_token,description',
      'redaction.masked.count': 2,
      'redaction.ignored.count': 1,
    });
    assert.deepEqual(span!.resource, { 'service.name': 'checkout', 'redaction.redacted.keys': 'host.name', 'redaction.redacted.count': 1 });
  } finally {
    await daemon.stop();
    await backend.close();
  }
});
