/**
 * The in-process wire path against full decoding, on the same batches: received bytes → index → remove
 * `http.request.header.authorization` and set `enduser.id` on every span → encode, next to protobufjs
 * decode → the same edit on objects → encode. Also a pass-through (index only, the bytes go on as they
 * came). Spans are realistic: 20 attributes of mixed types, as in the Collector's published figures.
 *
 *   npm run bench                       (BENCH_RUN_MS, BENCH_RUNS, BENCH_SIZES=100,1000 to change)
 *
 * Each case warms up, then runs BENCH_RUNS timed runs of BENCH_RUN_MS each; the table shows the median.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { KeyMatcher, TraceBatch, encodeKey, encodeString } from '../pipeline/batch/batch.js';
import { otlpType } from '../pipeline/batch/otlp-schema.js';
import { decodeSpans } from '../test/helpers/otlp.js';
import { AUTH, batchOf } from './spans.js';
import { fmt, median } from './stats.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const RUN_MS = Number(process.env['BENCH_RUN_MS'] ?? 400);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
const WARMUP_MS = Number(process.env['BENCH_WARMUP_MS'] ?? 300);
const SIZES = (process.env['BENCH_SIZES'] ?? '100,1000,5000').split(',').map(Number);


const AUTH_KEY = encodeKey(AUTH);
const ENDUSER_KEY = encodeKey('enduser.id');
const STRIP_KEYS = new KeyMatcher([AUTH_KEY, ENDUSER_KEY]);
// The identity processor caches the encoded value per verified token, so encoding it once is realistic.
const ENDUSER_VALUE = encodeString('alice@example.com');

// ---- the three paths ----

function wireEdit(bytes: Uint8Array): Uint8Array {
  const b = new TraceBatch(bytes);
  b.index();
  const n = b.spanCount;
  for (let i = 0; i < n; i++) {
    // One pass strips the credential and any enduser.id the sender wrote, as the identity processor does.
    b.removeSpanAttributes(i, STRIP_KEYS);
    b.appendSpanAttribute(i, ENDUSER_KEY, ENDUSER_VALUE);
  }
  return b.encode();
}

function wirePassThrough(bytes: Uint8Array): Uint8Array {
  const b = new TraceBatch(bytes);
  b.index();
  return b.encode();
}

const Request = otlpType('ExportTraceServiceRequest');
interface KV {
  key: string;
  value: unknown;
}
interface Msg {
  resourceSpans: { scopeSpans: { spans: { attributes: KV[] }[] }[] }[];
}

function protobufEdit(bytes: Uint8Array): Uint8Array {
  const msg = Request.decode(bytes) as unknown as Msg;
  for (const rs of msg.resourceSpans) {
    for (const ss of rs.scopeSpans) {
      for (const span of ss.spans) {
        const kept: KV[] = [];
        for (const kv of span.attributes) if (kv.key !== AUTH) kept.push(kv);
        kept.push({ key: 'enduser.id', value: { stringValue: 'alice@example.com' } });
        span.attributes = kept;
      }
    }
  }
  return Request.encode(msg as unknown as Record<string, unknown>).finish();
}

// ---- measurement ----

let gcMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
});
gcObserver.observe({ entryTypes: ['gc'] });

/** Keeps results observable so the work is not optimised away. */
let sink = 0;

function runFor(ms: number, fn: (b: Uint8Array) => Uint8Array, bytes: Uint8Array): { iters: number; elapsed: number } {
  const start = process.hrtime.bigint();
  const limit = start + BigInt(ms) * 1_000_000n;
  let iters = 0;
  let now = start;
  do {
    sink += fn(bytes).length;
    iters++;
    now = process.hrtime.bigint();
  } while (now < limit);
  return { iters, elapsed: Number(now - start) / 1e9 };
}

interface Result {
  spansPerSec: number;
  mbPerSec: number;
  rssPeakDeltaMb: number;
  heapDeltaMb: number;
  gcMsPerSec: number;
}

async function measure(fn: (b: Uint8Array) => Uint8Array, bytes: Uint8Array, spans: number): Promise<Result> {
  gc();
  const before = process.memoryUsage();
  runFor(WARMUP_MS, fn, bytes);
  await flushGcEntries();
  gcMs = 0;
  let rssPeak = before.rss;
  const rates: number[] = [];
  let totalElapsed = 0;
  for (let r = 0; r < RUNS; r++) {
    const { iters, elapsed } = runFor(RUN_MS, fn, bytes);
    totalElapsed += elapsed;
    rates.push(iters / elapsed);
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }
  await flushGcEntries();
  const gcTotal = gcMs;
  gc();
  const after = process.memoryUsage();
  const perSec = median(rates);
  return {
    spansPerSec: perSec * spans,
    mbPerSec: (perSec * bytes.length) / 1e6,
    rssPeakDeltaMb: (rssPeak - before.rss) / 1e6,
    heapDeltaMb: (after.heapUsed - before.heapUsed) / 1e6,
    gcMsPerSec: gcTotal / totalElapsed,
  };
}

/** GC entries are delivered asynchronously; one turn of the loop lets them in. */
function flushGcEntries(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The wire path and protobufjs must produce the same spans, or the comparison means nothing. */
function checkSameResult(bytes: Uint8Array): void {
  const a = decodeSpans(wireEdit(bytes));
  const b = decodeSpans(protobufEdit(bytes));
  if (a.length !== b.length) throw new Error(`span count differs: wire ${a.length}, protobufjs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!.attributes;
    const y = b[i]!.attributes;
    if (AUTH in x || AUTH in y || x['enduser.id'] !== 'alice@example.com' || JSON.stringify(x) !== JSON.stringify(y)) {
      throw new Error(`span ${i} differs between the wire path and protobufjs`);
    }
  }
  if (wirePassThrough(bytes) !== bytes) throw new Error('pass-through did not return the very bytes');
}

async function main(): Promise<void> {
  console.log(`tracewarden wire-path benchmark — node ${process.version}, ${RUNS} runs × ${RUN_MS} ms per case (median), warm-up ${WARMUP_MS} ms`);
  console.log('spans: 20 attributes each (strings, ints, doubles, bools, string arrays); edit = remove authorization header + set enduser.id\n');
  const header = ['batch', 'bytes', 'case', 'spans/s', 'MB/s', 'RSS peak Δ MB', 'heap Δ MB', 'GC ms/s'];
  const rows: string[][] = [header];
  const ratios: string[] = [];
  for (const n of SIZES) {
    const bytes = batchOf(n);
    checkSameResult(bytes);
    const cases: [string, (b: Uint8Array) => Uint8Array][] = [
      ['wire edit', wireEdit],
      ['wire pass-through', wirePassThrough],
      ['protobufjs edit', protobufEdit],
    ];
    const results = new Map<string, Result>();
    for (const [name, fn] of cases) {
      const r = await measure(fn, bytes, n);
      results.set(name, r);
      rows.push([
        String(n),
        fmt(bytes.length),
        name,
        fmt(r.spansPerSec),
        fmt(r.mbPerSec, 1),
        fmt(r.rssPeakDeltaMb, 1),
        fmt(r.heapDeltaMb, 2),
        fmt(r.gcMsPerSec, 1),
      ]);
    }
    const wire = results.get('wire edit')!.spansPerSec;
    const pass = results.get('wire pass-through')!.spansPerSec;
    const pb = results.get('protobufjs edit')!.spansPerSec;
    ratios.push(`batch ${n}: wire edit ${fmt(wire / pb, 1)}× protobufjs; pass-through ${fmt(pass / pb, 1)}× protobufjs`);
  }
  const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => (c <= 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
  console.log('\nspeed-up (spans/s):');
  for (const line of ratios) console.log(`  ${line}`);
  gcObserver.disconnect();
  if (sink < 0) console.log(sink);
}

await main();
