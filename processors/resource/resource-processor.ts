/**
 * The resource processor: the Collector's `resource`. The attributes processor's actions (shared from
 * processors/attributes/actions.ts), applied in order to every resource's attributes.
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, TracesConsumer } from '../../pipeline/service/component.js';
import { EditingProcessor } from '../../pipeline/service/editing-processor.js';
import { CTX_RESOURCE, Target } from '../../ottl/index.js';
import { compileAction, type CompiledAction } from '../attributes/actions.js';
import type { ResourceConfig } from './config.js';

export class ResourceProcessor extends EditingProcessor {
  private readonly actions: CompiledAction[];
  private readonly target = new Target();

  constructor(settings: ComponentSettings, config: ResourceConfig, next: TracesConsumer) {
    super(settings, next);
    this.actions = config.attributes.map(compileAction);
  }

  protected get active(): boolean {
    return true;
  }

  protected process(b: TraceBatch): TraceBatch {
    const t = this.target;
    t.reset(b, CTX_RESOURCE);
    for (let r = 0; r < b.resourceCount; r++) {
      t.atResource(r);
      for (let i = 0; i < this.actions.length; i++) this.actions[i]!(t, CTX_RESOURCE);
      t.flushResource();
    }
    return b;
  }
}
