import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { oidcSchema, resolveProviders } from './config.js';
import { factory } from './index.js';

const parse = (v: unknown) => parseOrThrow(oidcSchema, v);

function errorsOf(v: unknown): string[] {
  const ctx = new ParseContext();
  oidcSchema.parse(v, [], ctx);
  return ctx.issues.filter((i) => !i.warning).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
}

test('the factory is the oidc extension', () => {
  assert.equal(factory.type, 'oidc');
  assert.equal(factory.kind, 'extension');
});

test('flat Collector form: one provider with the Collector defaults', () => {
  const c = parse({ issuer_url: 'https://auth.example.com/', audience: 'my-oidc-client', groups_claim: 'group' });
  assert.equal(c.attribute, 'authorization');
  assert.deepEqual(resolveProviders(c), [
    {
      issuer_url: 'https://auth.example.com/',
      audience: 'my-oidc-client',
      ignore_audience: false,
      username_claim: 'sub',
      groups_claim: 'group',
      jwks_uri: undefined,
      jwks_file: undefined,
      algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
      clock_skew: 60_000,
      allow_insecure_http: false,
    },
  ]);
  assert.equal(c.keys.refresh_interval, 3_600_000);
  assert.equal(c.keys.unknown_kid_cooldown, 5_000);
  assert.equal(c.cache.max_entries, 10_000);
  assert.equal(c.cache.failure_ttl, 30_000);
});

test('the Collector example config parses, with attribute and username_claim', () => {
  const c = parse({ issuer_url: 'https://auth.example.com/', audience: 'my-oidc-client', username_claim: 'email', groups_claim: 'group', attribute: 'X-Auth' });
  assert.equal(c.attribute, 'X-Auth');
  assert.equal(resolveProviders(c)[0]!.username_claim, 'email');
});

test('providers form: several providers, each with its own audience, claims and options', () => {
  const c = parse({
    providers: [
      { issuer_url: 'https://a.example.com', audience: 'tracewarden', username_claim: 'email', groups_claim: 'roles' },
      { issuer_url: 'http://127.0.0.1:8080', audience: 'otel', allow_insecure_http: true, algorithms: ['ES256'], clock_skew: '5s' },
      { issuer_url: 'urn:local-issuer', jwks_file: '/etc/tracewarden/jwks.json', ignore_audience: true },
    ],
    keys: { refresh_interval: '10m', fetch_timeout: '2s' },
    cache: { max_entries: 100, max_ttl: '1m', failure_ttl: '5s' },
  });
  const p = resolveProviders(c);
  assert.equal(p.length, 3);
  assert.deepEqual(
    p.map((x) => [x.issuer_url, x.audience, x.username_claim, x.groups_claim]),
    [
      ['https://a.example.com', 'tracewarden', 'email', 'roles'],
      ['http://127.0.0.1:8080', 'otel', 'sub', undefined],
      ['urn:local-issuer', undefined, 'sub', undefined],
    ],
  );
  assert.deepEqual(p[1]!.algorithms, ['ES256']);
  assert.equal(p[1]!.clock_skew, 5000);
  assert.equal(p[1]!.allow_insecure_http, true);
  assert.equal(p[2]!.ignore_audience, true);
  assert.equal(c.keys.refresh_interval, 600_000);
  assert.equal(c.keys.fetch_timeout, 2000);
  assert.equal(c.keys.max_stale, 12 * 3_600_000);
  assert.equal(c.cache.max_ttl, 60_000);
});

test('configuration errors are specific', () => {
  const cases: [unknown, RegExp][] = [
    [{}, /issuer_url \(or a providers list\) is required/],
    [{ issuer_url: 'https://a.example.com' }, /provider https:\/\/a.example.com: audience is required \(or ignore_audience: true\)/],
    [{ issuer_url: 'https://a.example.com', audience: 'x', ignore_audience: true }, /set audience or ignore_audience, not both/],
    [{ username_claim: 'email', providers: [{ issuer_url: 'https://b.example.com', audience: 'y' }] }, /issuer_url is required: the flat provider keys \(username_claim\) describe a provider/],
    [{ issuer_url: 'https://a.example.com', audience: 'x', providers: [{ issuer_url: 'https://a.example.com', audience: 'y' }] }, /issuer_url https:\/\/a.example.com is listed twice/],
    [{ providers: [] }, /providers: expected at least 1 item/],
    [{ providers: [{ audience: 'x' }] }, /providers.0: issuer_url is required for each provider/],
    [{ issuer_url: 'http://auth.example.com', audience: 'x' }, /issuer_url \(used for OIDC discovery\) must be an https URL \(plain http only with allow_insecure_http: true\)/],
    [{ issuer_url: 'not a url', audience: 'x' }, /issuer_url \(used for OIDC discovery\) is not a URL/],
    [{ issuer_url: 'https://a.example.com', audience: 'x', jwks_uri: 'http://a.example.com/jwks' }, /jwks_uri must be an https URL/],
    [{ issuer_url: 'https://a.example.com', audience: 'x', jwks_uri: 'https://a.example.com/jwks', jwks_file: '/k.json' }, /set only one of jwks_uri, jwks_file/],
    [{ issuer_url: 'urn:x', audience: 'x', jwks_file: '/k.json', public_keys_file: '/k.json' }, /set only one of jwks_file, public_keys_file/],
    [
      { providers: [{ issuer_url: 'https://a.example.com', audience: 'x' }, { issuer_url: 'https://a.example.com', audience: 'y' }] },
      /issuer_url https:\/\/a.example.com is listed twice/,
    ],
    [{ issuer_url: 'https://a.example.com', audience: 'x', algorithms: ['HS256'] }, /algorithms.0: expected one of RS256/],
    [{ issuer_url: 'https://a.example.com', audience: 'x', bogus: 1 }, /bogus: unknown key/],
    [{ providers: [{ issuer_url: 'https://a.example.com', audience: 'x', attribute: 'x' }] }, /providers.0.attribute: unknown key/],
    [{ issuer_url: 'https://a.example.com', audience: 'x', keys: { fetch_timeout: 'soon' } }, /keys.fetch_timeout: expected a duration/],
  ];
  for (const [input, want] of cases) {
    const errors = errorsOf(input);
    assert.ok(errors.some((e) => want.test(e)), `${JSON.stringify(input)}: expected ${want}, got ${JSON.stringify(errors)}`);
  }
});

test('flat and listed providers together, as the Collector allows: the flat one first', () => {
  const c = parse({
    issuer_url: 'https://legacy.example.com',
    audience: 'legacy',
    providers: [{ issuer_url: 'urn:local', audience: 'otel', public_keys_file: '/etc/tracewarden/jwks.json' }],
  });
  const p = resolveProviders(c);
  assert.deepEqual(
    p.map((x) => [x.issuer_url, x.audience, x.jwks_file]),
    [
      ['https://legacy.example.com', 'legacy', undefined],
      ['urn:local', 'otel', '/etc/tracewarden/jwks.json'],
    ],
  );
});

test('issuer_ca_path is refused with a clear error, never silently ignored', () => {
  for (const input of [
    { issuer_url: 'https://a.example.com', audience: 'x', issuer_ca_path: '/etc/pki/tls/cert.pem' },
    { providers: [{ issuer_url: 'https://a.example.com', audience: 'x', issuer_ca_path: '/etc/pki/tls/cert.pem' }] },
  ]) {
    const errors = errorsOf(input);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0]!, /issuer_ca_path is not supported yet: key fetches trust the system CA store only; add the CA with NODE_EXTRA_CA_CERTS/);
  }
});
