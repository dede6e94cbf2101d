import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import type { JwsKeySet } from './jws.js';
import { JwtVerifier, type JwtResult } from './verifier.js';
import { buildIssuer, keySourceTiming, type IssuerSettings, type KeyTiming } from './build.js';
import { ASYMMETRIC_ALGORITHMS, parseJwks, type Issuer } from './issuer.js';
import { KeySource } from '../keys/key-source.js';
import { discoveryLoader } from '../keys/locations.js';
import { KeyFetchError } from '../keys/fetch-json.js';
import type { FailureReason } from '../reasons.js';
import { startTestIdp, type TestIdp } from '../../test/helpers/oidc-provider.js';
import {
  DISCOVERY_PATH,
  JWKS_PATH,
  jwksOf,
  makeSigningKey,
  signJwt,
  startJwksServer,
  validClaims,
  type SigningKey,
} from '../../test/helpers/jwks-server.js';
import * as forged from '../../test/helpers/forged-tokens.js';

const MAX_TOKEN_BYTES = 16 * 1024;

const KEYS: KeyTiming = {
  refresh_interval: 600_000,
  min_refresh_interval: 60_000,
  max_refresh_interval: 86_400_000,
  unknown_kid_cooldown: 30_000,
  max_stale: 3_600_000,
  fetch_timeout: 2_000,
  max_response_bytes: 1024 * 1024,
};

function settings(issuer: string, audience: string, over: Partial<IssuerSettings> = {}): IssuerSettings {
  return {
    issuer,
    audiences: [audience],
    algorithms: [...ASYMMETRIC_ALGORITHMS],
    clock_skew: 60_000,
    required_claims: ['exp'],
    allow_insecure_http: true,
    ...over,
  };
}

interface FetchLog {
  events: (issuer: string) => { fetched(outcome: string, count: number): void };
  seen: { issuer: string; outcome: string; count: number }[];
}

function fetchLog(): FetchLog {
  const seen: FetchLog['seen'] = [];
  return { seen, events: (issuer) => ({ fetched: (outcome, count) => void seen.push({ issuer, outcome, count }) }) };
}

async function started(c: IssuerSettings, k: KeyTiming = KEYS, log: FetchLog = fetchLog()): Promise<Issuer> {
  const issuer = buildIssuer(c, k, log.events);
  issuer.keys.start();
  await issuer.keys.whenSettled();
  return issuer;
}

/** A server standing where a token's jku / x5u points: it must never be asked anything. */
async function trapServer(): Promise<{ url: string; requests: () => number; stop(): Promise<void> }> {
  let requests = 0;
  const srv = createServer((_req: IncomingMessage, res: ServerResponse) => {
    requests++;
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`,
    requests: () => requests,
    stop: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

function assertOk(r: JwtResult, what = 'token'): asserts r is Extract<JwtResult, { ok: true }> {
  assert.ok(r.ok, `${what} should verify, got ${r.ok ? '' : r.reason}`);
}

function assertRejected(r: JwtResult, reason: FailureReason, what: string): void {
  assert.equal(r.ok, false, `${what} must be rejected`);
  if (!r.ok) assert.equal(r.reason, reason, `${what}: expected ${reason}, got ${r.reason}`);
}

async function withIdp(fn: (idp: TestIdp) => Promise<void>, opts: Parameters<typeof startTestIdp>[0] = {}): Promise<void> {
  const idp = await startTestIdp(opts);
  try {
    await fn(idp);
  } finally {
    await idp.stop();
  }
}

test('a real oidc-provider token verifies through discovery, returning claims and expiresAtMs', async () => {
  await withIdp(async (idp) => {
    const log = fetchLog();
    const issuer = await started(settings(idp.issuer, idp.audience), KEYS, log);
    assert.equal(issuer.keys.state(), 'fresh');
    assert.deepEqual(log.seen, [{ issuer: idp.issuer, outcome: 'ok', count: 1 }]);
    const verifier = new JwtVerifier([issuer], MAX_TOKEN_BYTES);
    assert.equal(verifier.issuer(idp.issuer), issuer);

    const token = await idp.token({ claims: { sub: 'alice', roles: ['viewer'], amr: ['hwk'] }, ttlSeconds: 120 });
    assert.equal(decodeProtectedHeader(token).kid, idp.currentKid());
    const r = await verifier.verify(token, Date.now());
    assertOk(r);
    assert.equal(r.issuer, issuer);
    assert.equal(r.claims.sub, 'alice');
    assert.equal(r.claims.iss, idp.issuer);
    assert.equal(r.claims.aud, idp.audience);
    assert.deepEqual(r.claims.roles, ['viewer']);
    assert.deepEqual(r.claims.amr, ['hwk']);
    assert.equal(r.expiresAtMs, (r.claims.exp as number) * 1000);
    assert.ok(Math.abs(r.expiresAtMs - (Date.now() + 120_000)) < 10_000);

    for (let i = 0; i < 5; i++) assertOk(await verifier.verify(await idp.token(), Date.now()));
    assert.equal(idp.requests(DISCOVERY_PATH), 1);
    assert.equal(idp.requests('/jwks'), 1, 'verifying uses the cached keys');

    // The verification time is the caller's: the same token is expired two hours from now.
    assertRejected(await verifier.verify(token, Date.now() + 2 * 3_600_000), 'expired', 'the token checked two hours later');
    issuer.keys.stop();
  });
});

interface Victim {
  name: string;
  verifier: JwtVerifier;
  issuer: Issuer;
  v: forged.Victim;
  key: SigningKey;
  attacker: SigningKey;
  /** JWKS fetches so far at the victim's key location. */
  jwksFetches: () => number;
  realToken: () => Promise<string>;
  confusionForms: forged.ConfusionSecret[];
}

async function adversarialSet(t: TestContext, victim: Victim): Promise<void> {
  const trap = await trapServer();
  const foreignKey = await makeSigningKey(victim.key.alg as 'RS256');
  const foreign = await startJwksServer({ keys: jwksOf(foreignKey) });
  const v = victim.v;
  const now = () => Date.now();
  const real = await victim.realToken();
  const fetchesBefore = victim.jwksFetches();
  const cases: [string, () => Promise<string> | string, FailureReason][] = [
    ['alg none', () => forged.algNone(v), 'algorithm_not_allowed'],
    ...victim.confusionForms.map(
      (form): [string, () => Promise<string>, FailureReason] => [`HS256 keyed with the public key (${form})`, () => forged.hmacWithPublicKey(victim.key.publicJwk, v, form), 'algorithm_not_allowed'],
    ),
    ['jku with the attacker kid', () => forged.withJku(victim.attacker, v, `${trap.url}/jwks.json`), 'unknown_key'],
    ['jku with the real kid', () => forged.withJku(victim.attacker, v, `${trap.url}/jwks.json`, victim.key.kid), 'bad_signature'],
    ['x5u with the attacker kid', () => forged.withX5u(victim.attacker, v, `${trap.url}/cert.pem`), 'unknown_key'],
    ['x5u with the real kid', () => forged.withX5u(victim.attacker, v, `${trap.url}/cert.pem`, victim.key.kid), 'bad_signature'],
    ['embedded jwk with the attacker kid', () => forged.withEmbeddedJwk(victim.attacker, v), 'unknown_key'],
    ['embedded jwk with the real kid', () => forged.withEmbeddedJwk(victim.attacker, v, victim.key.kid), 'bad_signature'],
    ...forged.HOSTILE_KIDS.map((kid): [string, () => Promise<string>, FailureReason] => [`hostile kid ${JSON.stringify(kid)}`, () => forged.withHostileKid(victim.attacker, v, kid), 'unknown_key']),
    ['expired', () => forged.expired(victim.key, v), 'expired'],
    ['not yet valid', () => forged.notYetValid(victim.key, v), 'not_yet_valid'],
    ['wrong audience', () => forged.wrongAudience(victim.key, v), 'audience_mismatch'],
    ['signed by an unlisted issuer', () => forged.foreignIssuer(foreignKey, foreign.issuer, v), 'unknown_issuer'],
    ['no signature segment', () => forged.truncated(real, 'no-signature-segment'), 'malformed'],
    ['header only', () => forged.truncated(real, 'header-only'), 'malformed'],
    ['cut mid-payload', () => forged.truncated(real, 'cut-mid-payload'), 'malformed'],
    ['half a signature', () => forged.truncated(real, 'half-signature'), 'bad_signature'],
    ['over 16 KiB', () => forged.oversized(victim.key, v), 'malformed'],
    ['bad base64 in the header', () => forged.badBase64(real, 'header'), 'malformed'],
    ['bad base64 in the payload', () => forged.badBase64(real, 'payload'), 'malformed'],
    ['bad base64 in the signature', () => forged.badBase64(real, 'signature'), 'malformed'],
    ['unknown crit header', () => forged.unknownCrit(victim.key, v), 'malformed'],
    ['tampered payload', () => forged.tamperedPayload(real), 'bad_signature'],
    ['tampered payload (exp extended by a day)', () => forged.tamperedPayload(real, (c) => ({ ...c, exp: (c.exp as number) + 86_400 })), 'bad_signature'],
  ];
  try {
    assertOk(await victim.verifier.verify(real, now()), `${victim.name}: the untampered token`);
    for (const [name, make, reason] of cases) {
      await t.test(name, async () => {
        const token = await make();
        const r = await victim.verifier.verify(token, now());
        assertRejected(r, reason, `${victim.name}: ${name}`);
      });
    }
    assert.equal(trap.requests(), 0, 'nothing was fetched from a URL named in a token (jku / x5u)');
    assert.equal(foreign.requests(JWKS_PATH) + foreign.requests(DISCOVERY_PATH), 0, 'an unlisted issuer is never contacted');
    assert.equal(victim.jwksFetches(), fetchesBefore, 'every unknown kid fell within the cooldown: no JWKS fetch');
  } finally {
    await foreign.stop();
    await trap.stop();
  }
}

test('the adversarial token set against a real oidc-provider (RS256, discovery)', async (t) => {
  await withIdp(async (idp) => {
    const issuer = await started(settings(idp.issuer, idp.audience));
    const key = await idp.signingKey();
    await adversarialSet(t, {
      name: 'oidc-provider',
      verifier: new JwtVerifier([issuer], MAX_TOKEN_BYTES),
      issuer,
      v: { iss: idp.issuer, aud: idp.audience },
      key,
      attacker: await makeSigningKey('RS256'),
      jwksFetches: () => idp.requests('/jwks'),
      realToken: () => idp.token(),
      confusionForms: ['pem', 'spki-der', 'jwk-n', 'jwk-json'],
    });
    issuer.keys.stop();
  });
});

for (const alg of ['ES256', 'EdDSA', 'PS256'] as const) {
  test(`the adversarial token set against a JwksServer issuer (${alg}, explicit jwks_uri)`, async (t) => {
    const key = await makeSigningKey(alg);
    const srv = await startJwksServer({ keys: jwksOf(key) });
    try {
      const issuer = await started(settings(srv.issuer, 'api', { jwks_uri: srv.jwksUri }));
      assert.equal(srv.requests(DISCOVERY_PATH), 0, 'an explicit jwks_uri needs no discovery');
      await adversarialSet(t, {
        name: `jwks-server ${alg}`,
        verifier: new JwtVerifier([issuer], MAX_TOKEN_BYTES),
        issuer,
        v: { iss: srv.issuer, aud: 'api' },
        key,
        attacker: await makeSigningKey(alg),
        jwksFetches: () => srv.requests(JWKS_PATH),
        realToken: () => signJwt(validClaims(srv.issuer, 'api'), key),
        confusionForms: alg === 'PS256' ? ['pem', 'spki-der', 'jwk-n', 'jwk-json'] : ['pem', 'spki-der', 'jwk-json'],
      });
      issuer.keys.stop();
    } finally {
      await srv.stop();
    }
  });
}

test('a token naming an unconfigured issuer is refused before any fetch, even with the keys never loaded', async () => {
  await withIdp(async (idp) => {
    const trap = await trapServer();
    try {
      const issuer = buildIssuer(settings(idp.issuer, idp.audience), KEYS, fetchLog().events); // not started
      const verifier = new JwtVerifier([issuer], MAX_TOKEN_BYTES);
      const key = await idp.signingKey();
      const v = { iss: idp.issuer, aud: idp.audience };
      for (const iss of [trap.url, `${trap.url}/.well-known/openid-configuration`, `${idp.issuer}/`, 'https://evil.example', '']) {
        assertRejected(await verifier.verify(await forged.wrongIssuer(key, v, iss), Date.now()), 'unknown_issuer', `iss ${JSON.stringify(iss)}`);
      }
      assert.equal(trap.requests(), 0);
      assert.equal(idp.requests(DISCOVERY_PATH) + idp.requests('/jwks'), 0, 'ZERO fetches for an unconfigured issuer');
      assert.equal(issuer.keys.state(), 'unavailable');

      // A token without a string iss never selects an issuer either.
      assertRejected(await verifier.verify(await signJwt({ aud: v.aud, exp: Math.floor(Date.now() / 1000) + 60 }, key), Date.now()), 'malformed', 'no iss');
      assertRejected(await verifier.verify(await signJwt({ ...validClaims(v.iss, v.aud), iss: 42 as unknown as string }, key), Date.now()), 'malformed', 'numeric iss');
      assert.equal(idp.requests(DISCOVERY_PATH) + idp.requests('/jwks'), 0);

      // The configured issuer's own token makes the first load happen on demand.
      assertOk(await verifier.verify(await idp.token(), Date.now()), 'the first token before start()');
      assert.equal(idp.requests('/jwks'), 1);
      issuer.keys.stop();
    } finally {
      await trap.stop();
    }
  });
});

test('the token size limit is checked first and is inclusive', async () => {
  const key = await makeSigningKey('ES256');
  const srv = await startJwksServer({ keys: jwksOf(key) });
  try {
    const issuer = buildIssuer(settings(srv.issuer, 'api', { jwks_uri: srv.jwksUri }), KEYS, fetchLog().events);
    const token = await signJwt(validClaims(srv.issuer, 'api', { padding: 'x'.repeat(2_000) }), key);
    assertRejected(await new JwtVerifier([issuer], token.length - 1).verify(token, Date.now()), 'malformed', 'one byte over the limit');
    assert.equal(srv.requests(JWKS_PATH), 0, 'an oversized token costs no fetch');
    assertOk(await new JwtVerifier([issuer], token.length).verify(token, Date.now()), 'exactly at the limit');
    issuer.keys.stop();
  } finally {
    await srv.stop();
  }
});

test('keys only come from the issuer the token names: another configured issuer’s key is unknown_key', async () => {
  const keyA = await makeSigningKey('ES256', 'a-key');
  const keyB = await makeSigningKey('ES256', 'b-key');
  const a = await startJwksServer({ keys: jwksOf(keyA) });
  const b = await startJwksServer({ keys: jwksOf(keyB) });
  try {
    const issuerA = await started(settings(a.issuer, 'api', { jwks_uri: a.jwksUri }));
    const issuerB = await started(settings(b.issuer, 'api'));
    const verifier = new JwtVerifier([issuerA, issuerB], MAX_TOKEN_BYTES);
    assertOk(await verifier.verify(await signJwt(validClaims(a.issuer, 'api'), keyA), Date.now()), 'A');
    const rb = await verifier.verify(await signJwt(validClaims(b.issuer, 'api'), keyB), Date.now());
    assertOk(rb, 'B');
    assert.equal(rb.issuer, issuerB);
    const crossed = await verifier.verify(await signJwt(validClaims(a.issuer, 'api'), keyB), Date.now());
    assertRejected(crossed, 'unknown_key', "A's iss signed with B's key");
    assert.equal(crossed.issuer, issuerA);
    assert.equal(b.requests(JWKS_PATH), 1, "B's keys were not consulted or refetched for A's token");
    issuerA.keys.stop();
    issuerB.keys.stop();
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('issuer policy from configuration: algorithms, audiences, required claims and clock skew', async () => {
  const es = await makeSigningKey('ES256');
  const rs = await makeSigningKey('RS256');
  const srv = await startJwksServer({ keys: jwksOf(es, rs) });
  try {
    const base = settings(srv.issuer, 'api', { jwks_uri: srv.jwksUri });
    const onlyEs = await started({ ...base, algorithms: ['ES256'] });
    const v1 = new JwtVerifier([onlyEs], MAX_TOKEN_BYTES);
    assertOk(await v1.verify(await signJwt(validClaims(srv.issuer, 'api'), es), Date.now()), 'ES256');
    assertRejected(await v1.verify(await signJwt(validClaims(srv.issuer, 'api'), rs), Date.now()), 'algorithm_not_allowed', 'published RS256 key, ES256 only');
    onlyEs.keys.stop();

    const multi = await started({ ...base, audiences: ['api', 'admin'], clock_skew: 60_000 });
    const v2 = new JwtVerifier([multi], MAX_TOKEN_BYTES);
    assertOk(await v2.verify(await signJwt(validClaims(srv.issuer, 'admin'), es), Date.now()), 'second audience');
    assertOk(await v2.verify(await signJwt(validClaims(srv.issuer, ['other', 'api'] as unknown as string), es), Date.now()), 'aud array');
    assertRejected(await v2.verify(await signJwt(validClaims(srv.issuer, 'other'), es), Date.now()), 'audience_mismatch', 'other audience');
    const nowS = Math.floor(Date.now() / 1000);
    const justExpired = await signJwt({ ...validClaims(srv.issuer, 'api'), iat: nowS - 300, exp: nowS - 30 }, es);
    const r = await v2.verify(justExpired, Date.now());
    assertOk(r, 'expired 30 s ago, within 60 s of skew');
    assert.equal(r.expiresAtMs, (nowS - 30) * 1000);
    assertRejected(await v2.verify(await signJwt({ ...validClaims(srv.issuer, 'api'), exp: nowS - 90 }, es), Date.now()), 'expired', 'beyond the skew');
    const noExp = await signJwt({ iss: srv.issuer, aud: 'api', sub: 'x' }, es);
    assertRejected(await v2.verify(noExp, Date.now()), 'malformed', 'exp is required by default');
    multi.keys.stop();

    const anyAud = await started({ ...base, audiences: [], required_claims: [] });
    const v3 = new JwtVerifier([anyAud], MAX_TOKEN_BYTES);
    const open = await v3.verify(noExp, Date.now());
    assertOk(open, 'no audience configured, no required claims');
    assert.equal(open.expiresAtMs, Number.POSITIVE_INFINITY);
    anyAud.keys.stop();
  } finally {
    await srv.stop();
  }
});

test('issuers from a JWKS file and from discovery on a JwksServer', async () => {
  const key = await makeSigningKey('EdDSA', 'file-kid');
  const dir = await mkdtemp(join(tmpdir(), 'tw-verifier-'));
  const srv = await startJwksServer({ keys: jwksOf(key) });
  try {
    const path = join(dir, 'jwks.json');
    await writeFile(path, JSON.stringify(jwksOf(key)));
    const fromFile = await started(settings('urn:tracewarden:file-issuer', 'api', { jwks_file: path, allow_insecure_http: false }));
    const fromDiscovery = await started(settings(srv.issuer, 'api'));
    const verifier = new JwtVerifier([fromFile, fromDiscovery], MAX_TOKEN_BYTES);
    assertOk(await verifier.verify(await signJwt(validClaims('urn:tracewarden:file-issuer', 'api'), key), Date.now()), 'file issuer');
    assertOk(await verifier.verify(await signJwt(validClaims(srv.issuer, 'api'), key), Date.now()), 'discovery issuer');
    assert.equal(srv.requests(DISCOVERY_PATH), 1);
    assert.equal(srv.requests(JWKS_PATH), 1);

    const missing = await started(settings('urn:tracewarden:missing', 'api', { jwks_file: join(dir, 'missing.json') }));
    assert.equal(missing.keys.state(), 'unavailable');
    assert.ok(missing.keys.error.includes(join(dir, 'missing.json')));
    const r = await new JwtVerifier([missing], MAX_TOKEN_BYTES).verify(await signJwt(validClaims('urn:tracewarden:missing', 'api'), key), Date.now());
    assertRejected(r, 'keys_unavailable', 'missing key file');
    for (const i of [fromFile, fromDiscovery, missing]) i.keys.stop();
  } finally {
    await srv.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('buildIssuer refuses an http key location unless allow_insecure_http', async () => {
  const srv = await startJwksServer();
  try {
    for (const c of [settings(srv.issuer, 'api', { allow_insecure_http: false }), settings('https://idp.example', 'api', { jwks_uri: srv.jwksUri, allow_insecure_http: false })]) {
      assert.throws(
        () => buildIssuer(c, KEYS, fetchLog().events),
        (err: unknown) => err instanceof KeyFetchError && err.code === 'insecure_url',
      );
    }
    const i = buildIssuer(settings(srv.issuer, 'api', { clock_skew: 1_500 }), KEYS, fetchLog().events);
    assert.equal(i.clockSkewSec, 2, 'clock skew is rounded up to whole seconds');
    assert.equal(srv.requests(JWKS_PATH) + srv.requests(DISCOVERY_PATH), 0, 'building fetches nothing');
  } finally {
    await srv.stop();
  }
});

test('rotation: a new kid is fetched on demand and the old kid verifies while published; once withdrawn it is unknown_key', async () => {
  await withIdp(async (idp) => {
    const issuer = await started(settings(idp.issuer, idp.audience), { ...KEYS, unknown_kid_cooldown: 0 });
    const verifier = new JwtVerifier([issuer], MAX_TOKEN_BYTES);
    const first = await idp.token();
    const kid1 = idp.currentKid();
    assertOk(await verifier.verify(first, Date.now()), 'before rotation');
    assert.equal(idp.requests('/jwks'), 1);

    await idp.rotateKeys();
    const second = await idp.token();
    assert.notEqual(decodeProtectedHeader(second).kid, kid1);
    assertOk(await verifier.verify(second, Date.now()), 'the new kid');
    assert.equal(idp.requests('/jwks'), 2, 'one refresh for the unknown kid');
    assertOk(await verifier.verify(first, Date.now()), 'the old kid, still published');
    assert.equal(idp.requests('/jwks'), 2, 'the old kid is in the refreshed set: no fetch');

    await idp.rotateKeys({ keepOld: false });
    const third = await idp.token();
    assertOk(await verifier.verify(first, Date.now()), 'the old kid, still in the cache until a refresh');
    await issuer.keys.refresh();
    assertRejected(await verifier.verify(first, Date.now()), 'unknown_key', 'the withdrawn kid after a refresh');
    assertRejected(await verifier.verify(second, Date.now()), 'unknown_key', 'the other withdrawn kid');
    assertOk(await verifier.verify(third, Date.now()), 'the current kid');
    issuer.keys.stop();
  });
});

test('provider down at start: keys_unavailable; once up, a refresh makes tokens verify', async () => {
  await withIdp(async (idp) => {
    const token = await idp.token();
    await idp.down();
    const log = fetchLog();
    const issuer = buildIssuer(settings(idp.issuer, idp.audience), KEYS, log.events);
    issuer.keys.start();
    assert.equal(issuer.keys.state(), 'unavailable');
    await issuer.keys.whenSettled();
    assert.equal(issuer.keys.state(), 'unavailable');
    assert.match(issuer.keys.error, /ECONNREFUSED/);
    assert.deepEqual(
      log.seen.map((e) => e.outcome),
      ['network'],
    );
    const verifier = new JwtVerifier([issuer], MAX_TOKEN_BYTES);
    assertRejected(await verifier.verify(token, Date.now()), 'keys_unavailable', 'while the issuer is down');

    await idp.up();
    // Within the cooldown the verifier itself may not fetch again; an explicit refresh (the schedule) does.
    assertRejected(await verifier.verify(token, Date.now()), 'keys_unavailable', 'up, but within the cooldown');
    assert.equal(idp.requests('/jwks'), 0);
    await issuer.keys.refresh();
    assert.equal(issuer.keys.state(), 'fresh');
    assertOk(await verifier.verify(token, Date.now()), 'after the issuer came back');
    assert.deepEqual(
      log.seen.map((e) => e.outcome),
      ['network', 'ok'],
    );
    issuer.keys.stop();
  });
});

test('provider down after the keys were loaded: tokens still verify from the cache (stale) within max_stale', async () => {
  await withIdp(async (idp) => {
    const issuer = await started(settings(idp.issuer, idp.audience));
    const verifier = new JwtVerifier([issuer], MAX_TOKEN_BYTES);
    const token = await idp.token();
    await idp.down();
    await issuer.keys.refresh();
    assert.equal(issuer.keys.state(), 'stale');
    assertOk(await verifier.verify(token, Date.now()), 'from the stale cache');
    const stranger = await signJwt(validClaims(idp.issuer, idp.audience), await makeSigningKey('RS256'));
    assertRejected(await verifier.verify(stranger, Date.now()), 'unknown_key', 'an unknown kid while down');
    await idp.up();
    issuer.keys.stop();
  });
});

/** The issuer as buildIssuer makes it, with its key source on a clock the test moves. */
function onClock(idp: TestIdp, clock: { now: () => number }, k: KeyTiming = KEYS): Issuer {
  const built = buildIssuer(settings(idp.issuer, idp.audience), k, fetchLog().events);
  const limits = { timeoutMs: k.fetch_timeout, maxBytes: k.max_response_bytes, allowInsecureHttp: true };
  const keys = new KeySource<JwsKeySet>({ name: idp.issuer, load: discoveryLoader(idp.issuer, limits), parse: parseJwks, timing: keySourceTiming(k), now: clock.now });
  return { ...built, keys };
}

test('beyond max_stale with the issuer down, tokens get keys_unavailable; recovery verifies again', async () => {
  await withIdp(async (idp) => {
    const clock = { t: Date.now(), now: () => clock.t };
    const issuer = onClock(idp, clock);
    issuer.keys.start();
    await issuer.keys.whenSettled();
    const verifier = new JwtVerifier([issuer], MAX_TOKEN_BYTES);
    const token = await idp.token();
    await idp.down();
    clock.t += 60_000;
    await issuer.keys.refresh();
    assertOk(await verifier.verify(token, Date.now()), 'stale but within max_stale');
    clock.t += KEYS.max_stale;
    assert.equal(issuer.keys.state(), 'unavailable');
    assertRejected(await verifier.verify(token, Date.now()), 'keys_unavailable', 'beyond max_stale (the verifier retried once and failed)');
    await idp.up();
    clock.t += KEYS.unknown_kid_cooldown;
    assertOk(await verifier.verify(token, Date.now()), 'the verifier loads again itself once the cooldown passed');
    assert.equal(issuer.keys.state(), 'fresh');
    issuer.keys.stop();
  });
});

test('a storm of 200 tokens with random kids costs no more JWKS fetches than the cooldown allows', async () => {
  await withIdp(async (idp) => {
    // ES256 signs ~20x faster than RS256; an unknown kid takes the same refresh path whatever the key type.
    const attacker = await makeSigningKey('ES256');
    const storm = () =>
      Promise.all(
        Array.from({ length: 200 }, () => signJwt(validClaims(idp.issuer, idp.audience), attacker, { kid: `rnd-${Math.random().toString(36).slice(2)}` })),
      );

    // As built from configuration: the start-up load opened a 30 s cooldown.
    const real = await started(settings(idp.issuer, idp.audience));
    const fetchesAfterStart = idp.requests('/jwks');
    const rv = new JwtVerifier([real], MAX_TOKEN_BYTES);
    const results = await Promise.all((await storm()).map((tok) => rv.verify(tok, Date.now())));
    assert.ok(results.every((r) => !r.ok && r.reason === 'unknown_key'));
    assert.equal(idp.requests('/jwks'), fetchesAfterStart, 'within the cooldown: no fetch at all');
    real.keys.stop();

    // On a moved clock: one fetch per elapsed cooldown, however many tokens.
    const clock = { t: Date.now(), now: () => clock.t };
    const issuer = onClock(idp, clock);
    issuer.keys.start();
    await issuer.keys.whenSettled();
    const base = idp.requests('/jwks');
    const verifier = new JwtVerifier([issuer], MAX_TOKEN_BYTES);
    for (let round = 1; round <= 2; round++) {
      clock.t += KEYS.unknown_kid_cooldown;
      const concurrent = await Promise.all((await storm()).map((tok) => verifier.verify(tok, Date.now())));
      assert.ok(concurrent.every((r) => !r.ok && r.reason === 'unknown_key'));
      for (const tok of await storm()) assertRejected(await verifier.verify(tok, Date.now()), 'unknown_key', 'a sequential random kid');
      assert.equal(idp.requests('/jwks'), base + round, `round ${round}: one fetch for 400 unknown kids`);
    }
    assertOk(await verifier.verify(await idp.token(), Date.now()), 'a real token still verifies after the storm');
    issuer.keys.stop();
  });
});

test('a token without a kid verifies when the issuer publishes several keys of its type (rotation overlap)', async () => {
  const older = await makeSigningKey('ES256', 'older');
  const newer = await makeSigningKey('ES256', 'newer');
  const srv = await startJwksServer({ keys: jwksOf(newer, older) });
  try {
    const issuer = await started(settings(srv.issuer, 'api', { jwks_uri: srv.jwksUri }));
    const verifier = new JwtVerifier([issuer], MAX_TOKEN_BYTES);
    const noKid = await signJwt(validClaims(srv.issuer, 'api'), older, { kid: undefined });
    assert.equal(decodeProtectedHeader(noKid).kid, undefined);
    const r = await verifier.verify(noKid, Date.now());
    assert.ok(
      r.ok,
      `BUG identity/jwt/verifier.ts verify(): with several matching keys jose throws ERR_JWKS_MULTIPLE_MATCHING_KEYS (an async iterable of the candidates) and the verifier maps it to ${r.ok ? '' : r.reason} instead of trying each candidate (jose's documented pattern); a genuine kid-less token is refused while an issuer publishes two keys`,
    );
    const attackerNoKid = await signJwt(validClaims(srv.issuer, 'api'), await makeSigningKey('ES256'), { kid: undefined });
    assertRejected(await verifier.verify(attackerNoKid, Date.now()), 'bad_signature', 'an attacker token without a kid');
    issuer.keys.stop();
  } finally {
    await srv.stop();
  }
});
