import { createHash } from 'node:crypto';

/**
 * First 16 hex characters of SHA-256: what stands in for a credential wherever one is removed, so usage
 * stays analysable (the same token has the same fingerprint on every span and in every tier) without the
 * credential. Unsalted on purpose, for that correlation; credentials are high-entropy, so it does not
 * reveal them.
 */
export function fingerprint(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}

/** The text that replaces a removed credential. */
export function redacted(secret: string): string {
  return `redacted:${fingerprint(secret)}`;
}
