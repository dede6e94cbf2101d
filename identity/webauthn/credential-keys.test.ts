import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { credentialKeyFromJwk, credentialKeysFromJwks } from './credential-keys.js';
import { createCredential, jwks } from '../../test/helpers/webauthn-authenticator.js';

const es = createCredential('ES256', { user: 'alice' });
const rs = createCredential('RS256');
const ed = createCredential('EdDSA', { user: 'carol' });

test('each supported key type maps to its algorithm, keyed by credential id', () => {
  const set = credentialKeysFromJwks(jwks([es, rs, ed]));
  assert.deepEqual(set.problems, []);
  assert.equal(set.keys.size, 3);
  const e = set.keys.get(es.id)!;
  assert.equal(e.alg, 'ES256');
  assert.equal(e.user, 'alice');
  assert.equal(e.key.asymmetricKeyType, 'ec');
  assert.equal(e.key.type, 'public');
  assert.equal(set.keys.get(rs.id)!.alg, 'RS256');
  assert.equal(set.keys.get(rs.id)!.user, undefined);
  assert.equal(set.keys.get(ed.id)!.alg, 'EdDSA');
  assert.equal(set.keys.get(ed.id)!.user, 'carol');
});

test('the user comes from sub, else from user', () => {
  const k = credentialKeyFromJwk({ ...es.jwk, sub: 'alice@example.com', user: 'ignored' });
  assert.ok(typeof k !== 'string');
  assert.equal(k.user, 'alice@example.com');
  assert.match(credentialKeyFromJwk({ ...es.jwk, sub: 5 }) as string, /sub\/user/);
});

test('bad members are reported and skipped; the rest still load', () => {
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
  const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
  const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const kid = (n: number) => Buffer.alloc(16, n).toString('base64url');
  const doc = {
    keys: [
      es.jwk,
      { ...small, kid: kid(1) },
      { ...p384, kid: kid(2) },
      { ...x25519, kid: kid(3) },
      { kty: 'oct', k: 'c2VjcmV0', kid: kid(4) },
      { ...priv, kid: kid(5) },
      { ...rs.jwk, alg: 'ES256' },
      { ...ed.jwk, kid: 'not base64url!' },
      { ...ed.jwk, kid: undefined },
      { ...es.jwk, kid: kid(6), x: Buffer.alloc(32, 1).toString('base64url') },
      { ...es.jwk, kid: kid(7), use: 'enc' },
      { ...es.jwk, kid: kid(8), key_ops: ['encrypt'] },
      { ...es.jwk },
      'not an object',
      rs.jwk,
      ed.jwk,
    ],
  };
  const set = credentialKeysFromJwks(doc);
  assert.deepEqual([...set.keys.keys()].sort(), [es.id, rs.id, ed.id].sort());
  const expected: [number, RegExp][] = [
    [1, /RSA modulus of 1024 bits, at least 2048/],
    [2, /unsupported key type "EC"\/"P-384"/],
    [3, /unsupported key type "OKP"\/"X25519"/],
    [4, /unsupported key type "oct"/],
    [5, /private key material/],
    [6, /alg "ES256" does not match a RS256 key/],
    [7, /kid is not a base64url credential id/],
    [8, /missing kid/],
    [9, /invalid ES256 key parameters/],
    [10, /use is not "sig"/],
    [11, /key_ops/],
    [12, /duplicate kid/],
    [13, /not an object/],
  ];
  assert.equal(set.problems.length, expected.length, set.problems.join('\n'));
  expected.forEach(([i, re], n) => {
    assert.ok(set.problems[n].startsWith(`keys[${i}]: `), set.problems[n]);
    assert.match(set.problems[n], re);
  });
  assert.ok(!set.problems.some((p) => p.includes('c2VjcmV0')), 'a symmetric secret must not be echoed');
});

test('alg on the JWK must agree when present; Ed25519 is accepted as a name for EdDSA keys', () => {
  assert.equal(typeof credentialKeyFromJwk({ ...ed.jwk, alg: 'Ed25519' }), 'object');
  assert.equal(typeof credentialKeyFromJwk({ ...es.jwk, alg: undefined }), 'object');
  assert.match(credentialKeyFromJwk({ ...es.jwk, alg: 'RS256' }) as string, /does not match/);
  assert.match(credentialKeyFromJwk({ ...ed.jwk, alg: 'ES256' }) as string, /does not match/);
});

test('a document that is not a JWKS is one problem and no keys', () => {
  for (const doc of [null, [], {}, { keys: {} }, 'x']) {
    const set = credentialKeysFromJwks(doc);
    assert.equal(set.keys.size, 0);
    assert.equal(set.problems.length, 1);
  }
});

test('long kids are shortened in problem lines', () => {
  const kid = Buffer.alloc(600, 3).toString('base64url');
  const msg = credentialKeyFromJwk({ kid, kty: 'oct' }) as string;
  assert.ok(msg.length < 120, msg);
  assert.match(credentialKeyFromJwk({ ...es.jwk, kid: Buffer.alloc(1100).toString('base64url') }) as string, /not a base64url credential id/);
});
