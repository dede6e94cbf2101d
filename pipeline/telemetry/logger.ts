/**
 * A structured logger: one JSON object per line on stderr. The level is fixed when the logger is built,
 * so a disabled level costs one comparison. Callers must never pass a credential or attribute value.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): void;
}

/** A warning or error, kept for the zpages extension's page of recent problems. */
export interface RecentProblem {
  ts: string;
  level: 'warn' | 'error';
  msg: string;
  component: string | null;
}

/** The last warnings and errors of a logger and its children (a fixed-size ring). */
export class RecentProblems {
  private readonly ring: RecentProblem[] = [];
  constructor(private readonly size = 100) {}
  add(p: RecentProblem): void {
    if (this.ring.length >= this.size) this.ring.shift();
    this.ring.push(p);
  }
  list(): readonly RecentProblem[] {
    return this.ring;
  }
}

export class Logger {
  private readonly min: number;
  constructor(
    private readonly sink: LogSink = process.stderr,
    level: LogLevel = 'info',
    private readonly bound: Record<string, unknown> = {},
    /** Shared with every child logger. */
    readonly recent: RecentProblems = new RecentProblems(),
  ) {
    this.min = RANK[level];
  }

  /** A logger whose lines carry these fields too (the component ID, for instance). */
  child(fields: Record<string, unknown>): Logger {
    const l = new Logger(this.sink, 'debug', { ...this.bound, ...fields }, this.recent);
    (l as unknown as { min: number }).min = this.min;
    return l;
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.min;
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    if (RANK.debug >= this.min) this.emit('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    if (RANK.info >= this.min) this.emit('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    if (RANK.warn >= this.min) this.emit('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    if (RANK.error >= this.min) this.emit('error', msg, fields);
  }

  private emit(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    const rec = { ts: new Date().toISOString(), level, msg, ...this.bound, ...fields };
    this.sink.write(JSON.stringify(rec, errorReplacer) + '\n');
    if (level === 'warn' || level === 'error') {
      const component = this.bound['component'];
      this.recent.add({ ts: rec.ts, level, msg, component: typeof component === 'string' ? component : null });
    }
  }
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? value.message : { code, message: value.message };
  }
  return value;
}

/** Collects lines in memory: for tests that assert what was (and was not) logged. */
export class MemorySink implements LogSink {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
  get text(): string {
    return this.lines.join('');
  }
}
