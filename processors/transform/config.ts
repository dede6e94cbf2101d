/**
 * The transform processor's keys, as the Collector's: `error_mode` and `trace_statements`, a list whose
 * entries are either groups `{ context, statements, conditions, error_mode }` or single statements whose
 * context is inferred from their paths (`set(span.attributes["k"], resource.attributes["r"])`).
 */
import { Schema, s, type Infer, type ParseContext, type Path } from '../../pipeline/config/schema.js';
import { checkOttl, errorModeSchema, ERROR_MODES, type ErrorMode } from '../../ottl/config.js';
import { contextNamed, compileStatement, OttlError } from '../../ottl/index.js';
import type { ContextLevel } from '../../ottl/target.js';

const OTHER_SIGNAL = 'tracewarden handles traces only; these statements have no effect';
const CONTEXTS = ['resource', 'scope', 'span', 'spanevent'];

export interface StatementGroup {
  /** The group's context; null for a single statement whose context comes from its paths. */
  context: ContextLevel | null;
  statements: string[];
  /** The statements run on a unit only when one of these is true (all units when empty). */
  conditions: string[];
  errorMode: ErrorMode | null;
}

class TraceStatementsSchema extends Schema<StatementGroup[]> {
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): StatementGroup[] | undefined {
    if (!Array.isArray(v)) {
      ctx.error(path, 'expected a list of statements or of { context, statements } groups');
      return undefined;
    }
    const out: StatementGroup[] = [];
    let ok = true;
    v.forEach((entry, i) => {
      const at = [...path, i];
      if (typeof entry === 'string') {
        if (checkOttl('statement', entry, null, at, ctx)) out.push({ context: inferredContext(entry), statements: [entry], conditions: [], errorMode: null });
        else ok = false;
        return;
      }
      const g = groupSchema.parse(entry, at, ctx);
      if (g === undefined) {
        ok = false;
        return;
      }
      const context = contextNamed(g.context);
      if (context === null) {
        ctx.error([...at, 'context'], `expected one of ${CONTEXTS.join(', ')} (the trace contexts tracewarden supports), got ${JSON.stringify(g.context)}`);
        ok = false;
        return;
      }
      g.statements.forEach((st, j) => {
        if (!checkOttl('statement', st, context, [...at, 'statements', j], ctx)) ok = false;
      });
      g.conditions.forEach((c, j) => {
        if (!checkOttl('condition', c, context, [...at, 'conditions', j], ctx)) ok = false;
      });
      out.push({ context, statements: g.statements, conditions: g.conditions, errorMode: g.error_mode ?? null });
    });
    return ok ? out : undefined;
  }
  override defaultValue(): StatementGroup[] {
    return [];
  }
  describe(): string {
    return 'a list of OTTL statements or statement groups';
  }
}

function inferredContext(statement: string): ContextLevel {
  try {
    return compileStatement(statement, null).context;
  } catch (err) {
    /* c8 ignore next */
    if (err instanceof OttlError) throw new Error('unreachable: checked before');
    throw err;
  }
}

const groupSchema = s.object({
  context: s.string({ nonEmpty: true }),
  statements: s.array(s.string({ nonEmpty: true }), { minItems: 1 }),
  conditions: s.array(s.string({ nonEmpty: true })).default([]),
  error_mode: s.enum(...ERROR_MODES).optional(),
});

export const transformConfigSchema = s.object(
  {
    error_mode: errorModeSchema(),
    trace_statements: new TraceStatementsSchema(),
  },
  { metric_statements: OTHER_SIGNAL, log_statements: OTHER_SIGNAL, profile_statements: OTHER_SIGNAL },
);

export type TransformConfig = Infer<typeof transformConfigSchema>;
