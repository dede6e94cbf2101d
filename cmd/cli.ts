/**
 * The command line: `run`, `validate`, `version`. Returns an exit code instead of exiting, so tests can
 * drive it in-process; cmd/tracewarden.ts is the only place that exits.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatProblems, loadConfig, readSources, type ConfigProblem, type ConfigSource } from '../pipeline/config/config.js';
import type { Registry } from '../pipeline/service/component.js';
import { Logger } from '../pipeline/telemetry/logger.js';
import { Service } from '../pipeline/service/service.js';
import { defaultRegistry } from './components.js';
import { DEFAULT_CONFIG } from './default-config.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const USAGE = `tracewarden — identity-aware OpenTelemetry trace pipeline

Usage:
  tracewarden run [--config FILE]...        run the daemon (no --config: the embedded default)
  tracewarden validate [--config FILE]...   check a configuration and report every problem
  tracewarden print-default-config          print the embedded default configuration
  tracewarden version                       print the version
  tracewarden --help                        this text

--config may be repeated; files are merged in order, later ones winning.
Values may use \${VAR}, \${env:VAR}, \${env:VAR:-default}, \${file:path} and $$ for a literal $.
Shutdown: SIGTERM or SIGINT stops the receivers, flushes what is held within service.shutdown_timeout
(default 15s), keeps what is left in persistent queues, and exits 0.
`;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
}

const defaultIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
};

export function version(): string {
  const pkgPath = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
}

interface Parsed {
  command: string;
  configs: string[];
  problems: string[];
}

function parseArgs(argv: readonly string[]): Parsed {
  const out: Parsed = { command: '', configs: [], problems: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') out.command = 'help';
    else if (a === '--version') out.command = 'version';
    else if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) out.problems.push(`${a} needs a file name`);
      else out.configs.push(v);
    } else if (a.startsWith('--config=')) out.configs.push(a.slice('--config='.length));
    else if (!a.startsWith('-') && out.command === '') out.command = a;
    else out.problems.push(`unknown argument ${a}`);
  }
  return out;
}

/** Loads the config from files or the embedded default; prints problems; null when invalid. */
export function resolveConfig(configs: readonly string[], registry: Registry, io: Io) {
  let sources: ConfigSource[];
  let problems: ConfigProblem[] = [];
  if (configs.length === 0) sources = [{ name: '(embedded default)', text: DEFAULT_CONFIG }];
  else ({ sources, problems } = readSources(configs));
  const loaded = loadConfig(sources, registry, io.env);
  problems = [...problems, ...loaded.problems];
  const warnings = problems.filter((p) => p.warning);
  const errors = problems.filter((p) => !p.warning);
  if (warnings.length > 0) io.err(formatProblems(warnings) + '\n');
  if (errors.length > 0 || loaded.config === null) {
    io.err(`invalid configuration: ${errors.length} problem${errors.length === 1 ? '' : 's'}\n${formatProblems(errors)}\n`);
    return null;
  }
  return loaded.config;
}

export interface RunHandle {
  service: Service;
  /** Resolves with the exit code once the daemon has stopped. */
  done: Promise<number>;
  stop(): void;
}

/** Starts the daemon; resolves once it is running (or with null after printing why it could not). */
export async function startDaemon(configs: readonly string[], io: Io = defaultIo, registry: Registry = defaultRegistry()): Promise<RunHandle | null> {
  const config = resolveConfig(configs, registry, io);
  if (config === null) return null;
  const logger = new Logger({ write: io.err }, config.service.logLevel);
  const service = new Service(config, { logger });
  try {
    await service.start();
  } catch (err) {
    io.err(`tracewarden failed to start: ${(err as Error).message}\n`);
    return null;
  }
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const done = stopped.then(async () => {
    await service.shutdown(Date.now() + config.service.shutdownTimeoutMs);
    return EXIT_OK;
  });
  return { service, done, stop: () => stopRequested() };
}

export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  const args = parseArgs(argv);
  if (args.problems.length > 0) {
    io.err(`${args.problems.join('\n')}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  switch (args.command) {
    case 'help':
      io.out(USAGE);
      return EXIT_OK;
    case 'version':
      io.out(`tracewarden ${version()}\n`);
      return EXIT_OK;
    case 'print-default-config':
      io.out(DEFAULT_CONFIG);
      return EXIT_OK;
    case 'validate': {
      const config = resolveConfig(args.configs, defaultRegistry(), io);
      if (config === null) return EXIT_FAILURE;
      io.out(`configuration is valid: ${config.service.pipelines.length} pipeline${config.service.pipelines.length === 1 ? '' : 's'}\n`);
      return EXIT_OK;
    }
    case 'run': {
      const handle = await startDaemon(args.configs, io);
      if (handle === null) return EXIT_FAILURE;
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          io.err(`received ${sig} again; exiting without waiting for the flush\n`);
          process.exit(EXIT_FAILURE);
        }
        io.err(`received ${sig}; stopping receivers and flushing\n`);
        handle.stop();
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      const code = await handle.done;
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      return code;
    }
    case '':
      io.err(USAGE);
      return EXIT_USAGE;
    default:
      io.err(`unknown command ${args.command}\n\n${USAGE}`);
      return EXIT_USAGE;
  }
}
