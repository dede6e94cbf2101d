/**
 * The debug exporter's real output, captured in-process: the exporter writes each batch with one
 * `process.stdout.write` call (a summary line, then the rendering), so while a capture is installed the
 * writes that begin with that summary line are kept (and not printed); every other write (the test
 * runner's own reporting) passes through untouched. Plus a reader for the `detailed` rendering that yields
 * every attribute line with the level it belongs to, key-value lists flattened into dotted paths.
 */
import { EventEmitter } from 'node:events';

const SUMMARY = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\tinfo\tTraces\t\{"otelcol\.component\.id": /;

export interface DebugCapture {
  /** Everything the debug exporter wrote so far. */
  text(): string;
  /** How many batches it wrote. */
  writes(): number;
  /** Resolves when `done(text)` holds, re-checked on each write; rejects after `timeoutMs`. */
  waitFor(done: (text: string) => boolean, timeoutMs: number, what: string): Promise<void>;
  /** Restores process.stdout.write. */
  restore(): void;
}

export function captureDebugOutput(): DebugCapture {
  const stdout = process.stdout;
  const original = stdout.write;
  const chunks: string[] = [];
  const events = new EventEmitter();
  const patched = function (this: unknown, chunk: unknown, ...rest: unknown[]): boolean {
    if (typeof chunk === 'string' && SUMMARY.test(chunk)) {
      chunks.push(chunk);
      events.emit('write');
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      if (cb) process.nextTick(cb);
      return true;
    }
    return (original as (...a: unknown[]) => boolean).call(stdout, chunk, ...rest);
  };
  stdout.write = patched as typeof stdout.write;
  return {
    text: () => chunks.join(''),
    writes: () => chunks.length,
    waitFor(done, timeoutMs, what) {
      if (done(chunks.join(''))) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!done(chunks.join(''))) return;
          clearTimeout(timer);
          events.off('write', check);
          resolve();
        };
        const timer = setTimeout(() => {
          events.off('write', check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for the debug exporter to write ${what} (${chunks.length} writes so far)`));
        }, timeoutMs);
        events.on('write', check);
      });
    },
    restore() {
      if (stdout.write === patched) stdout.write = original;
    },
  };
}

export type DebugLevel = 'resource' | 'scope' | 'span' | 'event' | 'link';

export interface DebugAttribute {
  level: DebugLevel;
  /** The key as printed, then each nested key of a Map(...) value joined with dots. */
  path: string;
  /** Whether the path is a top-level attribute (not inside a Map). */
  top: boolean;
  /** The printed value (Str(x), Bool(true), Map({...}) ...), or for a nested path its JSON value. */
  value: string;
  /** The `Span #n` block the line is in (-1 before the first span of a scope). */
  span: number;
}

const TOP_LINE = /^ {5}-> (.*?): (.*)$/;
const NESTED_LINE = /^ {10}-> (.*?): (.*)$/;

/**
 * Every attribute of a `detailed` rendering, with its level. Resource, scope and span attributes are
 * printed at five spaces under their heading; event and link attributes at ten under `-> Attributes::`.
 */
export function debugAttributes(text: string): DebugAttribute[] {
  const out: DebugAttribute[] = [];
  let level: DebugLevel | null = null;
  let span = -1;
  for (const line of text.split('\n')) {
    if (line === 'Resource attributes:') level = 'resource';
    else if (line === 'InstrumentationScope attributes:') level = 'scope';
    else if (line === 'Attributes:') level = 'span';
    else if (/^SpanEvent #\d+$/.test(line)) level = 'event';
    else if (/^SpanLink #\d+$/.test(line)) level = 'link';
    else if (/^Span #\d+$/.test(line)) {
      span = Number(line.slice(6));
      level = null;
    } else if (/^(ResourceSpans|ScopeSpans) #\d+$/.test(line)) {
      level = null;
      span = -1;
    } else if (level !== null) {
      const m = (level === 'event' || level === 'link' ? NESTED_LINE : TOP_LINE).exec(line);
      if (m === null) continue;
      const [, key, value] = m as unknown as [string, string, string];
      out.push({ level, path: key, top: true, value, span });
      const map = /^Map\((.*)\)$/.exec(value);
      if (map) for (const [p, v] of flattenJson(JSON.parse(map[1]!), key)) out.push({ level, path: p, top: false, value: JSON.stringify(v), span });
    }
  }
  return out;
}

function flattenJson(v: unknown, prefix: string): [string, unknown][] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [];
  const out: [string, unknown][] = [];
  for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
    const p = `${prefix}.${k}`;
    out.push([p, child], ...flattenJson(child, p));
  }
  return out;
}
