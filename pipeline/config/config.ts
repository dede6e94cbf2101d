/**
 * Loads the service configuration: YAML files in the OpenTelemetry Collector's shape, merged in order,
 * with environment expansion, validated completely before anything starts. Every problem is reported at
 * once with the file, line and YAML path it concerns.
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, parse as parseYaml, visit, type Document, type Node } from 'yaml';
import type { AnyFactory, ComponentKind, ConnectorFactory, Registry } from '../service/component.js';
import { EnvValue, expandEnv } from './env.js';
import { endpointSchema, ParseContext, s, type Infer, type Path } from './schema.js';
import { COLLECTOR_TYPES } from './collector-components.js';

export interface ConfigSource {
  /** A file name, or a label such as "(embedded default)". */
  name: string;
  text: string;
}

export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Dotted YAML path, e.g. `receivers.otlp.protocols.grpc.endpoint`. */
  path: string;
  message: string;
  warning: boolean;
}

export interface ComponentConfig {
  id: string;
  kind: ComponentKind;
  type: string;
  factory: AnyFactory;
  config: unknown;
}

export interface PipelineConfig {
  id: string;
  receivers: string[];
  processors: string[];
  exporters: string[];
}

const telemetrySchema = s.object(
  {
    metrics: s.object(
      {
        address: endpointSchema().default('localhost:8888'),
        level: s.enum('none', 'basic', 'normal', 'detailed').default('normal'),
        readers: s
          .array(
            s.object({
              pull: s.object({
                exporter: s.object({
                  prometheus: s.object({ host: s.string().default('localhost'), port: s.int({ min: 0, max: 65535 }) }, { without_scope_info: 'no effect', without_units: 'no effect', without_type_suffix: 'no effect', with_resource_constant_labels: 'no effect' }),
                }),
              }),
            }),
          )
          .optional(),
      },
    ),
    logs: s.object({ level: s.enum('debug', 'info', 'warn', 'error').default('info') }, { encoding: 'logs are always JSON lines', development: 'no effect', output_paths: 'logs go to stderr', error_output_paths: 'logs go to stderr', sampling: 'no effect', initial_fields: 'no effect', disable_caller: 'no effect', disable_stacktrace: 'no effect' }),
  },
  { traces: 'tracewarden does not trace itself', resource: 'no effect' },
);

export type TelemetryConfig = Infer<typeof telemetrySchema>;

export interface ServiceConfig {
  receivers: Map<string, ComponentConfig>;
  processors: Map<string, ComponentConfig>;
  exporters: Map<string, ComponentConfig>;
  extensions: Map<string, ComponentConfig>;
  connectors: Map<string, ComponentConfig>;
  service: {
    extensions: string[];
    pipelines: PipelineConfig[];
    /** Where Prometheus scrapes `/metrics` (and `/health`, `/ready`); null when metrics are off. */
    metricsAddress: string | null;
    logLevel: 'debug' | 'info' | 'warn' | 'error';
    /** How long SIGTERM waits for queues to drain before what is left is persisted or counted as dropped. */
    shutdownTimeoutMs: number;
  };
}

/** `service.shutdown_timeout` when absent: under Kubernetes' default 30 s grace period, with room to exit. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 15_000;

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: ConfigProblem[]) {
    super(formatProblems(problems.filter((p) => !p.warning)));
    this.name = 'ConfigError';
  }
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map(formatProblem).join('\n');
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  return `${where}: ${p.warning ? 'warning: ' : ''}${p.path ? `${p.path}: ` : ''}${p.message}`;
}

const SECTIONS: [string, ComponentKind][] = [
  ['receivers', 'receiver'],
  ['processors', 'processor'],
  ['exporters', 'exporter'],
  ['extensions', 'extension'],
  ['connectors', 'connector'],
];
const ID = /^([A-Za-z][A-Za-z0-9_]*)(?:\/(.+))?$/;
const PIPELINE_ID = /^([a-z]+)(?:\/(.+))?$/;

interface ParsedSource {
  name: string;
  doc: Document;
  lines: LineCounter;
}

/** Reads config files; a missing or unreadable file is one problem, reported with the others. */
export function readSources(files: readonly string[]): { sources: ConfigSource[]; problems: ConfigProblem[] } {
  const sources: ConfigSource[] = [];
  const problems: ConfigProblem[] = [];
  for (const file of files) {
    try {
      sources.push({ name: file, text: readFileSync(file, 'utf8') });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push({ file, line: 0, column: 0, path: '', message: `cannot read config file (${code ?? (err as Error).message})`, warning: false });
    }
  }
  return { sources, problems };
}

export function loadConfig(
  sources: readonly ConfigSource[],
  registry: Registry,
  env: Readonly<Record<string, string | undefined>> = process.env,
): { config: ServiceConfig | null; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const parsed: ParsedSource[] = [];
  let merged: Record<string, unknown> = {};

  for (const src of sources) {
    const lines = new LineCounter();
    const doc = parseDocument(src.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    for (const err of doc.errors) {
      const pos = lines.linePos(err.pos[0]);
      problems.push({ file: src.name, line: pos.line, column: pos.col, path: '', message: `YAML: ${err.message.split('\n')[0]}`, warning: false });
    }
    if (doc.errors.length > 0) continue;
    expandDocument(doc, env, (node, message, warning) => {
      const pos = node.range ? lines.linePos(node.range[0]) : { line: 0, col: 0 };
      problems.push({ file: src.name, line: pos.line, column: pos.col, path: '', message, warning });
    });
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push({ file: src.name, line: 1, column: 1, path: '', message: 'the config must be a mapping', warning: false });
      continue;
    }
    parsed.push({ name: src.name, doc, lines });
    merged = mergeMaps(merged, value as Record<string, unknown>);
  }
  if (problems.some((p) => !p.warning)) return { config: null, problems: inReadingOrder(problems, sources) };

  const ctx = new ParseContext();
  const config = validate(merged, registry, ctx);
  for (const issue of ctx.issues) problems.push(locate(parsed, issue.path, issue.message, issue.warning === true, sources));
  const failed = problems.some((p) => !p.warning);
  return { config: failed ? null : config, problems: inReadingOrder(problems, sources) };
}

/** By file in the order given, then line, then column: the order an operator reads them in. */
function inReadingOrder(problems: ConfigProblem[], sources: readonly ConfigSource[]): ConfigProblem[] {
  const fileOrder = new Map(sources.map((src, i) => [src.name, i]));
  return problems.sort((a, b) => (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) || a.line - b.line || a.column - b.column);
}

/** Expands env references in every scalar value (not in keys), keeping the node so line numbers stay. */
function expandDocument(doc: Document, env: Readonly<Record<string, string | undefined>>, report: (node: Node, message: string, warning: boolean) => void): void {
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const original = node.value;
      const ex = expandEnv(original, env);
      for (const p of ex.problems) report(node, p.message, p.warning);
      if (ex.whole && node.type === 'PLAIN') {
        // A value that was only a reference reads as the YAML scalar it expands to (number, bool, ...).
        const typed = ex.value === '' ? '' : (parseYaml(ex.value) as unknown);
        node.value = typeof typed === 'number' || typeof typed === 'boolean' ? new EnvValue(typed, ex.value) : ex.value;
      } else {
        node.value = ex.value;
      }
    },
  });
}

/** Later files win; mappings merge key by key, anything else (lists included) is replaced. */
function mergeMaps(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isPlainMap(prev) && isPlainMap(v) ? mergeMaps(prev, v) : v;
  }
  return out;
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof EnvValue);
}

/** The file and line of a path: the last file that has it, or the nearest ancestor that exists. */
function locate(parsed: readonly ParsedSource[], path: Path, message: string, warning: boolean, sources: readonly ConfigSource[]): ConfigProblem {
  const dotted = path.map(String).join('.');
  for (let depth = path.length; depth >= 0; depth--) {
    const prefix = path.slice(0, depth);
    for (let i = parsed.length - 1; i >= 0; i--) {
      const src = parsed[i]!;
      const node = depth === 0 ? (src.doc.contents as Node | null) : findNode(src.doc, prefix);
      if (node && node.range) {
        const pos = src.lines.linePos(node.range[0]);
        return { file: src.name, line: pos.line, column: pos.col, path: dotted, message, warning };
      }
    }
  }
  return { file: sources[sources.length - 1]?.name ?? '(config)', line: 0, column: 0, path: dotted, message, warning };
}

/**
 * The node at a path. For a key that exists we point at the key itself (where an operator looks), which
 * `getIn` does not give, so the walk is done here.
 */
function findNode(doc: Document, path: Path): Node | null {
  let node: unknown = doc.contents;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return null;
      if (i === path.length - 1) return (pair.key as Node) ?? null;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else {
      return null;
    }
  }
  return (node as Node) ?? null;
}

const requiredList = s.array(s.string({ nonEmpty: true }), { minItems: 1 }).default([]).refine((l) => (l.length === 0 ? 'required: at least one component' : null));
const optionalList = s.array(s.string({ nonEmpty: true })).default([]);

function validate(root: Record<string, unknown>, registry: Registry, ctx: ParseContext): ServiceConfig {
  const known = ['receivers', 'processors', 'exporters', 'extensions', 'connectors', 'service'];
  for (const key of Object.keys(root)) {
    if (!known.includes(key)) ctx.error([key], `unknown top-level key; expected one of ${known.join(', ')}`);
  }

  const out: ServiceConfig = {
    receivers: new Map(),
    processors: new Map(),
    exporters: new Map(),
    extensions: new Map(),
    connectors: new Map(),
    service: { extensions: [], pipelines: [], metricsAddress: 'localhost:8888', logLevel: 'info', shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS },
  };

  for (const [section, kind] of SECTIONS) {
    const raw = root[section];
    if (raw === undefined || raw === null) continue;
    if (!isPlainMap(raw)) {
      ctx.error([section], 'expected a mapping of component IDs to their configuration');
      continue;
    }
    const target = out[section as 'receivers'];
    for (const [id, cfg] of Object.entries(raw)) {
      const m = ID.exec(id);
      if (!m) {
        ctx.error([section, id], `invalid component ID; expected "type" or "type/name"`);
        continue;
      }
      const type = m[1]!;
      const factory = registry.get(kind, type);
      if (!factory) {
        const types = registry.types(kind);
        const known = types.join(', ') || '(none)';
        if (COLLECTOR_TYPES[kind].includes(type)) ctx.error([section, id], `the OpenTelemetry Collector ${kind} "${type}" is not supported by tracewarden; supported ${kind} types: ${known}`);
        else ctx.error([section, id], `unknown ${kind} type "${type}"; known types: ${known}`);
        continue;
      }
      const config = factory.schema.parse(cfg ?? {}, [section, id], ctx);
      if (config !== undefined) target.set(id, { id, kind, type, factory, config });
    }
  }

  const service = root['service'];
  if (service === undefined || service === null) {
    ctx.error(['service'], 'required: a service section with at least one pipeline');
    return out;
  }
  if (!isPlainMap(service)) {
    ctx.error(['service'], 'expected a mapping');
    return out;
  }
  for (const key of Object.keys(service)) {
    if (!['extensions', 'pipelines', 'telemetry', 'shutdown_timeout'].includes(key)) ctx.error(['service', key], 'unknown key; expected one of extensions, pipelines, telemetry, shutdown_timeout');
  }

  const exts = s.array(s.string({ nonEmpty: true })).default([]).parse(service['extensions'], ['service', 'extensions'], ctx) ?? [];
  exts.forEach((id, i) => {
    if (!out.extensions.has(id) && !isDeclared(root, 'extensions', id)) ctx.error(['service', 'extensions', i], `extension "${id}" is not configured under extensions`);
  });
  out.service.extensions = exts;
  out.service.shutdownTimeoutMs =
    s.duration().default(DEFAULT_SHUTDOWN_TIMEOUT_MS).parse(service['shutdown_timeout'], ['service', 'shutdown_timeout'], ctx) ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  checkStorageReferences(out, root, exts, ctx);

  const telemetry = telemetrySchema.parse(service['telemetry'] ?? {}, ['service', 'telemetry'], ctx);
  if (telemetry) {
    const m = telemetry.metrics;
    const pull = m.readers?.find((r) => r.pull?.exporter?.prometheus)?.pull.exporter.prometheus;
    out.service.metricsAddress = m.level === 'none' ? null : pull ? `${pull.host}:${pull.port}` : m.address;
    out.service.logLevel = telemetry.logs.level;
  }

  const pipelines = service['pipelines'];
  if (!isPlainMap(pipelines) || Object.keys(pipelines).length === 0) {
    ctx.error(['service', 'pipelines'], 'required: at least one pipeline, e.g. traces: { receivers: [otlp], exporters: [debug] }');
    return out;
  }
  for (const [pid, raw] of Object.entries(pipelines)) {
    const path: Path = ['service', 'pipelines', pid];
    const m = PIPELINE_ID.exec(pid);
    if (!m) {
      ctx.error(path, 'invalid pipeline ID; expected "traces" or "traces/name"');
      continue;
    }
    if (m[1] !== 'traces') {
      ctx.error(path, `${m[1]} pipelines are not supported: tracewarden handles traces only`);
      continue;
    }
    if (!isPlainMap(raw)) {
      ctx.error(path, 'expected a mapping with receivers, processors and exporters');
      continue;
    }
    for (const key of Object.keys(raw)) {
      if (!['receivers', 'processors', 'exporters'].includes(key)) ctx.error([...path, key], 'unknown key; expected one of receivers, processors, exporters');
    }
    // Each list is parsed on its own so that a problem in one does not hide the others'.
    const p = {
      receivers: requiredList.parse(raw['receivers'], [...path, 'receivers'], ctx) ?? [],
      processors: optionalList.parse(raw['processors'], [...path, 'processors'], ctx) ?? [],
      exporters: requiredList.parse(raw['exporters'], [...path, 'exporters'], ctx) ?? [],
    };
    const check = (list: string[], section: 'receivers' | 'processors' | 'exporters') => {
      const seen = new Set<string>();
      list.forEach((id, i) => {
        if (seen.has(id)) ctx.error([...path, section, i], `"${id}" is listed twice`);
        seen.add(id);
        if (out[section].has(id) || isDeclared(root, section, id)) return;
        if (section !== 'processors' && (out.connectors.has(id) || isDeclared(root, 'connectors', id))) return;
        ctx.error([...path, section, i], `references ${section.slice(0, -1)} "${id}", which is not configured under ${section}${section === 'processors' ? '' : ' or connectors'}`);
      });
    };
    check(p.receivers, 'receivers');
    check(p.processors, 'processors');
    check(p.exporters, 'exporters');
    checkFactOrder(p.processors, out.processors, path, ctx);
    out.service.pipelines.push({ id: pid, ...p });
  }
  checkConnectors(out, ctx);
  return out;
}

/**
 * Connectors as the Collector checks them: each one used is both an exporter of some pipeline and a
 * receiver of another, its own config names only pipelines it feeds, and no pipeline reaches itself
 * through connectors.
 */
function checkConnectors(out: ServiceConfig, ctx: ParseContext): void {
  const pipelines = out.service.pipelines;
  for (const [id, c] of out.connectors) {
    const exportsTo = pipelines.filter((p) => p.exporters.includes(id));
    const feeds = pipelines.filter((p) => p.receivers.includes(id));
    if (exportsTo.length > 0 && feeds.length === 0) {
      ctx.error(['service', 'pipelines', exportsTo[0]!.id, 'exporters', exportsTo[0]!.exporters.indexOf(id)], `connector "${id}" is used as an exporter, but no pipeline lists it under receivers`);
    }
    if (feeds.length > 0 && exportsTo.length === 0) {
      ctx.error(['service', 'pipelines', feeds[0]!.id, 'receivers', feeds[0]!.receivers.indexOf(id)], `connector "${id}" is used as a receiver, but no pipeline lists it under exporters`);
    }
    const factory = c.factory as ConnectorFactory;
    for (const problem of factory.checkPipelines?.(c.config, feeds.map((p) => p.id)) ?? []) ctx.error(['connectors', id, ...problem.path], problem.message);
  }
  const cycle = pipelineCycle(pipelines, out.connectors);
  if (cycle !== null) ctx.error(['service', 'pipelines'], `pipelines form a cycle through connectors: ${cycle.join(' → ')}`);
}

/** A cycle of pipelines joined by connectors (pipeline, connector, pipeline, ...), or null. */
export function pipelineCycle(pipelines: readonly PipelineConfig[], connectors: ReadonlyMap<string, unknown>): string[] | null {
  const next = (p: PipelineConfig): [string, PipelineConfig][] =>
    p.exporters.filter((e) => connectors.has(e)).flatMap((c) => pipelines.filter((q) => q.receivers.includes(c)).map((q) => [c, q] as [string, PipelineConfig]));
  // 1: on the current path, 2: done. The path alternates pipeline and connector IDs.
  const state = new Map<string, 1 | 2>();
  const path: string[] = [];
  const visit = (p: PipelineConfig): string[] | null => {
    state.set(p.id, 1);
    path.push(p.id);
    for (const [c, q] of next(p)) {
      if (state.get(q.id) === 1) return [...path.slice(path.indexOf(q.id)), c, q.id];
      if (state.get(q.id) === undefined) {
        path.push(c);
        const found = visit(q);
        if (found !== null) return found;
        path.pop();
      }
    }
    path.pop();
    state.set(p.id, 2);
    return null;
  };
  for (const p of pipelines) {
    if (state.get(p.id) !== undefined) continue;
    const found = visit(p);
    if (found !== null) return found;
  }
  return null;
}

/**
 * Warns when a processor reads an attribute that a processor after it writes as a verified fact (the
 * identity processor's `enduser.id`, `identity.*`): what it reads there is whatever the sender wrote.
 */
function checkFactOrder(list: readonly string[], processors: ReadonlyMap<string, ComponentConfig>, path: Path, ctx: ParseContext): void {
  list.forEach((writerId, j) => {
    const writer = processors.get(writerId);
    const facts = writer?.factory.writesFacts?.(writer.config);
    if (facts === undefined) return;
    for (let i = 0; i < j; i++) {
      const reader = processors.get(list[i]!);
      const keys = reader?.factory.reads?.(reader.config) ?? [];
      const forged = keys.filter((k) => facts.keys.includes(k) || facts.prefixes.some((pre) => k.startsWith(pre)));
      if (forged.length === 0) continue;
      ctx.warn(
        [...path, 'processors', i],
        `${list[i]} reads ${forged.map((k) => JSON.stringify(k)).join(', ')} before ${writerId} has run: there it sees whatever the sender wrote, which ${writerId} replaces with verified facts; place ${list[i]} after ${writerId}`,
      );
    }
  });
}

/**
 * A persistent sending queue names its storage extension by ID: it must be configured and listed in
 * service.extensions, or the exporter could not start.
 */
function checkStorageReferences(out: ServiceConfig, root: Record<string, unknown>, listed: readonly string[], ctx: ParseContext): void {
  for (const [id, c] of out.exporters) {
    const storage = (c.config as { sending_queue?: { enabled?: boolean; storage?: string } }).sending_queue?.storage;
    if (storage === undefined) continue;
    const path = ['exporters', id, 'sending_queue', 'storage'];
    if (!out.extensions.has(storage) && !isDeclared(root, 'extensions', storage)) ctx.error(path, `extension "${storage}" is not configured under extensions`);
    else if (!listed.includes(storage)) ctx.error(path, `extension "${storage}" must also be listed in service.extensions`);
  }
}

/** A component that is declared but failed its own validation was already reported; do not report it twice. */
function isDeclared(root: Record<string, unknown>, section: string, id: string): boolean {
  const m = root[section];
  return isPlainMap(m) && id in m;
}
