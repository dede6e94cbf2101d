/**
 * One rule at a time, the edges of the JWS path that a mutation pass found untested: which JWKS members
 * are imported (each skip rule on its own, and the members each rule must keep), which keys are candidates
 * for a header, what parseCompact refuses (each structural rule on its own), header and claims checks at
 * their boundaries. Tokens are signed with jose, an independent implementation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { JwsKeySet, checkClaims, checkHeader, parseCompact, signatureVerifies } from './jws.js';
import { makeSigningKey, signJwt } from '../../test/helpers/jwks-server.js';

const ISS = 'https://idp.example';

async function es256() {
  const key = await makeSigningKey('ES256', 'k1');
  // The helper publishes `use: sig` and `alg`; the rules are checked against a bare member too.
  const { use: _use, alg: _alg, ...bare } = key.publicJwk;
  return { key, bare };
}

test('JWKS import: each rule skips only what it names, and keeps members without the optional fields', async () => {
  const { bare } = await es256();
  const size = (members: unknown[]) => {
    const s = JwsKeySet.fromJwks({ keys: members });
    return [s.size, s.skipped];
  };
  assert.deepEqual(size([bare]), [1, 0], 'no use, key_ops, alg: usable');
  assert.deepEqual(size([{ ...bare, use: 'sig' }]), [1, 0]);
  assert.deepEqual(size([{ ...bare, use: 'enc' }]), [0, 1]);
  assert.deepEqual(size([{ ...bare, key_ops: ['verify'] }]), [1, 0]);
  assert.deepEqual(size([{ ...bare, key_ops: ['sign'] }]), [0, 1]);
  assert.deepEqual(size([{ ...bare, key_ops: 'verify' }]), [0, 1]);
  assert.deepEqual(size([{ ...bare, kid: 7 }]), [0, 1]);
  assert.deepEqual(size([{ ...bare, kid: 'named' }]), [1, 0]);
  assert.deepEqual(size([{ ...bare, alg: 256 }]), [0, 1]);
  assert.deepEqual(size([{ ...bare, alg: 'ES256' }]), [1, 0]);
  const { kty: _kty, ...noKty } = bare;
  assert.deepEqual(size([noKty]), [0, 1]);
  assert.deepEqual(size([{ ...bare, kty: 5 }]), [0, 1]);
  assert.deepEqual(size([null]), [0, 1]);
  assert.deepEqual(size([[bare]]), [0, 1]);
  assert.deepEqual(size([42]), [0, 1]);
  for (const body of [null, 'keys', 42, { keys: {} }, { keys: 'x' }, []]) assert.throws(() => JwsKeySet.fromJwks(body), /not a JSON Web Key Set/, JSON.stringify(body));
  const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' });
  assert.deepEqual(size([rsa(2048)]), [1, 0]);
  assert.deepEqual(size([rsa(1024)]), [0, 1]);
});

test('a private JWK published by mistake is used as its public half', async () => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const priv = await exportJWK(privateKey);
  assert.ok(priv.d !== undefined);
  const set = JwsKeySet.fromJwks({ keys: [{ ...priv, kid: 'p' }] });
  const [member] = set.candidates('ES256', 'p');
  assert.equal(member!.key.type, 'public');
});

test('candidates: key type, kid, alg and curve must all fit the header', async () => {
  const p256 = (await es256()).bare;
  const p384 = await exportJWK((await generateKeyPair('ES384', { extractable: true })).publicKey);
  const rsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
  const set = JwsKeySet.fromJwks({
    keys: [
      { ...p256, kid: 'same' },
      { ...p384, kid: 'same' },
      { ...rsaKey, kid: 'same' },
      { ...p256, kid: 'pinned-384', alg: 'ES384' },
      { ...p256, kid: 'pinned-256', alg: 'ES256' },
    ],
  });
  const kids = (alg: 'ES256' | 'ES384' | 'RS256' | 'PS256', kid?: string) => set.candidates(alg, kid).map((m) => `${m.kid}/${m.kty}/${m.crv ?? ''}`);
  assert.deepEqual(kids('ES256', 'same'), ['same/EC/P-256']);
  assert.deepEqual(kids('ES384', 'same'), ['same/EC/P-384']);
  assert.deepEqual(kids('RS256', 'same'), ['same/RSA/']);
  assert.deepEqual(kids('ES256', 'pinned-384'), [], 'a key pinned to another algorithm is not a candidate');
  assert.deepEqual(kids('ES256', 'pinned-256'), ['pinned-256/EC/P-256']);
  assert.deepEqual(kids('ES256'), ['same/EC/P-256', 'pinned-256/EC/P-256']);
  assert.deepEqual(kids('ES256', 'other'), []);
});

test('parseCompact refuses each malformed shape on its own, and accepts the token as signed', async () => {
  const { key } = await es256();
  const token = await signJwt({ iss: ISS, sub: 'alice', exp: 2_000_000_000 }, key);
  const [h, p, s] = token.split('.') as [string, string, string];
  assert.ok(parseCompact(token) !== null);
  const b64 = (text: string) => Buffer.from(text).toString('base64url');
  // Pads a segment with base64url characters until its length is 1 mod 4 (never a valid encoding).
  const oneMod4 = (seg: string) => seg + 'A'.repeat((5 - (seg.length % 4)) % 4);
  const refused: [string, string][] = [
    [`${h}.${p}`, 'two segments'],
    [`${token}.x`, 'four segments'],
    [`${token}.`, 'a trailing dot'],
    [`.${p}.${s}`, 'an empty header'],
    [`${h}..${s}.x`, 'five segments with an empty one'],
    [`${h}+.${p}.${s}`, 'a + in the header'],
    [`${h}.${p}/.${s}`, 'a / in the payload'],
    [`${h}.${p}.${s}=`, 'padding in the signature'],
    [`${oneMod4(h)}.${p}.${s}`, 'a header of 1 mod 4 characters'],
    [`${h}.${oneMod4(p)}.${s}`, 'a payload of 1 mod 4 characters'],
    [`${h}.${p}.${oneMod4(s)}`, 'a signature of 1 mod 4 characters'],
    [`${b64(' {"alg":"ES256"}')}.${p}.${s}`, 'a header JSON that does not open at once'],
    [`${b64('{"alg":')}.${p}.${s}`, 'a header that is not JSON'],
    [`${h}.${b64('{"sub":')}.${s}`, 'a payload that is not JSON'],
    [`${b64('[1]')}.${p}.${s}`, 'a header that is an array'],
    [`${h}.${b64('[1,2]')}.${s}`, 'a payload that is an array'],
    [`${h}.${b64('null')}.${s}`, 'a payload that is null'],
    [`${h}.${b64('"text"')}.${s}`, 'a payload that is a string'],
  ];
  for (const [t, what] of refused) assert.equal(parseCompact(t), null, what);
  const parsed = parseCompact(token)!;
  assert.equal(parsed.payload['sub'], 'alice');
  assert.equal(parsed.header['kid'], 'k1');
  assert.equal(parsed.signingInput.toString('ascii'), `${h}.${p}`);
  assert.equal(parsed.signature.toString('base64url'), s);
  const [member] = JwsKeySet.fromJwks({ keys: [key.publicJwk] }).candidates('ES256', 'k1');
  assert.equal(signatureVerifies(parsed, 'ES256', member!.key), true);
  // An ES256 signature of the wrong length does not verify (and does not throw).
  assert.equal(signatureVerifies({ ...parsed, signature: Buffer.concat([parsed.signature, Buffer.of(0)]) }, 'ES256', member!.key), false);
  assert.equal(signatureVerifies({ ...parsed, signature: parsed.signature.subarray(1) }, 'ES256', member!.key), false);
});

test('checkHeader: alg present and allowed, and no crit extension', () => {
  assert.equal(checkHeader({ alg: 'ES256' }, ['ES256']), 'ES256');
  assert.equal(checkHeader({}, ['ES256']), 'malformed');
  assert.equal(checkHeader({ alg: 256 }, ['ES256']), 'malformed');
  assert.equal(checkHeader({ alg: 'ES256', crit: ['exp'] }, ['ES256']), 'malformed');
  assert.equal(checkHeader({ alg: 'ES256', crit: [] }, ['ES256']), 'malformed');
  assert.equal(checkHeader({ alg: 'RS256' }, ['ES256']), 'algorithm_not_allowed');
  assert.equal(checkHeader({ alg: 'none' }, ['none']), 'algorithm_not_allowed', 'none is never an algorithm');
  assert.equal(checkHeader({ alg: 'HS256' }, ['HS256']), 'algorithm_not_allowed', 'only the asymmetric algorithms exist here');
});

test('checkClaims: each claim rule at its boundary', () => {
  const now = 1_900_000_000;
  const opts = { issuer: ISS, audiences: ['checkout'], clockSkewSec: 30, requiredClaims: ['exp'] };
  const ok = { iss: ISS, aud: 'checkout', exp: now + 60 };
  assert.equal(checkClaims(ok, opts, now), null, 'no iat, no nbf: fine');
  assert.equal(checkClaims({ ...ok, aud: ['other', 'checkout'] }, opts, now), null);
  assert.equal(checkClaims({ ...ok, aud: 'other' }, opts, now), 'audience_mismatch');
  assert.equal(checkClaims({ ...ok, aud: ['other'] }, opts, now), 'audience_mismatch');
  assert.equal(checkClaims({ ...ok, aud: [7] }, opts, now), 'audience_mismatch');
  assert.equal(checkClaims({ ...ok, aud: { checkout: true } }, opts, now), 'audience_mismatch');
  const { aud: _aud, ...noAud } = ok;
  assert.equal(checkClaims(noAud, opts, now), 'audience_mismatch');
  assert.equal(checkClaims(noAud, { ...opts, audiences: [] }, now), null, 'no audience configured: not checked');
  assert.equal(checkClaims({ ...ok, iss: 'https://evil.example' }, opts, now), 'unknown_issuer');
  const { exp: _exp, ...noExp } = ok;
  assert.equal(checkClaims(noExp, opts, now), 'malformed', 'a required claim missing');
  assert.equal(checkClaims(noExp, { ...opts, requiredClaims: [] }, now), null);
  for (const c of ['iat', 'nbf', 'exp']) assert.equal(checkClaims({ ...ok, [c]: String(now) }, opts, now), 'malformed', `${c} as a string`);
  assert.equal(checkClaims({ ...ok, iat: now }, opts, now), null);
  assert.equal(checkClaims({ ...ok, nbf: now + 30 }, opts, now), null, 'nbf at the edge of the skew');
  assert.equal(checkClaims({ ...ok, nbf: now + 31 }, opts, now), 'not_yet_valid');
  assert.equal(checkClaims({ ...ok, exp: now - 29 }, opts, now), null, 'exp inside the skew');
  assert.equal(checkClaims({ ...ok, exp: now - 30 }, opts, now), 'expired', 'exp at the edge of the skew');
});
