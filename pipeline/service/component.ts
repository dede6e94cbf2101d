/**
 * The contracts every component implements. The pipeline framework knows only these; concrete
 * components live in receivers/, processors/, exporters/ and are listed in cmd/components.ts.
 */
import type { TraceBatch } from '../batch/batch.js';
import type { Inspection } from '../batch/inspection.js';
import type { Logger } from '../telemetry/logger.js';
import type { Schema } from '../config/schema.js';
import type { Telemetry } from '../telemetry/telemetry.js';

/** Who sent a request, as established by a receiver's authenticator. */
export interface SenderAuth {
  /** The authenticator's extension ID. */
  authenticator: string;
  subject: string;
  issuer: string;
  groups: readonly string[];
  claims: Readonly<Record<string, unknown>>;
}

/** Travels with a batch from the receiver through the processors. */
export interface RequestContext {
  receiver: string;
  transport: 'grpc' | 'http';
  /** Remote address and port, for logs only. */
  peer: string;
  auth: SenderAuth | null;
}

/**
 * The next stage. The promise settles when the batch has been accepted (queued counts as accepted) and
 * rejects with a PipelineError whose `retryable` flag tells the receiver how to answer the sender.
 */
export interface TracesConsumer {
  consume(batch: TraceBatch, ctx: RequestContext): Promise<void>;
}

export interface Lifecycle {
  start(host: Host): Promise<void>;
  /** Stop accepting, flush what is held, release resources; resolve before `deadline` (epoch ms). */
  shutdown(deadline: number): Promise<void>;
  /** Ready to serve (listening, keys loaded...). Absent means ready once started. */
  isReady?(): boolean;
}

export interface Receiver extends Lifecycle {}
export interface Processor extends Lifecycle, TracesConsumer {
  /**
   * What this processor needs the validating scan to look for (protected keys it strips on every span,
   * credential shapes). Declared once: the receivers feeding it inspect during their scan, so the
   * processor does not walk every span again.
   */
  inspection?(): Inspection | null;
}
export interface Exporter extends Lifecycle, TracesConsumer {}
/**
 * A connector joins pipelines, as in the Collector: it is an exporter of the pipelines that list it under
 * `exporters` and a receiver of those that list it under `receivers`, which it feeds.
 */
export interface Connector extends Lifecycle, TracesConsumer {}
export interface Extension extends Lifecycle {}

/** An extension that authenticates senders for receivers (`auth: { authenticator: <id> }`). */
export interface Authenticator extends Extension {
  /**
   * Authenticates from request headers (lower-case names; gRPC metadata or HTTP headers). Resolves to the
   * sender, or rejects with a PipelineError of code UNAUTHENTICATED whose message names no secret.
   */
  authenticate(headers: Readonly<Record<string, string | string[] | undefined>>): Promise<SenderAuth>;
}

export function isAuthenticator(ext: Extension | undefined): ext is Authenticator {
  return ext !== undefined && typeof (ext as Partial<Authenticator>).authenticate === 'function';
}

/** Where a component keeps data across restarts, and how durably. */
export interface StorageLocation {
  /** A directory for this component alone. */
  directory: string;
  /** Whether writes must reach the disk (fdatasync) before they count as stored. */
  fsync: boolean;
}

/** An extension that gives components storage that survives restarts (`sending_queue.storage`). */
export interface StorageExtension extends Extension {
  /** The storage for one component's data of one signal; the same arguments give the same place. */
  storageFor(kind: ComponentKind, componentId: string, signal: 'traces'): StorageLocation;
}

export function isStorageExtension(ext: Extension | undefined): ext is StorageExtension {
  return ext !== undefined && typeof (ext as Partial<StorageExtension>).storageFor === 'function';
}

export interface Host {
  getExtension(id: string): Extension | undefined;
  /** Whether every component is started and ready, and which are not. */
  readiness(): { ready: boolean; notReady: string[] };
  /** The pipelines as configured, for diagnostic pages (absent in test hosts). */
  pipelines?(): readonly { id: string; receivers: readonly string[]; processors: readonly string[]; exporters: readonly string[] }[];
  /** The last warnings and errors logged, for diagnostic pages (messages only, no fields). */
  recentProblems?(): readonly { ts: string; level: string; msg: string; component: string | null }[];
}

export interface ComponentSettings {
  /** The component ID as configured: `type` or `type/name`. */
  id: string;
  logger: Logger;
  telemetry: Telemetry;
  /** For receivers: the inspection the processors downstream declared (see Processor). */
  inspection?: Inspection | null;
}

export type ComponentKind = 'receiver' | 'processor' | 'exporter' | 'extension' | 'connector';

interface FactoryBase<C> {
  type: string;
  /** Validates a component's config and fills its defaults; the default config is `schema.parse({})`. */
  schema: Schema<C>;
  /** Attribute keys this component's config reads (its conditions and statements): for the ordering check. */
  reads?(config: C): string[];
  /**
   * Attribute keys, and key prefixes ending in a dot, that this component writes as verified facts. A
   * component placed before it in a pipeline that reads one of them reads what a sender could have written,
   * and validation warns about it.
   */
  writesFacts?(config: C): { keys: string[]; prefixes: string[] };
}

export interface ReceiverFactory<C = unknown> extends FactoryBase<C> {
  kind: 'receiver';
  create(settings: ComponentSettings, config: C, next: TracesConsumer): Receiver;
}
export interface ProcessorFactory<C = unknown> extends FactoryBase<C> {
  kind: 'processor';
  create(settings: ComponentSettings, config: C, next: TracesConsumer): Processor;
}
export interface ExporterFactory<C = unknown> extends FactoryBase<C> {
  kind: 'exporter';
  create(settings: ComponentSettings, config: C): Exporter;
}
export interface ExtensionFactory<C = unknown> extends FactoryBase<C> {
  kind: 'extension';
  create(settings: ComponentSettings, config: C): Extension;
}

export interface ConnectorFactory<C = unknown> extends FactoryBase<C> {
  kind: 'connector';
  /** `pipelines`: the entry of every pipeline that lists this connector under `receivers`, by pipeline ID. */
  create(settings: ComponentSettings, config: C, pipelines: ReadonlyMap<string, TracesConsumer>): Connector;
  /** Problems with the pipelines the config names (paths inside the connector's config), given those it feeds. */
  checkPipelines?(config: C, feeds: readonly string[]): { path: (string | number)[]; message: string }[];
}

export type AnyFactory = ReceiverFactory<any> | ProcessorFactory<any> | ExporterFactory<any> | ExtensionFactory<any> | ConnectorFactory<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The set of known component types, by kind. */
export class Registry {
  private readonly byKind = new Map<ComponentKind, Map<string, AnyFactory>>();

  constructor(factories: readonly AnyFactory[]) {
    for (const f of factories) {
      let m = this.byKind.get(f.kind);
      if (!m) this.byKind.set(f.kind, (m = new Map()));
      if (m.has(f.type)) throw new Error(`duplicate ${f.kind} type ${f.type}`);
      m.set(f.type, f);
    }
  }

  get(kind: ComponentKind, type: string): AnyFactory | undefined {
    return this.byKind.get(kind)?.get(type);
  }

  types(kind: ComponentKind): string[] {
    return [...(this.byKind.get(kind)?.keys() ?? [])].sort();
  }
}
