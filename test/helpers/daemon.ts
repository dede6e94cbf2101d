/**
 * The whole daemon in-process, built from YAML exactly as `tracewarden run` builds it (real registry, real
 * components, real ports on loopback), with its log lines captured for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { defaultRegistry } from '../../cmd/components.js';
import { formatProblems, loadConfig } from '../../pipeline/config/config.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { Service } from '../../pipeline/service/service.js';
import type { OtlpReceiver } from '../../receivers/otlp/receiver.js';

export interface RunningDaemon {
  service: Service;
  logs: MemorySink;
  grpcPort(receiver?: string): number;
  httpPort(receiver?: string): number;
  metricsUrl: string;
  stop(): Promise<void>;
}

export async function startDaemon(yaml: string, env: Record<string, string> = {}): Promise<RunningDaemon> {
  const { config, problems } = loadConfig([{ name: 'test.yaml', text: yaml }], defaultRegistry(), env);
  if (config === null) throw new Error(`test config is invalid:\n${formatProblems(problems)}`);
  const logs = new MemorySink();
  const service = new Service(config, { logger: new Logger(logs, 'debug') });
  await service.start();
  const receiver = (id: string) => service.component(id) as OtlpReceiver;
  return {
    service,
    logs,
    grpcPort: (id = 'otlp') => receiver(id).grpcAddress!.port,
    httpPort: (id = 'otlp') => receiver(id).httpAddress!.port,
    metricsUrl: `http://127.0.0.1:${service.metricsPort}`,
    stop: () => service.shutdown(Date.now() + 5000),
  };
}

export const CLI_PATH = fileURLToPath(new URL('../../cmd/tracewarden.js', import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when stderr (the JSON log) contains the text. */
  waitForLog(text: string): Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the real CLI as a child process (as `npx tracewarden` would). */
export function runCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (err.includes(waiters[i]!.text)) waiters.splice(i, 1)[0]!.resolve();
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit,
    waitForLog(text) {
      if (err.includes(text)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push({ text, resolve });
        exit.then(() => reject(new Error(`process exited before logging ${JSON.stringify(text)}; stderr:\n${err}`)));
      });
    },
  };
}
