/**
 * The resourcedetection processor: the Collector's, with the `env` and `system` detectors. Detection runs
 * once at start-up, bounded by `timeout`; the facts found are written on every resource, replacing what is
 * there (`override: true`, the default) or only where the key is absent.
 *
 * A detector that fails (reverse DNS unreachable, a malformed OTEL_RESOURCE_ATTRIBUTES) is logged with the
 * reason and the others' facts are still written: a sidecar should not fail to start over a hostname.
 * (The Collector fails to start instead.)
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, TracesConsumer } from '../../pipeline/service/component.js';
import { EditingProcessor } from '../../pipeline/service/editing-processor.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { CTX_RESOURCE, Target } from '../../ottl/index.js';
import type { ResourceDetectionConfig } from './config.js';
import { SYSTEM_ATTRIBUTES } from './config.js';
import { detectEnv, detectSystem, type Detected } from './detectors.js';

export class ResourceDetectionProcessor extends EditingProcessor {
  private detected: Detected = [];
  private readonly target = new Target();
  private readonly logger: Logger;

  constructor(
    settings: ComponentSettings,
    private readonly config: ResourceDetectionConfig,
    next: TracesConsumer,
    private readonly env: Readonly<Record<string, string | undefined>> = process.env,
  ) {
    super(settings, next);
    this.logger = settings.logger;
  }

  /** The facts written on every resource (after start). */
  get facts(): Detected {
    return this.detected;
  }

  override async start(): Promise<void> {
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

  protected get active(): boolean {
    return this.detected.length > 0;
  }

  protected process(b: TraceBatch): TraceBatch {
    const t = this.target;
    t.reset(b, CTX_RESOURCE);
    for (let r = 0; r < b.resourceCount; r++) {
      t.atResource(r);
      for (const [k, v] of this.detected) if (this.config.override || t.attr(CTX_RESOURCE, k) === undefined) t.setAttr(CTX_RESOURCE, k, v);
      t.flushResource();
    }
    return b;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the ${what} detector took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
