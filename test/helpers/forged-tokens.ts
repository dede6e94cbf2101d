/**
 * Builders for the adversarial token set the identity processor must reject. Each returns a compact JWS
 * string. "victim" is the real issuer (its iss, audience and published key); "attacker" is a key pair the
 * victim never published. Claims default to a token that would be valid in every other respect, so each
 * builder isolates one defect.
 */
import { base64url, exportSPKI, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { signJwt, validClaims, type SigningKey } from './jwks-server.js';

export interface Victim {
  iss: string;
  aud: string;
}

function b64json(v: unknown): string {
  return base64url.encode(JSON.stringify(v));
}

function claimsFor(v: Victim, extra?: JWTPayload): JWTPayload {
  return validClaims(v.iss, v.aud, extra);
}

/** Unsigned token: header {alg:'none'}, empty signature segment. */
export function algNone(v: Victim, extra?: JWTPayload): string {
  return `${b64json({ alg: 'none', typ: 'JWT' })}.${b64json(claimsFor(v, extra))}.`;
}

/** Which bytes of the victim's RSA public key serve as the HMAC secret in the key-confusion attack. */
export type ConfusionSecret = 'pem' | 'spki-der' | 'jwk-n' | 'jwk-json';

/** The victim's public key in the given byte form, as a naive verifier might hand it to HMAC. */
export async function publicKeyBytes(victimPublicJwk: JWK, form: ConfusionSecret): Promise<Uint8Array> {
  if (form === 'jwk-n') {
    if (typeof victimPublicJwk.n !== 'string') throw new TypeError('jwk-n needs an RSA public JWK');
    return base64url.decode(victimPublicJwk.n);
  }
  if (form === 'jwk-json') return new TextEncoder().encode(JSON.stringify(victimPublicJwk));
  const key = (await importJWK(victimPublicJwk, victimPublicJwk.alg ?? 'RS256', { extractable: true })) as CryptoKey;
  const pem = await exportSPKI(key);
  if (form === 'pem') return new TextEncoder().encode(pem);
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}

/**
 * HS256 token keyed with the victim's PUBLIC key bytes (classic RS/HS confusion), carrying the victim's kid so
 * a verifier that picks the key by kid and the algorithm from the header would accept it.
 */
export async function hmacWithPublicKey(victimPublicJwk: JWK, v: Victim, form: ConfusionSecret, extra?: JWTPayload): Promise<string> {
  const secret = await publicKeyBytes(victimPublicJwk, form);
  return new SignJWT(claimsFor(v, extra)).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: victimPublicJwk.kid }).sign(secret);
}

/** Signed by the attacker with header `jku` pointing at the attacker's JWKS URL; kid = attacker's or `kid`. */
export function withJku(attacker: SigningKey, v: Victim, jkuUrl: string, kid: string = attacker.kid, extra?: JWTPayload): Promise<string> {
  return signJwt(claimsFor(v, extra), attacker, { jku: jkuUrl, kid });
}

/** Signed by the attacker with header `x5u` pointing at an attacker-controlled certificate URL. */
export function withX5u(attacker: SigningKey, v: Victim, x5uUrl: string, kid: string = attacker.kid, extra?: JWTPayload): Promise<string> {
  return signJwt(claimsFor(v, extra), attacker, { x5u: x5uUrl, kid });
}

/** Signed by the attacker with its own public key embedded in the `jwk` header (trust-the-token's-key attack). */
export function withEmbeddedJwk(attacker: SigningKey, v: Victim, kid: string = attacker.kid, extra?: JWTPayload): Promise<string> {
  const { kid: _k, use: _u, ...jwk } = attacker.publicJwk;
  return signJwt(claimsFor(v, extra), attacker, { jwk: { ...jwk, kid }, kid });
}

/** kid values that probe path traversal, SQL injection and NUL truncation in a key lookup. */
export const HOSTILE_KIDS: readonly string[] = ['../../etc/passwd', "' OR '1'='1", 'kid\u0000', '/dev/null', ''];

/** Signed by the attacker with a hostile kid. */
export function withHostileKid(attacker: SigningKey, v: Victim, kid: string, extra?: JWTPayload): Promise<string> {
  return signJwt(claimsFor(v, extra), attacker, { kid });
}

const SKEW_BEYOND_SECONDS = 3600;

/** Genuinely signed by the victim's key, issued 2 h ago and expired 1 h ago (beyond any clock skew). */
export function expired(victimKey: SigningKey, v: Victim, extra?: JWTPayload): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ ...claimsFor(v, extra), iat: now - 2 * SKEW_BEYOND_SECONDS, exp: now - SKEW_BEYOND_SECONDS }, victimKey);
}

/** Genuinely signed by the victim's key, not valid before an hour from now. */
export function notYetValid(victimKey: SigningKey, v: Victim, extra?: JWTPayload): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ ...claimsFor(v, extra), nbf: now + SKEW_BEYOND_SECONDS, exp: now + 2 * SKEW_BEYOND_SECONDS }, victimKey);
}

/** Genuinely signed by the victim's key, but `iss` names another issuer. */
export function wrongIssuer(victimKey: SigningKey, v: Victim, iss = 'https://evil.example', extra?: JWTPayload): Promise<string> {
  return signJwt({ ...claimsFor(v, extra), iss }, victimKey);
}

/** Genuinely signed by the victim's key, but `aud` names another audience. */
export function wrongAudience(victimKey: SigningKey, v: Victim, aud = 'someone-else', extra?: JWTPayload): Promise<string> {
  return signJwt({ ...claimsFor(v, extra), aud }, victimKey);
}

/** Validly signed by another issuer (not in the allowlist) with its own iss, audience aimed at the victim's. */
export function foreignIssuer(foreignKey: SigningKey, foreignIss: string, v: Victim, extra?: JWTPayload): Promise<string> {
  return signJwt(validClaims(foreignIss, v.aud, extra), foreignKey);
}

export type Truncation = 'no-signature-segment' | 'half-signature' | 'header-only' | 'cut-mid-payload';

/** A real token cut short in one of several ways. */
export function truncated(token: string, how: Truncation): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  switch (how) {
    case 'no-signature-segment':
      return `${h}.${p}`;
    case 'half-signature': {
      // Keep whole 4-character groups: canonical base64url (no unused bits set), so the failure is the
      // signature, not decoding.
      let n = Math.floor(s.length / 2);
      n -= n % 4;
      return `${h}.${p}.${s.slice(0, n)}`;
    }
    case 'header-only':
      return h;
    case 'cut-mid-payload':
      return `${h}.${p.slice(0, Math.floor(p.length / 2))}`;
  }
}

/** Validly signed by `key` with a payload padding claim making the payload larger than `bytes` (default 16 KiB + 1). */
export function oversized(key: SigningKey, v: Victim, bytes = 16 * 1024 + 1): Promise<string> {
  return signJwt({ ...claimsFor(v), padding: 'x'.repeat(bytes) }, key);
}

export type Base64Defect = 'header' | 'payload' | 'signature';

/** A real token with a character outside the base64url alphabet injected into one segment. */
export function badBase64(token: string, where: Base64Defect): string {
  const parts = token.split('.');
  const i = where === 'header' ? 0 : where === 'payload' ? 1 : 2;
  const seg = parts[i]!;
  const mid = Math.floor(seg.length / 2);
  parts[i] = `${seg.slice(0, mid)}*${seg.slice(mid + 1)}`;
  return parts.join('.');
}

/** Validly signed by `key` with `crit: ['x-tracewarden-unknown']` and that unknown header parameter set. */
export function unknownCrit(key: SigningKey, v: Victim, extra?: JWTPayload): Promise<string> {
  return new SignJWT(claimsFor(v, extra))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', crit: ['x-tracewarden-unknown'], 'x-tracewarden-unknown': true })
    .sign(key.privateKey, { crit: { 'x-tracewarden-unknown': true } });
}

/**
 * A real token whose payload was replaced after signing (the original signature kept): `change` gets the
 * decoded claims and returns the forged ones (default: sub becomes 'admin' and roles gain 'admin').
 */
export function tamperedPayload(
  token: string,
  change: (claims: Record<string, unknown>) => Record<string, unknown> = (c) => ({ ...c, sub: 'admin', roles: ['admin'] }),
): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p))) as Record<string, unknown>;
  return `${h}.${b64json(change(claims))}.${s}`;
}
