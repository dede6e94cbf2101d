/**
 * The node:crypto JWS path against jose as an independent oracle: for every token, valid or hostile,
 * both must accept or both refuse, and for refusals our reason must be the one jose's error code maps to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify, SignJWT, type JWK } from 'jose';
import { KeySource } from '../keys/key-source.js';
import { JwtVerifier } from './verifier.js';
import { parseJwks, ASYMMETRIC_ALGORITHMS, type Issuer, type JwtAlgorithm } from './issuer.js';
import { JwsKeySet, parseCompact } from './jws.js';
import { jwksOf, makeSigningKey, signJwt, validClaims } from '../../test/helpers/jwks-server.js';
import * as forged from '../../test/helpers/forged-tokens.js';
import type { FailureReason } from '../reasons.js';

const ISS = 'https://idp.example';
const AUD = 'checkout';
const NOW = 1_900_000_000_000;

/** jose's error codes, as the reasons tracewarden reports. */
function joseReason(err: unknown): FailureReason {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return e.claim === 'nbf' ? 'not_yet_valid' : e.claim === 'aud' ? 'audience_mismatch' : e.claim === 'iss' ? 'unknown_issuer' : 'malformed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm_not_allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'unknown_key';
    default:
      return 'malformed';
  }
}

async function issuerWith(jwks: { keys: JWK[] }, algorithms: readonly JwtAlgorithm[] = ASYMMETRIC_ALGORITHMS): Promise<Issuer> {
  const keys = new KeySource({
    name: ISS,
    load: async () => ({ body: jwks, maxAgeMs: null }),
    parse: parseJwks,
    timing: { refreshIntervalMs: 3_600_000, minRefreshIntervalMs: 60_000, maxRefreshIntervalMs: 86_400_000, unknownKidCooldownMs: 3_600_000, maxStaleMs: 3_600_000 },
  });
  keys.start();
  await keys.whenSettled();
  return { issuer: ISS, audiences: [AUD], algorithms, clockSkewSec: 30, requiredClaims: ['exp'], keys };
}

async function both(token: string, jwks: { keys: JWK[] }, algorithms: readonly JwtAlgorithm[] = ASYMMETRIC_ALGORITHMS) {
  const issuer = await issuerWith(jwks, algorithms);
  const ours = await new JwtVerifier([issuer], 16_384).verify(token, NOW);
  issuer.keys.stop();
  let theirs: 'verified' | FailureReason = 'verified';
  try {
    await jwtVerify(token, createLocalJWKSet(jwks), {
      issuer: ISS,
      audience: AUD,
      algorithms: algorithms as string[],
      clockTolerance: 30,
      requiredClaims: ['exp'],
      currentDate: new Date(NOW),
    });
  } catch (err) {
    theirs = joseReason(err);
  }
  return { ours: ours.ok ? 'verified' : ours.reason, theirs };
}

const now = Math.floor(NOW / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISS, aud: AUD, sub: 'alice', iat: now, exp: now + 300, ...extra });

test('every algorithm: valid tokens verify, and claim edge cases agree with jose', async () => {
  for (const alg of ASYMMETRIC_ALGORITHMS) {
    const key = await makeSigningKey(alg, `k-${alg}`);
    const jwks = jwksOf(key);
    const cases: [string, Record<string, unknown>][] = [
      ['valid', claims()],
      ['aud list', claims({ aud: ['other', AUD] })],
      ['wrong aud', claims({ aud: 'billing' })],
      ['expired beyond skew', claims({ exp: now - 31 })],
      ['expired within skew', claims({ exp: now - 29 })],
      ['exp exactly at now - skew', claims({ exp: now - 30 })],
      ['nbf beyond skew', claims({ nbf: now + 31 })],
      ['nbf within skew', claims({ nbf: now + 29 })],
      ['exp not a number', claims({ exp: String(now + 300) })],
      ['iat not a number', claims({ iat: 'yesterday' })],
      ['no exp (required)', { iss: ISS, aud: AUD, sub: 'a' }],
    ];
    for (const [name, c] of cases) {
      const token = await new SignJWT(c).setProtectedHeader({ alg, kid: key.kid }).sign(key.privateKey);
      const r = await both(token, jwks);
      assert.equal(r.ours, r.theirs, `${alg} ${name}`);
    }
  }
});

test('the adversarial set is refused with the same reasons as jose', async () => {
  const key = await makeSigningKey('RS256', 'victim-1');
  const attacker = await makeSigningKey('RS256', 'attacker-1');
  const foreign = await makeSigningKey('RS256', 'foreign-1');
  const jwks = jwksOf(key);
  const v = { iss: ISS, aud: AUD };
  const real = await signJwt(validClaims(ISS, AUD, { sub: 'alice' }, 3600), key);
  const tokens: [string, string][] = [
    ['alg none', forged.algNone(v)],
    ['hs256 with pem', await forged.hmacWithPublicKey(key.publicJwk, v, 'pem')],
    ['hs256 with jwk-n', await forged.hmacWithPublicKey(key.publicJwk, v, 'jwk-n')],
    ['jku attacker kid', await forged.withJku(attacker, v, 'http://127.0.0.1:1/jwks')],
    ['jku victim kid', await forged.withJku(attacker, v, 'http://127.0.0.1:1/jwks', key.kid)],
    ['x5u', await forged.withX5u(attacker, v, 'http://127.0.0.1:1/x5u')],
    ['embedded jwk', await forged.withEmbeddedJwk(attacker, v)],
    ['embedded jwk victim kid', await forged.withEmbeddedJwk(attacker, v, key.kid)],
    ...(await Promise.all(forged.HOSTILE_KIDS.map(async (k): Promise<[string, string]> => [`hostile kid ${JSON.stringify(k)}`, await forged.withHostileKid(attacker, v, k)]))),
    ['wrong aud', await forged.wrongAudience(key, v)],
    ['foreign issuer same name', await forged.foreignIssuer(foreign, ISS, v)],
    ['truncated no signature', forged.truncated(real, 'no-signature-segment')],
    ['truncated half signature', forged.truncated(real, 'half-signature')],
    ['header only', forged.truncated(real, 'header-only')],
    ['cut mid payload', forged.truncated(real, 'cut-mid-payload')],
    ['bad base64 header', forged.badBase64(real, 'header')],
    ['bad base64 signature', forged.badBase64(real, 'signature')],
    ['crit', await forged.unknownCrit(key, v)],
    ['tampered payload', forged.tamperedPayload(real)],
    ['kid not a string', await new SignJWT(validClaims(ISS, AUD, {}, 3600)).setProtectedHeader({ alg: 'RS256', kid: 42 as unknown as string }).sign(key.privateKey)],
  ];
  for (const [name, token] of tokens) {
    const r = await both(token, jwks);
    assert.notEqual(r.ours, 'verified', name);
    assert.equal(r.ours, r.theirs, name);
  }
  // Two documented differences, both refusals: jose checks the signature over the raw text before it
  // decodes a payload with bad base64 (bad_signature), we refuse what is not base64url at all (malformed);
  // and jose accepts a validly signed token over 16 KiB, which we refuse by size first.
  const bad = await both(forged.badBase64(real, 'payload'), jwks);
  assert.deepEqual(bad, { ours: 'malformed', theirs: 'bad_signature' });
});

test('a kid-less token verifies against any of several matching keys, as jose does', async () => {
  const a = await makeSigningKey('ES256', 'a');
  const b = await makeSigningKey('ES256', 'b');
  const jwks = jwksOf(a, b);
  const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(b.privateKey);
  const issuer = await issuerWith(jwks);
  assert.equal((await new JwtVerifier([issuer], 16_384).verify(token, NOW)).ok, true);
  issuer.keys.stop();
  const stranger = await makeSigningKey('ES256', 'c');
  const bad = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(stranger.privateKey);
  assert.deepEqual((await both(bad, jwks)).ours, 'bad_signature');
});

test('key import skips members that cannot verify, and refuses RSA keys under 2048 bits', async () => {
  const good = await makeSigningKey('ES256', 'good');
  const set = JwsKeySet.fromJwks({
    keys: [
      good.publicJwk,
      { ...good.publicJwk, kid: 'enc', use: 'enc' },
      { ...good.publicJwk, kid: 'wrap', key_ops: ['wrapKey'] },
      { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' },
      { kty: 'RSA', n: Buffer.alloc(128, 0xff).toString('base64url'), e: 'AQAB', kid: 'small' },
      { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'BBBB', kid: 'broken' },
      'not an object',
    ],
  });
  assert.equal(set.size, 1);
  assert.equal(set.skipped, 6);
  assert.deepEqual(
    set.candidates('ES256', undefined).map((m) => m.kid),
    ['good'],
  );
  assert.throws(() => JwsKeySet.fromJwks({ nokeys: [] }), /not a JSON Web Key Set/);
});

test('an algorithm allowlist refuses other algorithms before any key is used', async () => {
  const key = await makeSigningKey('ES256', 'k');
  const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'k' }).sign(key.privateKey);
  const r = await both(token, jwksOf(key), ['RS256']);
  assert.deepEqual(r, { ours: 'algorithm_not_allowed', theirs: 'algorithm_not_allowed' });
});


test('a signature spelled with non-zero unused bits in its last character is not the token that was signed', async () => {
  const key = await makeSigningKey('ES256', 'canon');
  const token = await signJwt({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 }, key);
  const sig = token.split('.')[2]!;
  // 64 signature bytes take 86 characters: the last one carries 2 bits of data and 4 unused ones.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(sig[sig.length - 1]!);
  const respelled = `${token.slice(0, token.length - 1)}${alphabet[last ^ 1]}`;
  assert.deepEqual(Buffer.from(respelled.split('.')[2]!, 'base64url'), Buffer.from(sig, 'base64url'), 'the same signature bytes');
  assert.ok(parseCompact(token) !== null);
  assert.equal(parseCompact(respelled), null);
});
