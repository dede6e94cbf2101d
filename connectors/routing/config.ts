/**
 * The routing connector's keys, as the Collector's: `table` of routes, each an OTTL `condition` or a
 * `statement` of the form `route() where <condition>`, in the `resource` (default) or `span` context, with
 * the `pipelines` it sends to; `default_pipelines` for what no route matches; `error_mode`.
 */
import { Schema, s, type Infer, type ParseContext, type Path } from '../../pipeline/config/schema.js';
import { checkOttl, errorModeSchema } from '../../ottl/config.js';
import { contextNamed } from '../../ottl/index.js';
import { CTX_RESOURCE, CTX_SPAN, type ContextLevel } from '../../ottl/target.js';

export interface Route {
  context: ContextLevel;
  /** The condition: a `condition` as given, or the where clause of a `route() where …` statement. */
  condition: string;
  /** The text as configured, for logs. */
  text: string;
  pipelines: string[];
}

const itemSchema = s.object({
  context: s.string().optional(),
  condition: s.string({ nonEmpty: true }).optional(),
  statement: s.string({ nonEmpty: true }).optional(),
  pipelines: s.array(s.string({ nonEmpty: true }), { minItems: 1 }),
});

/** `route() where <condition>`: the only statement the routing connector takes. */
const ROUTE_STATEMENT = /^\s*route\s*\(\s*\)\s+where\s+([\s\S]+)$/;

class RoutingTableSchema extends Schema<Route[]> {
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): Route[] | undefined {
    const items = s.array(itemSchema, { minItems: 1 }).parse(v, path, ctx);
    if (items === undefined) return undefined;
    const out: Route[] = [];
    let ok = true;
    items.forEach((item, i) => {
      const at = [...path, i];
      const name = item.context ?? 'resource';
      if (name === 'request') {
        ctx.error([...at, 'context'], 'the request context (routing by request headers) is not supported yet; route by resource or span attributes');
        ok = false;
        return;
      }
      const context = contextNamed(name);
      if (context !== CTX_RESOURCE && context !== CTX_SPAN) {
        ctx.error([...at, 'context'], `expected resource or span (the trace contexts routing supports), got ${JSON.stringify(name)}`);
        ok = false;
        return;
      }
      if ((item.condition === undefined) === (item.statement === undefined)) {
        ctx.error(at, item.condition === undefined ? 'invalid route: no condition or statement provided' : 'invalid route: both condition and statement provided');
        ok = false;
        return;
      }
      let condition = item.condition;
      if (item.statement !== undefined) {
        const m = ROUTE_STATEMENT.exec(item.statement);
        if (m === null) {
          ctx.error([...at, 'statement'], 'a routing statement must be route() where <condition>');
          ok = false;
          return;
        }
        condition = m[1]!;
      }
      if (!checkOttl('condition', condition!, context, [...at, item.statement !== undefined ? 'statement' : 'condition'], ctx)) {
        ok = false;
        return;
      }
      out.push({ context, condition: condition!, text: item.statement ?? item.condition!, pipelines: item.pipelines });
    });
    return ok ? out : undefined;
  }
  describe(): string {
    return 'a routing table';
  }
}

export const routingConfigSchema = s.object(
  {
    error_mode: errorModeSchema(),
    default_pipelines: s.array(s.string({ nonEmpty: true })).default([]),
    table: new RoutingTableSchema(),
  },
  { match_once: 'routes are matched once (the first that matches wins), as in current Collector versions' },
);

export type RoutingConfig = Infer<typeof routingConfigSchema>;

/** Table and default pipelines must be pipelines the connector feeds (that list it under receivers). */
export function checkRoutingPipelines(config: RoutingConfig, feeds: readonly string[]): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const check = (id: string, path: (string | number)[]) => {
    if (!feeds.includes(id)) problems.push({ path, message: `pipeline "${id}" does not list this connector under receivers${feeds.length > 0 ? ` (it feeds ${feeds.join(', ')})` : ''}` });
  };
  config.default_pipelines.forEach((id, i) => check(id, ['default_pipelines', i]));
  config.table.forEach((r, i) => r.pipelines.forEach((id, j) => check(id, ['table', i, 'pipelines', j])));
  return problems;
}
