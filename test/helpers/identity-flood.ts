/**
 * A flood of distinct, large, invalid bearer tokens against the daemon running as a child process (the real
 * CLI, so its memory is its own and can be read from its /metrics and from /proc), with the daemon's memory
 * and the identity decision cache's size sampled throughout. Used by the memory end-to-end test, and usable
 * from a script to compare cache settings.
 *
 * Flood tokens are real compact JWS: header { alg: EdDSA, kid: <the issuer's published kid> }, claims that
 * would be valid (iss, aud, exp) plus a padding claim, signed by a key the issuer never published. So each
 * is parsed, its key found and its signature checked, failing as bad_signature: a failure that is cached
 * (for cache.failure_ttl), unlike unknown_key, which would not be and would not fill anything.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliProcess } from './daemon.js';
import { OtlpGrpcTestServer } from './exporter-grpc-server.js';
import { jwksOf, makeSigningKey, signJwt, startJwksServer, validClaims, type JwksServer, type SigningKey } from './jwks-server.js';
import { freePort } from './net.js';
import { buildRequest, decodeSpans, type DecodedSpan, type SpanSpec } from './otlp.js';
import { sample } from './prometheus-text.js';

export const AUTH = 'http.request.header.authorization';
export const AUDIENCE = 'checkout';
export const MiB = 1_048_576;

/** What the daemon's /metrics says about its memory and the identity cache at one moment. */
export interface MemorySample {
  rss: number;
  heapUsed: number | null;
  heapTotal: number | null;
  external: number | null;
  cacheBytes: number;
}

/** VmRSS and VmHWM (peak RSS since start) of a process from /proc, in bytes; null off Linux. */
export function procMemory(pid: number): { rss: number; hwm: number } | null {
  const file = `/proc/${pid}/status`;
  if (!existsSync(file)) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m === null ? NaN : Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Mints distinct invalid tokens of about `targetBytes` characters: see the module comment. Signing is
 * synchronous (node:crypto Ed25519), a few tens of microseconds per token.
 */
export class FloodTokens {
  private readonly attacker: KeyObject = generateKeyPairSync('ed25519').privateKey;
  private readonly header: string;
  private readonly padLength: number;
  private readonly base: (i: number) => Record<string, unknown>;

  constructor(issuer: string, victimKid: string, readonly targetBytes = 16_000) {
    this.header = b64url(JSON.stringify({ alg: 'EdDSA', kid: victimKid, typ: 'JWT' }));
    const now = Math.floor(Date.now() / 1000);
    // Fixed-width subject and jti, so every token has the same length.
    this.base = (i) => ({ iss: issuer, aud: AUDIENCE, sub: `flood-${String(i).padStart(8, '0')}`, jti: randomBytes(12).toString('hex'), iat: now, exp: now + 3600 });
    const signatureChars = 86; // an Ed25519 signature (64 bytes) in base64url
    const payloadChars = targetBytes - this.header.length - 2 - signatureChars;
    const jsonBytes = Math.floor((payloadChars * 3) / 4);
    this.padLength = jsonBytes - JSON.stringify({ ...this.base(0), pad: '' }).length;
  }

  token(i: number): string {
    const payload = b64url(JSON.stringify({ ...this.base(i), pad: 'p'.repeat(this.padLength) }));
    const input = `${this.header}.${payload}`;
    return `${input}.${sign(null, Buffer.from(input), this.attacker).toString('base64url')}`;
  }
}

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}

/** An OTLP/HTTP protobuf request with one span per token, each carrying `Authorization: Bearer <token>`. */
export function tokenRequest(tokens: readonly string[], prefix: string): Uint8Array {
  const spans: SpanSpec[] = tokens.map((t, i) => ({ name: `${prefix}-${i}`, attributes: { [AUTH]: [`Bearer ${t}`] } }));
  return buildRequest([{ attributes: { 'service.name': 'checkout' }, scopes: [{ spans }] }]);
}

export interface FloodDaemon {
  cli: CliProcess;
  jwks: JwksServer;
  backend: OtlpGrpcTestServer;
  victim: SigningKey;
  tracesUrl: string;
  metricsUrl: string;
  /** Scrapes /metrics once. */
  scrape(): Promise<{ text: string; mem: MemorySample }>;
  /** Kills the child (SIGKILL) and stops the servers; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts the issuer (one published Ed25519 key), the OTLP/gRPC backend and the daemon (`tracewarden run`
 * as a child process): otlp/http in, identity (on_invalid: drop) then batch, otlp out, metrics on a free
 * port. `maxBytes` null leaves cache.max_bytes at its default. Resolves once /ready answers 200 (keys
 * loaded), bounded.
 */
export async function startFloodDaemon(opts: { maxBytes: number | null }): Promise<FloodDaemon> {
  const victim = await makeSigningKey('EdDSA');
  const jwks = await startJwksServer({ keys: jwksOf(victim) });
  const backend = await OtlpGrpcTestServer.start();
  const http = await freePort();
  const metrics = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tw-flood-'));
  const file = join(dir, 'config.yaml');
  const cache = opts.maxBytes === null ? '' : `\n    cache: { max_bytes: ${opts.maxBytes} }`;
  writeFileSync(
    file,
    `
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:${http} }
processors:
  identity:
    issuers:
      - issuer: ${jwks.issuer}
        audiences: [${AUDIENCE}]
        allow_insecure_http: true
    on_invalid: drop${cache}
  batch: { timeout: 10ms }
exporters:
  otlp: { endpoint: ${backend.endpoint}, tls: { insecure: true }, compression: none, retry_on_failure: { initial_interval: 10ms, max_interval: 50ms } }
service:
  telemetry: { metrics: { address: 127.0.0.1:${metrics} } }
  pipelines:
    traces: { receivers: [otlp], processors: [identity, batch], exporters: [otlp] }
`,
  );
  const cli = runCli(['run', '--config', file]);
  const metricsUrl = `http://127.0.0.1:${metrics}`;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    await cli.exit;
    await backend.close();
    await jwks.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await withTimeout(cli.waitForLog('tracewarden is running'), 15_000, 'the daemon did not start');
    // Keys load in the background after start; /ready says when.
    const t0 = Date.now();
    for (;;) {
      const res = await fetch(`${metricsUrl}/ready`);
      await res.text();
      if (res.status === 200) break;
      if (Date.now() - t0 > 10_000) throw new Error(`/ready never answered 200 (last ${res.status})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}; stderr:\n${cli.stderr().slice(-2000)}`);
  }
  return {
    cli,
    jwks,
    backend,
    victim,
    tracesUrl: `http://127.0.0.1:${http}/v1/traces`,
    metricsUrl,
    async scrape() {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      const rss = sample(text, 'process_resident_memory_bytes');
      const cacheBytes = sample(text, 'tracewarden_identity_cache_bytes', { processor: 'identity' });
      if (rss === null || cacheBytes === null) throw new Error('process_resident_memory_bytes or tracewarden_identity_cache_bytes is missing from /metrics');
      return {
        text,
        mem: {
          rss,
          heapUsed: sample(text, 'nodejs_heap_size_used_bytes'),
          heapTotal: sample(text, 'nodejs_heap_size_total_bytes'),
          external: sample(text, 'nodejs_external_memory_bytes'),
          cacheBytes,
        },
      };
    },
    stop,
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export async function postTraces(d: FloodDaemon, body: Uint8Array): Promise<{ status: number; text: string }> {
  // A Blob: fetch's BodyInit type does not take a Uint8Array over an ArrayBufferLike.
  const res = await fetch(d.tracesUrl, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Blob([body as Uint8Array<ArrayBuffer>]) });
  return { status: res.status, text: await res.text() };
}

/** Sends one span carrying a token valid for the issuer and returns it as the backend received it (bounded wait). */
export async function sendValid(d: FloodDaemon, sub: string, name: string): Promise<DecodedSpan> {
  const token = await signJwt(validClaims(d.jwks.issuer, AUDIENCE, { sub }), d.victim);
  const r = await postTraces(d, tokenRequest([token], name));
  if (r.status !== 200) throw new Error(`valid span refused: ${r.status} ${r.text}`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = d.backend.requests.flatMap((q) => decodeSpans(q.bytes)).filter((s) => s.name === `${name}-0`);
    if (found.length > 0) return found[0]!;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`span ${name}-0 did not reach the backend`);
    await d.backend.waitForRequests(d.backend.requests.length + 1, left).catch(() => undefined);
  }
}

export interface FloodResult {
  baseline: MemorySample;
  /** Highest RSS seen: per-request scrapes, /proc samples every 20 ms, and VmHWM at the end. */
  peakRss: number;
  peakHeapUsed: number;
  /** Highest tracewarden_identity_cache_bytes scraped (after every request). */
  peakCacheBytes: number;
  final: MemorySample;
  elapsedMs: number;
  requests: number;
  tokens: number;
  tokenBytes: number;
}

/**
 * Sends `count` distinct flood tokens, `perRequest` spans per OTLP/HTTP request, one request at a time,
 * scraping /metrics after each; then waits `settleMs` and takes the final sample. `onRequest` sees every
 * scrape (to assert on as it goes). Every request must be answered 200.
 */
export async function flood(
  d: FloodDaemon,
  opts: { count: number; perRequest: number; settleMs: number; onRequest?: (m: MemorySample, sent: number) => void },
): Promise<FloodResult> {
  const tokens = new FloodTokens(d.jwks.issuer, d.victim.kid);
  const baseline = (await d.scrape()).mem;
  const pid = d.cli.child.pid!;
  let peakRss = baseline.rss;
  let peakHeapUsed = baseline.heapUsed ?? 0;
  let peakCacheBytes = baseline.cacheBytes;
  const sampler = setInterval(() => {
    const p = procMemory(pid);
    if (p !== null && p.rss > peakRss) peakRss = p.rss;
  }, 20);
  const t0 = Date.now();
  let sent = 0;
  let requests = 0;
  let tokenBytes = 0;
  try {
    while (sent < opts.count) {
      const n = Math.min(opts.perRequest, opts.count - sent);
      const batch: string[] = [];
      for (let i = 0; i < n; i++) batch.push(tokens.token(sent + i));
      tokenBytes = batch[0]!.length;
      const r = await postTraces(d, tokenRequest(batch, `flood-${requests}`));
      if (r.status !== 200) throw new Error(`flood request ${requests} answered ${r.status}: ${r.text.slice(0, 200)}`);
      sent += n;
      requests++;
      const m = (await d.scrape()).mem;
      peakRss = Math.max(peakRss, m.rss);
      peakHeapUsed = Math.max(peakHeapUsed, m.heapUsed ?? 0);
      peakCacheBytes = Math.max(peakCacheBytes, m.cacheBytes);
      opts.onRequest?.(m, sent);
    }
  } finally {
    clearInterval(sampler);
  }
  const elapsedMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, opts.settleMs));
  const final = (await d.scrape()).mem;
  const p = procMemory(pid);
  peakRss = Math.max(peakRss, final.rss, p?.hwm ?? 0);
  peakCacheBytes = Math.max(peakCacheBytes, final.cacheBytes);
  return { baseline, peakRss, peakHeapUsed, peakCacheBytes, final, elapsedMs, requests, tokens: sent, tokenBytes };
}

export function mib(bytes: number | null): string {
  return bytes === null ? 'n/a' : `${(bytes / MiB).toFixed(1)} MiB`;
}
