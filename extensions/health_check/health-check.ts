/**
 * Serves the service's readiness on its own port, where the Collector's health_check extension serves
 * it, so load balancer and Kubernetes probes written for the Collector keep working.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ComponentSettings, Extension, Host } from '../../pipeline/service/component.js';
import { closeServer, listen } from '../../pipeline/service/net.js';
import type { HealthCheckConfig } from './config.js';

export class HealthCheckExtension implements Extension {
  private server: Server | null = null;

  constructor(
    private readonly settings: ComponentSettings,
    private readonly config: HealthCheckConfig,
  ) {}

  async start(host: Host): Promise<void> {
    const server = createServer((req, res) => {
      if ((req.url ?? '/').split('?')[0] !== this.config.path) {
        res.writeHead(404).end();
        return;
      }
      const r = host.readiness();
      res
        .writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: r.ready ? 'Server available' : 'Server not available', waiting_for: r.notReady }) + '\n');
    });
    await listen(server, this.config.endpoint, 'health_check');
    this.server = server;
    this.settings.logger.info('health check listening', { endpoint: this.config.endpoint, port: this.port });
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async shutdown(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = closeServer(server);
    server.closeAllConnections();
    await closed;
  }
}
