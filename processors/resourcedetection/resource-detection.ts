/**
 * The resourcedetection processor: the Collector's, with the `env` and `system` detectors. Detection runs
 * once at start-up, bounded by `timeout`; the facts found are written on every resource, replacing what is
 * there (`override: true`, the default) or only where the key is absent.
 *
 * A detector that fails (reverse DNS unreachable, a malformed OTEL_RESOURCE_ATTRIBUTES) is logged with the
 * reason and the others' facts are still written: a sidecar should not fail to start over a hostname.
 * (The Collector fails to start instead.)
 */
import type { Counter } from 'prom-client';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, Processor, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import { CTX_RESOURCE, Target } from '../../ottl/index.js';
import type { ResourceDetectionConfig } from './config.js';
import { SYSTEM_ATTRIBUTES } from './config.js';
import { detectEnv, detectSystem, type Detected } from './detectors.js';

export class ResourceDetectionProcessor implements Processor {
  private detected: Detected = [];
  private readonly target = new Target();
  private readonly logger: Logger;
  private readonly incoming: Counter.Internal;
  private readonly outgoing: Counter.Internal;

  constructor(
    settings: ComponentSettings,
    private readonly config: ResourceDetectionConfig,
    private readonly next: TracesConsumer,
    private readonly env: Readonly<Record<string, string | undefined>> = process.env,
  ) {
    this.logger = settings.logger;
    const t = settings.telemetry;
    this.incoming = zeroed(t.processorIncoming.labels(settings.id, 'traces'));
    this.outgoing = zeroed(t.processorOutgoing.labels(settings.id, 'traces'));
  }

  /** The facts written on every resource (after start). */
  get facts(): Detected {
    return this.detected;
  }

  async start(): Promise<void> {
    const out: Detected = [];
    for (const d of this.config.detectors) {
      try {
        out.push(...(await withTimeout(this.detect(d), this.config.timeout, d)));
      } catch (err) {
        this.logger.warn('resource detector failed; its attributes are not written', { detector: d, reason: (err as Error).message });
      }
    }
    // When two detectors find the same key, the first listed wins, as in the Collector.
    const seen = new Set<string>();
    this.detected = out.filter(([k]) => (seen.has(k) ? false : (seen.add(k), true)));
    this.logger.info('resource detected', { attributes: this.detected.map(([k]) => k) });
  }

  private detect(detector: string): Promise<Detected> {
    if (detector === 'env') return Promise.resolve(detectEnv(this.env));
    const toggles = this.config.system?.resource_attributes ?? {};
    const wanted = (key: string): boolean => toggles[key]?.enabled ?? SYSTEM_ATTRIBUTES[key] ?? false;
    return detectSystem(this.config.system?.hostname_sources ?? ['dns', 'os'], wanted);
  }

  async shutdown(): Promise<void> {}

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    const n = batch.liveSpanCount;
    this.incoming.inc(n);
    if (this.detected.length > 0) {
      const b = batch.seal();
      const t = this.target;
      t.reset(b, CTX_RESOURCE);
      for (let r = 0; r < b.resourceCount; r++) {
        t.atResource(r);
        for (const [k, v] of this.detected) if (this.config.override || t.attr(CTX_RESOURCE, k) === undefined) t.setAttr(CTX_RESOURCE, k, v);
        t.flushResource();
      }
      batch = b;
    }
    await this.next.consume(batch, ctx);
    this.outgoing.inc(n);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the ${what} detector took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
