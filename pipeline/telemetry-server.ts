/**
 * The self-telemetry HTTP server: `/metrics` for Prometheus, `/health` (the process is alive and serving)
 * and `/ready` (every component started and ready: listening, keys loaded or served stale).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Telemetry } from './telemetry.js';
import { closeServer, listen } from './net.js';

export class TelemetryServer {
  private server: Server | null = null;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly address: string,
    private readonly readiness: () => { ready: boolean; notReady: string[] },
  ) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        this.telemetry.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.telemetry.registry.contentType }).end(text),
          () => res.writeHead(500).end('metrics collection failed\n'),
        );
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
