/**
 * Decisions by credential. Two levels:
 * - a small table of recent credentials compared as bytes straight from the batch (length, then the last
 *   bytes, where a signature differs, then one native compare), so the common case, a batch carrying a
 *   few distinct tokens over and over, neither builds a string nor hashes per span;
 * - behind it an LRU keyed by the credential string, bounded in entries and in bytes: a flood of distinct
 *   16 KiB invalid tokens (each a cached failure) fills it to its byte bound and no further.
 * A decision is reused only until its `validUntilMs`. The recent table holds at most RECENT credentials of
 * at most max_token_bytes each.
 */
import { LRUCache } from 'lru-cache';
import type { Decision } from './decision.js';

const RECENT = 64;

export class CredentialCache {
  private readonly lru: LRUCache<string, Decision>;
  private readonly recentBytes: (Buffer | null)[] = new Array(RECENT).fill(null);
  private readonly recentDecision: (Decision | null)[] = new Array(RECENT).fill(null);
  private readonly recentLen = new Int32Array(RECENT).fill(-1);
  private readonly recentTail = new Int32Array(RECENT);
  private next = 0;

  constructor(maxEntries: number, maxBytes: number) {
    this.lru = new LRUCache<string, Decision>({ max: maxEntries, maxSize: maxBytes, sizeCalculation: entryBytes });
  }

  /** A still-valid decision for the credential at buf[start, end), from the recent table only. */
  recent(buf: Buffer, start: number, end: number, nowMs: number): Decision | null {
    const len = end - start;
    if (len < 4) return null;
    const tail = buf.readInt32LE(end - 4);
    for (let i = 0; i < RECENT; i++) {
      if (this.recentLen[i] !== len || this.recentTail[i] !== tail) continue;
      const bytes = this.recentBytes[i]!;
      if (buf.compare(bytes, 0, len, start, end) !== 0) continue;
      const d = this.recentDecision[i]!;
      if (d.validUntilMs > nowMs) return d;
      this.recentLen[i] = -1;
      return null;
    }
    return null;
  }

  get(credential: string, nowMs: number): Decision | null {
    const d = this.lru.get(credential);
    if (d === undefined) return null;
    if (d.validUntilMs > nowMs) return d;
    this.lru.delete(credential);
    return null;
  }

  set(credential: string, bytes: Buffer, decision: Decision): void {
    this.lru.set(credential, decision);
    this.remember(bytes, decision);
  }

  /** Puts a credential found in the LRU or just decided into the recent table (round robin). */
  remember(bytes: Buffer, decision: Decision): void {
    if (bytes.length < 4) return;
    const i = this.next;
    this.next = (i + 1) % RECENT;
    this.recentBytes[i] = bytes;
    this.recentDecision[i] = decision;
    this.recentLen[i] = bytes.length;
    this.recentTail[i] = bytes.readInt32LE(bytes.length - 4);
  }

  get size(): number {
    return this.lru.size;
  }

  /** Bytes held by the LRU (by entryBytes' estimate). */
  get bytes(): number {
    return this.lru.calculatedSize;
  }
}

/**
 * What one entry costs: the credential (a one-byte string, as the processor builds it), the encoded
 * attributes, and a fixed allowance for the decision object, its strings and the LRU's bookkeeping.
 */
export function entryBytes(decision: { fields: Uint8Array }, credential: string): number {
  return credential.length + decision.fields.length + 512;
}
