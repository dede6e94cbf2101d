/**
 * The identity processor's defaults are part of its security promise (scrubbing on, invalid credentials
 * dropped, audiences required, keys refreshed): the whole default config is asserted, so no default can
 * change unnoticed, and every name that must not be empty is refused empty. (A mutation pass found
 * defaults and non-empty rules no test held.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { identitySchema } from './config.js';

const ISSUER = { issuer: 'https://idp.example', audiences: ['checkout'] };

test('the default configuration, whole', () => {
  const c = parseOrThrow(identitySchema, { issuers: [ISSUER] });
  assert.deepEqual(JSON.parse(JSON.stringify(c)), {
    jwt_attributes: [{ key: 'http.request.header.authorization', scheme: 'Bearer' }, { key: 'http.request.header.x-pomerium-jwt-assertion' }],
    max_token_bytes: 16384,
    issuers: [
      {
        issuer: 'https://idp.example',
        audiences: ['checkout'],
        ignore_audience: false,
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
        clock_skew: 60000,
        required_claims: ['exp'],
        allow_insecure_http: false,
      },
    ],
    keys: { refresh_interval: 3600000, min_refresh_interval: 60000, max_refresh_interval: 86400000, unknown_kid_cooldown: 5000, max_stale: 43200000, fetch_timeout: 5000, max_response_bytes: 1048576 },
    claims: { 'enduser.id': ['sub'], 'user.roles': ['roles', 'groups'] },
    on_missing: 'pass',
    on_invalid: 'drop',
    on_keys_unavailable: 'tag',
    max_key_wait: 500,
    scrub: {
      enabled: true,
      header_names: ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'x-pomerium-jwt-assertion', 'lightstep-access-token'],
      url_attributes: ['url.full', 'url.query', 'url.original', 'http.url', 'http.target'],
      query_parameters: ['access_token', 'id_token', 'code', 'token'],
      tokens: true,
    },
    rules: [],
    sender: { attributes: {} },
    cache: { max_entries: 10000, max_bytes: 33554432, max_ttl: 600000, failure_ttl: 30000 },
    audit: { enabled: true, max_per_second: 20 },
  });
});

test('a rule requires a verified identity by default, and nothing else', () => {
  const c = parseOrThrow(identitySchema, { issuers: [ISSUER], rules: [{ name: 'r', match: {} }] });
  const rule = JSON.parse(JSON.stringify(c.rules[0])) as { require: Record<string, unknown> };
  assert.deepEqual(rule.require, { verified: true, phishing_resistant: false, roles_any: [], methods: [], issuers: [] });
});

test('names that must not be empty are refused empty, each at its path', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ issuers: [{ ...ISSUER, issuer: '' }] }, 'issuers.0.issuer'],
    [{ issuers: [{ ...ISSUER, jwks_uri: '' }] }, 'issuers.0.jwks_uri'],
    [{ issuers: [{ ...ISSUER, jwks_file: '' }] }, 'issuers.0.jwks_file'],
    [{ issuers: [{ ...ISSUER, audiences: [''] }] }, 'issuers.0.audiences.0'],
    [{ issuers: [{ ...ISSUER, required_claims: [''] }] }, 'issuers.0.required_claims.0'],
    [{ issuers: [ISSUER], jwt_attributes: [{ key: '' }] }, 'jwt_attributes.0.key'],
    [{ issuers: [ISSUER], jwt_attributes: [{ key: 'k', scheme: '' }] }, 'jwt_attributes.0.scheme'],
    [{ issuers: [ISSUER], rules: [{ name: '' }] }, 'rules.0.name'],
    [{ issuers: [ISSUER], rules: [{ name: 'r', require: { roles_any: [''] } }] }, 'rules.0.require.roles_any.0'],
    [{ issuers: [ISSUER], rules: [{ name: 'r', require: { issuers: [''] } }] }, 'rules.0.require.issuers.0'],
    [{ issuers: [ISSUER], scrub: { header_names: [''] } }, 'scrub.header_names.0'],
    [{ issuers: [ISSUER], scrub: { url_attributes: [''] } }, 'scrub.url_attributes.0'],
    [{ issuers: [ISSUER], scrub: { query_parameters: [''] } }, 'scrub.query_parameters.0'],
    [{ issuers: [ISSUER], pseudonymize: { key: '' } }, 'pseudonymize.key'],
    [{ issuers: [ISSUER], pseudonymize: { key_file: '' } }, 'pseudonymize.key_file'],
  ];
  for (const [config, path] of cases) {
    const ctx = new ParseContext();
    identitySchema.parse(config, [], ctx);
    const errors = ctx.issues.filter((i) => !i.warning).map((i) => i.path.join('.'));
    assert.ok(errors.includes(path), `${path}: ${JSON.stringify(ctx.issues)}`);
  }
});
