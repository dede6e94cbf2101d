/**
 * Each forged token is (a) really what it claims to be — checked by verifying it with the key or options
 * that WOULD accept it — and (b) rejected by jose configured as the identity processor must be: the real
 * issuer's remote JWKS, expected issuer and audience, asymmetric algorithms only. The jose error code per
 * token is asserted, since the processor maps those codes to reason codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { startTestIdp, type TestIdp } from '../helpers/oidc-provider.js';
import { jwksOf, makeSigningKey, type SigningKey } from '../helpers/jwks-server.js';
import * as forged from '../helpers/forged-tokens.js';

const ASYMMETRIC = ['RS256', 'PS256', 'ES256', 'EdDSA'];

interface Ctx {
  idp: TestIdp;
  victim: forged.Victim;
  victimKey: SigningKey;
  attacker: SigningKey;
  keys: JWTVerifyGetKey;
  real: string;
}

async function withVictim(fn: (c: Ctx) => Promise<void>): Promise<void> {
  const idp = await startTestIdp({ alg: 'RS256' });
  try {
    const victimKey = await idp.signingKey();
    const attacker = await makeSigningKey('RS256', 'attacker-key-1');
    await fn({
      idp,
      victim: { iss: idp.issuer, aud: idp.audience },
      victimKey,
      attacker,
      keys: createRemoteJWKSet(new URL(idp.jwksUri)),
      real: await idp.token({ claims: { sub: 'alice', roles: ['reader'] } }),
    });
  } finally {
    await idp.stop();
  }
}

function rejectsWith(c: Ctx, token: string, code: string, claim?: string): Promise<void> {
  const expected: Record<string, unknown> = { code };
  if (claim) expected.claim = claim;
  return assert.rejects(jwtVerify(token, c.keys, { issuer: c.idp.issuer, audience: c.idp.audience, algorithms: ASYMMETRIC }), expected);
}

test('control: the real token verifies under the strict configuration', async () => {
  await withVictim(async (c) => {
    const { payload } = await jwtVerify(c.real, c.keys, { issuer: c.idp.issuer, audience: c.idp.audience, algorithms: ASYMMETRIC });
    assert.equal(payload.sub, 'alice');
    assert.equal(decodeProtectedHeader(c.real).kid, c.victimKey.kid);
    assert.equal(c.victimKey.publicJwk.d, undefined);
  });
});

test('alg none: empty signature, rejected ERR_JOSE_ALG_NOT_ALLOWED (ERR_JOSE_NOT_SUPPORTED without an algorithms list)', async () => {
  await withVictim(async (c) => {
    const token = forged.algNone(c.victim);
    assert.ok(token.endsWith('.'));
    assert.equal(decodeProtectedHeader(token).alg, 'none');
    assert.equal(decodeJwt(token).iss, c.idp.issuer);
    await rejectsWith(c, token, 'ERR_JOSE_ALG_NOT_ALLOWED');
    await assert.rejects(jwtVerify(token, c.keys, { issuer: c.idp.issuer, audience: c.idp.audience }), { code: 'ERR_JOSE_NOT_SUPPORTED' });
  });
});

test('HS256 keyed with the issuer public key (pem, spki-der, jwk-n, jwk-json): genuine HMACs, rejected ERR_JOSE_ALG_NOT_ALLOWED', async () => {
  await withVictim(async (c) => {
    for (const form of ['pem', 'spki-der', 'jwk-n', 'jwk-json'] as const) {
      const token = await forged.hmacWithPublicKey(c.victimKey.publicJwk, c.victim, form);
      const header = decodeProtectedHeader(token);
      assert.equal(header.alg, 'HS256');
      assert.equal(header.kid, c.victimKey.kid);
      const secret = await forged.publicKeyBytes(c.victimKey.publicJwk, form);
      // A verifier that trusts the header's alg and uses the public key bytes as the secret would accept it.
      await jwtVerify(token, secret, { issuer: c.idp.issuer, audience: c.idp.audience, algorithms: ['HS256'] });
      await rejectsWith(c, token, 'ERR_JOSE_ALG_NOT_ALLOWED');
      await assert.rejects(jwtVerify(token, c.keys, { issuer: c.idp.issuer, audience: c.idp.audience }), { code: 'ERR_JOSE_NOT_SUPPORTED' });
    }
    const pem = new TextDecoder().decode(await forged.publicKeyBytes(c.victimKey.publicJwk, 'pem'));
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----/);
  });
});

test('jku / x5u / embedded jwk headers: attacker-signed; unknown kid → ERR_JWKS_NO_MATCHING_KEY, real kid → ERR_JWS_SIGNATURE_VERIFICATION_FAILED', async () => {
  await withVictim(async (c) => {
    const attackerKeys = createLocalJWKSet(jwksOf(c.attacker));
    const url = 'http://127.0.0.1:9/attacker';
    const own = [
      await forged.withJku(c.attacker, c.victim, `${url}/jwks`),
      await forged.withX5u(c.attacker, c.victim, `${url}/cert.pem`),
      await forged.withEmbeddedJwk(c.attacker, c.victim),
    ];
    const reusedKid = [
      await forged.withJku(c.attacker, c.victim, `${url}/jwks`, c.victimKey.kid),
      await forged.withX5u(c.attacker, c.victim, `${url}/cert.pem`, c.victimKey.kid),
      await forged.withEmbeddedJwk(c.attacker, c.victim, c.victimKey.kid),
    ];
    assert.equal(decodeProtectedHeader(own[0]!).jku, `${url}/jwks`);
    assert.equal(decodeProtectedHeader(own[1]!).x5u, `${url}/cert.pem`);
    assert.equal(decodeProtectedHeader(own[2]!).jwk?.n, c.attacker.publicJwk.n);
    for (const token of own) {
      await jwtVerify(token, attackerKeys, { issuer: c.idp.issuer, audience: c.idp.audience });
      await rejectsWith(c, token, 'ERR_JWKS_NO_MATCHING_KEY');
    }
    for (const token of reusedKid) {
      assert.equal(decodeProtectedHeader(token).kid, c.victimKey.kid);
      await rejectsWith(c, token, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    }
  });
});

test('hostile kid values (traversal, SQL, NUL...): attacker-signed, rejected ERR_JWKS_NO_MATCHING_KEY', async () => {
  await withVictim(async (c) => {
    assert.ok(forged.HOSTILE_KIDS.includes('../../etc/passwd'));
    assert.ok(forged.HOSTILE_KIDS.includes("' OR '1'='1"));
    assert.ok(forged.HOSTILE_KIDS.includes('kid\u0000'));
    for (const kid of forged.HOSTILE_KIDS) {
      const token = await forged.withHostileKid(c.attacker, c.victim, kid);
      assert.equal(decodeProtectedHeader(token).kid, kid);
      await rejectsWith(c, token, 'ERR_JWKS_NO_MATCHING_KEY');
    }
  });
});

test('claim defects signed by the real key: expired, nbf, iss, aud', async () => {
  await withVictim(async (c) => {
    const opts = { issuer: c.idp.issuer, audience: c.idp.audience, algorithms: ASYMMETRIC };
    const exp = await forged.expired(c.victimKey, c.victim);
    const expClaims = decodeJwt(exp);
    // Genuine signature: accepted when the clock is set back to when it was valid.
    await jwtVerify(exp, c.keys, { ...opts, currentDate: new Date((expClaims.exp! - 60) * 1000) });
    await rejectsWith(c, exp, 'ERR_JWT_EXPIRED', 'exp');
    await assert.rejects(jwtVerify(exp, c.keys, { ...opts, clockTolerance: 300 }), { code: 'ERR_JWT_EXPIRED' });

    const nbf = await forged.notYetValid(c.victimKey, c.victim);
    await jwtVerify(nbf, c.keys, { ...opts, currentDate: new Date((decodeJwt(nbf).nbf! + 60) * 1000) });
    await rejectsWith(c, nbf, 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'nbf');

    const iss = await forged.wrongIssuer(c.victimKey, c.victim);
    await jwtVerify(iss, c.keys, { ...opts, issuer: 'https://evil.example' });
    await rejectsWith(c, iss, 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'iss');

    const aud = await forged.wrongAudience(c.victimKey, c.victim);
    await jwtVerify(aud, c.keys, { ...opts, audience: 'someone-else' });
    await rejectsWith(c, aud, 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'aud');
  });
});

test('issuer not in the allowlist: validly signed by its own key, rejected ERR_JWKS_NO_MATCHING_KEY against the victim keys', async () => {
  await withVictim(async (c) => {
    const foreignKey = await makeSigningKey('RS256', 'foreign-1');
    const token = await forged.foreignIssuer(foreignKey, 'https://other-idp.example', c.victim);
    await jwtVerify(token, createLocalJWKSet(jwksOf(foreignKey)), { issuer: 'https://other-idp.example', audience: c.idp.audience });
    await rejectsWith(c, token, 'ERR_JWKS_NO_MATCHING_KEY');
    // Even if its kid collided with the victim's, the signature would not match.
    const collide = await makeSigningKey('RS256', c.victimKey.kid);
    await rejectsWith(c, await forged.foreignIssuer(collide, c.idp.issuer, c.victim), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });
});

test('truncated real token: missing segments → ERR_JWS_INVALID, half signature → ERR_JWS_SIGNATURE_VERIFICATION_FAILED', async () => {
  await withVictim(async (c) => {
    await rejectsWith(c, forged.truncated(c.real, 'no-signature-segment'), 'ERR_JWS_INVALID');
    await rejectsWith(c, forged.truncated(c.real, 'header-only'), 'ERR_JWS_INVALID');
    await rejectsWith(c, forged.truncated(c.real, 'cut-mid-payload'), 'ERR_JWS_INVALID');
    const half = forged.truncated(c.real, 'half-signature');
    assert.ok(half.length < c.real.length && c.real.startsWith(half));
    await rejectsWith(c, half, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });
});

test('oversized (>16 KiB payload) is validly signed and jose ACCEPTS it: the size cap is the processor’s job', async () => {
  await withVictim(async (c) => {
    const token = await forged.oversized(c.victimKey, c.victim);
    assert.ok(token.split('.')[1]!.length > 16 * 1024);
    const { payload } = await jwtVerify(token, c.keys, { issuer: c.idp.issuer, audience: c.idp.audience, algorithms: ASYMMETRIC });
    assert.equal((payload.padding as string).length, 16 * 1024 + 1);
  });
});

test('bad base64: header → ERR_JWS_INVALID, payload → ERR_JWS_SIGNATURE_VERIFICATION_FAILED, signature → ERR_JWS_INVALID', async () => {
  await withVictim(async (c) => {
    for (const where of ['header', 'payload', 'signature'] as const) {
      const token = forged.badBase64(c.real, where);
      assert.notEqual(token, c.real);
      assert.equal(token.length, c.real.length);
      assert.ok(token.includes('*'));
    }
    await rejectsWith(c, forged.badBase64(c.real, 'header'), 'ERR_JWS_INVALID');
    // The signature is checked over the raw segments before the payload is decoded.
    await rejectsWith(c, forged.badBase64(c.real, 'payload'), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    await rejectsWith(c, forged.badBase64(c.real, 'signature'), 'ERR_JWS_INVALID');
  });
});

test('unknown crit extension, validly signed: rejected ERR_JOSE_NOT_SUPPORTED', async () => {
  await withVictim(async (c) => {
    const token = await forged.unknownCrit(c.victimKey, c.victim);
    assert.deepEqual(decodeProtectedHeader(token).crit, ['x-tracewarden-unknown']);
    await jwtVerify(token, c.keys, { issuer: c.idp.issuer, audience: c.idp.audience, crit: { 'x-tracewarden-unknown': true } });
    await rejectsWith(c, token, 'ERR_JOSE_NOT_SUPPORTED');
  });
});

test('payload changed after signing (original signature kept): rejected ERR_JWS_SIGNATURE_VERIFICATION_FAILED', async () => {
  await withVictim(async (c) => {
    const token = forged.tamperedPayload(c.real);
    assert.equal(token.split('.')[0], c.real.split('.')[0]);
    assert.equal(token.split('.')[2], c.real.split('.')[2]);
    const claims = decodeJwt(token);
    assert.equal(claims.sub, 'admin');
    assert.deepEqual(claims.roles, ['admin']);
    assert.equal(claims.iss, c.idp.issuer);
    await rejectsWith(c, token, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });
});
