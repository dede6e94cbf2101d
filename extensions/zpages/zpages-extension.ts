/**
 * The zpages extension: plain HTML pages about the running daemon on its endpoint, where the Collector
 * serves its zPages. /debug/servicez shows readiness and the recent warnings and errors; /debug/pipelinez
 * each pipeline's receivers, processors and exporters and whether each is ready; /debug/extensionz the
 * extensions. tracewarden does not trace itself, so /debug/tracez and /debug/rpcz say so.
 *
 * What is shown: component IDs, readiness and log messages (the fixed text of each line, never its
 * fields), so no attribute value or credential can appear.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ComponentSettings, Extension, Host } from '../../pipeline/service/component.js';
import { closeServer, listen } from '../../pipeline/service/net.js';
import type { ZpagesConfig } from './config.js';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.no{color:#b00}</style></head><body><h1>${esc(title)}</h1><p><a href="/debug/servicez">servicez</a> · <a href="/debug/pipelinez">pipelinez</a> · <a href="/debug/extensionz">extensionz</a></p>${body}</body></html>`;
}

export class ZpagesExtension implements Extension {
  private server: Server | null = null;
  private readonly started = new Date();

  constructor(
    private readonly settings: ComponentSettings,
    private readonly config: ZpagesConfig,
  ) {}

  async start(host: Host): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
      const html = this.render(path, host);
      if (html === null) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    });
    await listen(server, this.config.endpoint, 'zpages');
    this.server = server;
    this.settings.logger.info('zpages listening', { endpoint: this.config.endpoint, port: this.port });
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  private render(path: string, host: Host): string | null {
    const r = host.readiness();
    const notReady = new Set(r.notReady);
    const state = (id: string) => (notReady.has(id) ? '<span class="no">not ready</span>' : 'ready');
    switch (path) {
      case '':
      case '/debug':
      case '/debug/servicez': {
        const problems = host.recentProblems?.() ?? [];
        const rows = [...problems]
          .reverse()
          .map((p) => `<tr><td>${esc(p.ts)}</td><td>${esc(p.level)}</td><td>${esc(p.component ?? '')}</td><td>${esc(p.msg)}</td></tr>`)
          .join('');
        return page(
          'tracewarden',
          `<p>${r.ready ? 'ready' : `<span class="no">not ready</span>: waiting for ${esc(r.notReady.join(', '))}`}</p><p>started ${esc(this.started.toISOString())}, Node ${esc(process.version)}</p>` +
            `<h2>Recent warnings and errors</h2>${rows === '' ? '<p>none</p>' : `<table><tr><th>time</th><th>level</th><th>component</th><th>message</th></tr>${rows}</table>`}`,
        );
      }
      case '/debug/pipelinez': {
        const rows = (host.pipelines?.() ?? [])
          .map((p) => {
            const list = (ids: readonly string[], prefix = '') => ids.map((id) => `${esc(id)} (${state(prefix + id)})`).join('<br>');
            return `<tr><td>${esc(p.id)}</td><td>${list(p.receivers)}</td><td>${list(p.processors, `${p.id}/`)}</td><td>${list(p.exporters)}</td></tr>`;
          })
          .join('');
        return page('Pipelines', `<table><tr><th>pipeline</th><th>receivers</th><th>processors</th><th>exporters</th></tr>${rows}</table>`);
      }
      case '/debug/extensionz':
        return page('Extensions', `<p>${r.notReady.length === 0 ? 'every extension is ready' : `not ready: ${esc(r.notReady.join(', '))}`}</p>`);
      case '/debug/tracez':
      case '/debug/rpcz':
        return page('Not available', '<p>tracewarden does not trace itself; its health is on /metrics.</p>');
      default:
        return null;
    }
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
