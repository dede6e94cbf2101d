/**
 * The transform processor: the OpenTelemetry Collector's `transform` for traces. Statement groups run in
 * order; within a group each unit of its context (every resource, scope, span or span event) gets every
 * statement in order, each seeing what the earlier ones wrote, and a group sees what the groups before it
 * wrote (the batch is sealed between groups that changed it).
 *
 * Writes are held on the Target per unit and become edits of the batch when the unit is done: a written
 * attribute list is re-encoded once (the untouched ones are copied as bytes), a new name or status
 * replaces just that field.
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, TracesConsumer } from '../../pipeline/service/component.js';
import { EditingProcessor } from '../../pipeline/service/editing-processor.js';
import { ErrorModeHandler } from '../../ottl/error-mode.js';
import { CTX_RESOURCE, CTX_SCOPE, CTX_SPAN, CTX_SPANEVENT, Target, compileCondition, compileStatement, type CompiledCondition, type CompiledStatement, type ContextLevel } from '../../ottl/index.js';
import type { TransformConfig } from './config.js';

interface Group {
  context: ContextLevel;
  statements: CompiledStatement[];
  conditions: CompiledCondition[];
  errors: ErrorModeHandler;
}

export class TransformProcessor extends EditingProcessor {
  private readonly groups: Group[];
  private readonly target = new Target();

  constructor(settings: ComponentSettings, config: TransformConfig, next: TracesConsumer) {
    super(settings, next);
    const handlers = new Map<string, ErrorModeHandler>();
    const handler = (mode: typeof config.error_mode): ErrorModeHandler => {
      let h = handlers.get(mode);
      if (h === undefined) handlers.set(mode, (h = new ErrorModeHandler(settings, mode)));
      return h;
    };
    this.groups = config.trace_statements.map((g) => {
      const statements = g.statements.map((st) => compileStatement(st, g.context));
      const context = statements[0]!.context;
      return { context, statements, conditions: g.conditions.map((c) => compileCondition(c, context)), errors: handler(g.errorMode ?? config.error_mode) };
    });
  }

  protected get active(): boolean {
    return this.groups.length > 0;
  }

  protected process(batch: TraceBatch): TraceBatch {
    let b = batch;
    for (let i = 0; i < this.groups.length; i++) {
      // Each group reads what the ones before it wrote; the last group's edits go on as edits, applied by
      // whoever encodes next in its one pass.
      if (i > 0) b = b.seal();
      this.runGroup(this.groups[i]!, b);
    }
    return b;
  }

  private runGroup(g: Group, b: TraceBatch): void {
    const t = this.target;
    t.reset(b, g.context);
    switch (g.context) {
      case CTX_RESOURCE:
        for (let r = 0; r < b.resourceCount; r++) {
          t.atResource(r);
          this.runStatements(g, t);
          t.flushResource();
        }
        return;
      case CTX_SCOPE:
        for (let sc = 0; sc < b.scopeCount; sc++) {
          if (b.scopeResource(sc) !== t.resource) t.flushResource();
          t.atScope(sc);
          this.runStatements(g, t);
          t.cache = null;
        }
        t.flushResource();
        return;
      case CTX_SPAN:
      case CTX_SPANEVENT:
        for (let span = 0; span < b.spanCount; span++) {
          if (b.spanResource(span) !== t.resource) t.flushResource();
          t.atSpan(span);
          if (g.context === CTX_SPAN) {
            this.runStatements(g, t);
          } else {
            t.firstEvent();
            while (t.nextEvent()) this.runStatements(g, t);
          }
          t.flushSpan();
        }
        t.flushResource();
        return;
    }
  }

  private runStatements(g: Group, t: Target): void {
    if (g.conditions.length > 0 && !this.anyTrue(g, t)) return;
    const statements = g.statements;
    for (let i = 0; i < statements.length; i++) {
      const st = statements[i]!;
      try {
        st.run(t);
      } catch (err) {
        g.errors.failed(err, st.text);
      }
    }
  }

  private anyTrue(g: Group, t: Target): boolean {
    for (const c of g.conditions) {
      try {
        if (c.test(t)) return true;
      } catch (err) {
        g.errors.failed(err, c.text);
      }
    }
    return false;
  }
}
