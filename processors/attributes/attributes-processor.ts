/**
 * The attributes processor: the Collector's `attributes` for traces. Its actions run in order on the
 * attributes of each span that `include` matches and `exclude` does not (both compiled to OTTL
 * conditions, see match.ts); what they change becomes edits of the batch when the span is done.
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, TracesConsumer } from '../../pipeline/service/component.js';
import { EditingProcessor } from '../../pipeline/service/editing-processor.js';
import { CTX_SPAN, Target, compileCondition, type Predicate } from '../../ottl/index.js';
import { compileAction, type CompiledAction } from './actions.js';
import type { AttributesConfig } from './config.js';
import { selectionCondition } from '../../ottl/match-properties.js';

export class AttributesProcessor extends EditingProcessor {
  private readonly actions: CompiledAction[];
  /** Which spans the processor works on (include and not exclude); null for every span. */
  private readonly selected: Predicate | null;
  private readonly target = new Target();

  constructor(settings: ComponentSettings, config: AttributesConfig, next: TracesConsumer) {
    super(settings, next);
    this.actions = config.actions.map(compileAction);
    const selection = selectionCondition(config.include, config.exclude);
    this.selected = selection === null ? null : compileCondition(selection, CTX_SPAN).test;
  }

  protected get active(): boolean {
    return true;
  }

  protected process(b: TraceBatch): TraceBatch {
    const t = this.target;
    t.reset(b, CTX_SPAN);
    for (let span = 0; span < b.spanCount; span++) {
      t.atSpan(span);
      // Matching reads only fields and attributes the Collector's matcher reads; a value that is not of
      // the compared type simply does not match, so no match can throw.
      if (this.selected !== null && !this.selected(t)) continue;
      for (let i = 0; i < this.actions.length; i++) this.actions[i]!(t, CTX_SPAN);
      t.flushSpan();
    }
    return b;
  }
}
