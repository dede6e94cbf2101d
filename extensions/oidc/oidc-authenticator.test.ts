import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SenderAuth } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { Telemetry } from '../../pipeline/telemetry/telemetry.js';
import { algNone, expired, hmacWithPublicKey, notYetValid, tamperedPayload, withEmbeddedJwk, withJku, wrongAudience } from '../../test/helpers/forged-tokens.js';
import { jwksOf, makeSigningKey, signJwt, startJwksServer, validClaims, type SigningKey } from '../../test/helpers/jwks-server.js';
import { MapHost } from '../../test/helpers/receiver-harness.js';
import { oidcSchema } from './config.js';
import { OidcAuthenticator, groupsOf } from './oidc-authenticator.js';

const ISS_A = 'urn:test:issuer-a';
const ISS_B = 'urn:test:issuer-b';

function build(config: unknown, id = 'oidc') {
  const logs = new MemorySink();
  const telemetry = new Telemetry({ processMetrics: false });
  const auth = new OidcAuthenticator({ id, logger: new Logger(logs, 'debug'), telemetry }, parseOrThrow(oidcSchema, config));
  const count = (result: string) => telemetry.value('tracewarden_auth_requests_total', { authenticator: id, result });
  return { auth, logs, telemetry, count };
}

async function rejection(p: Promise<SenderAuth>): Promise<PipelineError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PipelineError, `expected a PipelineError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('oidc authenticator (keys from files)', () => {
  let dir: string;
  let keyA: SigningKey;
  let keyB: SigningKey;
  let attacker: SigningKey;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oidc-ext-'));
    [keyA, keyB, attacker] = await Promise.all([makeSigningKey('RS256'), makeSigningKey('ES256'), makeSigningKey('RS256')]);
    writeFileSync(join(dir, 'a.json'), JSON.stringify(jwksOf(keyA)));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(jwksOf(keyB)));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const twoProviders = () => ({
    providers: [
      { issuer_url: ISS_A, audience: 'tracewarden', jwks_file: join(dir, 'a.json'), groups_claim: 'groups' },
      { issuer_url: ISS_B, audience: 'otel', jwks_file: join(dir, 'b.json'), username_claim: 'email', groups_claim: 'role' },
    ],
  });

  test('a valid token gives the sender; the decision is cached and counted', async () => {
    const { auth, count } = build(twoProviders());
    await auth.start(new MapHost());
    await auth.keysSettled();
    assert.equal(auth.isReady(), true);
    const token = await signJwt(validClaims(ISS_A, 'tracewarden', { sub: 'svc-checkout', groups: ['writers', 7, 'ops'], tenant: 't1' }), keyA);
    const sender = await auth.authenticate(bearer(token));
    assert.equal(sender.authenticator, 'oidc');
    assert.equal(sender.subject, 'svc-checkout');
    assert.equal(sender.issuer, ISS_A);
    assert.deepEqual(sender.groups, ['writers', 'ops']);
    assert.equal(sender.claims['tenant'], 't1');
    assert.ok(Object.isFrozen(sender) && Object.isFrozen(sender.claims), 'a cached sender is shared, so it must not be editable');
    // The scheme is case-insensitive; the same token is answered from the cache (the same object).
    assert.equal(await auth.authenticate({ authorization: `bearer ${token}` }), sender);
    assert.equal(await count('ok'), 2);
    await auth.shutdown(Date.now() + 1000);
  });

  test('a token is routed to the provider named by its iss, with that provider’s audience and claims', async () => {
    const { auth, count } = build(twoProviders());
    await auth.start(new MapHost());
    const b = await signJwt(validClaims(ISS_B, 'otel', { email: 'ci@example.com', role: 'admin' }), keyB);
    const sender = await auth.authenticate(bearer(b));
    assert.equal(sender.subject, 'ci@example.com');
    assert.equal(sender.issuer, ISS_B);
    assert.deepEqual(sender.groups, ['admin']);
    // Provider A's audience is not provider B's.
    const crossAudience = await signJwt(validClaims(ISS_B, 'tracewarden', { email: 'ci@example.com' }), keyB);
    assert.equal((await rejection(auth.authenticate(bearer(crossAudience)))).message, 'bearer token audience is not accepted');
    // Signed by A's key but claiming B: B's keys do not verify it.
    const crossKey = await signJwt(validClaims(ISS_B, 'otel', { email: 'ci@example.com' }), keyA);
    assert.equal((await rejection(auth.authenticate(bearer(crossKey)))).code, 'UNAUTHENTICATED');
    // Valid for B in every way but without the username claim B is configured with.
    const noEmail = await signJwt(validClaims(ISS_B, 'otel'), keyB);
    assert.equal((await rejection(auth.authenticate(bearer(noEmail)))).message, 'bearer token has no username claim');
    assert.equal(await count('ok'), 1);
    assert.equal(await count('audience_mismatch'), 1);
    assert.equal(await count('username_missing'), 1);
    await auth.shutdown(Date.now() + 1000);
  });

  test('a cached verification is not served once the token has expired', async (t) => {
    const { auth } = build(twoProviders());
    await auth.start(new MapHost());
    await auth.keysSettled();
    const token = await signJwt(validClaims(ISS_A, 'tracewarden', { sub: 'svc' }, 60), keyA);
    const sender = await auth.authenticate(bearer(token));
    assert.equal(await auth.authenticate(bearer(token)), sender, 'served from the cache while valid');
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() + 120_000 });
    const err = await rejection(auth.authenticate(bearer(token)));
    assert.equal(err.message, 'bearer token expired', 'two minutes later the cached decision is gone and the token is expired');
    t.mock.timers.reset();
    await auth.shutdown(Date.now() + 1000);
  });

  test('every defect is UNAUTHENTICATED with a fixed message that never quotes the token', async () => {
    const { auth, logs, telemetry, count } = build(twoProviders());
    await auth.start(new MapHost());
    const v = { iss: ISS_A, aud: 'tracewarden' };
    const good = await signJwt(validClaims(ISS_A, 'tracewarden'), keyA);
    const cases: [string, Record<string, string | string[] | undefined>, string, string][] = [
      ['no header', {}, 'missing', 'missing bearer token'],
      ['empty header', { authorization: '' }, 'missing', 'missing bearer token'],
      ['basic scheme', { authorization: 'Basic dXNlcjpwYXNz' }, 'wrong_scheme', 'authorization scheme must be Bearer'],
      ['bare token', { authorization: good }, 'wrong_scheme', 'authorization scheme must be Bearer'],
      ['scheme only', { authorization: 'Bearer' }, 'malformed', 'malformed bearer token'],
      ['scheme glued to the token', { authorization: `Bearer${good}` }, 'wrong_scheme', 'authorization scheme must be Bearer'],
      ['empty username', bearer(await signJwt(validClaims(ISS_A, 'tracewarden', { sub: '' }), keyA)), 'username_missing', 'bearer token has no username claim'],
      ['two tokens', { authorization: `Bearer ${good} ${good}` }, 'malformed', 'malformed bearer token'],
      ['repeated metadata', { authorization: [`Bearer ${good}`, `Bearer ${good}`] }, 'ambiguous', 'more than one authorization value'],
      ['a valid value and a forged one', { authorization: [`Bearer ${good}`, 'Bearer forged.token.here'] }, 'ambiguous', 'more than one authorization value'],
      ['not a JWT', bearer('s3cr3t-opaque-token'), 'malformed', 'malformed bearer token'],
      ['expired', bearer(await expired(keyA, v)), 'expired', 'bearer token expired'],
      ['not yet valid', bearer(await notYetValid(keyA, v)), 'not_yet_valid', 'bearer token not yet valid'],
      ['wrong audience', bearer(await wrongAudience(keyA, v)), 'audience_mismatch', 'bearer token audience is not accepted'],
      ['unknown issuer', bearer(await signJwt(validClaims('https://evil.example', 'tracewarden'), attacker)), 'unknown_issuer', 'bearer token issuer is not accepted'],
      ['tampered payload', bearer(tamperedPayload(good)), 'bad_signature', 'bearer token signature is invalid'],
      ['alg none', bearer(algNone(v)), 'algorithm_not_allowed', 'bearer token algorithm is not allowed'],
      ['HS256 with the public key', bearer(await hmacWithPublicKey(keyA.publicJwk, v, 'pem')), 'algorithm_not_allowed', 'bearer token algorithm is not allowed'],
      ['attacker key via jku', bearer(await withJku(attacker, v, 'http://127.0.0.1:1/jwks')), 'unknown_key', 'bearer token signed with an unknown key'],
      ['attacker key embedded', bearer(await withEmbeddedJwk(attacker, v)), 'unknown_key', 'bearer token signed with an unknown key'],
      ['no exp', bearer(await signJwt({ iss: ISS_A, aud: 'tracewarden', sub: 'x' }, keyA)), 'malformed', 'malformed bearer token'],
      ['other header only', { 'x-auth': `Bearer ${good}` }, 'missing', 'missing bearer token'],
    ];
    for (const [name, headers, result, message] of cases) {
      const before = await count(result);
      const err = await rejection(auth.authenticate(headers));
      assert.equal(err.code, 'UNAUTHENTICATED', name);
      assert.equal(err.retryable, false, name);
      assert.equal(err.message, message, name);
      assert.equal(await count(result), before + 1, `${name}: counted as ${result}`);
    }
    const secrets = cases.flatMap(([, h]) => Object.values(h).flat()).filter((x): x is string => typeof x === 'string' && x.length > 20);
    const metricsText = await telemetry.registry.metrics();
    for (const s of secrets) {
      const token = s.replace(/^\S+ /, '').split(' ')[0]!;
      assert.ok(!logs.text.includes(token), 'a token reached the logs');
      assert.ok(!metricsText.includes(token), 'a token reached the metrics');
    }
    assert.match(logs.text, /"result":"expired"/);
    await auth.shutdown(Date.now() + 1000);
  });

  test('the header is the configured attribute', async () => {
    const { auth } = build({ issuer_url: ISS_A, audience: 'tracewarden', jwks_file: join(dir, 'a.json'), attribute: 'X-Auth' });
    await auth.start(new MapHost());
    const token = await signJwt(validClaims(ISS_A, 'tracewarden', { sub: 'svc-a' }), keyA);
    assert.equal((await auth.authenticate({ 'x-auth': `Bearer ${token}` })).subject, 'svc-a');
    assert.equal((await rejection(auth.authenticate(bearer(token)))).message, 'missing bearer token');
    await auth.shutdown(Date.now() + 1000);
  });

  test('a flood of distinct bad tokens does not evict a verified sender from the cache', async () => {
    const { auth, count } = build({ issuer_url: ISS_A, audience: 'tracewarden', jwks_file: join(dir, 'a.json'), cache: { max_entries: 16 } });
    await auth.start(new MapHost());
    const token = await signJwt(validClaims(ISS_A, 'tracewarden', { sub: 'svc-a' }), keyA);
    const sender = await auth.authenticate(bearer(token));
    for (let i = 0; i < 40; i++) {
      // Failures that are cached (a wrong audience), so each takes a cache entry.
      const bad = await signJwt(validClaims(ISS_A, 'someone-else', { n: i }), keyA);
      assert.equal((await rejection(auth.authenticate(bearer(bad)))).code, 'UNAUTHENTICATED');
    }
    assert.equal(await auth.authenticate(bearer(token)), sender, 'still answered from the cache');
    assert.equal(await count('ok'), 2);
    assert.equal(await count('audience_mismatch'), 40);
    await auth.shutdown(Date.now() + 1000);
  });

  test('ignore_audience accepts any audience; concurrent requests with one token share one verification', async () => {
    const { auth, count } = build({ issuer_url: ISS_A, ignore_audience: true, jwks_file: join(dir, 'a.json') });
    await auth.start(new MapHost());
    const token = await signJwt(validClaims(ISS_A, 'anything'), keyA);
    const senders = await Promise.all(Array.from({ length: 20 }, () => auth.authenticate(bearer(token))));
    assert.ok(senders.every((s) => s === senders[0]), 'one verification, one shared sender');
    assert.equal(await count('ok'), 20);
    await auth.shutdown(Date.now() + 1000);
  });
});

describe('oidc authenticator (keys over HTTP)', () => {
  test('unreachable keys: not ready, UNAVAILABLE (retryable), and accepted once the keys load', async () => {
    const key = await makeSigningKey('ES256');
    const jwks = await startJwksServer({ keys: jwksOf(key) });
    await jwks.down();
    const { auth, count, logs } = build({
      issuer_url: jwks.issuer,
      audience: 'tracewarden',
      jwks_uri: jwks.jwksUri,
      allow_insecure_http: true,
      keys: { unknown_kid_cooldown: '20ms', fetch_timeout: '1s' },
    });
    try {
      await auth.start(new MapHost());
      await auth.keysSettled();
      assert.equal(auth.isReady(), false);
      const token = await signJwt(validClaims(jwks.issuer, 'tracewarden', { sub: 'svc-late' }), key);
      const err = await rejection(auth.authenticate({ authorization: `Bearer ${token}` }));
      assert.equal(err.code, 'UNAVAILABLE');
      assert.equal(err.retryable, true);
      assert.equal(err.message, 'token issuer keys are unavailable; retry later');
      assert.equal(await count('keys_unavailable'), 1);
      assert.match(logs.text, /oidc provider keys could not be loaded/);

      await jwks.up();
      // Not cached: the next request after the cooldown loads the keys and is accepted. Bounded retries.
      let sender: SenderAuth | null = null;
      for (let i = 0; i < 50 && sender === null; i++) {
        try {
          sender = await auth.authenticate({ authorization: `Bearer ${token}` });
        } catch (e) {
          assert.equal((e as PipelineError).code, 'UNAVAILABLE');
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      assert.equal(sender?.subject, 'svc-late');
      assert.equal(auth.isReady(), true);
    } finally {
      await auth.shutdown(Date.now() + 1000);
      await jwks.stop();
    }
  });
});

test('groupsOf reads one string or the strings of a list', () => {
  assert.deepEqual(groupsOf('admins'), ['admins']);
  assert.deepEqual(groupsOf(['a', 1, null, 'b', '']), ['a', 'b']);
  assert.deepEqual(groupsOf(undefined), []);
  assert.deepEqual(groupsOf({ a: 1 }), []);
  assert.deepEqual(groupsOf(''), []);
});
