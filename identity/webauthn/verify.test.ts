/**
 * Every assertion here, valid or tampered, goes through both our verifier and @simplewebauthn/server's
 * verifyAuthenticationResponse (given the COSE form of the same key); they must agree on accept/reject,
 * and ours must name the specific reason. Where the two deliberately differ the case says why, and the
 * test pins down what each one does so a change on either side is noticed:
 *  - crossOrigin / topOrigin: simplewebauthn ignores both (WebAuthn L3 §7.2 step 14 asks the RP to
 *    check them), we reject a cross-origin ceremony unless the policy allows it and the top origin.
 *  - allowed algorithms: a policy of ours; simplewebauthn accepts any algorithm it can verify.
 * The signature counter is not part of verifyAssertion; the agreement on it is in replay.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyAuthenticationResponse } from '@simplewebauthn/server';
import { parseAssertion } from './assertion.js';
import { credentialKeysFromJwks } from './credential-keys.js';
import { rpIdHash, spanChallenge, verifyAssertion, type AssertionPolicy } from './verify.js';
import type { WebAuthnAlgorithm, WebAuthnFailure } from './types.js';
import {
  assert as makeAssertion,
  createCredential,
  FLAGS,
  jwks,
  tamper,
  type AuthenticationResponseJSON,
  type TestCredential,
} from '../../test/helpers/webauthn-authenticator.js';

const RP = 'example.com';
const ORIGIN = 'https://app.example.com';
const OTHER_ALLOWED_ORIGIN = 'https://admin.example.com';
const FOREIGN_ORIGIN = 'https://evil.example.net';
const TOP_ORIGIN = 'https://portal.example.org';
const CHALLENGE = Buffer.from('server-issued challenge 0123456789').toString('base64url');

const ALGS: readonly WebAuthnAlgorithm[] = ['ES256', 'RS256', 'EdDSA'];
const creds = new Map<WebAuthnAlgorithm, TestCredential>(
  ALGS.map((alg) => [alg, createCredential(alg, { user: `user-${alg}`, userHandle: Buffer.from(`handle-${alg}`).toString('base64url') })]),
);
const all = [...creds.values()];
const byId = new Map(all.map((c) => [c.id, c]));
const keySet = credentialKeysFromJwks(jwks(all));

interface Setup {
  rpId: string;
  origins: string[];
  allowCrossOrigin: boolean;
  allowedTopOrigins?: string[];
  requireUserVerification: boolean;
  allowedAlgorithms?: WebAuthnAlgorithm[];
  /** null: challenge binding off. */
  challenge: string | null;
}

const BASE: Setup = { rpId: RP, origins: [ORIGIN, OTHER_ALLOWED_ORIGIN], allowCrossOrigin: false, requireUserVerification: true, challenge: CHALLENGE };

function policyOf(s: Setup): AssertionPolicy {
  return {
    rpIdHash: rpIdHash(s.rpId),
    origins: new Set(s.origins),
    allowCrossOrigin: s.allowCrossOrigin,
    allowedTopOrigins: s.allowedTopOrigins === undefined ? undefined : new Set(s.allowedTopOrigins),
    requireUserVerification: s.requireUserVerification,
    allowedAlgorithms: s.allowedAlgorithms === undefined ? undefined : new Set(s.allowedAlgorithms),
  };
}

function ours(a: unknown, s: Setup): 'ok' | WebAuthnFailure {
  const parsed = parseAssertion(JSON.stringify(a));
  if (!parsed.ok) return parsed.reason;
  const key = keySet.keys.get(parsed.assertion.id);
  if (key === undefined) return 'unknown_key';
  const r = verifyAssertion(parsed.assertion, key, policyOf(s), s.challenge);
  return r.ok ? 'ok' : r.reason;
}

async function theirs(a: AuthenticationResponseJSON, s: Setup): Promise<boolean> {
  // The RP finds the credential record by id before calling the library (WebAuthn §7.2 step 7).
  const cred = byId.get(a.id);
  if (cred === undefined) return false;
  try {
    const r = await verifyAuthenticationResponse({
      response: a as never,
      expectedChallenge: s.challenge ?? (() => true),
      expectedOrigin: s.origins,
      expectedRPID: s.rpId,
      credential: { id: cred.id, publicKey: cred.coseKey() as never, counter: 0 },
      requireUserVerification: s.requireUserVerification,
    });
    return r.verified;
  } catch {
    return false;
  }
}

interface Case {
  name: string;
  make(c: TestCredential): AuthenticationResponseJSON;
  setup?: Partial<Setup>;
  expect: 'ok' | WebAuthnFailure;
  /** Set when simplewebauthn intentionally decides otherwise: what it does instead. */
  theirsDiffer?: { accepts: boolean; why: string };
}

const good = (c: TestCredential, extra: Partial<Parameters<typeof makeAssertion>[1]> = {}) =>
  makeAssertion(c, { challenge: CHALLENGE, origin: ORIGIN, rpId: RP, ...extra });
const otherCred = (c: TestCredential) => all.find((o) => o !== c)!;

const TRACE_ID = Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex');
const SPAN_ID = Buffer.from('b7ad6b7169203331', 'hex');
const OTHER_SPAN_ID = Buffer.from('b7ad6b7169203332', 'hex');

const CASES: Case[] = [
  { name: 'valid', make: (c) => good(c), expect: 'ok' },
  { name: 'valid without user verification when not required', make: (c) => good(c, { userVerified: false }), setup: { requireUserVerification: false }, expect: 'ok' },
  { name: 'valid, backed-up passkey (BE+BS)', make: (c) => good(c, { backupEligible: true, backupState: true }), expect: 'ok' },
  { name: 'valid, counter 0 (non-counting authenticator)', make: (c) => good(c, { signCount: 0 }), expect: 'ok' },
  { name: 'valid with extension data (ED + CBOR map)', make: (c) => good(c, { extensions: Uint8Array.from([0xa1, 0x6b, ...Buffer.from('credProtect'), 0x02]) }), expect: 'ok' },
  { name: 'valid, challenge binding none', make: (c) => good(c, { challenge: 'anything-at-all' }), setup: { challenge: null }, expect: 'ok' },
  {
    name: 'valid, span-bound challenge',
    make: (c) => good(c, { challenge: spanChallenge(TRACE_ID, SPAN_ID) }),
    setup: { challenge: spanChallenge(TRACE_ID, SPAN_ID) },
    expect: 'ok',
  },
  {
    name: 'span-bound challenge presented on another span',
    make: (c) => good(c, { challenge: spanChallenge(TRACE_ID, SPAN_ID) }),
    setup: { challenge: spanChallenge(TRACE_ID, OTHER_SPAN_ID) },
    expect: 'challenge_mismatch',
  },
  { name: 'signature bit flipped', make: (c) => tamper.flipSignatureBit(good(c)), expect: 'bad_signature' },
  { name: 'signature bit 5 flipped', make: (c) => tamper.flipSignatureBit(good(c), 5), expect: 'bad_signature' },
  { name: 'origin changed to another allowed origin, not re-signed', make: (c) => tamper.origin(good(c), OTHER_ALLOWED_ORIGIN), expect: 'bad_signature' },
  { name: 'foreign origin, re-signed', make: (c) => tamper.origin(good(c), FOREIGN_ORIGIN, c), expect: 'origin_mismatch' },
  { name: 'foreign origin, not re-signed', make: (c) => tamper.origin(good(c), FOREIGN_ORIGIN), expect: 'origin_mismatch' },
  { name: 'challenge changed, re-signed', make: (c) => tamper.challenge(good(c), 'b3RoZXI', c), expect: 'challenge_mismatch' },
  { name: 'challenge changed, not re-signed', make: (c) => tamper.challenge(good(c), 'b3RoZXI'), expect: 'challenge_mismatch' },
  { name: 'rpIdHash of another RP, re-signed', make: (c) => tamper.rpId(good(c), 'evil.example.net', c), expect: 'rp_mismatch' },
  { name: 'rpIdHash of another RP, not re-signed', make: (c) => tamper.rpId(good(c), 'evil.example.net'), expect: 'rp_mismatch' },
  { name: 'assertion made for another RP', make: (c) => good(c, { rpId: 'example.org' }), expect: 'rp_mismatch' },
  { name: 'UP cleared, re-signed', make: (c) => tamper.flags(good(c), { clear: FLAGS.UP }, c), expect: 'user_not_present' },
  { name: 'UP absent, UV not required', make: (c) => good(c, { userPresent: false, userVerified: false }), setup: { requireUserVerification: false }, expect: 'user_not_present' },
  { name: 'UV cleared, re-signed, UV required', make: (c) => tamper.flags(good(c), { clear: FLAGS.UV }, c), expect: 'user_not_verified' },
  { name: 'UV cleared, not re-signed, UV not required', make: (c) => tamper.flags(good(c), { clear: FLAGS.UV }), setup: { requireUserVerification: false }, expect: 'bad_signature' },
  { name: 'BS set without BE, re-signed', make: (c) => tamper.flags(good(c), { set: FLAGS.BS }, c), expect: 'malformed' },
  { name: 'AT set in an assertion, re-signed', make: (c) => tamper.flags(good(c), { set: FLAGS.AT }, c), expect: 'malformed' },
  { name: 'ED set without extension data, re-signed', make: (c) => tamper.flags(good(c), { set: FLAGS.ED }, c), expect: 'malformed' },
  {
    name: 'bytes after the counter without ED, re-signed',
    make: (c) => tamper.flags(good(c, { extensions: Uint8Array.from([0xa0]) }), { clear: FLAGS.ED }, c),
    expect: 'malformed',
  },
  { name: 'authenticatorData truncated to 36 bytes', make: (c) => tamper.truncateAuthenticatorData(good(c), 36), expect: 'malformed' },
  { name: 'authenticatorData truncated to 0 bytes', make: (c) => tamper.truncateAuthenticatorData(good(c), 0), expect: 'malformed' },
  { name: 'credential id swapped to an unknown one', make: (c) => tamper.credentialId(good(c), Buffer.alloc(20, 7).toString('base64url')), expect: 'unknown_key' },
  { name: 'credential id swapped to another known credential', make: (c) => tamper.credentialId(good(c), otherCred(c).id), expect: 'bad_signature' },
  { name: 'id differs from rawId', make: (c) => ({ ...good(c), rawId: otherCred(c).id }), expect: 'malformed' },
  { name: 'type is not public-key', make: (c) => ({ ...good(c), type: 'password' }) as never, expect: 'malformed' },
  { name: 'signature in base64 alphabet (+/)', make: (c) => tamper.field(good(c), 'signature', '+/' + good(c).response.signature.slice(2)), expect: 'malformed' },
  { name: 'authenticatorData with a space', make: (c) => tamper.field(good(c), 'authenticatorData', ' ' + good(c).response.authenticatorData), expect: 'malformed' },
  { name: 'authenticatorData of impossible base64url length', make: (c) => tamper.field(good(c), 'authenticatorData', good(c).response.authenticatorData + 'AAA'), expect: 'malformed' },
  { name: 'authenticatorData one zero byte longer', make: (c) => tamper.field(good(c), 'authenticatorData', good(c).response.authenticatorData + 'A'), expect: 'malformed' },
  { name: 'clientDataJSON not JSON', make: (c) => tamper.field(good(c), 'clientDataJSON', Buffer.from('{"type":').toString('base64url')), expect: 'malformed' },
  { name: 'type webauthn.create, re-signed', make: (c) => tamper.clientData(good(c), { type: 'webauthn.create' }, c), expect: 'malformed' },
  { name: 'type webauthn.create from the start', make: (c) => good(c, { clientDataType: 'webauthn.create' }), expect: 'malformed' },
  { name: 'cross-origin ceremony, allowed by policy', make: (c) => good(c, { crossOrigin: true }), setup: { allowCrossOrigin: true }, expect: 'ok' },
  {
    name: 'cross-origin ceremony, not allowed',
    make: (c) => good(c, { crossOrigin: true }),
    expect: 'origin_mismatch',
    theirsDiffer: { accepts: true, why: 'simplewebauthn does not look at crossOrigin' },
  },
  {
    name: 'topOrigin in the allowed list',
    make: (c) => good(c, { crossOrigin: true, topOrigin: TOP_ORIGIN }),
    setup: { allowCrossOrigin: true, allowedTopOrigins: [TOP_ORIGIN] },
    expect: 'ok',
  },
  {
    name: 'any topOrigin when cross-origin is allowed without a list',
    make: (c) => good(c, { crossOrigin: true, topOrigin: FOREIGN_ORIGIN }),
    setup: { allowCrossOrigin: true },
    expect: 'ok',
  },
  {
    name: 'topOrigin not in the allowed list',
    make: (c) => good(c, { crossOrigin: true, topOrigin: FOREIGN_ORIGIN }),
    setup: { allowCrossOrigin: true, allowedTopOrigins: [TOP_ORIGIN] },
    expect: 'origin_mismatch',
    theirsDiffer: { accepts: true, why: 'simplewebauthn does not look at topOrigin' },
  },
  {
    name: 'cross-origin without topOrigin when top origins are listed',
    make: (c) => good(c, { crossOrigin: true }),
    setup: { allowCrossOrigin: true, allowedTopOrigins: [TOP_ORIGIN] },
    expect: 'origin_mismatch',
    theirsDiffer: { accepts: true, why: 'simplewebauthn does not look at crossOrigin' },
  },
  {
    name: 'topOrigin without crossOrigin',
    make: (c) => good(c, { crossOrigin: false, topOrigin: TOP_ORIGIN }),
    setup: { allowCrossOrigin: true },
    expect: 'origin_mismatch',
    theirsDiffer: { accepts: true, why: 'simplewebauthn does not look at topOrigin' },
  },
  {
    name: 'algorithm outside the policy',
    make: (c) => good(c),
    setup: { allowedAlgorithms: [] },
    expect: 'algorithm_not_allowed',
    theirsDiffer: { accepts: true, why: 'simplewebauthn has no algorithm policy at authentication' },
  },
];

for (const alg of ALGS) {
  for (const k of CASES) {
    test(`${alg}: ${k.name} → ${k.expect}`, async () => {
      const cred = creds.get(alg)!;
      const a = k.make(cred);
      const setup = { ...BASE, ...k.setup };
      assert.equal(ours(a, setup), k.expect);
      const expectTheirs = k.theirsDiffer === undefined ? k.expect === 'ok' : k.theirsDiffer.accepts;
      assert.equal(await theirs(a, setup), expectTheirs, k.theirsDiffer?.why ?? 'simplewebauthn disagrees');
    });
  }
}

test('checks run in WebAuthn §7.2 order: challenge before origin before RP before flags before signature', () => {
  const c = creds.get('ES256')!;
  let a = good(c);
  a = tamper.flags(a, { clear: FLAGS.UP | FLAGS.UV });
  a = tamper.rpId(a, 'evil.example.net');
  a = tamper.clientData(a, { origin: FOREIGN_ORIGIN, challenge: 'b3RoZXI' });
  assert.equal(ours(a, BASE), 'challenge_mismatch');
  assert.equal(ours(a, { ...BASE, challenge: 'b3RoZXI' }), 'origin_mismatch');
  assert.equal(ours(a, { ...BASE, challenge: 'b3RoZXI', origins: [FOREIGN_ORIGIN] }), 'rp_mismatch');
  assert.equal(ours(a, { ...BASE, challenge: 'b3RoZXI', origins: [FOREIGN_ORIGIN], rpId: 'evil.example.net' }), 'user_not_present');
  assert.equal(ours(tamper.flags(a, { set: FLAGS.UP }), { ...BASE, challenge: 'b3RoZXI', origins: [FOREIGN_ORIGIN], rpId: 'evil.example.net' }), 'user_not_verified');
  assert.equal(
    ours(tamper.flags(a, { set: FLAGS.UP | FLAGS.UV }), { ...BASE, challenge: 'b3RoZXI', origins: [FOREIGN_ORIGIN], rpId: 'evil.example.net' }),
    'bad_signature',
  );
});

test('success reports the authenticator flags and counter', () => {
  const c = creds.get('EdDSA')!;
  const parsed = parseAssertion(JSON.stringify(good(c, { backupEligible: true, backupState: false, signCount: 41 })));
  assert.ok(parsed.ok);
  const r = verifyAssertion(parsed.assertion, keySet.keys.get(c.id)!, policyOf(BASE), CHALLENGE);
  assert.deepEqual(r, { ok: true, userVerified: true, backupEligible: true, backupState: false, signCount: 41 });
});

test('a key whose kid is not the assertion id, or whose type does not match its alg, is refused', () => {
  const es = creds.get('ES256')!;
  const parsed = parseAssertion(JSON.stringify(good(es)));
  assert.ok(parsed.ok);
  const rsaKey = keySet.keys.get(creds.get('RS256')!.id)!;
  assert.deepEqual(verifyAssertion(parsed.assertion, rsaKey, policyOf(BASE), CHALLENGE), { ok: false, reason: 'unknown_key' });
  const mislabelled = { kid: es.id, alg: 'ES256' as const, key: rsaKey.key };
  assert.deepEqual(verifyAssertion(parsed.assertion, mislabelled, policyOf(BASE), CHALLENGE), { ok: false, reason: 'algorithm_not_allowed' });
});

test('spanChallenge is base64url(SHA-256(traceId ‖ spanId))', async () => {
  const { createHash } = await import('node:crypto');
  const expected = createHash('sha256').update(Buffer.concat([TRACE_ID, SPAN_ID])).digest('base64url');
  assert.equal(spanChallenge(TRACE_ID, SPAN_ID), expected);
  assert.notEqual(spanChallenge(TRACE_ID, OTHER_SPAN_ID), expected);
  assert.match(expected, /^[A-Za-z0-9_-]{43}$/);
});
