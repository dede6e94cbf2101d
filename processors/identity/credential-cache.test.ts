/**
 * The decision cache at its edges: a decision is reused strictly before its validUntilMs and never at or
 * after it, from the recent table and from the LRU alike; the byte bound holds; and which failures may be
 * cached at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureCacheTtl } from '../../identity/reasons.js';
import { CredentialCache, entryBytes } from './credential-cache.js';
import type { Decision } from './decision.js';

function decision(validUntilMs: number, fields = new Uint8Array(8)): Decision {
  return { ok: true, reason: null, method: 'jwt', issuer: 'i', validUntilMs, fields, phishingResistant: false, roles: new Set(), fingerprint: 'f', subjectKey: '' };
}

test('a cached decision is served until its validUntilMs and not from that instant on (recent table and LRU)', () => {
  const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.signature-bytes';
  const bytes = Buffer.from(token, 'latin1');
  const cache = new CredentialCache(16, 1 << 20);
  const d = decision(1000);
  cache.set(token, bytes, d);
  assert.equal(cache.recent(bytes, 0, bytes.length, 999), d);
  assert.equal(cache.get(token, 999), d);
  assert.equal(cache.get(token, 1000), null, 'the LRU does not serve it at validUntilMs');
  assert.equal(cache.get(token, 999), null, 'and it was removed');
  const other = new CredentialCache(16, 1 << 20);
  other.set(token, bytes, d);
  assert.equal(other.recent(bytes, 0, bytes.length, 1000), null, 'the recent table does not serve it at validUntilMs');
  assert.equal(other.recent(bytes, 0, bytes.length, 999), null, 'and forgot it');
});

test('the LRU holds at most max_bytes, whatever the number of entries', () => {
  const cache = new CredentialCache(10_000, 64 * 1024);
  for (let i = 0; i < 200; i++) {
    const token = `${i}`.padStart(4, '0') + 'x'.repeat(1000);
    cache.set(token, Buffer.from(token, 'latin1'), decision(Number.MAX_SAFE_INTEGER));
  }
  assert.ok(cache.bytes <= 64 * 1024, `${cache.bytes} bytes`);
  assert.ok(cache.size >= Math.floor((64 * 1024) / entryBytes(decision(0), 'x'.repeat(1004))) - 1, 'it is full, not empty');
});

test('failures that can change on their own are never cached; not_yet_valid at most a second; the rest for the TTL', () => {
  assert.equal(failureCacheTtl('unknown_key', 30_000), 0);
  assert.equal(failureCacheTtl('keys_unavailable', 30_000), 0);
  assert.equal(failureCacheTtl('not_yet_valid', 30_000), 1000);
  assert.equal(failureCacheTtl('not_yet_valid', 200), 200);
  assert.equal(failureCacheTtl('bad_signature', 30_000), 30_000);
  assert.equal(failureCacheTtl('expired', 5_000), 5_000);
});

test('the recent table: the last 64 credentials by their bytes anywhere in a buffer, round robin; short and unknown credentials are misses, never errors', () => {
  const cache = new CredentialCache(16, 1 << 20);
  const tokens = Array.from({ length: 65 }, (_, i) => `token-${String(i).padStart(3, '0')}-${'s'.repeat(40)}`);
  const ds = tokens.map(() => decision(Number.MAX_SAFE_INTEGER));
  tokens.forEach((t, i) => cache.remember(Buffer.from(t, 'latin1'), ds[i]!));
  // found inside a larger buffer, at an offset, as the processor looks them up in a batch
  const at = (t: string) => {
    const buf = Buffer.from(`prefix:${t}:suffix`, 'latin1');
    return cache.recent(buf, 7, 7 + t.length, 0);
  };
  assert.equal(at(tokens[0]!), null, 'the first was replaced by the 65th');
  for (let i = 1; i < 65; i++) assert.equal(at(tokens[i]!), ds[i], `token ${i}`);
  assert.equal(at(`token-999-${'s'.repeat(40)}`), null, 'same length and tail bytes, other content');
  assert.equal(at('x'.repeat(50)), null);
  const empty = new CredentialCache(16, 1 << 20);
  assert.equal(empty.recent(Buffer.from('eyJhbGciOiJub25lIn0.e30.sig', 'latin1'), 0, 27, 0), null, 'an empty table');
  const short = Buffer.from('abc', 'latin1');
  empty.remember(short, decision(Number.MAX_SAFE_INTEGER));
  assert.equal(empty.recent(short, 0, 3, 0), null, 'credentials under 4 bytes are not kept in the table');
  assert.equal(empty.recent(Buffer.from('xyzabc', 'latin1'), 3, 6, 0), null);
});

test('an entry costs the credential, the encoded attributes and a fixed 512', () => {
  assert.equal(entryBytes({ fields: new Uint8Array(8) }, 'x'.repeat(1004)), 1524);
});
