/**
 * A decision about one credential, made once and reused for every span that carries it: the outcome,
 * what the rules need to know, and the span attributes to write, encoded in advance so that applying a
 * cached decision to a span is one append.
 */
import { createHmac } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { EncodedValue } from '../../pipeline/batch/batch.js';
import { encodeBool, encodeDouble, encodeInt, encodeSpanAttributes, encodeString, encodeStringArray } from '../../pipeline/batch/batch.js';
import type { FailureReason } from '../../identity/reasons.js';
import { fingerprint } from '../../identity/scrub/fingerprint.js';
import { ATTR } from './attributes.js';

export type Method = 'jwt' | 'webauthn';

export interface Decision {
  ok: boolean;
  reason: FailureReason | null;
  method: Method | null;
  /** The configured issuer (or credential set) it was checked against; 'none' when it named no listed one. */
  issuer: string;
  /** Until when this decision may be reused (ms since epoch). */
  validUntilMs: number;
  /** Encoded span attributes to append: the identity on success, the failure tags otherwise. */
  fields: Uint8Array;
  phishingResistant: boolean;
  roles: ReadonlySet<string>;
  /** First 16 hex characters of SHA-256 of the credential, for audit lines. */
  fingerprint: string;
  /**
   * Issuer and subject, kept in memory only to fingerprint them for an audit line (who, without saying
   * who); hashed when a line is written, which the rate limit keeps rare. Empty when unknown.
   */
  subjectKey: string;
}

export { ATTR, protectedKeys } from './attributes.js';

// `acr` values for phishing-resistant authentication (OpenID EAP ACR values, and the PAPE policy URI).
const PHISHING_RESISTANT_ACR = new Set(['phr', 'phrh', 'http://schemas.openid.net/pape/policies/2007/06/phishing-resistant']);

export { fingerprint };

/** Reads a claim by exact name first (names may contain dots, like URLs), then as a dotted path. */
export function readClaim(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (path in claims) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function encodeClaim(v: unknown): EncodedValue | null {
  if (typeof v === 'string') return encodeString(v);
  if (typeof v === 'boolean') return encodeBool(v);
  if (typeof v === 'number') return Number.isInteger(v) ? encodeInt(v) : encodeDouble(v);
  if (Array.isArray(v)) return encodeStringArray(v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))));
  if (v !== null && typeof v === 'object') return encodeString(JSON.stringify(v));
  return null;
}

export interface DecisionBuilderOptions {
  /** Span attribute ← claim paths, first present wins. */
  claims: Readonly<Record<string, readonly string[]>>;
  /** When set, `sub` is written only as enduser.pseudo.id = HMAC-SHA-256(key, issuer "\n" subject). */
  pseudonymKey: Buffer | null;
}

export class DecisionBuilder {
  private readonly failures = new Map<string, Uint8Array>();

  constructor(private readonly opts: DecisionBuilderOptions) {}

  jwtSuccess(token: string, issuer: string, claims: JWTPayload, validUntilMs: number): Decision {
    const attrs: [string, EncodedValue][] = [];
    const sub = typeof claims.sub === 'string' ? claims.sub : '';
    for (const [attribute, paths] of Object.entries(this.opts.claims)) {
      let value: unknown;
      let fromSub = false;
      for (const p of paths) {
        value = readClaim(claims, p);
        if (value !== undefined) {
          fromSub = p === 'sub';
          break;
        }
      }
      if (value === undefined) continue;
      // Pseudonymous mode: the subject itself never leaves; its keyed hash does.
      if (fromSub && this.opts.pseudonymKey !== null) continue;
      const enc = encodeClaim(value);
      if (enc !== null) attrs.push([attribute, enc]);
    }
    if (this.opts.pseudonymKey !== null && sub !== '') {
      attrs.push([ATTR.pseudoId, encodeString(createHmac('sha256', this.opts.pseudonymKey).update(`${issuer}\n${sub}`).digest('hex'))]);
    }
    const amr = Array.isArray(claims['amr']) ? (claims['amr'] as unknown[]).filter((x): x is string => typeof x === 'string') : [];
    const acr = typeof claims['acr'] === 'string' ? claims['acr'] : '';
    const phishingResistant = PHISHING_RESISTANT_ACR.has(acr) || amr.includes('hwk');
    attrs.push([ATTR.verified, encodeBool(true)], [ATTR.issuer, encodeString(issuer)], [ATTR.method, encodeString('jwt')]);
    if (amr.length > 0) attrs.push([ATTR.authMethods, encodeStringArray(amr)]);
    const fp = fingerprint(token);
    attrs.push([ATTR.phishingResistant, encodeBool(phishingResistant)], [ATTR.fingerprint, encodeString(fp)]);
    return {
      ok: true,
      reason: null,
      method: 'jwt',
      issuer,
      validUntilMs,
      fields: encodeSpanAttributes(attrs),
      phishingResistant,
      roles: rolesOf(claims),
      fingerprint: fp,
      subjectKey: sub === '' ? '' : `${issuer}\n${sub}`,
    };
  }

  /**
   * A verified passkey or security key assertion. `user` is the credential's owner as published with its
   * key, or the assertion's userHandle. User presence is always proven; the login is phishing-resistant by
   * construction (the origin is bound into what the authenticator signed).
   */
  webauthnSuccess(rpId: string, credentialId: string, user: string | null, userVerified: boolean, counterRegression: boolean, validUntilMs: number): Decision {
    const attrs: [string, EncodedValue][] = [];
    const target = Object.entries(this.opts.claims).find(([, paths]) => paths.includes('sub'))?.[0] ?? 'enduser.id';
    if (user !== null) {
      if (this.opts.pseudonymKey !== null) {
        attrs.push([ATTR.pseudoId, encodeString(createHmac('sha256', this.opts.pseudonymKey).update(`${rpId}\n${user}`).digest('hex'))]);
      } else attrs.push([target, encodeString(user)]);
    }
    const fp = fingerprint(credentialId);
    attrs.push(
      [ATTR.verified, encodeBool(true)],
      [ATTR.issuer, encodeString(rpId)],
      [ATTR.method, encodeString('webauthn')],
      [ATTR.userVerified, encodeBool(userVerified)],
      [ATTR.phishingResistant, encodeBool(true)],
      [ATTR.fingerprint, encodeString(fp)],
    );
    if (counterRegression) attrs.push([ATTR.counterRegression, encodeBool(true)]);
    return {
      ok: true,
      reason: null,
      method: 'webauthn',
      issuer: rpId,
      validUntilMs,
      fields: encodeSpanAttributes(attrs),
      phishingResistant: true,
      roles: NO_ROLES,
      fingerprint: fp,
      subjectKey: user === null ? '' : `${rpId}\n${user}`,
    };
  }

  failure(reason: FailureReason, method: Method | null, issuer: string, credential: string | Uint8Array | null, validUntilMs: number): Decision {
    return {
      ok: false,
      reason,
      method,
      issuer,
      validUntilMs,
      fields: this.failureFields(reason, method),
      phishingResistant: false,
      roles: NO_ROLES,
      fingerprint: credential === null ? '' : fingerprint(credential),
      subjectKey: '',
    };
  }

  /** The failure tags for a reason, encoded once per (reason, method). */
  failureFields(reason: FailureReason, method: Method | null): Uint8Array {
    const key = `${reason}/${method ?? ''}`;
    let f = this.failures.get(key);
    if (f === undefined) {
      const attrs: [string, EncodedValue][] = [
        [ATTR.verified, encodeBool(false)],
        [ATTR.failure, encodeString(reason)],
      ];
      if (method !== null) attrs.push([ATTR.method, encodeString(method)]);
      f = encodeSpanAttributes(attrs);
      this.failures.set(key, f);
    }
    return f;
  }
}

const NO_ROLES: ReadonlySet<string> = new Set();

function rolesOf(claims: JWTPayload): ReadonlySet<string> {
  const out = new Set<string>();
  for (const name of ['roles', 'groups']) {
    const v = claims[name];
    if (Array.isArray(v)) for (const r of v) if (typeof r === 'string') out.add(r);
    if (typeof v === 'string') out.add(v);
  }
  return out;
}
