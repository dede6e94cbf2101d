/**
 * Credential public keys from a JWKS whose `kid` is the WebAuthn credential id. One bad member is
 * reported and skipped so it cannot take the other credentials down with it.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { isBase64Url } from './base64url.js';
import type { CredentialKey, WebAuthnAlgorithm } from './types.js';

/** WebAuthn credential ids are at most 1023 bytes; base64url of that is 1364 characters. */
const MAX_KID_LENGTH = 1364;
const MIN_RSA_BITS = 2048;
const MAX_USER_LENGTH = 1024;

export interface CredentialKeySet {
  readonly keys: Map<string, CredentialKey>;
  /** One line per skipped member; public key data only, safe to log. */
  readonly problems: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Builds the credential id → key map from a parsed JWKS document. */
export function credentialKeysFromJwks(jwks: unknown): CredentialKeySet {
  const keys = new Map<string, CredentialKey>();
  const problems: string[] = [];
  if (!isObject(jwks) || !Array.isArray(jwks.keys)) {
    problems.push('not a JWKS: expected an object with a "keys" array');
    return { keys, problems };
  }
  const members = jwks.keys as unknown[];
  for (let i = 0; i < members.length; i++) {
    const result = credentialKeyFromJwk(members[i]);
    if (typeof result === 'string') {
      problems.push(`keys[${i}]: ${result}`);
    } else if (keys.has(result.kid)) {
      problems.push(`keys[${i}]: duplicate kid, the first one is kept`);
    } else {
      keys.set(result.kid, result);
    }
  }
  return { keys, problems };
}

/** One JWK as a CredentialKey, or a description of why it cannot be one. */
export function credentialKeyFromJwk(member: unknown): CredentialKey | string {
  if (!isObject(member)) return 'not an object';
  const kid = member.kid;
  if (typeof kid !== 'string' || kid.length === 0) return 'missing kid';
  if (kid.length > MAX_KID_LENGTH || !isBase64Url(kid)) return 'kid is not a base64url credential id';
  const label = kid.length > 43 ? `${kid.slice(0, 43)}…` : kid;
  if ('d' in member || 'p' in member || 'q' in member) return `kid ${label}: private key material in a public key set`;
  if (member.use !== undefined && member.use !== 'sig') return `kid ${label}: use is not "sig"`;
  if (member.key_ops !== undefined && !(Array.isArray(member.key_ops) && member.key_ops.includes('verify'))) {
    return `kid ${label}: key_ops does not include "verify"`;
  }

  const kty = str(member.kty);
  const crv = str(member.crv);
  let alg: WebAuthnAlgorithm;
  let jwk: JsonWebKey;
  if (kty === 'EC' && crv === 'P-256') {
    alg = 'ES256';
    jwk = { kty, crv, x: str(member.x), y: str(member.y) };
  } else if (kty === 'RSA') {
    alg = 'RS256';
    jwk = { kty, n: str(member.n), e: str(member.e) };
  } else if (kty === 'OKP' && crv === 'Ed25519') {
    alg = 'EdDSA';
    jwk = { kty, crv, x: str(member.x) };
  } else {
    return `kid ${label}: unsupported key type ${describe(kty)}${crv === undefined ? '' : `/${describe(crv)}`}`;
  }
  if (member.alg !== undefined && !algAgrees(alg, member.alg)) {
    return `kid ${label}: alg ${describe(member.alg)} does not match a ${alg} key`;
  }

  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return `kid ${label}: invalid ${alg} key parameters`;
  }
  if (alg === 'RS256') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return `kid ${label}: RSA modulus of ${bits} bits, at least ${MIN_RSA_BITS} required`;
  }

  const userField = member.sub !== undefined ? member.sub : member.user;
  if (userField !== undefined && (typeof userField !== 'string' || userField.length === 0 || userField.length > MAX_USER_LENGTH)) {
    return `kid ${label}: sub/user is not a non-empty string`;
  }
  // The WebAuthn user handle (user.id at registration) this credential belongs to: what an assertion's
  // unsigned userHandle is checked against.
  const handle = member.user_handle;
  if (handle !== undefined && (typeof handle !== 'string' || handle.length === 0 || handle.length > MAX_USER_LENGTH || !isBase64Url(handle))) {
    return `kid ${label}: user_handle is not a non-empty base64url string`;
  }
  return { kid, alg, key, ...(userField === undefined ? {} : { user: userField }), ...(handle === undefined ? {} : { userHandle: handle }) };
}

function algAgrees(alg: WebAuthnAlgorithm, declared: unknown): boolean {
  // RFC 9864 names the fully specified Ed25519 algorithm "Ed25519"; older sets say "EdDSA".
  return declared === alg || (alg === 'EdDSA' && declared === 'Ed25519');
}

/** Short, printable rendering of a JWK field value for a problem line. */
function describe(v: unknown): string {
  if (typeof v !== 'string') return v === undefined ? 'missing' : typeof v;
  const printable = v.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(printable.length > 32 ? `${printable.slice(0, 32)}…` : printable);
}
