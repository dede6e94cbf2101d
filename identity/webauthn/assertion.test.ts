import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ASSERTION_BYTES, parseAssertion, parseAssertionObject } from './assertion.js';
import { decodeBase64Url, isBase64Url } from './base64url.js';
import { cborItemEnd, isSingleCborMap } from './cbor-shape.js';
import { assert as makeAssertion, createCredential, tamper, FLAGS } from '../../test/helpers/webauthn-authenticator.js';

const cred = createCredential('ES256', { userHandle: Buffer.from('user-42').toString('base64url') });
const base = () => makeAssertion(cred, { challenge: 'Y2hhbGxlbmdl', origin: 'https://app.example.com', rpId: 'example.com', signCount: 0x01020304, backupEligible: true });
const MALFORMED = '{"ok":false,"reason":"malformed"}';

test('parses the string and the UTF-8 bytes forms alike', () => {
  const a = base();
  const fromString = parseAssertion(JSON.stringify(a));
  const fromBytes = parseAssertion(Buffer.from(JSON.stringify(a)));
  assert.ok(fromString.ok && fromBytes.ok);
  assert.deepEqual(fromString.assertion, fromBytes.assertion);
  const p = fromString.assertion;
  assert.equal(p.id, cred.id);
  assert.equal(p.signCount, 0x01020304);
  assert.equal(p.flags, FLAGS.UP | FLAGS.UV | FLAGS.BE);
  assert.deepEqual([p.userPresent, p.userVerified, p.backupEligible, p.backupState], [true, true, true, false]);
  assert.equal(p.userHandle, a.response.userHandle);
  assert.deepEqual(p.clientData, { type: 'webauthn.get', challenge: 'Y2hhbGxlbmdl', origin: 'https://app.example.com', crossOrigin: false, topOrigin: undefined });
  assert.equal(p.authenticatorData.length, 37);
  assert.deepEqual(p.signature, Buffer.from(a.response.signature, 'base64url'));
});

test('an already-parsed object is accepted too', () => {
  const r = parseAssertionObject(base());
  assert.ok(r.ok);
  assert.equal(r.assertion.signCount, 0x01020304);
});

test('failures are the bare code and never carry the content', () => {
  const a = base();
  const bad = [
    JSON.stringify(a).slice(0, -1),
    JSON.stringify({ ...a, id: 'x'.repeat(50) }),
    JSON.stringify(tamper.field(a, 'signature', a.response.signature + '=')),
  ];
  for (const input of bad) {
    const r = parseAssertion(input);
    assert.equal(JSON.stringify(r), MALFORMED);
    assert.ok(!Object.isExtensible(r));
  }
});

test('input over the size limit is refused before parsing, in either form', () => {
  const a = { ...base(), padding: 'x'.repeat(MAX_ASSERTION_BYTES) };
  assert.equal(JSON.stringify(parseAssertion(JSON.stringify(a))), MALFORMED);
  assert.equal(JSON.stringify(parseAssertion(Buffer.from(JSON.stringify(a)))), MALFORMED);
  const justUnder = { ...base(), padding: 'x'.repeat(MAX_ASSERTION_BYTES - JSON.stringify(base()).length - 20) };
  assert.ok(parseAssertion(JSON.stringify(justUnder)).ok);
});

test('non-UTF-8 bytes, non-objects and missing members are malformed', () => {
  assert.equal(parseAssertion(Uint8Array.from([0x7b, 0xff, 0x7d])).ok, false);
  for (const v of ['null', '[]', '42', '"s"', '{}', '{"id":"AA","rawId":"AA","type":"public-key"}', '{"id":"AA","rawId":"AA","type":"public-key","response":[]}']) {
    assert.equal(parseAssertion(v).ok, false, v);
  }
  const a = base();
  for (const field of ['authenticatorData', 'clientDataJSON', 'signature'] as const) {
    const copy = JSON.parse(JSON.stringify(a));
    delete copy.response[field];
    assert.equal(parseAssertionObject(copy).ok, false, field);
  }
  assert.equal(parseAssertionObject({ ...a, id: '' , rawId: ''}).ok, false);
  assert.equal(parseAssertionObject(tamper.field(a, 'signature', '')).ok, false);
});

test('user handle: absent, null or empty means none; anything else must be base64url', () => {
  const a = base();
  const none = JSON.parse(JSON.stringify(a));
  delete none.response.userHandle;
  for (const v of [none, { ...a, response: { ...a.response, userHandle: null } }, tamper.field(a, 'userHandle', '')]) {
    const r = parseAssertionObject(v);
    assert.ok(r.ok);
    assert.equal(r.assertion.userHandle, null);
  }
  assert.equal(parseAssertionObject(tamper.field(a, 'userHandle', 'a+b')).ok, false);
  assert.equal(parseAssertionObject({ ...a, response: { ...a.response, userHandle: 7 } }).ok, false);
});

test('client data members must have their WebAuthn types', () => {
  const a = base();
  const withClientData = (o: unknown) => tamper.field(a, 'clientDataJSON', Buffer.from(JSON.stringify(o)).toString('base64url'));
  const ok = { type: 'webauthn.get', challenge: 'Y2g', origin: 'https://a' };
  assert.ok(parseAssertionObject(withClientData(ok)).ok);
  assert.ok(parseAssertionObject(withClientData({ ...ok, crossOrigin: true, topOrigin: 'https://b', other_keys_can_be_added_here: 'x' })).ok);
  for (const bad of [
    { ...ok, type: 1 },
    { ...ok, challenge: null },
    { challenge: 'Y2g', type: 'webauthn.get' },
    { ...ok, crossOrigin: 'true' },
    { ...ok, topOrigin: 5 },
    [ok],
  ]) {
    assert.equal(parseAssertionObject(withClientData(bad)).ok, false, JSON.stringify(bad));
  }
  assert.equal(parseAssertionObject(tamper.field(a, 'clientDataJSON', Buffer.from([0xc3, 0x28]).toString('base64url'))).ok, false);
});

test('strict base64url: alphabet, no padding, possible length, canonical trailing bits', () => {
  for (const s of ['', 'AA', 'AAA', 'AAAA', 'A-_z', 'QQ', 'QUI', 'QUJD']) assert.ok(isBase64Url(s), s);
  for (const s of ['A', 'AA==', 'A+/z', 'AA A', 'AB', 'QUJ', 'é', 'AA\n']) assert.equal(isBase64Url(s), false, s);
  assert.deepEqual(decodeBase64Url('QUJD'), Buffer.from('ABC'));
  assert.equal(decodeBase64Url('QUJ'), null, 'non-zero trailing bits would alias QUI');
  assert.equal(decodeBase64Url(42), null);
});

test('extension data must be exactly one well-formed CBOR map', () => {
  const withExt = (ext: number[]) => makeAssertion(cred, { challenge: 'Y2g', origin: 'https://a', rpId: 'example.com', extensions: Uint8Array.from(ext) });
  assert.ok(parseAssertionObject(withExt([0xa0])).ok);
  assert.ok(parseAssertionObject(withExt([0xa1, 0x61, 0x78, 0xa1, 0x01, 0x82, 0xf5, 0x43, 1, 2, 3])).ok);
  for (const bad of [
    [0x80], // an array, not a map
    [0xa0, 0x00], // trailing byte
    [0xa1, 0x01], // map missing its value
    [0xbf, 0xff], // indefinite length
    [0xa1, 0x5a, 0xff, 0xff, 0xff, 0xff, 0x00], // byte string longer than the data
    [0xa1, 0x01, 0x9b, 0, 0, 0, 1, 0, 0, 0, 0], // array of 2^32 items
    [0xa1, 0x01, 0x1c], // reserved additional info
  ]) {
    assert.equal(parseAssertionObject(withExt(bad)).ok, false, Buffer.from(bad).toString('hex'));
  }
});

test('cborItemEnd bounds nesting and lengths', () => {
  const deep = new Uint8Array(20).fill(0x81);
  deep[19] = 0x00;
  assert.equal(cborItemEnd(deep, 0, deep.length), -1);
  const shallow = Uint8Array.from([0x81, 0x81, 0x00]);
  assert.equal(cborItemEnd(shallow, 0, shallow.length), 3);
  const tagged = Uint8Array.from([0xc1, 0x1a, 0, 0, 0, 1]);
  assert.equal(cborItemEnd(tagged, 0, tagged.length), 6);
  const float64 = Uint8Array.from([0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
  assert.equal(cborItemEnd(float64, 0, float64.length), 9);
  assert.equal(isSingleCborMap(Uint8Array.from([0xa0]), 0, 1), true);
  assert.equal(isSingleCborMap(Uint8Array.from([]), 0, 0), false);
});
