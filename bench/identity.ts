/**
 * The identity processor in-process on batches of 1000 spans (20 attributes each), against the same
 * path without it (index, then encode):
 * - warm: 20 distinct tokens, all already verified (the cache answers);
 * - cold: every token distinct and the cache too small to hold them, so each span's token is verified:
 *   bounded by signature checks (RS256 and ES256);
 * - WebAuthn warm (a retried export of already verified spans) and cold (every assertion new to the
 *   cache, ES256).
 *
 *   npm run bench:identity            (BENCH_RUN_MS, BENCH_RUNS to change)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceBatch } from '../pipeline/batch/batch.js';
import type { RequestContext } from '../pipeline/service/component.js';
import { Logger } from '../pipeline/telemetry/logger.js';
import { parseOrThrow } from '../pipeline/config/schema.js';
import { Telemetry } from '../pipeline/telemetry/telemetry.js';
import { identitySchema } from '../processors/identity/config.js';
import { IdentityProcessor } from '../processors/identity/identity-processor.js';
import { spanChallenge } from '../identity/webauthn/verify.js';
import { jwksOf, makeSigningKey, signJwt, validClaims, type SigningKey } from '../test/helpers/jwks-server.js';
import { assert as assertWith, createCredential, jwks as credentialJwks } from '../test/helpers/webauthn-authenticator.js';
import { AUTH, batchOf } from './spans.js';

const RUN_MS = Number(process.env['BENCH_RUN_MS'] ?? 1000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
const WARMUP_MS = Number(process.env['BENCH_WARMUP_MS'] ?? 1000);
const SPANS = 1000;
const ISS = 'https://idp.bench.example';
const RP = 'shop.example';
const ORIGIN = 'https://shop.example';
const CTX: RequestContext = { receiver: 'bench', transport: 'grpc', peer: 'bench', auth: null };

const quiet = new Logger({ write: () => {} }, 'error');

async function processor(dir: string, keys: SigningKey[], extra: Record<string, unknown>, next: (b: TraceBatch) => Promise<void> = async (b) => void b.encode()): Promise<IdentityProcessor> {
  const file = join(dir, `jwks-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(jwksOf(...keys)));
  const config = parseOrThrow(identitySchema, { issuers: [{ issuer: ISS, jwks_file: file, audiences: ['orders'] }], on_invalid: 'tag', audit: { enabled: false }, ...extra });
  const p = new IdentityProcessor({ id: 'identity', logger: quiet, telemetry: new Telemetry({ processMetrics: false }) }, config, { consume: next });
  await p.start();
  await p.keysSettled();
  return p;
}

/**
 * What the receiver does before the processor sees a batch: the validating scan, with the inspection the
 * processor declared (as a daemon built from config does).
 */
function received(bytes: Uint8Array, p: IdentityProcessor): TraceBatch {
  const b = new TraceBatch(bytes);
  b.index(p.inspection());
  return b;
}

async function rate(label: string, spansPerBatch: number, batches: Uint8Array[], fn: (bytes: Uint8Array) => Promise<void>): Promise<number> {
  // Warm-up for a while, not one pass: the first passes measure the JIT and fill caches.
  const warmUntil = process.hrtime.bigint() + BigInt(WARMUP_MS) * 1_000_000n;
  let w = 0;
  do await fn(batches[w++ % batches.length]!);
  while (process.hrtime.bigint() < warmUntil);
  const rates: number[] = [];
  const cpuRates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    let n = 0;
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    const limit = start + BigInt(RUN_MS) * 1_000_000n;
    let now = start;
    do {
      await fn(batches[n % batches.length]!);
      n++;
      now = process.hrtime.bigint();
    } while (now < limit);
    rates.push((n * spansPerBatch) / (Number(now - start) / 1e9));
    const cpu = process.cpuUsage(cpu0);
    cpuRates.push((n * spansPerBatch) / ((cpu.user + cpu.system) / 1e6));
  }
  rates.sort((a, b) => a - b);
  cpuRates.sort((a, b) => a - b);
  const median = rates[rates.length >> 1]!;
  const cpuMedian = cpuRates[cpuRates.length >> 1]!;
  const f = (x: number) => Math.round(x).toLocaleString('en-US').padStart(11);
  console.log(`${label.padEnd(44)} ${f(median)} spans/s ${f(cpuMedian)} spans/cpu-s`);
  // CPU time is the figure to compare when the machine is shared: wall time includes others' work.
  return cpuMedian;
}

/** Two paths on the same batch, alternating run by run; prints both and returns the medians. */
async function paired(labelA: string, a: (bytes: Uint8Array) => Promise<void>, labelB: string, b: (bytes: Uint8Array) => Promise<void>, batch: Uint8Array): Promise<[number, number]> {
  const warmUntil = process.hrtime.bigint() + BigInt(WARMUP_MS) * 1_000_000n;
  do {
    await a(batch);
    await b(batch);
  } while (process.hrtime.bigint() < warmUntil);
  const ra: number[] = [];
  const rb: number[] = [];
  const ratios: number[] = [];
  const once = async (fn: (bytes: Uint8Array) => Promise<void>): Promise<number> => {
    let n = 0;
    const cpu0 = process.cpuUsage();
    const limit = process.hrtime.bigint() + BigInt(RUN_MS) * 1_000_000n;
    do {
      await fn(batch);
      n++;
    } while (process.hrtime.bigint() < limit);
    const cpu = process.cpuUsage(cpu0);
    return (n * SPANS) / ((cpu.user + cpu.system) / 1e6);
  };
  for (let r = 0; r < RUNS; r++) {
    const x = await once(a);
    const y = await once(b);
    ra.push(x);
    rb.push(y);
    ratios.push(y / x);
  }
  const med = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]!;
  const f = (x: number) => Math.round(x).toLocaleString('en-US').padStart(11);
  console.log(`${labelA.padEnd(44)} ${f(med(ra))} spans/cpu-s`);
  console.log(`${labelB.padEnd(44)} ${f(med(rb))} spans/cpu-s   (${(100 * med(ratios)).toFixed(0)}% of the line above, median of per-run ratios)`);
  return [med(ra), med(rb)];
}

async function tokens(key: SigningKey, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await signJwt(validClaims(ISS, 'orders', { sub: `user-${i}`, roles: ['viewer'], amr: ['pwd'] }, 3600), key));
  return out;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-id-'));
  const rsa = await makeSigningKey('RS256', 'rsa-1');
  const ec = await makeSigningKey('ES256', 'ec-1');
  console.log(`identity processor, ${SPANS} spans a batch, median of ${RUNS} runs of ${RUN_MS} ms (node ${process.version})\n`);

  // Warm: 20 distinct tokens (RS256), already verified, compared with the same spans through the same
  // path without the processor. The two alternate run by run and the ratio is taken per pair, so drift on
  // a shared machine cancels out.
  const twenty = await tokens(rsa, 20);
  const warmBatch = batchOf(SPANS, (i) => ({ [AUTH]: [`Bearer ${twenty[i % 20]}`] }));
  const warmProc = await processor(dir, [rsa], {});
  const gzipProc = await processor(dir, [rsa], {}, async (b) => void gzipSync(b.encode()));
  const plainPath = async (bytes: Uint8Array) => {
    const b = new TraceBatch(bytes);
    b.index();
    b.encode();
  };
  const gzipPath = async (bytes: Uint8Array) => {
    const b = new TraceBatch(bytes);
    b.index();
    gzipSync(b.encode());
  };
  const [baseline, warm] = await paired('without identity (index + encode)', plainPath, 'warm: 20 distinct tokens, cached', (bytes) => warmProc.consume(received(bytes, warmProc), CTX), warmBatch);
  const [gzipBaseline, gzipWarm] = await paired('without identity, exporter gzip', gzipPath, 'warm, exporter gzip', (bytes) => gzipProc.consume(received(bytes, gzipProc), CTX), warmBatch);
  await gzipProc.shutdown();

  // Cold: every token distinct, cache smaller than a batch so every span is verified.
  const results: [string, number][] = [];
  for (const [name, key] of [
    ['RS256', rsa],
    ['ES256', ec],
  ] as const) {
    const distinct = await tokens(key, SPANS);
    const batches = [batchOf(SPANS, (i) => ({ [AUTH]: [`Bearer ${distinct[i]}`] }))];
    const proc = await processor(dir, [key], { cache: { max_entries: 16 } });
    results.push([name, await rate(`cold ${name}: every token distinct`, SPANS, batches, (bytes) => proc.consume(received(bytes, proc), CTX))]);
    await proc.shutdown();
  }

  // WebAuthn (ES256 passkeys), assertions bound to their spans.
  const creds = Array.from({ length: 20 }, (_, i) => createCredential('ES256', { user: `user-${i}` }));
  const keysFile = join(dir, 'credentials.json');
  writeFileSync(keysFile, JSON.stringify(credentialJwks(creds)));
  const ids = Array.from({ length: SPANS }, () => ({ traceId: randomBytes(16), spanId: randomBytes(8) }));
  const assertions = ids.map((id, i) => JSON.stringify(assertWith(creds[i % 20]!, { challenge: spanChallenge(id.traceId, id.spanId), origin: ORIGIN, rpId: RP, signCount: 0 })));
  const waBatch = batchOf(SPANS, (i) => ({ 'webauthn.assertion': assertions[i]! }), (i) => ids[i]!);
  const waConfig = (maxEntries: number) => ({ issuers: [], webauthn: { rp_id: RP, origins: [ORIGIN], credentials_jwks_file: keysFile }, cache: { max_entries: maxEntries } });
  const waWarm = await processor(dir, [rsa], waConfig(10_000));
  const webauthnWarm = await rate('webauthn warm: retried spans, cached', SPANS, [waBatch], (bytes) => waWarm.consume(received(bytes, waWarm), CTX));
  const waCold = await processor(dir, [rsa], waConfig(16));
  const webauthnCold = await rate('webauthn cold: every assertion verified', SPANS, [waBatch], (bytes) => waCold.consume(received(bytes, waCold), CTX));
  await Promise.all([warmProc.shutdown(), waWarm.shutdown(), waCold.shutdown()]);

  console.log(`\nwarm / without identity: ${((100 * warm) / baseline).toFixed(0)}% in-process, no compression; ${((100 * gzipWarm) / gzipBaseline).toFixed(0)}% with the exporter's gzip (goal: at least 70%)`);
  for (const [name, r] of results) console.log(`cold ${name}: ${Math.round(r).toLocaleString('en-US')} verifications/s (one signature check per span)`);
  console.log(`webauthn warm / without identity: ${((100 * webauthnWarm) / baseline).toFixed(0)}%; cold: ${Math.round(webauthnCold).toLocaleString('en-US')} assertions/s`);
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
