/**
 * Strict base64url (RFC 4648 §5, unpadded, as WebAuthn's JSON serialisation uses). Node's own decoder
 * skips characters outside the alphabet, so two different strings could name the same bytes; checking
 * first keeps credential ids and fingerprints unambiguous.
 */

const ALPHABET_VALUE = new Int8Array(128).fill(-1);
{
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < chars.length; i++) ALPHABET_VALUE[chars.charCodeAt(i)] = i;
}

/** True when `s` is canonical unpadded base64url: alphabet only, no impossible length, zero trailing bits. */
export function isBase64Url(s: string): boolean {
  const n = s.length;
  const rem = n & 3;
  if (rem === 1) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || ALPHABET_VALUE[c] < 0) return false;
  }
  if (rem === 0 || n === 0) return true;
  // The last character carries 4 (rem 2) or 2 (rem 3) unused bits; non-zero ones mean a non-canonical
  // encoding of the same bytes.
  const last = ALPHABET_VALUE[s.charCodeAt(n - 1)];
  return rem === 2 ? (last & 0x0f) === 0 : (last & 0x03) === 0;
}

/** Decoded bytes, or null when `value` is not a canonical base64url string. */
export function decodeBase64Url(value: unknown): Buffer | null {
  if (typeof value !== 'string' || !isBase64Url(value)) return null;
  return Buffer.from(value, 'base64url');
}
