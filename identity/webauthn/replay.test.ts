import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyAuthenticationResponse } from '@simplewebauthn/server';
import { parseAssertion } from './assertion.js';
import { credentialKeysFromJwks } from './credential-keys.js';
import { assertionFingerprint, ReplayGuard, SignCountStore } from './replay.js';
import { rpIdHash, verifyAssertion } from './verify.js';
import { assert as makeAssertion, createCredential, jwks, type AuthenticationResponseJSON, type TestCredential } from '../../test/helpers/webauthn-authenticator.js';

const RP = 'example.com';
const ORIGIN = 'https://app.example.com';
const CHALLENGE = 'Y2hhbGxlbmdl';

test('SignCountStore: rising counters pass, a repeat or a drop is a regression, 0 never is', () => {
  const s = new SignCountStore(10);
  assert.equal(s.observe('c1', 5), 'ok');
  assert.equal(s.observe('c1', 6), 'ok');
  assert.equal(s.observe('c1', 6), 'regression');
  assert.equal(s.observe('c1', 2), 'regression');
  assert.equal(s.highestSeen('c1'), 6, 'a regression does not lower the mark');
  assert.equal(s.observe('c1', 0), 'ok');
  assert.equal(s.highestSeen('c1'), 6);
  assert.equal(s.observe('c2', 0), 'ok');
  assert.equal(s.observe('c2', 0), 'ok');
  assert.equal(s.highestSeen('c2'), undefined, 'non-counting credentials take no space');
  assert.equal(s.observe('c2', 1), 'ok');
  assert.equal(s.observe('c1', 0xffffffff), 'ok');
  assert.equal(s.observe('c1', 0xffffffff), 'regression');
});

test('SignCountStore stays within its bound and forgets the least recently used credential', () => {
  const s = new SignCountStore(100);
  for (let i = 0; i < 10_000; i++) assert.equal(s.observe(`cred-${i}`, 3), 'ok');
  assert.equal(s.size, 100);
  assert.equal(s.highestSeen('cred-0'), undefined);
  assert.equal(s.observe('cred-0', 3), 'ok', 'forgotten: weaker detection, never a false rejection');
  assert.equal(s.observe('cred-9999', 3), 'regression');
  assert.throws(() => new SignCountStore(0), RangeError);
});

test('counter semantics agree with simplewebauthn except for a 0 after a non-zero counter', async () => {
  const cred = createCredential('ES256');
  const key = credentialKeysFromJwks(jwks([cred])).keys.get(cred.id)!;
  const policy = { rpIdHash: rpIdHash(RP), origins: new Set([ORIGIN]), allowCrossOrigin: false, requireUserVerification: true };
  // [remembered, presented, expected]. WebAuthn §7.2 step 23 (and simplewebauthn) would also flag
  // [5, 0]; we deliberately treat 0 as "this authenticator does not count", as briefed, so a credential
  // that stops counting is not flagged.
  const cases: [number, number, 'ok' | 'regression', boolean][] = [
    [0, 0, 'ok', true],
    [0, 1, 'ok', true],
    [5, 6, 'ok', true],
    [5, 5, 'regression', false],
    [5, 3, 'regression', false],
    [5, 0, 'ok', false],
  ];
  for (const [remembered, presented, expected, theirsAccepts] of cases) {
    const a = makeAssertion(cred, { challenge: CHALLENGE, origin: ORIGIN, rpId: RP, signCount: presented });
    const parsed = parseAssertion(JSON.stringify(a));
    assert.ok(parsed.ok);
    const v = verifyAssertion(parsed.assertion, key, policy, CHALLENGE);
    assert.ok(v.ok);
    const store = new SignCountStore(4);
    store.observe(cred.id, remembered);
    assert.equal(store.observe(cred.id, v.signCount), expected, `${remembered} → ${presented}`);
    assert.equal(await simpleWebAuthnAccepts(a, cred, remembered), theirsAccepts, `simplewebauthn ${remembered} → ${presented}`);
  }
});

async function simpleWebAuthnAccepts(a: AuthenticationResponseJSON, cred: TestCredential, counter: number): Promise<boolean> {
  try {
    const r = await verifyAuthenticationResponse({
      response: a as never,
      expectedChallenge: CHALLENGE,
      expectedOrigin: ORIGIN,
      expectedRPID: RP,
      credential: { id: cred.id, publicKey: cred.coseKey() as never, counter },
    });
    return r.verified;
  } catch {
    return false;
  }
}

test('ReplayGuard: a fingerprint seen again on another owner within the ttl is a replay', () => {
  const g = new ReplayGuard(100, 60_000);
  assert.equal(g.seen('fp1', 1_000, 'span-a'), false);
  assert.equal(g.seen('fp1', 2_000, 'span-a'), false, 'the same span again (a retried export) is not a replay');
  assert.equal(g.seen('fp1', 3_000, 'span-b'), true);
  assert.equal(g.seen('fp1', 60_999, 'span-c'), true);
  assert.equal(g.seen('fp1', 61_000, 'span-c'), false, 'expired: remembered afresh for span-c');
  assert.equal(g.seen('fp1', 61_001, 'span-a'), true);
  assert.equal(g.seen('fp2', 0), false);
  assert.equal(g.seen('fp2', 1), false, 'without owners, a repeat is the same owner');
  assert.throws(() => new ReplayGuard(10, 0), RangeError);
  assert.throws(() => new ReplayGuard(1.5, 10), RangeError);
});

test('ReplayGuard stays within its bound under a flood of distinct fingerprints', () => {
  const g = new ReplayGuard(1_000, 60_000);
  for (let i = 0; i < 50_000; i++) g.seen(`fp-${i}`, i, 'x');
  assert.equal(g.size, 1_000);
  assert.equal(g.seen('fp-49999', 50_000, 'y'), true);
  assert.equal(g.seen('fp-0', 50_000, 'y'), false, 'evicted');
});

test('fingerprint covers the signed content, so a re-encoded ECDSA signature (s → n − s) is the same approval', async () => {
  const cred = createCredential('ES256');
  const key = credentialKeysFromJwks(jwks([cred])).keys.get(cred.id)!;
  const policy = { rpIdHash: rpIdHash(RP), origins: new Set([ORIGIN]), allowCrossOrigin: false, requireUserVerification: true };
  const a = makeAssertion(cred, { challenge: CHALLENGE, origin: ORIGIN, rpId: RP });
  const twin = { ...a, response: { ...a.response, signature: highLowSwap(Buffer.from(a.response.signature, 'base64url')).toString('base64url') } };
  assert.notEqual(twin.response.signature, a.response.signature);
  const p1 = parseAssertion(JSON.stringify(a));
  const p2 = parseAssertion(JSON.stringify(twin));
  assert.ok(p1.ok && p2.ok);
  assert.equal(verifyAssertion(p2.assertion, key, policy, CHALLENGE).ok, true, 'the twin signature verifies too');
  assert.equal(await simpleWebAuthnAccepts(twin, cred, 0), true, 'simplewebauthn accepts it as well');
  assert.equal(assertionFingerprint(p1.assertion), assertionFingerprint(p2.assertion));
  const g = new ReplayGuard(10, 60_000);
  assert.equal(g.seen(assertionFingerprint(p1.assertion), 0, 'span-a'), false);
  assert.equal(g.seen(assertionFingerprint(p2.assertion), 1, 'span-b'), true);

  const other = parseAssertion(JSON.stringify(makeAssertion(cred, { challenge: CHALLENGE, origin: ORIGIN, rpId: RP })));
  assert.ok(other.ok);
  assert.notEqual(assertionFingerprint(other.assertion), assertionFingerprint(p1.assertion), 'the next assertion (higher counter) differs');
});

const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

/** DER ECDSA (r, s) → (r, n − s): the other valid signature of the same message. */
function highLowSwap(der: Buffer): Buffer {
  assert.equal(der[0], 0x30);
  let p = 2;
  const rLen = der[p + 1];
  const r = der.subarray(p + 2, p + 2 + rLen);
  p += 2 + rLen;
  const sLen = der[p + 1];
  const s = BigInt('0x' + der.subarray(p + 2, p + 2 + sLen).toString('hex'));
  return derSignature(r, P256_N - s);
}

function derInt(v: Buffer): Buffer {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0 && v[i + 1] < 0x80) i++;
  const t = v.subarray(i);
  return t[0] >= 0x80 ? Buffer.concat([Buffer.from([0x02, t.length + 1, 0]), t]) : Buffer.concat([Buffer.from([0x02, t.length]), t]);
}

function derSignature(r: Buffer, s: bigint): Buffer {
  let hex = s.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  const body = Buffer.concat([derInt(r), derInt(Buffer.from(hex, 'hex'))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}
