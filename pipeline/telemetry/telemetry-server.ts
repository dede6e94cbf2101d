/**
 * The self-telemetry HTTP server: `/metrics` for Prometheus, `/health` (the process is alive and serving)
 * and `/ready` (every component started and ready: listening, keys loaded or served stale).
 *
 * Rendering `/metrics` costs about half a millisecond to a millisecond of the event loop; rendered once per
 * request, 3,000 pipelined scrapes stalled everything else for seconds. So scrapes share renders: a render
 * starts at most once every MIN_RENDER_INTERVAL_MS, and answers every scrape that arrived before it started.
 * No scrape is ever answered with a render older than itself, so what a client counted before asking is in
 * its answer; a flood only waits for the next render, and costs at most one render per interval.
 */
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Telemetry } from './telemetry.js';
import { closeServer, listen } from '../service/net.js';

/** The shortest time between the starts of two /metrics renders. */
export const MIN_RENDER_INTERVAL_MS = 100;

/** Shares /metrics renders between the scrapes that wait for them. */
export class MetricsRenderer {
  /** Scrapes that arrived after the last render started, answered by the next. */
  private waiting: ServerResponse[] = [];
  private scheduled = false;
  private rendering = false;
  private lastStart = -Infinity;
  /** Renders started so far (for tests and diagnostics). */
  renders = 0;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly intervalMs = MIN_RENDER_INTERVAL_MS,
  ) {}

  serve(res: ServerResponse): void {
    this.waiting.push(res);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.rendering) return;
    this.scheduled = true;
    const delay = this.lastStart + this.intervalMs - performance.now();
    // setImmediate even with no delay: every request parsed from the same read (pipelining) joins.
    if (delay <= 0) setImmediate(renderNow, this);
    else setTimeout(renderNow, delay, this).unref();
  }

  /** @internal */
  render(): void {
    this.scheduled = false;
    const batch = this.waiting;
    if (batch.length === 0) return;
    this.waiting = [];
    this.rendering = true;
    this.lastStart = performance.now();
    this.renders++;
    const registry = this.telemetry.registry;
    registry.metrics().then(
      (text) => this.answer(batch, 200, registry.contentType, Buffer.from(text)),
      () => this.answer(batch, 500, 'text/plain', FAILED),
    );
  }

  private answer(batch: ServerResponse[], status: number, contentType: string, body: Buffer): void {
    this.rendering = false;
    answerFrom(batch, 0, status, { 'content-type': contentType, 'content-length': body.length }, body);
    if (this.waiting.length > 0) this.schedule();
  }
}

/**
 * Scrapes answered per turn of the event loop. Answering thousands of waiting scrapes at once (each also
 * flushes the pipelined answers queued behind it on its connection) would itself stall the loop.
 */
export const ANSWERS_PER_TURN = 64;

function answerFrom(batch: ServerResponse[], from: number, status: number, headers: Record<string, string | number>, body: Buffer): void {
  const end = Math.min(batch.length, from + ANSWERS_PER_TURN);
  for (let i = from; i < end; i++) {
    const res = batch[i]!;
    if (!res.destroyed && !res.headersSent) res.writeHead(status, headers).end(body);
  }
  if (end < batch.length) setImmediate(answerFrom, batch, end, status, headers, body);
}

const FAILED = Buffer.from('metrics collection failed\n');

function renderNow(r: MetricsRenderer): void {
  r.render();
}

export class TelemetryServer {
  private server: Server | null = null;
  readonly metrics: MetricsRenderer;

  constructor(
    telemetry: Telemetry,
    private readonly address: string,
    private readonly readiness: () => { ready: boolean; notReady: string[] },
  ) {
    this.metrics = new MetricsRenderer(telemetry);
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        this.metrics.serve(res);
      } else if (path === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n');
      } else if (path === '/ready') {
        const r = this.readiness();
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: r.ready ? 'ready' : 'not_ready', waiting_for: r.notReady }) + '\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /health or /ready\n');
      }
    });
    server.keepAliveTimeout = 65_000;
    await listen(server, this.address, 'telemetry');
    this.server = server;
  }

  get boundPort(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = closeServer(server);
    server.closeAllConnections();
    await closed;
  }
}
