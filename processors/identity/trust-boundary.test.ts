/**
 * The trust boundary, through the identity processor, as an attacker would probe it: forged identity at
 * every attribute level and in every key variant, credentials in every place a sender might put one, a
 * slow issuer. Outputs are read as a backend reads them (protobufjs, every list, kvlists flattened).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { jwksOf, makeSigningKey, signJwt, startJwksServer, validClaims, type JwksServer, type SigningKey } from '../../test/helpers/jwks-server.js';
import { attributeLists, decodeRequest, flatten, readerPath, spanValues, stringOf, type Obj } from '../../test/helpers/otlp-walk.js';
import { identitySchema } from './config.js';
import { IdentityProcessor } from './identity-processor.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };
const AUTH = 'http.request.header.authorization';

let server: JwksServer;
let key: SigningKey;
let iss: string;

before(async () => {
  key = await makeSigningKey('ES256', 'es-1');
  server = await startJwksServer({ keys: jwksOf(key) });
  iss = server.issuer;
});
after(() => server.stop());

async function setup(overrides: Record<string, unknown> = {}) {
  const config = parseOrThrow(identitySchema, { issuers: [{ issuer: iss, audiences: ['checkout'], allow_insecure_http: true }], ...overrides });
  const settings = processorSettings('identity');
  const next = new RecordingConsumer();
  const proc = new IdentityProcessor(settings, config, next);
  await proc.start();
  await proc.keysSettled();
  return { proc, next, settings };
}

const sv = (s: string) => ({ stringValue: s });
const kv = (key: string, value: Obj) => ({ key, value });
const kvlist = (...values: Obj[]) => ({ kvlistValue: { values } });
const ids = () => ({ traceId: randomBytes(16), spanId: randomBytes(8) });

function encode(req: Obj): Uint8Array {
  const T = otlpType('ExportTraceServiceRequest');
  return T.encode(T.fromObject(req)).finish();
}

/** A request with the given lists at every level; each span gets `spanAttrs` and one event and one link. */
function everywhere(attrs: Obj[], spanAttrs: Obj[] = attrs, more: Obj = {}): Obj {
  return {
    resourceSpans: [
      {
        resource: { attributes: [kv('service.name', sv('checkout')), ...attrs] },
        scopeSpans: [
          {
            scope: { name: 'scope', version: '1', attributes: [kv('scope.keep', sv('yes')), ...attrs] },
            spans: [
              {
                ...ids(),
                name: more.name ?? 'span',
                attributes: [kv('span.keep', sv('yes')), ...spanAttrs],
                events: [{ name: more.eventName ?? 'event', timeUnixNano: '1', attributes: [kv('event.keep', sv('yes')), ...attrs] }],
                links: [{ ...ids(), attributes: [kv('link.keep', sv('yes')), ...attrs] }],
                status: { code: 2, message: more.statusMessage ?? 'failed' },
              },
            ],
          },
        ],
      },
    ],
  };
}

async function through(proc: IdentityProcessor, next: RecordingConsumer, req: Obj): Promise<{ out: Obj; bytes: Uint8Array }> {
  const before = next.received.length;
  const batch = new TraceBatch(encode(req));
  batch.index(proc.inspection());
  await proc.consume(batch, CTX);
  assert.equal(next.received.length, before + 1, 'the batch went on');
  const bytes = next.received[before]!.bytes;
  return { out: decodeRequest(bytes), bytes };
}

const PROTECTED = ['identity.verified', 'identity.issuer', 'identity.method', 'identity.failure', 'identity.credential.fingerprint', 'identity.phishing_resistant', 'enduser.id', 'user.roles', 'enduser.pseudo.id', 'identity.webauthn.user_verified', AUTH, 'http.request.header.x-pomerium-jwt-assertion', 'telemetry.sender.id'];

test('forged identity is removed from every attribute list, in every key variant, nested under protected prefixes too', async (t) => {
  const { proc, next } = await setup({ sender: { attributes: { 'telemetry.sender.id': 'sub' } } });
  t.after(() => proc.shutdown());
  const variants = ['identity.verified', 'Identity.Verified', 'IDENTITY.VERIFIED', 'enduser.id ', ' enduser.id', 'enduser.id\u0000', 'ENDUSER.ID\t', 'enduser.id\u200b', '\u00a0user.roles', '\ufeffidentity.issuer', 'enduser.id\u2028', 'telemetry.sender.id', 'Telemetry.Sender.ID'];
  const forged: Obj[] = [
    ...variants.map((k, i) => kv(k, i % 2 === 0 ? { boolValue: true } : sv('mallory'))),
    kv('identity', kvlist(kv('verified', { boolValue: true }), kv('issuer', sv('https://idp.example')))),
    kv('enduser', kvlist(kv('ID', sv('mallory')))),
    kv('identity.webauthn', kvlist(kv('user_verified', { boolValue: true }))),
    kv('http', kvlist(kv('request', kvlist(kv('header', kvlist(kv('x-pomerium-jwt-assertion', sv('x')))))))),
    // Not protected: a kvlist under a protected prefix holding only other keys stays.
    kv('identity', kvlist(kv('note', sv('kept')))),
  ];
  const { out } = await through(proc, next, everywhere(forged));
  let lists = 0;
  for (const list of attributeLists(out)) {
    lists++;
    const paths = flatten(list.attrs).map(([p]) => readerPath(p));
    for (const p of PROTECTED) assert.ok(!paths.includes(p), `${p} survived in ${list.where} attributes: ${JSON.stringify(paths)}`);
    assert.ok(paths.includes('identity.note'), `an unprotected key under a protected prefix is kept (${list.where})`);
  }
  assert.equal(lists, 5, 'resource, scope, span, event and link lists were all checked');
  const span = out.resourceSpans[0].scopeSpans[0].spans[0];
  assert.deepEqual(spanValues(span, 'span.keep').map(stringOf), ['yes']);
  assert.deepEqual(span.events[0].attributes.map((a: Obj) => a.key), ['event.keep', 'identity']);
});

test('credentials are removed wherever they appear and replaced by a fingerprint; the rest of each value stays', async (t) => {
  const { proc, next, settings } = await setup({ on_invalid: 'tag' });
  t.after(() => proc.shutdown());
  const tok = await signJwt(validClaims(iss, 'someone-else', { sub: 'alice' }), key);
  const fp = createHash('sha256').update(tok).digest('hex').slice(0, 16);
  const apiKey = 'sk_live_' + randomBytes(12).toString('hex');
  const code = 'authcode' + randomBytes(8).toString('hex');
  const cookie = 'sess=' + randomBytes(16).toString('hex');
  const assertion = JSON.stringify({ id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { authenticatorData: 'SZYN5YgO', clientDataJSON: Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: 'x'.repeat(43) })).toString('base64url'), signature: 'MEUCIQ' } });
  const secrets = [tok, apiKey, code, cookie, assertion, tok.split('.')[2]!];
  const attrs: Obj[] = [
    kv('http.request.header.Authorization', { arrayValue: { values: [sv(`Bearer ${tok}`)] } }),
    kv('http.request.header.proxy-authorization', sv(`Bearer ${tok}`)),
    kv('http.request.header.cookie', sv(cookie)),
    kv('Authorization', sv(`Bearer ${tok}`)),
    kv('http.request.header.X-API-Key', sv(apiKey)),
    kv('headers', kvlist(kv('authorization', sv(`Bearer ${tok}`)))),
    kv('url.query', sv(`page=2&access_token=${tok}&limit=5`)),
    kv('url.full', sv(`https://app.example/cb?code=${code}&state=xyz`)),
    kv('exception.message', sv(`token ${tok} was rejected`)),
    kv('app.passkey', sv(assertion)),
    kv('nested', { arrayValue: { values: [sv(`x ${tok}`), kvlist(kv('deep', sv(tok)))] } }),
  ];
  const spanAttrs = [kv(AUTH, sv(`Bearer ${tok}`)), ...attrs.filter((a) => a.key !== 'http.request.header.Authorization')];
  const { out, bytes } = await through(proc, next, everywhere(attrs, spanAttrs, { name: `GET /login ${tok}`, eventName: `got ${tok}`, statusMessage: `bad ${tok}` }));
  const text = Buffer.from(bytes).toString('latin1');
  for (const s of secrets) assert.ok(!text.includes(s), `a secret reached the output: ${s.slice(0, 12)}…`);
  assert.ok(!text.includes(tok.split('.')[2]!), 'no signature');

  const span = out.resourceSpans[0].scopeSpans[0].spans[0];
  const one = (key: string) => stringOf(spanValues(span, key)[0]);
  assert.equal(span.name, `GET /login redacted:${fp}`);
  assert.equal(span.status.message, `bad redacted:${fp}`);
  assert.equal(span.events[0].name, `got redacted:${fp}`);
  assert.equal(one('http.request.header.proxy-authorization'), `Bearer redacted:${fp}`, 'the scheme stays; the fingerprint is the token’s');
  assert.equal(one('Authorization'), `Bearer redacted:${fp}`);
  assert.match(one('http.request.header.cookie')!, /^redacted:[0-9a-f]{16}$/);
  assert.match(one('http.request.header.X-API-Key')!, /^redacted:[0-9a-f]{16}$/);
  assert.equal(one('url.query'), `page=2&access_token=redacted:${fp}&limit=5`);
  assert.match(one('url.full')!, /^https:\/\/app\.example\/cb\?code=redacted:[0-9a-f]{16}&state=xyz$/);
  assert.equal(one('exception.message'), `token redacted:${fp} was rejected`);
  assert.match(one('app.passkey')!, /^redacted:[0-9a-f]{16}$/);
  assert.equal(span.attributes.find((a: Obj) => a.key === 'identity.failure').value.stringValue, 'audience_mismatch', 'the evidence was still verified');
  assert.equal(stringOf(spanValues(span, 'identity.credential.fingerprint')[0]) ?? '', '', 'failures carry no fingerprint attribute');
  // Every level was rewritten, not only the span.
  for (const list of attributeLists(out)) {
    const values = flatten(list.attrs).map(([p, v]) => [p, stringOf(v)] as const);
    assert.ok(values.some(([p, v]) => p === 'url.query' && v === `page=2&access_token=redacted:${fp}&limit=5`), `url.query rewritten in ${list.where}`);
  }
  assert.equal(await settings.telemetry.value('tracewarden_identity_scrubbed_total', { kind: 'token' }) > 0, true);
  assert.equal(await settings.telemetry.value('tracewarden_identity_scrubbed_total', { kind: 'header' }) > 0, true);
  assert.equal(await settings.telemetry.value('tracewarden_identity_scrubbed_total', { kind: 'url_parameter' }) > 0, true);
  assert.equal(await settings.telemetry.value('tracewarden_identity_scrubbed_total', { kind: 'webauthn' }) > 0, true);
});

test('with scrub disabled, credentials outside the evidence stay but protected keys still go', async (t) => {
  const { proc, next } = await setup({ scrub: { enabled: false } });
  t.after(() => proc.shutdown());
  const { out } = await through(proc, next, everywhere([kv('url.query', sv('access_token=abc')), kv('Identity.Verified', { boolValue: true })]));
  for (const list of attributeLists(out)) {
    const paths = flatten(list.attrs).map(([p]) => readerPath(p));
    assert.ok(!paths.includes('identity.verified'));
    assert.equal(stringOf(list.attrs.find((a: Obj) => a.key === 'url.query').value), 'access_token=abc');
  }
});

test('spans without anything to look at are forwarded untouched (the close look costs nothing then)', async (t) => {
  const { proc, next } = await setup();
  t.after(() => proc.shutdown());
  const req = everywhere([kv('url.query', sv('page=1&limit=eyJ')), kv('user_agent.original', sv('Mozilla/5.0 they key money eyeball'))]);
  const bytes = encode(req);
  const batch = new TraceBatch(bytes);
  batch.index(proc.inspection());
  assert.equal(batch.markedCount, 0, 'nothing marked');
  await proc.consume(batch, CTX);
  assert.deepEqual(Buffer.from(next.received[0]!.bytes), Buffer.from(bytes), 'the very bytes received');
});

test('a claim mapped onto one of the processor’s own output keys is a validation error naming it', () => {
  for (const target of ['identity.issuer', 'Identity.Phishing_Resistant', 'identity.verified ']) {
    assert.throws(
      () => parseOrThrow(identitySchema, { issuers: [{ issuer: 'https://idp.example', audiences: ['a'] }], claims: { [target]: 'sub' } }),
      (err: unknown) => err instanceof Error && err.message.includes(`${target} is the processor's own output`),
    );
  }
  assert.throws(
    () => parseOrThrow(identitySchema, { issuers: [{ issuer: 'https://idp.example', audiences: ['a'] }], claims: { 'app.sender': 'sub' }, sender: { attributes: { 'app.sender': 'sub' } } }),
    /app\.sender is the processor's own output \(sender attribute app\.sender\)/,
  );
});

test('rules see every occurrence: a repeated service.name or rule attribute cannot hide the one a backend shows', async (t) => {
  const { proc, next } = await setup({ rules: [{ name: 'payments', match: { service_name: ['payments'] }, require: {} }, { name: 'admin', match: { attributes: { 'app.area': 'admin' } }, require: {} }] });
  t.after(() => proc.shutdown());
  const req = (resAttrs: Obj[], spanAttrs: Obj[]) => ({
    resourceSpans: [{ resource: { attributes: resAttrs }, scopeSpans: [{ spans: [{ ...ids(), name: 's', attributes: spanAttrs }] }] }],
  });
  const dropped = async (r: Obj) => {
    const before = next.received.length;
    const batch = new TraceBatch(encode(r));
    await proc.consume(batch, CTX);
    return next.received.length === before;
  };
  assert.equal(await dropped(req([kv('service.name', sv('other')), kv('service.name', sv('payments'))], [])), true, 'second service.name matched');
  assert.equal(await dropped(req([kv('service.name', sv('other'))], [kv('app.area', sv('public')), kv('app.area', sv('admin'))])), true, 'second attribute matched');
  assert.equal(await dropped(req([kv('service.name', sv('other'))], [kv('app.area', sv('public'))])), false, 'no match, no rule');
});

test('waiting for keys is bounded: a hanging issuer holds its own spans, not the batch, and refuse lets the sender retry', async (t) => {
  const slow = await startJwksServer({ keys: jwksOf(key) });
  t.after(() => slow.stop());
  slow.failNext('/jwks', 1000, 'hang');
  const issuers = [
    { issuer: iss, audiences: ['checkout'], allow_insecure_http: true },
    { issuer: slow.issuer, jwks_uri: slow.jwksUri, audiences: ['checkout'], allow_insecure_http: true },
  ];
  for (const mode of ['tag', 'refuse'] as const) {
    const config = parseOrThrow(identitySchema, { issuers, max_key_wait: '200ms', on_keys_unavailable: mode, keys: { fetch_timeout: '5s' } });
    const next = new RecordingConsumer();
    const proc = new IdentityProcessor(processorSettings('identity'), config, next);
    await proc.start();
    t.after(() => proc.shutdown());
    const good = await signJwt(validClaims(iss, 'checkout', { sub: 'alice' }), key);
    const stuck = await signJwt(validClaims(slow.issuer, 'checkout', { sub: 'bob' }), key);
    const req = { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [{ ...ids(), name: 'good', attributes: [kv(AUTH, sv(`Bearer ${good}`))] }, { ...ids(), name: 'stuck', attributes: [kv(AUTH, sv(`Bearer ${stuck}`))] }] }] }] };
    const t0 = performance.now();
    const outcome = await proc.consume(new TraceBatch(encode(req)), CTX).then(
      () => null,
      (e: unknown) => e,
    );
    const waited = performance.now() - t0;
    t.diagnostic(`${mode}: the batch was decided after ${waited.toFixed(0)} ms (max_key_wait 200 ms, fetch timeout 5 s)`);
    assert.ok(waited < 4000, `the batch did not wait for the fetch timeout (${waited} ms)`);
    if (mode === 'refuse') {
      assert.ok(outcome instanceof PipelineError && outcome.retryable, 'refused as retryable: the sender keeps the spans');
      assert.equal(next.received.length, 0, 'nothing accepted');
    } else {
      assert.equal(outcome, null);
      const spans = decodeRequest(next.received[0]!.bytes).resourceSpans[0].scopeSpans[0].spans;
      const attr = (s: Obj, k: string) => s.attributes.find((a: Obj) => a.key === k)?.value;
      assert.equal(attr(spans[0], 'enduser.id').stringValue, 'alice', 'the valid span went on verified');
      assert.equal(attr(spans[1], 'identity.failure').stringValue, 'keys_unavailable');
    }
  }
});

test('evidence must be the scheme, a blank, then the token: `Bearer<token>` is malformed, never verified', async (t) => {
  const { proc, next } = await setup({ on_invalid: 'tag' });
  t.after(() => proc.shutdown());
  const tok = await signJwt(validClaims(iss, 'checkout', { sub: 'alice' }), key);
  const { out } = await through(proc, next, { resourceSpans: [{ resource: {}, scopeSpans: [{ spans: [{ ...ids(), name: 'glued', attributes: [kv(AUTH, sv(`Bearer${tok}`))] }, { ...ids(), name: 'spaced', attributes: [kv(AUTH, sv(`Bearer ${tok}`))] }] }] }] });
  const [glued, spaced] = out.resourceSpans[0].scopeSpans[0].spans;
  assert.equal(stringOf(spanValues(glued, 'identity.failure')[0]), 'malformed');
  assert.equal(spanValues(glued, 'identity.verified')[0]?.boolValue, false);
  assert.equal(stringOf(spanValues(spaced, 'enduser.id')[0]), 'alice');
});
