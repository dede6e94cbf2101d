/**
 * Strict parsing of a WebAuthn `AuthenticationResponseJSON` carried on a span. Bad input is data, not
 * an exception: the result says `malformed` and never echoes the content, which is a credential.
 */
import { decodeBase64Url } from './base64url.js';
import { isSingleCborMap } from './cbor-shape.js';

/** Upper bound on the serialised assertion; real ones are well under 2 KiB. */
export const MAX_ASSERTION_BYTES = 16 * 1024;

const AUTH_DATA_MIN = 37; // rpIdHash(32) ‖ flags(1) ‖ signCount(4)

export const FLAG_UP = 0x01;
export const FLAG_UV = 0x04;
export const FLAG_BE = 0x08;
export const FLAG_BS = 0x10;
export const FLAG_AT = 0x40;
export const FLAG_ED = 0x80;

export interface CollectedClientData {
  readonly type: string;
  readonly challenge: string;
  readonly origin: string;
  readonly crossOrigin: boolean | undefined;
  readonly topOrigin: string | undefined;
}

export interface ParsedAssertion {
  /** Credential id, base64url as sent (equal to rawId). */
  readonly id: string;
  readonly authenticatorData: Buffer;
  readonly clientDataJSON: Buffer;
  readonly signature: Buffer;
  /** base64url user handle, or null when the authenticator sent none. */
  readonly userHandle: string | null;
  readonly clientData: CollectedClientData;
  readonly flags: number;
  readonly userPresent: boolean;
  readonly userVerified: boolean;
  readonly backupEligible: boolean;
  readonly backupState: boolean;
  readonly signCount: number;
}

export type ParseResult = { readonly ok: true; readonly assertion: ParsedAssertion } | { readonly ok: false; readonly reason: 'malformed' };

const MALFORMED: ParseResult = Object.freeze({ ok: false, reason: 'malformed' });
const utf8 = new TextDecoder('utf-8', { fatal: true });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a serialised assertion (JSON text or its UTF-8 bytes). */
export function parseAssertion(input: string | Uint8Array): ParseResult {
  let text: string;
  if (typeof input === 'string') {
    if (input.length > MAX_ASSERTION_BYTES) return MALFORMED;
    text = input;
  } else {
    if (input.byteLength > MAX_ASSERTION_BYTES) return MALFORMED;
    try {
      text = utf8.decode(input);
    } catch {
      return MALFORMED;
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return MALFORMED;
  }
  return parseAssertionObject(json);
}

/** Same checks for an already-parsed JSON value (e.g. an attribute holding a structured value). */
export function parseAssertionObject(json: unknown): ParseResult {
  if (!isObject(json)) return MALFORMED;
  const id = json.id;
  if (typeof id !== 'string' || id.length === 0 || id !== json.rawId || json.type !== 'public-key') return MALFORMED;
  if (decodeBase64Url(id) === null) return MALFORMED;
  const response = json.response;
  if (!isObject(response)) return MALFORMED;

  const authenticatorData = decodeBase64Url(response.authenticatorData);
  const clientDataJSON = decodeBase64Url(response.clientDataJSON);
  const signature = decodeBase64Url(response.signature);
  if (authenticatorData === null || clientDataJSON === null || signature === null || signature.length === 0) return MALFORMED;

  let userHandle: string | null = null;
  const uh = response.userHandle;
  if (uh !== undefined && uh !== null) {
    // An empty string is how some serialisers spell "no user handle".
    if (typeof uh !== 'string' || (uh.length > 0 && decodeBase64Url(uh) === null)) return MALFORMED;
    if (uh.length > 0) userHandle = uh;
  }

  if (authenticatorData.length < AUTH_DATA_MIN) return MALFORMED;
  const flags = authenticatorData[32];
  // Assertions never carry attested credential data; extension data, when flagged, must be exactly one
  // CBOR map filling the rest, and without it nothing may follow the counter.
  if (flags & FLAG_AT) return MALFORMED;
  if (flags & FLAG_ED) {
    if (!isSingleCborMap(authenticatorData, AUTH_DATA_MIN, authenticatorData.length)) return MALFORMED;
  } else if (authenticatorData.length !== AUTH_DATA_MIN) {
    return MALFORMED;
  }

  const clientData = parseClientData(clientDataJSON);
  if (clientData === null) return MALFORMED;

  return {
    ok: true,
    assertion: {
      id,
      authenticatorData,
      clientDataJSON,
      signature,
      userHandle,
      clientData,
      flags,
      userPresent: (flags & FLAG_UP) !== 0,
      userVerified: (flags & FLAG_UV) !== 0,
      backupEligible: (flags & FLAG_BE) !== 0,
      backupState: (flags & FLAG_BS) !== 0,
      signCount: authenticatorData.readUInt32BE(33),
    },
  };
}

function parseClientData(bytes: Buffer): CollectedClientData | null {
  let c: unknown;
  try {
    c = JSON.parse(utf8.decode(bytes));
  } catch {
    return null;
  }
  if (!isObject(c)) return null;
  const { type, challenge, origin, crossOrigin, topOrigin } = c;
  if (typeof type !== 'string' || typeof challenge !== 'string' || typeof origin !== 'string') return null;
  if (crossOrigin !== undefined && typeof crossOrigin !== 'boolean') return null;
  if (topOrigin !== undefined && typeof topOrigin !== 'string') return null;
  return { type, challenge, origin, crossOrigin, topOrigin };
}
