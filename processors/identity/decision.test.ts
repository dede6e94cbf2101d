/**
 * The identity decisions one by one: what a verified JWT or passkey writes onto a span (decoded by
 * protobufjs from the encoded fields), what a failure writes, and which spans a rule lets through.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { buildRequest } from '../../test/helpers/otlp.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { identitySchema } from './config.js';
import { ATTR, DecisionBuilder, fingerprint, readClaim, type Decision } from './decision.js';
import { Policy } from './policy.js';

/** The attributes encoded in a decision's fields, decoded as a Span's by protobufjs. */
function attrsOf(fields: Uint8Array): Record<string, unknown> {
  const Span = otlpType('Span');
  const span = Span.toObject(Span.decode(fields), { longs: Number, arrays: true }) as { attributes: { key: string; value: Record<string, unknown> }[] };
  const out: Record<string, unknown> = {};
  for (const kv of span.attributes) {
    const v = kv.value;
    out[kv.key] = 'arrayValue' in v ? ((v['arrayValue'] as { values?: { stringValue: string }[] }).values ?? []).map((x) => x.stringValue) : Object.values(v)[0];
  }
  return out;
}

const ISS = 'https://idp.example';
const TOKEN = 'header.payload.signature';

describe('identity decisions', () => {
  test('a verified JWT writes its mapped claims (first path present wins, exact dotted names before paths), typed, and the identity facts', () => {
    const b = new DecisionBuilder({
      claims: { 'enduser.id': ['preferred_username', 'sub'], 'tenant.id': ['https://example.com/tenant', 'org.id'], 'org.size': ['org.size'], 'org.ratio': ['org.ratio'], 'org.public': ['org.public'], 'org.tags': ['org.tags'], 'org.meta': ['org.meta'], 'org.none': ['org.none'], 'missing': ['nope'] },
      pseudonymKey: null,
    });
    const claims = {
      sub: 'u-1',
      'https://example.com/tenant': 'acme',
      org: { id: 'ignored', size: 12, ratio: 0.5, public: false, tags: ['a', 7, { x: 1 }], meta: { k: 'v' }, none: null },
      amr: ['pwd', 'hwk', 3],
      roles: ['admin', 1],
      groups: 'ops',
    };
    const d = b.jwtSuccess(TOKEN, ISS, claims, 1234);
    assert.deepEqual(attrsOf(d.fields), {
      'enduser.id': 'u-1',
      'tenant.id': 'acme',
      'org.size': 12,
      'org.ratio': 0.5,
      'org.public': false,
      'org.tags': ['a', '7', '{"x":1}'],
      'org.meta': '{"k":"v"}',
      [ATTR.verified]: true,
      [ATTR.issuer]: ISS,
      [ATTR.method]: 'jwt',
      [ATTR.authMethods]: ['pwd', 'hwk'],
      [ATTR.phishingResistant]: true,
      [ATTR.fingerprint]: fingerprint(TOKEN),
    });
    assert.deepEqual(
      { ok: d.ok, reason: d.reason, method: d.method, issuer: d.issuer, validUntilMs: d.validUntilMs, phishing: d.phishingResistant, roles: [...d.roles].sort(), subjectKey: d.subjectKey },
      { ok: true, reason: null, method: 'jwt', issuer: ISS, validUntilMs: 1234, phishing: true, roles: ['admin', 'ops'], subjectKey: `${ISS}\nu-1` },
    );
    assert.equal(readClaim(claims, 'org.id'), 'ignored');
    assert.equal(readClaim(claims, 'org.tags.0'), undefined, 'a path does not index into lists');
  });

  test('phishing resistance comes from acr (phr, phrh, the PAPE URI) or amr hwk, and from nothing else', () => {
    const b = new DecisionBuilder({ claims: {}, pseudonymKey: null });
    const pr = (claims: Record<string, unknown>) => b.jwtSuccess(TOKEN, ISS, claims, 0).phishingResistant;
    for (const acr of ['phr', 'phrh', 'http://schemas.openid.net/pape/policies/2007/06/phishing-resistant']) assert.equal(pr({ acr }), true, acr);
    assert.equal(pr({ amr: ['hwk'] }), true);
    for (const claims of [{}, { acr: 'PHR' }, { acr: ['phr'] }, { amr: 'hwk' }, { amr: ['swk', 'mfa'] }, { acr: 'urn:mace:incommon:iap:silver' }]) assert.equal(pr(claims), false, JSON.stringify(claims));
    const plain = b.jwtSuccess(TOKEN, ISS, { sub: '' }, 0);
    assert.equal(attrsOf(plain.fields)[ATTR.phishingResistant], false);
    assert.equal(ATTR.authMethods in attrsOf(plain.fields), false, 'no amr, no auth methods');
    assert.equal(plain.subjectKey, '');
  });

  test('pseudonymous: the subject never leaves, its keyed hash does (other claims still do); no subject, no hash', () => {
    const key = Buffer.from('k'.repeat(32));
    const b = new DecisionBuilder({ claims: { 'enduser.id': ['sub'], 'tenant.id': ['tid'] }, pseudonymKey: key });
    const a = attrsOf(b.jwtSuccess(TOKEN, ISS, { sub: 'alice', tid: 't1' }, 0).fields);
    assert.equal(a['enduser.id'], undefined);
    assert.equal(a['tenant.id'], 't1');
    assert.equal(a[ATTR.pseudoId], createHmac('sha256', key).update(`${ISS}\nalice`).digest('hex'));
    assert.equal(attrsOf(b.jwtSuccess(TOKEN, ISS, { tid: 't1' }, 0).fields)[ATTR.pseudoId], undefined);
    // a passkey's user is hashed with the RP ID
    const w = attrsOf(b.webauthnSuccess('shop.example', 'cred-1', 'bob', true, false, 0).fields);
    assert.equal(w['enduser.id'], undefined);
    assert.equal(w[ATTR.pseudoId], createHmac('sha256', key).update('shop.example\nbob').digest('hex'));
  });

  test('a verified passkey writes its user where sub is mapped, user verification, and a counter regression only when there was one', () => {
    const b = new DecisionBuilder({ claims: { 'user.name': ['sub'] }, pseudonymKey: null });
    const d = b.webauthnSuccess('shop.example', 'cred-1', 'bob', false, true, 99);
    assert.deepEqual(attrsOf(d.fields), {
      'user.name': 'bob',
      [ATTR.verified]: true,
      [ATTR.issuer]: 'shop.example',
      [ATTR.method]: 'webauthn',
      [ATTR.userVerified]: false,
      [ATTR.phishingResistant]: true,
      [ATTR.fingerprint]: fingerprint('cred-1'),
      [ATTR.counterRegression]: true,
    });
    assert.deepEqual([d.ok, d.method, d.issuer, d.validUntilMs, d.phishingResistant, d.roles.size, d.subjectKey], [true, 'webauthn', 'shop.example', 99, true, 0, 'shop.example\nbob']);
    const anonymous = new DecisionBuilder({ claims: {}, pseudonymKey: null }).webauthnSuccess('shop.example', 'cred-2', null, true, false, 0);
    const a = attrsOf(anonymous.fields);
    assert.equal('enduser.id' in a, false);
    assert.equal(a[ATTR.userVerified], true);
    assert.equal(ATTR.counterRegression in a, false);
    assert.equal(anonymous.subjectKey, '');
  });

  test('a failure writes verified=false, the reason and the method when known, encoded once per reason and method', () => {
    const b = new DecisionBuilder({ claims: {}, pseudonymKey: null });
    const d = b.failure('expired', 'jwt', ISS, TOKEN, 5);
    assert.deepEqual(attrsOf(d.fields), { [ATTR.verified]: false, [ATTR.failure]: 'expired', [ATTR.method]: 'jwt' });
    assert.deepEqual([d.ok, d.reason, d.method, d.issuer, d.validUntilMs, d.phishingResistant, d.roles.size, d.fingerprint, d.subjectKey], [false, 'expired', 'jwt', ISS, 5, false, 0, fingerprint(TOKEN), '']);
    assert.deepEqual(attrsOf(b.failure('malformed', null, 'none', null, 0).fields), { [ATTR.verified]: false, [ATTR.failure]: 'malformed' });
    assert.equal(b.failure('malformed', null, 'none', null, 0).fingerprint, '');
    assert.equal(b.failureFields('expired', 'jwt'), d.fields, 'the same bytes, encoded once');
    assert.notEqual(b.failureFields('expired', 'webauthn'), d.fields);
  });
});

describe('identity rules', () => {
  const rules = (list: unknown[]) => new Policy(parseOrThrow(identitySchema, { issuers: [{ issuer: ISS, jwks_file: '/dev/null', audiences: ['a'] }], rules: list }).rules);
  const batch = () => {
    const b = new TraceBatch(
      buildRequest([
        { attributes: { 'service.name': 'payments' }, scopes: [{ spans: [{ name: 'charge', attributes: { 'tier': 'gold', 'tags': ['pci', 'x'] } }, { name: 'refund', attributes: { 'tier': 'free' } }] }] },
        { attributes: { 'service.name': 'web' }, scopes: [{ spans: [{ name: 'charge' }] }] },
      ]),
    );
    b.index();
    return b;
  };
  const ok = (o: Partial<Decision> = {}): Decision => ({ ok: true, reason: null, method: 'jwt', issuer: ISS, validUntilMs: 0, fields: new Uint8Array(), phishingResistant: false, roles: new Set(), fingerprint: '', subjectKey: '', ...o });
  const failed: Decision = { ...ok(), ok: false, reason: 'expired' };

  test('a rule matches by service name, span name and attribute (an array matching by its first string); all must hold', () => {
    const p = rules([{ name: 'pci', match: { service_name: ['payments'], span_name: ['charge', 'capture'], attributes: { tier: 'gold' } } }, { name: 'tags', match: { attributes: { tags: 'pci' } } }]);
    const b = batch();
    const names = p.serviceNames(b);
    assert.deepEqual(names, [['payments'], ['web']]);
    const verdicts = [0, 1, 2].map((s) => p.violated(b, s, null, names[b.spanResource(s)]!));
    assert.deepEqual(verdicts, ['pci', null, null], 'the gold charge in payments; refund is free; web is another service');
    assert.equal(p.violated(b, 0, ok(), names[0]!), null);
    const tagsOnly = rules([{ name: 'tags', match: { attributes: { tags: 'x' } } }]);
    assert.equal(tagsOnly.violated(b, 0, null, null), null, 'only the first string of an array counts');
  });

  test('what a rule requires: verified (by default), phishing resistance, a role, a method, an issuer; none of it without a verified credential', () => {
    const b = batch();
    const check = (require: Record<string, unknown>, d: Decision | null) => rules([{ name: 'r', match: { span_name: ['charge'] }, require }]).violated(b, 0, d, null);
    assert.equal(check({}, null), 'r', 'verified by default');
    assert.equal(check({}, failed), 'r');
    assert.equal(check({ verified: false }, null), null);
    assert.equal(check({ verified: false, phishing_resistant: true }, null), 'r', 'phishing resistance needs a verified credential');
    assert.equal(check({ verified: false, roles_any: ['admin'] }, null), 'r');
    assert.equal(check({ verified: false, methods: ['jwt'] }, null), 'r');
    assert.equal(check({ verified: false, issuers: [ISS] }, null), 'r');
    assert.equal(check({ phishing_resistant: true }, ok()), 'r');
    assert.equal(check({ phishing_resistant: true }, ok({ phishingResistant: true })), null);
    assert.equal(check({ roles_any: ['admin', 'ops'] }, ok({ roles: new Set(['viewer']) })), 'r');
    assert.equal(check({ roles_any: ['admin', 'ops'] }, ok({ roles: new Set(['ops']) })), null);
    assert.equal(check({ methods: ['webauthn'] }, ok()), 'r');
    assert.equal(check({ methods: ['webauthn', 'jwt'] }, ok()), null);
    assert.equal(check({ methods: ['jwt'] }, ok({ method: null })), 'r');
    assert.equal(check({ issuers: ['https://other.example'] }, ok()), 'r');
    assert.equal(check({ issuers: ['https://other.example', ISS] }, ok()), null);
  });
});
