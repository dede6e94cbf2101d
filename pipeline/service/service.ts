/**
 * Builds the component graph from a validated config and runs its lifecycle. Components are started
 * downstream-first (extensions, exporters, processors, receivers) and stopped upstream-first, so
 * nothing is ever handed to a stage that is not running.
 */
import type { PipelineConfig, ServiceConfig } from '../config/config.js';
import type {
  ComponentSettings,
  Connector,
  ConnectorFactory,
  Exporter,
  ExporterFactory,
  Extension,
  ExtensionFactory,
  Host,
  Lifecycle,
  Processor,
  ProcessorFactory,
  Receiver,
  ReceiverFactory,
  TracesConsumer,
} from './component.js';
import type { Inspection } from '../batch/inspection.js';
import { fanOutToExporters, fanOutToPipelines } from './graph.js';
import { Logger } from '../telemetry/logger.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { TelemetryServer } from '../telemetry/telemetry-server.js';

interface Running {
  id: string;
  kind: string;
  component: Lifecycle;
  started: boolean;
}

export interface ServiceOptions {
  logger?: Logger;
  telemetry?: Telemetry;
}

export class Service implements Host {
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  private readonly extensions = new Map<string, Extension>();
  private readonly exporters = new Map<string, Exporter>();
  private readonly processors: { id: string; processor: Processor }[] = [];
  private readonly receivers = new Map<string, Receiver>();
  private readonly connectors = new Map<string, Connector>();
  /** In start order. */
  private readonly order: Running[] = [];
  private telemetryServer: TelemetryServer | null = null;
  private state: 'built' | 'starting' | 'running' | 'stopping' | 'stopped' = 'built';

  constructor(
    private readonly config: ServiceConfig,
    opts: ServiceOptions = {},
  ) {
    this.logger = opts.logger ?? new Logger(process.stderr, config.service.logLevel);
    this.telemetry = opts.telemetry ?? new Telemetry();
    this.build();
  }

  getExtension(id: string): Extension | undefined {
    return this.extensions.get(id);
  }

  pipelines(): readonly { id: string; receivers: readonly string[]; processors: readonly string[]; exporters: readonly string[] }[] {
    return this.config.service.pipelines;
  }

  recentProblems(): readonly { ts: string; level: string; msg: string; component: string | null }[] {
    return this.logger.recent.list();
  }

  /** Components by ID, for tests and diagnostics. */
  component(id: string): Lifecycle | undefined {
    return this.receivers.get(id) ?? this.exporters.get(id) ?? this.connectors.get(id) ?? this.extensions.get(id) ?? this.processors.find((p) => p.id === id)?.processor;
  }

  get metricsPort(): number {
    return this.telemetryServer?.boundPort ?? 0;
  }

  private settings(id: string, kind: string): ComponentSettings {
    return { id, logger: this.logger.child({ component: id, kind }), telemetry: this.telemetry };
  }

  private build(): void {
    const cfg = this.config;
    for (const id of cfg.service.extensions) {
      const c = cfg.extensions.get(id)!;
      const ext = (c.factory as ExtensionFactory).create(this.settings(id, 'extension'), c.config);
      this.extensions.set(id, ext);
      this.order.push({ id, kind: 'extension', component: ext, started: false });
    }

    const used = (list: 'exporters' | 'receivers') => [...new Set(cfg.service.pipelines.flatMap((p) => p[list]))].filter((id) => cfg[list].has(id));
    for (const id of used('exporters')) {
      const c = cfg.exporters.get(id)!;
      const exp = (c.factory as ExporterFactory).create(this.settings(id, 'exporter'), c.config);
      this.exporters.set(id, exp);
      this.order.push({ id, kind: 'exporter', component: exp, started: false });
    }

    const entries = new Map<string, TracesConsumer>();
    const processorsOf = new Map<string, Processor[]>();
    // A connector is created once every pipeline it feeds is built: pipelines are built downstream first.
    const connectorFor = (id: string): Connector => {
      let c = this.connectors.get(id);
      if (c !== undefined) return c;
      const cc = cfg.connectors.get(id)!;
      const feeds = new Map(cfg.service.pipelines.filter((p) => p.receivers.includes(id)).map((p) => [p.id, entries.get(p.id)!] as const));
      c = (cc.factory as ConnectorFactory).create(this.settings(id, 'connector'), cc.config, feeds);
      this.connectors.set(id, c);
      this.order.push({ id, kind: 'connector', component: c, started: false });
      return c;
    };
    for (const p of downstreamFirst(cfg.service.pipelines, cfg.connectors)) {
      let next = fanOutToExporters(p.exporters.map((id) => this.exporters.get(id) ?? connectorFor(id)));
      // Processors are per pipeline, as in the Collector; built last-to-first so each gets its next.
      const built: { id: string; processor: Processor }[] = [];
      for (let i = p.processors.length - 1; i >= 0; i--) {
        const id = p.processors[i]!;
        const c = cfg.processors.get(id)!;
        const proc = (c.factory as ProcessorFactory).create(this.settings(id, 'processor'), c.config, next);
        built.unshift({ id, processor: proc });
        next = proc;
      }
      // Start order within a pipeline is downstream-first.
      for (let i = built.length - 1; i >= 0; i--) {
        this.processors.push(built[i]!);
        this.order.push({ id: `${p.id}/${built[i]!.id}`, kind: 'processor', component: built[i]!.processor, started: false });
      }
      entries.set(p.id, next);
      processorsOf.set(p.id, built.map((b) => b.processor));
    }

    for (const id of used('receivers')) {
      const c = cfg.receivers.get(id)!;
      const fed = cfg.service.pipelines.filter((p) => p.receivers.includes(id));
      const pipelines = fed.map((p) => entries.get(p.id)!);
      const settings = { ...this.settings(id, 'receiver'), inspection: sharedInspection(fed.flatMap((p) => processorsOf.get(p.id)!)) };
      const rec = (c.factory as ReceiverFactory).create(settings, c.config, fanOutToPipelines(pipelines));
      this.receivers.set(id, rec);
      this.order.push({ id, kind: 'receiver', component: rec, started: false });
    }
  }

  /** Starts everything; on any failure stops what was started and rejects with that failure. */
  async start(): Promise<void> {
    if (this.state !== 'built') throw new Error(`service cannot start from state ${this.state}`);
    this.state = 'starting';
    const address = this.config.service.metricsAddress;
    try {
      if (address !== null) {
        this.telemetryServer = new TelemetryServer(this.telemetry, address, () => this.readiness());
        await this.telemetryServer.start();
        this.logger.info('telemetry server listening', { address, port: this.telemetryServer.boundPort });
      }
      for (const r of this.order) {
        await r.component.start(this);
        r.started = true;
        this.logger.debug('component started', { component: r.id, kind: r.kind });
      }
    } catch (err) {
      this.logger.error('start-up failed; stopping what was started', { error: err });
      await this.shutdown(Date.now() + 5000);
      throw err;
    }
    this.state = 'running';
    this.logger.info('tracewarden is running', { pipelines: this.config.service.pipelines.map((p) => p.id) });
  }

  readiness(): { ready: boolean; notReady: string[] } {
    const notReady: string[] = [];
    if (this.state !== 'running') notReady.push(`service (${this.state})`);
    for (const r of this.order) {
      if (!r.started || (r.component.isReady && !r.component.isReady())) notReady.push(r.id);
    }
    return { ready: notReady.length === 0, notReady };
  }

  /** Stops upstream-first: receivers, then processors in pipeline order, exporters, extensions. */
  async shutdown(deadline: number): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    const began = Date.now();
    this.logger.info('shutting down: receivers first, then processors, exporters and extensions', { within_ms: Math.max(0, deadline - began) });
    for (let i = this.order.length - 1; i >= 0; i--) {
      const r = this.order[i]!;
      if (!r.started) continue;
      const t0 = Date.now();
      try {
        await r.component.shutdown(deadline);
        this.logger.info('component stopped', { component: r.id, kind: r.kind, ms: Date.now() - t0 });
      } catch (err) {
        this.logger.error('component shutdown failed', { component: r.id, error: err });
      }
      r.started = false;
    }
    await this.telemetryServer?.stop();
    this.state = 'stopped';
    this.logger.info('tracewarden stopped', { ms: Date.now() - began });
  }
}

/**
 * Pipelines in an order where every pipeline a connector feeds comes before the pipelines that export to
 * that connector (validation has refused cycles).
 */
function downstreamFirst(pipelines: readonly PipelineConfig[], connectors: ReadonlyMap<string, unknown>): PipelineConfig[] {
  const out: PipelineConfig[] = [];
  const done = new Set<string>();
  const visit = (p: PipelineConfig): void => {
    if (done.has(p.id)) return;
    done.add(p.id);
    for (const c of p.exporters) {
      if (!connectors.has(c)) continue;
      for (const q of pipelines) if (q.receivers.includes(c)) visit(q);
    }
    out.push(p);
  };
  pipelines.forEach(visit);
  return out;
}

/**
 * The inspection a receiver's scan performs for the processors it feeds: theirs when they all declare the
 * same one (or none). Processors that declared different ones inspect for themselves, at the cost of a
 * second scan, since one scan's marks cannot stand for two different inspections.
 */
function sharedInspection(processors: readonly Processor[]): Inspection | null {
  let shared: Inspection | null = null;
  for (const p of processors) {
    const i = p.inspection?.() ?? null;
    if (i === null) continue;
    if (shared !== null && shared.signature !== i.signature) return null;
    shared = i;
  }
  return shared;
}
