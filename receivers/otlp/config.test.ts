import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ParseContext, parseOrThrow } from '../../pipeline/schema.js';
import { factory } from './index.js';

function parse(value: unknown): { out: unknown; errors: string[]; warnings: string[] } {
  const ctx = new ParseContext();
  const out = factory.schema.parse(value, [], ctx);
  const fmt = (w: boolean): string[] => ctx.issues.filter((i) => !!i.warning === w).map((i) => `${i.path.join('.')}: ${i.message}`);
  return { out, errors: fmt(false), warnings: fmt(true) };
}

describe('otlp receiver config', () => {
  test('a protocol given with no value is enabled with the Collector defaults; the other stays off', () => {
    const c = parseOrThrow(factory.schema, { protocols: { grpc: null } });
    assert.deepEqual(c.protocols.grpc, { endpoint: 'localhost:4317', max_recv_msg_size_mib: 4 });
    assert.equal(c.protocols.http, undefined);
    const h = parseOrThrow(factory.schema, { protocols: { http: {} } });
    assert.deepEqual(h.protocols.http, { endpoint: 'localhost:4318', traces_url_path: '/v1/traces', max_request_body_size: 20971520 });
    assert.equal(h.protocols.grpc, undefined);
  });

  test('at least one protocol is required', () => {
    assert.deepEqual(parse({ protocols: {} }).errors, ['protocols: enable at least one of grpc, http']);
    assert.ok(parse({}).errors.length > 0);
  });

  test('Collector keys with no effect here are accepted with a warning; unknown keys are errors', () => {
    const r = parse({ protocols: { grpc: { keepalive: { server_parameters: {} }, include_metadata: true }, http: { cors: {}, bogus: 1 } } });
    assert.deepEqual(r.errors.length, 1);
    assert.match(r.errors[0]!, /^protocols\.http\.bogus: unknown key/);
    assert.equal(r.warnings.length, 3);
    assert.ok(r.warnings.some((w) => w.startsWith('protocols.grpc.keepalive: accepted for OpenTelemetry Collector compatibility')));
  });

  test('tls, auth, limits and endpoints are validated', () => {
    const c = parseOrThrow(factory.schema, {
      protocols: {
        grpc: { endpoint: '0.0.0.0:14317', max_recv_msg_size_mib: 16, max_concurrent_streams: 50, tls: { cert_file: '/c.pem', key_file: '/k.pem' }, auth: { authenticator: 'bearertokenauth' } },
      },
    });
    assert.deepEqual(c.protocols.grpc?.tls, { cert_file: '/c.pem', key_file: '/k.pem', min_version: '1.2' });
    assert.equal(c.protocols.grpc?.auth?.authenticator, 'bearertokenauth');
    const bad = parse({ protocols: { grpc: { endpoint: 'nohost', tls: { cert_file: '/c.pem' }, max_recv_msg_size_mib: 0 }, http: { traces_url_path: 'v1/traces' } } });
    assert.deepEqual(bad.errors.map((e) => e.split(':')[0]).sort(), [
      'protocols.grpc.endpoint',
      'protocols.grpc.max_recv_msg_size_mib',
      'protocols.grpc.tls.key_file',
      'protocols.http.traces_url_path',
    ]);
  });
});
