/**
 * The resource processor: the Collector's `resource`. The attributes processor's actions (shared from
 * processors/attributes/actions.ts), applied in order to every resource's attributes.
 */
import type { Counter } from 'prom-client';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, Processor, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import { CTX_RESOURCE, Target } from '../../ottl/index.js';
import { compileAction, type CompiledAction } from '../attributes/actions.js';
import type { ResourceConfig } from './config.js';

export class ResourceProcessor implements Processor {
  private readonly actions: CompiledAction[];
  private readonly target = new Target();
  private readonly incoming: Counter.Internal;
  private readonly outgoing: Counter.Internal;

  constructor(
    settings: ComponentSettings,
    config: ResourceConfig,
    private readonly next: TracesConsumer,
  ) {
    this.actions = config.attributes.map(compileAction);
    const t = settings.telemetry;
    this.incoming = zeroed(t.processorIncoming.labels(settings.id, 'traces'));
    this.outgoing = zeroed(t.processorOutgoing.labels(settings.id, 'traces'));
  }

  async start(): Promise<void> {}

  async shutdown(): Promise<void> {}

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    const n = batch.liveSpanCount;
    this.incoming.inc(n);
    const b = batch.seal();
    const t = this.target;
    t.reset(b, CTX_RESOURCE);
    for (let r = 0; r < b.resourceCount; r++) {
      t.atResource(r);
      for (let i = 0; i < this.actions.length; i++) this.actions[i]!(t, CTX_RESOURCE);
      t.flushResource();
    }
    await this.next.consume(b, ctx);
    this.outgoing.inc(n);
  }
}
