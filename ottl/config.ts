/**
 * Config schemas shared by the components that take OTTL: `error_mode`, and statements and conditions
 * compiled while the config is validated, so a statement that does not parse or type-check is reported
 * with its place in the YAML and the column in the statement, before anything starts.
 */
import { Schema, s, type ParseContext, type Path } from '../pipeline/config/schema.js';
import { OttlError } from './errors.js';
import { compileCondition, compileStatement, describeOttlError } from './index.js';
import type { ContextLevel } from './target.js';

export const ERROR_MODES = ['ignore', 'silent', 'propagate'] as const;
export type ErrorMode = (typeof ERROR_MODES)[number];

/** The Collector's default for filter and transform is propagate. */
export const errorModeSchema = () => s.enum(...ERROR_MODES).default('propagate');

/** Compiles `text` as a condition or statement and records the problem at `path`; true when it compiles. */
export function checkOttl(kind: 'condition' | 'statement', text: string, context: ContextLevel | null, path: Path, ctx: ParseContext): boolean {
  try {
    if (kind === 'condition') compileCondition(text, context);
    else compileStatement(text, context);
    return true;
  } catch (err) {
    if (!(err instanceof OttlError)) throw err;
    ctx.error(path, `invalid OTTL ${kind}: ${describeOttlError(err, text)}`);
    return false;
  }
}

/** A list of OTTL conditions (or statements) in a fixed context, each checked at its own path. */
class OttlListSchema extends Schema<string[]> {
  constructor(
    private readonly kind: 'condition' | 'statement',
    private readonly context: ContextLevel | null,
  ) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): string[] | undefined {
    const list = s.array(s.string({ nonEmpty: true })).parse(v, path, ctx);
    if (list === undefined) return undefined;
    let ok = true;
    list.forEach((text, i) => {
      if (!checkOttl(this.kind, text, this.context, [...path, i], ctx)) ok = false;
    });
    return ok ? list : undefined;
  }
  override defaultValue(): string[] {
    return [];
  }
  describe(): string {
    return `a list of OTTL ${this.kind}s`;
  }
}

export const conditionsSchema = (context: ContextLevel | null) => new OttlListSchema('condition', context);
export const statementsSchema = (context: ContextLevel | null) => new OttlListSchema('statement', context);
