/**
 * The identity processor's memory under a flood of distinct invalid tokens, measured on the running daemon
 * (`tracewarden run` as a child process, so the RSS is the daemon's own and not the test runner's).
 *
 * The finding this guards: 12,000 distinct invalid 16 KiB tokens took the daemon from 71 to 329 MiB RSS
 * (+258 MiB) and it stayed there, every failure being cached (for cache.failure_ttl) in a cache bounded
 * only in entries (10,000 × 16 KiB ≈ 160 MiB of credentials alone). The decision caches are now bounded in
 * bytes too (cache.max_bytes). Here the bound is 8 MiB, so it is reached after ~500 tokens and the rest of
 * the flood can only evict.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flood, mib, MiB, sendValid, startFloodDaemon } from '../helpers/identity-flood.js';
import { sample } from '../helpers/prometheus-text.js';

const MAX_BYTES = 8 * MiB;
const TOKENS = 12_000;
const PER_REQUEST = 200;

/**
 * Allowed RSS growth over the baseline (taken after start-up and one verified span), at the peak and after
 * the flood. Measured with this flood (12,000 distinct tokens of 16,000 bytes, 200 per request) on a
 * 2-core machine, Node 20, baseline RSS 74–103 MiB:
 *   - cache.max_bytes 8 MiB (this test), 19 runs, 6 of them with a second flood running beside it and one
 *     inside the full test suite: peak +90…+131 MiB (absolute 190–209 MiB), after the flood +71…+118 MiB;
 *   - cache.max_bytes at its default, 32 MiB, 3 runs: peak +183…+218 MiB, after +100…+183 MiB;
 *   - cache.max_bytes 1 GiB, so only max_entries (10,000) bounds it, as before the fix, 3 runs: the gauge
 *     reaches 158 MiB and RSS +239…+259 MiB, staying there (absolute 324–343 MiB; the finding: 71→329 MiB).
 * The growth that is not the cache's bytes is V8 heap slack, which grows with what the heap holds live (old
 * space is collected when it reaches a multiple of the live size), plus transient request buffers (3.2 MB
 * bodies and their decoded batches) and allocator arenas, and depends on GC timing: hence the spread. 160
 * MiB is about 22% above the highest 8 MiB measurement, and 79 MiB below the lowest growth with the
 * cache bounded in entries only, so the test fails if the byte bound stops working.
 */
const MAX_RSS_GROWTH = 160 * MiB;

test('12,000 distinct invalid 16 KB tokens: the cache stays within cache.max_bytes, RSS growth is bounded, valid tokens still verify', { timeout: 90_000 }, async (t) => {
  const d = await startFloodDaemon({ maxBytes: MAX_BYTES });
  t.after(() => d.stop());

  // Warm: keys loaded, the whole path (receiver, identity, batch, exporter) run once, before the baseline.
  const before = await sendValid(d, 'before-flood', 'warm');
  assert.equal(before.attributes['identity.verified'], true, `a valid token verifies before the flood (failure: ${String(before.attributes['identity.failure'])})`);

  const over: string[] = [];
  const r = await flood(d, {
    count: TOKENS,
    perRequest: PER_REQUEST,
    settleMs: 1000,
    onRequest: (m, sent) => {
      if (m.cacheBytes > MAX_BYTES) over.push(`${mib(m.cacheBytes)} after ${sent} tokens`);
    },
  });

  const peakGrowth = r.peakRss - r.baseline.rss;
  const finalGrowth = r.final.rss - r.baseline.rss;
  t.diagnostic(`tokens: ${r.tokens} distinct, ${r.tokenBytes} bytes each, ${r.requests} requests of ${PER_REQUEST} spans, ${(r.elapsedMs / 1000).toFixed(1)} s`);
  t.diagnostic(`rss: baseline ${mib(r.baseline.rss)}, peak ${mib(r.peakRss)} (+${mib(peakGrowth)}), final ${mib(r.final.rss)} (+${mib(finalGrowth)})`);
  t.diagnostic(`heap used: baseline ${mib(r.baseline.heapUsed)}, peak ${mib(r.peakHeapUsed)}, final ${mib(r.final.heapUsed)}; heap total final ${mib(r.final.heapTotal)}; external final ${mib(r.final.external)}`);
  t.diagnostic(`identity cache: peak ${mib(r.peakCacheBytes)} (${r.peakCacheBytes} bytes), final ${mib(r.final.cacheBytes)}, bound ${mib(MAX_BYTES)}`);

  // Every token went through verification and failed as it should (not malformed, not refused unchecked).
  const { text } = await d.scrape();
  assert.equal(sample(text, 'tracewarden_identity_spans_total', { processor: 'identity', result: 'bad_signature' }), TOKENS, 'every flood span was refused as bad_signature');
  const verifications = sample(text, 'tracewarden_identity_verifications_total', { processor: 'identity', issuer: d.jwks.issuer, result: 'bad_signature' });
  assert.equal(verifications, TOKENS, 'each distinct token was verified once');

  assert.deepEqual(over, [], `tracewarden_identity_cache_bytes never exceeds cache.max_bytes (${MAX_BYTES})`);
  assert.ok(r.peakCacheBytes <= MAX_BYTES, `peak cache bytes ${r.peakCacheBytes} <= ${MAX_BYTES}`);
  // Not vacuous: the flood (~200 MB of credentials) filled the cache to its bound.
  assert.ok(r.final.cacheBytes > MAX_BYTES - 2 * (r.tokenBytes + 1024), `the cache is full (${r.final.cacheBytes} bytes)`);

  assert.ok(peakGrowth < MAX_RSS_GROWTH, `peak RSS growth ${mib(peakGrowth)} < ${mib(MAX_RSS_GROWTH)}`);
  assert.ok(finalGrowth < MAX_RSS_GROWTH, `RSS growth after the flood ${mib(finalGrowth)} < ${mib(MAX_RSS_GROWTH)}`);

  // Still serving: a valid token arrives verified at the backend, with its identity.
  const after = await sendValid(d, 'after-flood', 'after');
  assert.equal(after.attributes['identity.verified'], true, `a valid token verifies after the flood (failure: ${String(after.attributes['identity.failure'])})`);
  assert.equal(after.attributes['enduser.id'], 'after-flood');
  assert.equal(after.attributes['http.request.header.authorization'], undefined, 'the credential is removed');
  assert.equal(d.cli.child.exitCode, null, 'the daemon is still running');
});
