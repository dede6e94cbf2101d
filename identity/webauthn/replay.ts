/**
 * Bounded memory of what assertions have already been seen: the highest signature counter per
 * credential (clone detection, WebAuthn L3 §7.2 step 23) and recent assertion fingerprints (replay of
 * the same approval on another span). Both forget the least recently used entry when full, so memory
 * stays fixed whatever arrives; forgetting only weakens detection, it never rejects a valid assertion.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { ParsedAssertion } from './assertion.js';

export type SignCountVerdict = 'ok' | 'regression';

export class SignCountStore {
  private readonly highest: LRUCache<string, number>;

  constructor(maxCredentials: number) {
    this.highest = new LRUCache<string, number>({ max: positiveInt(maxCredentials, 'maxCredentials') });
  }

  /**
   * Records `count` for a credential. Call it only after the signature verified, or a forger could
   * raise the remembered counter. A counter of 0 means the authenticator does not count (most synced
   * passkeys) and is never a regression; a non-zero counter at or below the highest seen is.
   */
  observe(credentialId: string, count: number): SignCountVerdict {
    if (count === 0) return 'ok';
    const seen = this.highest.get(credentialId);
    if (seen !== undefined && count <= seen) return 'regression';
    this.highest.set(credentialId, count);
    return 'ok';
  }

  /** Highest counter remembered for a credential (for tests and diagnostics). */
  highestSeen(credentialId: string): number | undefined {
    return this.highest.peek(credentialId);
  }

  get size(): number {
    return this.highest.size;
  }
}

interface Sighting {
  expiresAt: number;
  owner: string;
}

export class ReplayGuard {
  private readonly sightings: LRUCache<string, Sighting>;
  private readonly ttlMs: number;

  constructor(maxEntries: number, ttlMs: number) {
    this.sightings = new LRUCache<string, Sighting>({ max: positiveInt(maxEntries, 'maxEntries') });
    this.ttlMs = positiveInt(ttlMs, 'ttlMs');
  }

  /**
   * True when fingerprint `fp` was seen before, is still remembered (within ttl of its first sighting)
   * and, if owners are given, was first seen with a different owner. Passing the span identity as the
   * owner lets a retried export of the same span through while a copy on another span is caught.
   * The time is passed in so callers can use one coarse clock per batch.
   */
  seen(fp: string, nowMs: number, owner = ''): boolean {
    const s = this.sightings.get(fp);
    if (s !== undefined && s.expiresAt > nowMs) return s.owner !== owner;
    this.sightings.set(fp, { expiresAt: nowMs + this.ttlMs, owner });
    return false;
  }

  get size(): number {
    return this.sightings.size;
  }
}

/**
 * Fingerprint of an assertion: SHA-256 over what the authenticator signed. Hashing the signature
 * instead would let a replayer slip past with an equally valid re-encoding of an ECDSA signature
 * (s → n − s), which changes the signature bytes but not the approval.
 */
export function assertionFingerprint(a: ParsedAssertion): string {
  return createHash('sha256').update(a.authenticatorData).update(a.clientDataJSON).digest('base64url');
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer`);
  return v;
}
