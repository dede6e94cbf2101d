import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { buildRequest, decodeSpans, type SpanSpec } from '../../test/helpers/otlp.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { jwksOf, makeSigningKey, signJwt, startJwksServer, validClaims, type JwksServer, type SigningKey } from '../../test/helpers/jwks-server.js';
import { algNone, expired } from '../../test/helpers/forged-tokens.js';
import { identitySchema } from './config.js';
import { IdentityProcessor } from './identity-processor.js';

const AUTH = 'http.request.header.authorization';
const POMERIUM = 'http.request.header.x-pomerium-jwt-assertion';
const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

let server: JwksServer;
let key: SigningKey;
let iss: string;

before(async () => {
  key = await makeSigningKey('ES256', 'es-1');
  server = await startJwksServer({ keys: jwksOf(key) });
  iss = server.issuer;
});
after(async () => {
  await server.stop();
});

async function setup(overrides: Record<string, unknown> = {}) {
  const config = parseOrThrow(identitySchema, {
    issuers: [{ issuer: iss, audiences: ['checkout'], allow_insecure_http: true }],
    ...overrides,
  });
  const settings = processorSettings('identity');
  const next = new RecordingConsumer();
  const proc = new IdentityProcessor(settings, config, next);
  await proc.start();
  await proc.keysSettled();
  return { proc, next, settings };
}

function token(claims: Record<string, unknown> = {}, ttl = 300): Promise<string> {
  return signJwt(validClaims(iss, 'checkout', { sub: 'alice', ...claims }, ttl), key);
}

function request(spans: SpanSpec[], resource: Record<string, string> = { 'service.name': 'checkout' }): TraceBatch {
  return new TraceBatch(buildRequest([{ attributes: resource, scopes: [{ spans }] }]));
}

async function run(proc: IdentityProcessor, next: RecordingConsumer, spans: SpanSpec[], resource?: Record<string, string>) {
  const before = next.received.length;
  await proc.consume(request(spans, resource), CTX);
  return next.received.length > before ? decodeSpans(next.received[next.received.length - 1]!.bytes) : [];
}

test('a verified token writes the identity, strips the credential, and is verified once for many spans', async (t) => {
  const { proc, next, settings } = await setup();
  t.after(() => proc.shutdown());
  const tok = await token({ roles: ['admin', 'ops'], amr: ['pwd', 'hwk'], acr: 'phr' });
  const spans = await run(proc, next, [
    { name: 'a', attributes: { [AUTH]: [`Bearer ${tok}`] } },
    { name: 'b', attributes: { [AUTH]: `bearer   ${tok}` } },
    { name: 'c', attributes: { [POMERIUM]: tok, keep: 1 } },
  ]);
  assert.equal(spans.length, 3);
  for (const s of spans) {
    assert.equal(s.attributes['enduser.id'], 'alice');
    assert.deepEqual(s.attributes['user.roles'], ['admin', 'ops']);
    assert.equal(s.attributes['identity.verified'], true);
    assert.equal(s.attributes['identity.issuer'], iss);
    assert.equal(s.attributes['identity.method'], 'jwt');
    assert.deepEqual(s.attributes['identity.auth_methods'], ['pwd', 'hwk']);
    assert.equal(s.attributes['identity.phishing_resistant'], true);
    assert.match(String(s.attributes['identity.credential.fingerprint']), /^[0-9a-f]{16}$/);
    assert.equal(s.attributes[AUTH], undefined);
    assert.equal(s.attributes[POMERIUM], undefined);
  }
  assert.equal(spans[2]!.attributes['keep'], 1);
  assert.ok(!Buffer.from(next.received[0]!.bytes).includes(tok), 'no token in the output');
  const tel = settings.telemetry;
  assert.equal(await tel.value('tracewarden_identity_verifications_total', { issuer: iss, result: 'verified' }), 1);
  assert.equal(await tel.value('tracewarden_identity_spans_total', { result: 'verified' }), 3);
  assert.equal(await tel.value('tracewarden_identity_cache_total', { result: 'miss' }), 1);
  // A second batch with the same token is served from the cache.
  await run(proc, next, [{ attributes: { [AUTH]: `Bearer ${tok}` } }, { attributes: { [AUTH]: `Bearer ${tok}` } }]);
  assert.equal(await tel.value('tracewarden_identity_verifications_total'), 1);
  assert.equal(await tel.value('tracewarden_identity_cache_total', { result: 'hit' }), 2);
  assert.ok(!settings.sink.text.includes(tok), 'no token in the logs');
  assert.match(settings.sink.text, /"msg":"identity decision","audit":"identity","result":"verified"/);
});

test('attributes that claim an identity are removed from every span, so none can be forged upstream', async (t) => {
  const { proc, next } = await setup({ on_missing: 'pass' });
  t.after(() => proc.shutdown());
  const spans = await run(proc, next, [
    { name: 'forged', attributes: { 'enduser.id': 'mallory', 'identity.verified': true, 'user.roles': ['admin'], 'identity.issuer': iss, other: 'x' } },
  ]);
  assert.deepEqual(spans[0]!.attributes, { other: 'x' });
});

test('identity attributes and credentials a sender wrote on its resource are removed too', async (t) => {
  const { proc, next } = await setup();
  t.after(() => proc.shutdown());
  const spans = await run(proc, next, [{ name: 'x', attributes: {} }], { 'service.name': 'checkout', 'enduser.id': 'mallory', 'identity.verified': 'true', [AUTH]: 'Bearer leaked' });
  assert.deepEqual(spans[0]!.resource, { 'service.name': 'checkout' });
});

test('invalid credentials: tagged with the reason, or dropped and counted; the credential never survives', async (t) => {
  const tagged = await setup({ on_invalid: 'tag' });
  t.after(() => tagged.proc.shutdown());
  const other = await makeSigningKey('ES256', 'es-1'); // same kid, other key: a forged signature
  const forged = await signJwt(validClaims(iss, 'checkout', { sub: 'mallory' }), other);
  const cases: [string, string][] = [
    [await expired(key, { iss, aud: 'checkout' }), 'expired'],
    [forged, 'bad_signature'],
    [algNone({ iss, aud: 'checkout' }), 'algorithm_not_allowed'],
    [await signJwt(validClaims('https://elsewhere.example', 'checkout'), key), 'unknown_issuer'],
    [await signJwt(validClaims(iss, 'billing'), key), 'audience_mismatch'],
    ['not-a-jwt', 'malformed'],
  ];
  const spans = await run(
    tagged.proc,
    tagged.next,
    cases.map(([tok], i) => ({ name: `s${i}`, attributes: { [AUTH]: `Bearer ${tok}` } })),
  );
  assert.deepEqual(
    spans.map((s) => s.attributes['identity.failure']),
    cases.map(([, reason]) => reason),
  );
  for (const s of spans) {
    assert.equal(s.attributes['identity.verified'], false);
    assert.equal(s.attributes[AUTH], undefined);
    assert.equal(s.attributes['enduser.id'], undefined);
  }

  const dropping = await setup({ on_invalid: 'drop' });
  t.after(() => dropping.proc.shutdown());
  const good = await token();
  const kept = await run(dropping.proc, dropping.next, [
    { name: 'bad', attributes: { [AUTH]: `Bearer ${forged}` } },
    { name: 'good', attributes: { [AUTH]: `Bearer ${good}` } },
  ]);
  assert.deepEqual(
    kept.map((s) => s.name),
    ['good'],
  );
  assert.equal(await dropping.settings.telemetry.value('tracewarden_dropped_spans_total', { component: 'identity', reason: 'identity_bad_signature' }), 1);
});

test('a flood of one bad token costs one verification', async (t) => {
  const { proc, next, settings } = await setup({ on_invalid: 'drop' });
  t.after(() => proc.shutdown());
  const bad = await expired(key, { iss, aud: 'checkout' });
  const spans: SpanSpec[] = Array.from({ length: 200 }, () => ({ attributes: { [AUTH]: `Bearer ${bad}` } }));
  await run(proc, next, spans);
  await run(proc, next, spans);
  assert.equal(await settings.telemetry.value('tracewarden_identity_verifications_total'), 1);
  assert.equal(await settings.telemetry.value('tracewarden_identity_spans_total', { result: 'expired' }), 400);
  assert.equal(next.received.length, 0, 'a batch whose spans were all dropped is not passed on');
});

test('missing credentials: pass, tag or drop', async (t) => {
  for (const [mode, expectSpans, expectTag] of [
    ['pass', 1, undefined],
    ['tag', 1, 'missing'],
    ['drop', 0, undefined],
  ] as const) {
    const { proc, next } = await setup({ on_missing: mode });
    t.after(() => proc.shutdown());
    const spans = await run(proc, next, [{ name: 'anon', attributes: { x: 1 } }]);
    assert.equal(spans.length, expectSpans, mode);
    if (expectSpans) assert.equal(spans[0]!.attributes['identity.failure'], expectTag, mode);
  }
});

test('malformed evidence: a non-string value, a missing scheme, an empty token', async (t) => {
  const { proc, next } = await setup({ on_invalid: 'tag' });
  t.after(() => proc.shutdown());
  const tok = await token();
  const spans = await run(proc, next, [
    { attributes: { [AUTH]: 42 } },
    { attributes: { [AUTH]: tok } },
    { attributes: { [AUTH]: 'Bearer    ' } },
    { attributes: { [AUTH]: `Basic ${tok}` } },
  ]);
  assert.deepEqual(
    spans.map((s) => s.attributes['identity.failure']),
    ['malformed', 'malformed', 'malformed', 'malformed'],
  );
  for (const s of spans) assert.equal(s.attributes[AUTH], undefined);
});

test('rules: a service that requires phishing-resistant login or a role fails spans as policy', async (t) => {
  const { proc, next } = await setup({
    on_invalid: 'tag',
    rules: [
      { name: 'payments-phr', match: { service_name: ['payments'] }, require: { phishing_resistant: true } },
      { name: 'admin-routes', match: { attributes: { 'http.route': '/admin' } }, require: { roles_any: ['admin'] } },
      { name: 'refunds-need-identity', match: { span_name: ['refund'] }, require: {} },
    ],
  });
  t.after(() => proc.shutdown());
  const pwd = await token({ amr: ['pwd'] });
  const hwk = await token({ amr: ['hwk'], roles: ['admin'] });
  const pay = await run(
    proc,
    next,
    [
      { name: 'p1', attributes: { [AUTH]: `Bearer ${pwd}` } },
      { name: 'p2', attributes: { [AUTH]: `Bearer ${hwk}` } },
    ],
    { 'service.name': 'payments' },
  );
  assert.deepEqual(
    pay.map((s) => [s.attributes['identity.verified'], s.attributes['identity.failure'] ?? null]),
    [
      [false, 'policy'],
      [true, null],
    ],
  );
  const other = await run(proc, next, [
    { name: 'x', attributes: { [AUTH]: `Bearer ${pwd}`, 'http.route': '/admin' } },
    { name: 'y', attributes: { [AUTH]: `Bearer ${hwk}`, 'http.route': '/admin' } },
    { name: 'refund', attributes: {} },
    { name: 'z', attributes: { [AUTH]: `Bearer ${pwd}` } },
  ]);
  assert.deepEqual(
    other.map((s) => s.attributes['identity.failure'] ?? null),
    ['policy', null, 'policy', null],
  );
  assert.equal(other[0]!.attributes['enduser.id'], undefined, 'a policy failure writes no identity');
});

test('pseudonymous mode writes a keyed hash of issuer and subject instead of the subject', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-pseudo-'));
  const keyFile = join(dir, 'key');
  writeFileSync(keyFile, 'a-long-pseudonymization-key-123\n');
  const { proc, next } = await setup({ pseudonymize: { key_file: keyFile } });
  t.after(() => proc.shutdown());
  const spans = await run(proc, next, [{ attributes: { [AUTH]: `Bearer ${await token({ sub: 'alice@example.com' })}` } }]);
  const want = createHmac('sha256', 'a-long-pseudonymization-key-123').update(`${iss}\nalice@example.com`).digest('hex');
  assert.equal(spans[0]!.attributes['enduser.pseudo.id'], want);
  assert.equal(spans[0]!.attributes['enduser.id'], undefined);
  assert.ok(!JSON.stringify(spans).includes('alice@example.com'));
});

test('custom claim mapping with nested paths and alternatives', async (t) => {
  const { proc, next } = await setup({ claims: { 'enduser.id': ['email', 'sub'], 'tenant.id': 'org.id', 'user.roles': 'realm_access.roles' } });
  t.after(() => proc.shutdown());
  const tok = await token({ org: { id: 'acme' }, realm_access: { roles: ['viewer'] } });
  const spans = await run(proc, next, [{ attributes: { [AUTH]: `Bearer ${tok}` } }]);
  assert.equal(spans[0]!.attributes['enduser.id'], 'alice');
  assert.equal(spans[0]!.attributes['tenant.id'], 'acme');
  assert.deepEqual(spans[0]!.attributes['user.roles'], ['viewer']);
});

test('the sender identity from the receiver is written to resources, and a forged one is removed', async (t) => {
  const { proc, next } = await setup({ sender: { attributes: { 'telemetry.sender.id': 'sub', 'telemetry.sender.team': 'team' } } });
  t.after(() => proc.shutdown());
  const ctx: RequestContext = { ...CTX, auth: { authenticator: 'oidc', subject: 'svc-checkout', issuer: iss, groups: [], claims: { team: 'payments' } } };
  await proc.consume(request([{ attributes: {} }], { 'service.name': 'checkout', 'telemetry.sender.id': 'forged' }), ctx);
  assert.equal(decodeSpans(next.received[0]!.bytes)[0]!.resource['telemetry.sender.id'], 'svc-checkout');
  assert.equal(decodeSpans(next.received[0]!.bytes)[0]!.resource['telemetry.sender.team'], 'payments');
  await proc.consume(request([{ attributes: {} }], { 'service.name': 'checkout', 'telemetry.sender.id': 'forged' }), CTX);
  assert.equal(decodeSpans(next.received[1]!.bytes)[0]!.resource['telemetry.sender.id'], undefined);
});

test('keys unavailable: tagged by default; with refuse, the sender gets a retryable error and nothing passes', async (t) => {
  const dead = `http://127.0.0.1:1`;
  const cfg = { issuers: [{ issuer: dead, audiences: ['checkout'], allow_insecure_http: true }], keys: { fetch_timeout: '500ms', unknown_kid_cooldown: '50ms' } };
  const tok = await signJwt(validClaims(dead, 'checkout', { sub: 'alice' }), key);
  const tagging = await setup(cfg);
  t.after(() => tagging.proc.shutdown());
  assert.equal(tagging.proc.isReady(), false);
  const spans = await run(tagging.proc, tagging.next, [{ attributes: { [AUTH]: `Bearer ${tok}` } }]);
  assert.equal(spans[0]!.attributes['identity.failure'], 'keys_unavailable');

  const refusing = await setup({ ...cfg, on_keys_unavailable: 'refuse' });
  t.after(() => refusing.proc.shutdown());
  await assert.rejects(refusing.proc.consume(request([{ attributes: { [AUTH]: `Bearer ${tok}` } }]), CTX), (err: unknown) => {
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'UNAVAILABLE');
    assert.equal(err.retryable, true);
    assert.ok(!err.message.includes(tok));
    return true;
  });
  assert.equal(refusing.next.received.length, 0);
});

test('config: at least one issuer; discovery needs an https issuer unless http is allowed', () => {
  assert.throws(() => parseOrThrow(identitySchema, {}), /at least one issuer is required under issuers \(or a webauthn section\)/);
  assert.throws(() => parseOrThrow(identitySchema, { issuers: [{ issuer: 'http://idp.example', audiences: ['a'] }] }), /must be an https URL for OIDC discovery/);
  assert.throws(() => parseOrThrow(identitySchema, { issuers: [{ issuer: 'https://idp.example' }] }), /set audiences .* or ignore_audience: true/);
  assert.equal(parseOrThrow(identitySchema, { issuers: [{ issuer: 'https://idp.example', ignore_audience: true }] }).issuers[0]!.audiences.length, 0);
  assert.throws(() => parseOrThrow(identitySchema, { issuers: [{ issuer: 'x', jwks_uri: 'https://a/jwks', jwks_file: '/k' }] }), /not both/);
  const c = parseOrThrow(identitySchema, { issuers: [{ issuer: 'https://idp.example', audiences: ['a'] }] });
  assert.deepEqual(c.claims, { 'enduser.id': ['sub'], 'user.roles': ['roles', 'groups'] });
  assert.equal(c.on_invalid, 'drop');
  assert.equal(c.on_missing, 'pass');
});
