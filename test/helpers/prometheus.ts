/**
 * A real Prometheus server (Debian's `prometheus` package) for tests: started on a free loopback port with
 * a throw-away storage directory, scraping the given targets every second, stopped by `stop()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export function prometheusBinary(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

export interface PrometheusServer {
  url: string;
  /** Runs an instant query; returns the samples as label sets with numeric values. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: number }[]>;
  /** Polls `check` once per scrape interval until it returns true, at most `attempts` times. */
  waitFor(check: () => Promise<boolean>, attempts?: number): Promise<boolean>;
  targets(): Promise<{ health: string; scrapeUrl: string; lastError: string }[]>;
  stop(): Promise<void>;
}

export async function startPrometheus(targets: string[]): Promise<PrometheusServer> {
  const bin = prometheusBinary();
  if (bin === null) throw new Error('prometheus is not installed (Debian package "prometheus")');
  const dir = mkdtempSync(join(tmpdir(), 'tw-prom-'));
  const config = `global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: tracewarden\n    static_configs:\n      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]\n`;
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    bin,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const get = async (path: string): Promise<unknown> => {
    const res = await fetch(url + path);
    return res.json();
  };

  // Ready when the HTTP API answers; bounded by attempts, each waiting for the process or a short timer.
  let ready = false;
  for (let i = 0; i < 100 && !ready && child.exitCode === null; i++) {
    try {
      const res = await fetch(`${url}/-/ready`);
      ready = res.status === 200;
    } catch {
      // not listening yet
    }
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  if (!ready) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`prometheus did not become ready: ${stderr.slice(-500)}`);
  }

  const server: PrometheusServer = {
    url,
    async query(expr) {
      const body = (await get(`/api/v1/query?query=${encodeURIComponent(expr)}`)) as {
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async waitFor(check, attempts = 30) {
      for (let i = 0; i < attempts; i++) {
        if (await check()) return true;
        await new Promise((r) => setTimeout(r, 1000));
      }
      return false;
    },
    async targets() {
      const body = (await get('/api/v1/targets')) as { data: { activeTargets: { health: string; scrapeUrl: string; lastError: string }[] } };
      return body.data.activeTargets;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
