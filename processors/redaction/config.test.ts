import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultRegistry } from '../../cmd/components.js';
import { loadConfig } from '../../pipeline/config/config.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { redactionConfigSchema } from './config.js';
import { factory } from './index.js';

test('defaults are the Collector defaults: nothing allowed, no patterns, no hashing, no summary', () => {
  assert.deepEqual(parseOrThrow(redactionConfigSchema, {}), {
    allow_all_keys: false,
    allowed_keys: [],
    ignored_keys: [],
    ignored_key_patterns: [],
    blocked_key_patterns: [],
    blocked_values: [],
    allowed_values: [],
    redact_all_types: false,
    hash_function: '',
    summary: 'silent',
  });
  assert.equal(factory.type, 'redaction');
  assert.equal(factory.kind, 'processor');
});

test('the Collector README example parses', () => {
  const c = parseOrThrow(redactionConfigSchema, {
    allow_all_keys: false,
    allowed_keys: ['description', 'group', 'id', 'name'],
    ignored_keys: ['safe_attribute'],
    redact_all_types: true,
    blocked_key_patterns: ['.*token.*', '.*api_key.*'],
    blocked_values: ['4[0-9]{12}(?:[0-9]{3})?', '(5[1-5][0-9]{14})'],
    allowed_values: ['.+@mycompany.com'],
    hash_function: 'md5',
    summary: 'debug',
  });
  assert.equal(c.hash_function, 'md5');
  assert.deepEqual(c.blocked_values, ['4[0-9]{12}(?:[0-9]{3})?', '(5[1-5][0-9]{14})']);
});

test('a bad pattern is refused with its key, index and reason', () => {
  assert.throws(() => parseOrThrow(redactionConfigSchema, { blocked_values: ['ok', '4[0-9'] }), /blocked_values\.1: .*"4\[0-9"/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { allowed_values: ['(unclosed'] }), /allowed_values\.0: invalid regular expression "\(unclosed"/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { blocked_key_patterns: ['(?=lookahead)'] }), /blocked_key_patterns\.0: unsupported group syntax .*RE2 has no lookaround/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { ignored_key_patterns: ['\\p{Greek}'] }), /ignored_key_patterns\.0: Unicode character classes/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { blocked_values: ['(a)\\1'] }), /blocked_values\.0: backreferences/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { blocked_values: ['a{1001}'] }), /invalid repeat count/);
  assert.deepEqual(parseOrThrow(redactionConfigSchema, { blocked_values: [12] }).blocked_values, ['12'], 'a YAML number is a pattern too');
});

test('unknown keys and Collector keys that are not implemented are refused, naming the key', () => {
  assert.throws(() => parseOrThrow(redactionConfigSchema, { allowed_key: ['a'] }), /allowed_key: unknown key/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { url_sanitizer: { enabled: true, attributes: ['http.url'] } }), /url_sanitizer: url_sanitizer is not supported/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { db_sanitizer: { sql: { enabled: true } } }), /db_sanitizer: db_sanitizer is not supported/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { skip_conditions: ['span.name == "x"'] }), /skip_conditions: skip_conditions \(OTTL\) is not supported/);
});

test('summary, hash_function and hmac_key are checked', () => {
  assert.throws(() => parseOrThrow(redactionConfigSchema, { summary: 'verbose' }), /summary: expected one of debug, info, silent/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { hash_function: 'sha256' }), /hash_function: expected one of md5, sha1, sha3, hmac-sha256, hmac-sha512/);
  assert.equal(parseOrThrow(redactionConfigSchema, { hash_function: 'SHA1' }).hash_function, 'SHA1');
  assert.throws(() => parseOrThrow(redactionConfigSchema, { hash_function: 'hmac-sha256' }), /hash_function hmac-sha256 needs hmac_key/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { hash_function: 'hmac-sha256', hmac_key: 'short' }), /hmac_key must be at least 32 bytes for hmac-sha256/);
  assert.throws(() => parseOrThrow(redactionConfigSchema, { hash_function: 'hmac-sha512', hmac_key: 'k'.repeat(32) }), /hmac_key must be at least 64 bytes for hmac-sha512/);
  assert.ok(parseOrThrow(redactionConfigSchema, { hash_function: 'hmac-sha512', hmac_key: 'k'.repeat(64) }));
  assert.throws(() => parseOrThrow(redactionConfigSchema, { hash_function: 'md5', hmac_key: 'k'.repeat(64) }), /hmac_key is set but hash_function is md5/);
});

test('in a service config, problems are reported with their YAML path and line', () => {
  const yaml = `
receivers:
  otlp: { protocols: { grpc: { endpoint: 127.0.0.1:0 } } }
processors:
  redaction:
    allow_all_keys: true
    blocked_values:
      - "4[0-9]{12}(?:[0-9]{3})?"
      - "(5[1-5"
    url_sanitizer: { enabled: true }
exporters:
  debug: {}
service:
  pipelines:
    traces: { receivers: [otlp], processors: [redaction], exporters: [debug] }
`;
  const { config, problems } = loadConfig([{ name: 'c.yaml', text: yaml }], defaultRegistry(), {});
  assert.equal(config, null);
  const errors = problems.filter((p) => !p.warning).map((p) => `${p.line} ${p.path}: ${p.message}`);
  assert.equal(errors.length, 2, errors.join('\n'));
  assert.match(errors[0]!, /^9 processors\.redaction\.blocked_values\.1: missing closing \] in "\(5\[1-5"/);
  assert.match(errors[1]!, /^10 processors\.redaction\.url_sanitizer: url_sanitizer is not supported/);

  const ok = loadConfig([{ name: 'c.yaml', text: yaml.replace('      - "(5[1-5"\n', '').replace('    url_sanitizer: { enabled: true }\n', '') }], defaultRegistry(), {});
  assert.ok(ok.config, ok.problems.map((p) => p.message).join('\n'));
});
