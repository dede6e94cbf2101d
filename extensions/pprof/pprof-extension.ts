/**
 * The pprof extension: profiles of this Node process on its endpoint, where the Collector's pprof
 * extension serves Go's. The formats are V8's, which Chrome DevTools (Performance and Memory panels),
 * VS Code and `node --cpu-prof` tooling open:
 *
 *   /debug/pprof/profile?seconds=30   a CPU profile over that many seconds          (.cpuprofile)
 *   /debug/pprof/heap?seconds=10      a sampling heap profile over that many seconds (.heapprofile)
 *   /debug/pprof/heapsnapshot         a full heap snapshot, streamed                 (.heapsnapshot)
 *
 * One profile at a time (a second request gets 409). A heap snapshot pauses the process while it is
 * taken, as with any V8 heap snapshot. Bind it to localhost (the default): a heap snapshot holds
 * everything in memory, tokens in flight included.
 */
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import type { ComponentSettings, Extension } from '../../pipeline/service/component.js';
import { closeServer, listen } from '../../pipeline/service/net.js';
import type { PprofConfig } from './config.js';

const MAX_SECONDS = 600;

export class PprofExtension implements Extension {
  private server: Server | null = null;
  private session: Session | null = null;
  private busy = false;
  private saving = false;

  constructor(
    private readonly settings: ComponentSettings,
    private readonly config: PprofConfig,
  ) {}

  async start(): Promise<void> {
    this.session = new Session();
    this.session.connect();
    if (this.config.save_to_file !== undefined) {
      await this.session.post('Profiler.enable');
      await this.session.post('Profiler.start');
      this.saving = true;
      this.busy = true;
    }
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.settings.logger.warn('profile failed', { reason: (err as Error).message });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('profile failed\n');
      });
    });
    await listen(server, this.config.endpoint, 'pprof');
    this.server = server;
    this.settings.logger.info('pprof listening', { endpoint: this.config.endpoint, port: this.port });
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://pprof');
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/debug/pprof' || path === '') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('tracewarden (Node) profiles:\n/debug/pprof/profile?seconds=30  CPU profile (.cpuprofile)\n/debug/pprof/heap?seconds=10     sampling heap profile (.heapprofile)\n/debug/pprof/heapsnapshot        heap snapshot (.heapsnapshot)\n');
      return;
    }
    if (!['/debug/pprof/profile', '/debug/pprof/heap', '/debug/pprof/heapsnapshot'].includes(path)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('unknown profile\n');
      return;
    }
    const secondsText = url.searchParams.get('seconds');
    const seconds = secondsText === null ? (path.endsWith('profile') ? 30 : 10) : Number(secondsText);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_SECONDS) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`seconds must be a number above 0 and at most ${MAX_SECONDS}\n`);
      return;
    }
    if (this.busy) {
      res.writeHead(409, { 'content-type': 'text/plain' }).end('another profile is being taken\n');
      return;
    }
    this.busy = true;
    try {
      const s = this.session!;
      if (path === '/debug/pprof/heapsnapshot') {
        res.writeHead(200, attachment('tracewarden.heapsnapshot'));
        const onChunk = (m: { params: { chunk: string } }) => res.write(m.params.chunk);
        s.on('HeapProfiler.addHeapSnapshotChunk', onChunk);
        try {
          await s.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
        } finally {
          s.off('HeapProfiler.addHeapSnapshotChunk', onChunk);
        }
        res.end();
        return;
      }
      const done = waitFor(seconds * 1000, req);
      let body: unknown;
      if (path === '/debug/pprof/profile') {
        await s.post('Profiler.enable');
        await s.post('Profiler.start');
        await done;
        body = (await s.post('Profiler.stop')).profile;
      } else {
        await s.post('HeapProfiler.enable');
        await s.post('HeapProfiler.startSampling', { samplingInterval: 32768 });
        await done;
        body = (await s.post('HeapProfiler.stopSampling')).profile;
      }
      if (!res.destroyed) res.writeHead(200, attachment(path.endsWith('profile') ? 'tracewarden.cpuprofile' : 'tracewarden.heapprofile')).end(JSON.stringify(body));
    } finally {
      this.busy = this.saving;
    }
  }

  async shutdown(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) {
      const closed = closeServer(server);
      server.closeAllConnections();
      await closed;
    }
    const s = this.session;
    this.session = null;
    if (s === null) return;
    if (this.saving) {
      const { profile } = await s.post('Profiler.stop');
      await writeFile(this.config.save_to_file!, JSON.stringify(profile));
      this.settings.logger.info('CPU profile written', { file: this.config.save_to_file });
    }
    s.disconnect();
  }
}

function attachment(name: string): Record<string, string> {
  return { 'content-type': 'application/json', 'content-disposition': `attachment; filename="${name}"` };
}

/** Resolves after `ms`, or sooner when the client goes away (the profile is then stopped and dropped). */
function waitFor(ms: number, req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    req.socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
