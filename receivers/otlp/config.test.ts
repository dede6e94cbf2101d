import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
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
    assert.deepEqual(c.protocols.grpc, {
      endpoint: 'localhost:4317',
      max_recv_msg_size_mib: 4,
      max_concurrent_streams: 100,
      keepalive: {
        server_parameters: { max_connection_idle: 60_000, max_connection_age_grace: 30_000, time: 7_200_000, timeout: 20_000 },
        enforcement_policy: { min_time: 300_000, permit_without_stream: false },
      },
      message_timeout: 30_000,
      max_inflight_mib: 256,
      max_inflight_mib_per_connection: 64,
    });
    assert.equal(c.protocols.http, undefined);
    const h = parseOrThrow(factory.schema, { protocols: { http: {} } });
    assert.deepEqual(h.protocols.http, {
      endpoint: 'localhost:4318',
      traces_url_path: '/v1/traces',
      max_request_body_size: 20971520,
      read_header_timeout: 60_000,
      read_timeout: 60_000,
      idle_timeout: 60_000,
      max_inflight_mib: 256,
    });
    assert.equal(h.protocols.grpc, undefined);
  });

  test('at least one protocol is required', () => {
    assert.deepEqual(parse({ protocols: {} }).errors, ['protocols: enable at least one of grpc, http']);
    assert.ok(parse({}).errors.length > 0);
  });

  test('Collector keys with no effect here are accepted with a warning; keys that work are not; unknown keys are errors', () => {
    const r = parse({
      protocols: {
        grpc: { keepalive: { server_parameters: { max_connection_idle: '30s', max_connection_age: '1h' }, enforcement_policy: { min_time: '10s' } }, include_metadata: true },
        http: { cors: {}, read_timeout: '10s', read_header_timeout: '5s', idle_timeout: '30s', bogus: 1 },
      },
    });
    assert.deepEqual(r.errors.length, 1);
    assert.match(r.errors[0]!, /^protocols\.http\.bogus: unknown key/);
    assert.deepEqual(r.warnings.map((w) => w.split(':')[0]).sort(), ['protocols.grpc.include_metadata', 'protocols.http.cors']);
  });

  test('the in-flight budgets hold at least one whole message', () => {
    assert.deepEqual(parse({ protocols: { grpc: { max_recv_msg_size_mib: 16, max_inflight_mib_per_connection: 8 } } }).errors, [
      'protocols: grpc.max_inflight_mib_per_connection must be at least grpc.max_recv_msg_size_mib',
    ]);
    assert.deepEqual(parse({ protocols: { http: { max_request_body_size: 64 * 1024 * 1024, max_inflight_mib: 32 } } }).errors, ['protocols: http.max_inflight_mib must hold at least one http.max_request_body_size']);
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
