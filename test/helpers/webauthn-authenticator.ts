/**
 * A software FIDO2 authenticator for tests: makes credentials (P-256, RSA-2048, Ed25519), signs
 * assertions the way a browser and authenticator do, and tampers with them in the ways an attacker or
 * a broken client would. Also encodes each public key as COSE so @simplewebauthn/server can check the
 * same assertions independently.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

export type TestAlg = 'ES256' | 'RS256' | 'EdDSA';

export interface TestCredential {
  readonly id: string;
  readonly alg: TestAlg;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public JWK as published in the credential JWKS: kid = credential id. */
  readonly jwk: JsonWebKey & { kid: string; alg: TestAlg; user?: string; user_handle?: string };
  readonly userHandle: string | null;
  /** Next counter value when assert() is not told one; 0 keeps it a non-counting authenticator. */
  counter: number;
  coseKey(): Uint8Array;
}

export interface AssertOptions {
  challenge: string;
  origin: string;
  rpId: string;
  userPresent?: boolean;
  userVerified?: boolean;
  backupEligible?: boolean;
  backupState?: boolean;
  signCount?: number;
  crossOrigin?: boolean;
  topOrigin?: string;
  clientDataType?: string;
  /** CBOR map bytes appended as authenticator extension data (sets ED). */
  extensions?: Uint8Array;
}

export interface AuthenticationResponseJSON {
  id: string;
  rawId: string;
  type: 'public-key';
  response: {
    authenticatorData: string;
    clientDataJSON: string;
    signature: string;
    userHandle?: string;
  };
  clientExtensionResults: Record<string, never>;
  authenticatorAttachment?: 'platform' | 'cross-platform';
}

export const FLAGS = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40, ED: 0x80 } as const;

const COSE_ALG: Record<TestAlg, number> = { ES256: -7, RS256: -257, EdDSA: -8 };

export function createCredential(alg: TestAlg, opts: { user?: string; userHandle?: string; counting?: boolean } = {}): TestCredential {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'RS256'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
  const id = randomBytes(16 + Math.floor(Math.random() * 17)).toString('base64url');
  const exported = pair.publicKey.export({ format: 'jwk' });
  const jwk: TestCredential['jwk'] = { ...exported, kid: id, alg };
  if (opts.user !== undefined) jwk.user = opts.user;
  return {
    id,
    alg,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    jwk,
    userHandle: opts.userHandle ?? null,
    counter: opts.counting === false ? 0 : 1,
    coseKey: () => coseKeyOf(alg, exported),
  };
}

function coseKeyOf(alg: TestAlg, jwk: JsonWebKey): Uint8Array {
  const b = (v: string | undefined) => new Uint8Array(Buffer.from(v ?? '', 'base64url'));
  const m = new Map<number, number | Uint8Array>();
  if (alg === 'ES256') {
    m.set(1, 2).set(3, COSE_ALG.ES256).set(-1, 1).set(-2, b(jwk.x)).set(-3, b(jwk.y));
  } else if (alg === 'RS256') {
    m.set(1, 3).set(3, COSE_ALG.RS256).set(-1, b(jwk.n)).set(-2, b(jwk.e));
  } else {
    m.set(1, 1).set(3, COSE_ALG.EdDSA).set(-1, 6).set(-2, b(jwk.x));
  }
  return isoCBOR.encode(m);
}

export function jwks(credentials: readonly TestCredential[]): { keys: TestCredential['jwk'][] } {
  // A registration record knows the credential's user handle: published as `user_handle`.
  return { keys: credentials.map((c) => (c.userHandle === null ? c.jwk : { ...c.jwk, user_handle: c.userHandle })) };
}

export function sha256(data: string | Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** clientDataJSON with members in the order browsers emit them. */
export function clientDataJSON(c: { type: string; challenge: string; origin: string; crossOrigin?: boolean; topOrigin?: string }): Buffer {
  const o: Record<string, unknown> = { type: c.type, challenge: c.challenge, origin: c.origin, crossOrigin: c.crossOrigin ?? false };
  if (c.topOrigin !== undefined) o.topOrigin = c.topOrigin;
  return Buffer.from(JSON.stringify(o), 'utf8');
}

export function authenticatorData(rpId: string, flags: number, signCount: number, extensions?: Uint8Array): Buffer {
  const head = Buffer.alloc(37);
  sha256(rpId).copy(head, 0);
  head[32] = flags;
  head.writeUInt32BE(signCount >>> 0, 33);
  return extensions === undefined ? head : Buffer.concat([head, extensions]);
}

/** The signature an authenticator makes: DER ECDSA, PKCS#1 v1.5 or Ed25519 over authData ‖ SHA-256(cData). */
export function signAssertion(cred: TestCredential, authData: Uint8Array, cData: Uint8Array): Buffer {
  const signed = Buffer.concat([authData, sha256(cData)]);
  return sign(cred.alg === 'EdDSA' ? null : 'sha256', signed, cred.privateKey);
}

export function assert(cred: TestCredential, o: AssertOptions): AuthenticationResponseJSON {
  let flags = 0;
  if (o.userPresent ?? true) flags |= FLAGS.UP;
  if (o.userVerified ?? true) flags |= FLAGS.UV;
  if (o.backupEligible ?? false) flags |= FLAGS.BE;
  if (o.backupState ?? false) flags |= FLAGS.BS;
  if (o.extensions !== undefined) flags |= FLAGS.ED;
  let signCount = o.signCount;
  if (signCount === undefined) {
    signCount = cred.counter;
    if (cred.counter > 0) cred.counter++;
  }
  const authData = authenticatorData(o.rpId, flags, signCount, o.extensions);
  const cData = clientDataJSON({ type: o.clientDataType ?? 'webauthn.get', challenge: o.challenge, origin: o.origin, crossOrigin: o.crossOrigin, topOrigin: o.topOrigin });
  return build(cred.id, authData, cData, signAssertion(cred, authData, cData), cred.userHandle);
}

function build(id: string, authData: Uint8Array, cData: Uint8Array, sig: Uint8Array, userHandle: string | null): AuthenticationResponseJSON {
  const response: AuthenticationResponseJSON['response'] = {
    authenticatorData: Buffer.from(authData).toString('base64url'),
    clientDataJSON: Buffer.from(cData).toString('base64url'),
    signature: Buffer.from(sig).toString('base64url'),
  };
  if (userHandle !== null) response.userHandle = userHandle;
  return { id, rawId: id, type: 'public-key', response, clientExtensionResults: {}, authenticatorAttachment: 'cross-platform' };
}

function parts(a: AuthenticationResponseJSON): { authData: Buffer; cData: Buffer; sig: Buffer } {
  return {
    authData: Buffer.from(a.response.authenticatorData, 'base64url'),
    cData: Buffer.from(a.response.clientDataJSON, 'base64url'),
    sig: Buffer.from(a.response.signature, 'base64url'),
  };
}

/** Rebuilds `a` from new bytes, re-signed by `resignWith` when given (else keeping the old signature). */
function rebuild(a: AuthenticationResponseJSON, authData: Buffer, cData: Buffer, resignWith?: TestCredential): AuthenticationResponseJSON {
  const sig = resignWith === undefined ? parts(a).sig : signAssertion(resignWith, authData, cData);
  return build(a.id, authData, cData, sig, a.response.userHandle ?? null);
}

/** Ways to damage an assertion. Each returns a new object; the input is left alone. */
export const tamper = {
  /** Flips one bit in the last byte of the signature (inside s for ECDSA and Ed25519). */
  flipSignatureBit(a: AuthenticationResponseJSON, bit = 0): AuthenticationResponseJSON {
    const { authData, cData, sig } = parts(a);
    sig[sig.length - 1] ^= 1 << bit;
    return build(a.id, authData, cData, sig, a.response.userHandle ?? null);
  },

  /** Replaces client data members; re-signed only when `resignWith` is given. */
  clientData(
    a: AuthenticationResponseJSON,
    patch: Partial<{ type: string; challenge: string; origin: string; crossOrigin: boolean; topOrigin: string }>,
    resignWith?: TestCredential,
  ): AuthenticationResponseJSON {
    const { authData, cData } = parts(a);
    const c = { ...JSON.parse(cData.toString('utf8')), ...patch };
    return rebuild(a, authData, clientDataJSON(c), resignWith);
  },

  origin(a: AuthenticationResponseJSON, origin: string, resignWith?: TestCredential): AuthenticationResponseJSON {
    return tamper.clientData(a, { origin }, resignWith);
  },

  challenge(a: AuthenticationResponseJSON, challenge: string, resignWith?: TestCredential): AuthenticationResponseJSON {
    return tamper.clientData(a, { challenge }, resignWith);
  },

  /** Replaces rpIdHash with the hash of another RP ID. */
  rpId(a: AuthenticationResponseJSON, rpId: string, resignWith?: TestCredential): AuthenticationResponseJSON {
    const { authData, cData } = parts(a);
    sha256(rpId).copy(authData, 0);
    return rebuild(a, authData, cData, resignWith);
  },

  /** Sets and clears flag bits (see FLAGS), e.g. clear UP, clear UV, set BS without BE. */
  flags(a: AuthenticationResponseJSON, change: { set?: number; clear?: number }, resignWith?: TestCredential): AuthenticationResponseJSON {
    const { authData, cData } = parts(a);
    authData[32] = (authData[32] | (change.set ?? 0)) & ~(change.clear ?? 0);
    return rebuild(a, authData, cData, resignWith);
  },

  signCount(a: AuthenticationResponseJSON, count: number, resignWith?: TestCredential): AuthenticationResponseJSON {
    const { authData, cData } = parts(a);
    authData.writeUInt32BE(count >>> 0, 33);
    return rebuild(a, authData, cData, resignWith);
  },

  /** Claims another credential id (both id and rawId). */
  credentialId(a: AuthenticationResponseJSON, id: string): AuthenticationResponseJSON {
    return { ...a, id, rawId: id, response: { ...a.response } };
  },

  truncateAuthenticatorData(a: AuthenticationResponseJSON, length: number): AuthenticationResponseJSON {
    const { authData, cData, sig } = parts(a);
    return build(a.id, authData.subarray(0, length), cData, sig, a.response.userHandle ?? null);
  },

  /** Replaces one response field's text as is (for encoding errors). */
  field(a: AuthenticationResponseJSON, name: 'authenticatorData' | 'clientDataJSON' | 'signature' | 'userHandle', text: string): AuthenticationResponseJSON {
    return { ...a, response: { ...a.response, [name]: text } };
  },
};
