/**
 * WebAuthn evidence through the identity processor: assertions from the software authenticator, bound to
 * the spans that carry them, with the credential keys served as a JWKS.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { spanChallenge } from '../../identity/webauthn/verify.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { buildRequest, decodeSpans, type SpanSpec } from '../../test/helpers/otlp.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { assert as assertWith, createCredential, jwks, tamper, type TestCredential } from '../../test/helpers/webauthn-authenticator.js';
import { startJwksServer, type JwksServer } from '../../test/helpers/jwks-server.js';
import { identitySchema } from './config.js';
import { IdentityProcessor } from './identity-processor.js';

const RP = 'shop.example';
const ORIGIN = 'https://shop.example';
const ATTR = 'webauthn.assertion';
const CTX: RequestContext = { receiver: 'otlp', transport: 'http', peer: 'test', auth: null };

let creds: TestCredential[];
let keysFile: string;

before(() => {
  creds = [createCredential('ES256', { user: 'alice' }), createCredential('RS256', { user: 'bob' }), createCredential('EdDSA', { userHandle: 'dXNlci0z' })];
  const dir = mkdtempSync(join(tmpdir(), 'tw-webauthn-'));
  keysFile = join(dir, 'credentials.json');
  writeFileSync(keysFile, JSON.stringify(jwks(creds)));
});

async function setup(webauthn: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const config = parseOrThrow(identitySchema, {
    webauthn: { rp_id: RP, origins: [ORIGIN], credentials_jwks_file: keysFile, ...webauthn },
    on_invalid: 'tag',
    ...extra,
  });
  const settings = processorSettings('identity');
  const next = new RecordingConsumer();
  const proc = new IdentityProcessor(settings, config, next);
  await proc.start();
  await proc.keysSettled();
  return { proc, next, settings };
}

interface Ids {
  traceId: Buffer;
  spanId: Buffer;
}
function ids(): Ids {
  return { traceId: randomBytes(16), spanId: randomBytes(8) };
}

/** An assertion for the span with these ids, as an application would make it from its active span. */
function approve(cred: TestCredential, id: Ids, opts: Record<string, unknown> = {}) {
  return assertWith(cred, { challenge: spanChallenge(id.traceId, id.spanId), origin: ORIGIN, rpId: RP, ...opts });
}

function spanWith(id: Ids, assertion: unknown, name = 'approve-payment'): SpanSpec {
  return { name, traceId: id.traceId, spanId: id.spanId, attributes: { [ATTR]: typeof assertion === 'string' ? assertion : JSON.stringify(assertion) } };
}

async function run(proc: IdentityProcessor, next: RecordingConsumer, spans: SpanSpec[]) {
  const before = next.received.length;
  await proc.consume(new TraceBatch(buildRequest([{ attributes: { 'service.name': 'shop' }, scopes: [{ spans }] }])), CTX);
  return next.received.length > before ? decodeSpans(next.received[next.received.length - 1]!.bytes) : [];
}

test('valid assertions (ES256, RS256, EdDSA) bound to their spans verify and write the identity', async (t) => {
  const { proc, next, settings } = await setup();
  t.after(() => proc.shutdown());
  const idList = creds.map(() => ids());
  const assertions = creds.map((c, i) => approve(c, idList[i]!, { signCount: 5 }));
  const spans = await run(proc, next, creds.map((_, i) => spanWith(idList[i]!, assertions[i])));
  assert.deepEqual(
    spans.map((s) => s.attributes['enduser.id']),
    ['alice', 'bob', 'dXNlci0z'],
  );
  for (const s of spans) {
    assert.equal(s.attributes['identity.verified'], true);
    assert.equal(s.attributes['identity.method'], 'webauthn');
    assert.equal(s.attributes['identity.phishing_resistant'], true);
    assert.equal(s.attributes['identity.webauthn.user_verified'], true);
    assert.equal(s.attributes['identity.issuer'], RP);
    assert.match(String(s.attributes['identity.credential.fingerprint']), /^[0-9a-f]{16}$/);
    assert.equal(s.attributes[ATTR], undefined, 'the assertion is removed');
  }
  const out = Buffer.from(next.received[0]!.bytes).toString('latin1');
  for (const a of assertions) assert.ok(!out.includes(a.response.signature), 'no assertion content leaves');
  assert.equal(await settings.telemetry.value('tracewarden_identity_verifications_total', { issuer: RP, result: 'verified' }), 3);
});

test('tampered and mismatched assertions are rejected with the specific reason; the assertion never survives', async (t) => {
  const { proc, next } = await setup({ user_verification: 'required' });
  t.after(() => proc.shutdown());
  const c = creds[0]!;
  const cases: [string, (id: Ids) => unknown][] = [
    ['bad_signature', (id) => tamper.flipSignatureBit(approve(c, id), 7)],
    ['origin_mismatch', (id) => approve(c, id, { origin: 'https://evil.example' })],
    ['challenge_mismatch', (id) => approve(c, id, { challenge: spanChallenge(randomBytes(16), id.spanId) })],
    ['rp_mismatch', (id) => approve(c, id, { rpId: 'evil.example' })],
    ['user_not_present', (id) => approve(c, id, { userPresent: false })],
    ['user_not_verified', (id) => approve(c, id, { userVerified: false })],
    ['malformed', (id) => approve(c, id, { clientDataType: 'webauthn.create' })],
    ['unknown_key', (id) => approve(createCredential('ES256'), id)],
    ['malformed', () => '{"id":"not json'],
    ['origin_mismatch', (id) => approve(c, id, { crossOrigin: true, topOrigin: 'https://evil.example' })],
  ];
  const idList = cases.map(() => ids());
  const spans = await run(
    proc,
    next,
    cases.map(([, make], i) => spanWith(idList[i]!, make(idList[i]!), `case-${i}`)),
  );
  assert.deepEqual(
    spans.map((s) => s.attributes['identity.failure']),
    cases.map(([reason]) => reason),
  );
  for (const s of spans) {
    assert.equal(s.attributes['identity.verified'], false);
    assert.equal(s.attributes[ATTR], undefined);
    assert.equal(s.attributes['enduser.id'], undefined);
  }
});

test('span binding: an assertion copied to another span fails; the same span exported again verifies from the cache', async (t) => {
  const { proc, next, settings } = await setup();
  t.after(() => proc.shutdown());
  const id = ids();
  const a = approve(creds[0]!, id);
  const first = await run(proc, next, [spanWith(id, a)]);
  assert.equal(first[0]!.attributes['identity.verified'], true);
  const retried = await run(proc, next, [spanWith(id, a)]);
  assert.equal(retried[0]!.attributes['identity.verified'], true);
  const copied = await run(proc, next, [spanWith(ids(), a)]);
  assert.equal(copied[0]!.attributes['identity.failure'], 'challenge_mismatch');
  assert.equal(await settings.telemetry.value('tracewarden_identity_verifications_total', { result: 'verified' }), 1);
  assert.equal(await settings.telemetry.value('tracewarden_identity_cache_total', { result: 'hit' }), 2);
});

test('a copy on the wrong span, seen first, does not make the assertion fail on its own span', async (t) => {
  const { proc, next } = await setup();
  t.after(() => proc.shutdown());
  const mine = ids();
  const a = approve(creds[0]!, mine);
  const copy = await run(proc, next, [spanWith(ids(), a)]);
  assert.equal(copy[0]!.attributes['identity.failure'], 'challenge_mismatch');
  const own = await run(proc, next, [spanWith(mine, a)]);
  assert.equal(own[0]!.attributes['identity.verified'], true);
  const copyAgain = await run(proc, next, [spanWith(ids(), a)]);
  assert.equal(copyAgain[0]!.attributes['identity.failure'], 'challenge_mismatch');
});

test('without span binding, the same assertion on a second span is replayed', async (t) => {
  const { proc, next } = await setup({ challenge: 'none' });
  t.after(() => proc.shutdown());
  const a = assertWith(creds[1]!, { challenge: 'c29tZS1zZXJ2ZXItY2hhbGxlbmdl', origin: ORIGIN, rpId: RP });
  const spans = await run(proc, next, [spanWith(ids(), a, 'one'), spanWith(ids(), a, 'two')]);
  assert.deepEqual(
    spans.map((s) => s.attributes['identity.failure'] ?? 'verified'),
    ['verified', 'replayed'],
  );
  const later = await run(proc, next, [spanWith(ids(), a, 'three')]);
  assert.equal(later[0]!.attributes['identity.failure'], 'replayed');
});

test('a signature counter at or below the highest seen flags the span, or fails it when configured', async (t) => {
  const tagging = await setup();
  t.after(() => tagging.proc.shutdown());
  const c = creds[0]!;
  const ok = await run(tagging.proc, tagging.next, [spanWith(ids(), approve(c, ids(), { signCount: 100 }))]);
  assert.equal(ok[0]!.attributes['identity.failure'], 'challenge_mismatch', 'ids differ: sanity check of binding');
  const id1 = ids();
  const id2 = ids();
  const spans = await run(tagging.proc, tagging.next, [spanWith(id1, approve(c, id1, { signCount: 100 })), spanWith(id2, approve(c, id2, { signCount: 40 }))]);
  assert.equal(spans[0]!.attributes['identity.webauthn.counter_regression'], undefined);
  assert.equal(spans[1]!.attributes['identity.verified'], true);
  assert.equal(spans[1]!.attributes['identity.webauthn.counter_regression'], true);

  const failing = await setup({ on_counter_regression: 'fail' });
  t.after(() => failing.proc.shutdown());
  const id3 = ids();
  const id4 = ids();
  const out = await run(failing.proc, failing.next, [spanWith(id3, approve(c, id3, { signCount: 10 })), spanWith(id4, approve(c, id4, { signCount: 10 }))]);
  assert.deepEqual(
    out.map((s) => s.attributes['identity.failure'] ?? 'verified'),
    ['verified', 'counter_regression'],
  );
});

test('credential keys from a JWKS URL: a newly registered credential is found by one refresh', async (t) => {
  const server: JwksServer = await startJwksServer({ keys: jwks([creds[0]!]) as never });
  t.after(() => server.stop());
  const { proc, next } = await setup({ credentials_jwks_file: undefined, credentials_jwks_uri: server.jwksUri, allow_insecure_http: true }, { keys: { unknown_kid_cooldown: '0s' } });
  t.after(() => proc.shutdown());
  const fresh = createCredential('EdDSA', { user: 'carol' });
  server.setKeys(jwks([creds[0]!, fresh]) as never);
  const id = ids();
  const spans = await run(proc, next, [spanWith(id, approve(fresh, id))]);
  assert.equal(spans[0]!.attributes['enduser.id'], 'carol');
  assert.equal(server.requests('/jwks'), 2);
});

test('the unsigned userHandle names the user only when the credential record vouches for it', async (t) => {
  const { proc, next } = await setup();
  t.after(() => proc.shutdown());
  const eddsa = creds[2]!; // published with user_handle, no user
  const id1 = ids();
  const edited = approve(eddsa, id1);
  edited.response.userHandle = Buffer.from('admin').toString('base64url');
  const id2 = ids();
  const spans = await run(proc, next, [spanWith(id1, edited), spanWith(id2, approve(eddsa, id2))]);
  assert.equal(spans[0]!.attributes['identity.failure'], 'malformed', 'a userHandle other than the registered one');
  assert.equal(spans[1]!.attributes['enduser.id'], 'dXNlci0z');
  // A credential whose record names no user: verified, but no enduser.id from the unsigned handle.
  const anon = createCredential('ES256', { userHandle: Buffer.from('someone').toString('base64url') });
  const dir = mkdtempSync(join(tmpdir(), 'tw-webauthn-anon-'));
  const file = join(dir, 'credentials.json');
  writeFileSync(file, JSON.stringify({ keys: [anon.jwk] }));
  const other = await setup({ credentials_jwks_file: file });
  t.after(() => other.proc.shutdown());
  const id3 = ids();
  const out = await run(other.proc, other.next, [spanWith(id3, approve(anon, id3))]);
  assert.equal(out[0]!.attributes['identity.verified'], true);
  assert.equal(out[0]!.attributes['enduser.id'], undefined);
});

test('without span ids an assertion cannot be bound to a span or told apart from a copy', async (t) => {
  const { proc, next } = await setup({ challenge: 'none' });
  t.after(() => proc.shutdown());
  const a = assertWith(creds[0]!, { challenge: 'c29tZS1zZXJ2ZXItY2hhbGxlbmdl', origin: ORIGIN, rpId: RP });
  const T = otlpType('ExportTraceServiceRequest');
  const bytes = T.encode(T.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'no-ids', attributes: [{ key: ATTR, value: { stringValue: JSON.stringify(a) } }] }] }] }] })).finish();
  await proc.consume(new TraceBatch(bytes), CTX);
  assert.equal(decodeSpans(next.received[0]!.bytes)[0]!.attributes['identity.failure'], 'malformed');
});

test('rules can require a WebAuthn approval for some spans', async (t) => {
  const { proc, next } = await setup({}, { rules: [{ name: 'payments-need-passkey', match: { span_name: ['approve-payment'] }, require: { methods: ['webauthn'] } }] });
  t.after(() => proc.shutdown());
  const id = ids();
  const spans = await run(proc, next, [spanWith(id, approve(creds[0]!, id)), { name: 'approve-payment', attributes: {} }]);
  assert.deepEqual(
    spans.map((s) => s.attributes['identity.failure'] ?? 'verified'),
    ['verified', 'policy'],
  );
});
