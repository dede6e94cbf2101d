/**
 * The Collector's legacy span matching (`include` / `exclude` with match_type strict or regexp, as the
 * attributes, span and filter processors take it), translated once into an OTTL condition so the one
 * engine evaluates it: all properties given must match; within a list, any entry. Regular expressions are
 * RE2, unanchored, as Go's MatchString.
 */
import { s, type Infer } from '../pipeline/config/schema.js';
import { goRegexpProblem } from '../pipeline/config/go-regexp.js';

const OTHER_SIGNAL = 'matches logs or metrics only; it has no effect on spans';

const keyValueSchema = s.object({ key: s.string({ nonEmpty: true }), value: s.any().optional() });

export const matchPropertiesSchema = s
  .object(
    {
      match_type: s.enum('strict', 'regexp'),
      services: s.array(s.string()).default([]),
      span_names: s.array(s.string()).default([]),
      attributes: s.array(keyValueSchema).default([]),
      resources: s.array(keyValueSchema).default([]),
      libraries: s.array(s.object({ name: s.string(), version: s.string().optional() })).default([]),
      span_kinds: s.array(s.enum('SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER')).default([]),
      regexp: s.object({ cacheenabled: s.bool().default(false), cachemaxnumentries: s.int({ min: 0 }).default(0) }).optional(),
    },
    { log_bodies: OTHER_SIGNAL, log_severity_texts: OTHER_SIGNAL, log_severity_number: OTHER_SIGNAL, metric_names: OTHER_SIGNAL },
  )
  .refine((m) => {
    if (m.match_type === 'regexp') {
      const patterns = [...m.services, ...m.span_names, ...m.libraries.flatMap((l) => [l.name, ...(l.version === undefined ? [] : [l.version])])];
      for (const kv of [...m.attributes, ...m.resources]) {
        if (kv.value === undefined) continue;
        if (typeof kv.value !== 'string') return `with match_type regexp, the value of ${kv.key} must be a string pattern`;
        patterns.push(kv.value);
      }
      for (const p of patterns) {
        const problem = goRegexpProblem(p);
        if (problem !== null) return problem;
      }
    }
    if ([m.services, m.span_names, m.attributes, m.resources, m.libraries, m.span_kinds].every((l) => l.length === 0)) return 'at least one of services, span_names, attributes, resources, libraries or span_kinds must be given';
    return null;
  });

export type MatchProperties = Infer<typeof matchPropertiesSchema>;

/** A YAML value as an OTTL literal. */
function literal(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(v).includes('.') || String(v).includes('e') ? String(v) : `${v}.0`;
  return JSON.stringify(String(v));
}

function anyOf(items: string[]): string {
  return items.length === 1 ? items[0]! : `(${items.join(' or ')})`;
}

/** The OTTL condition (span context) that is true when a span matches these properties. */
export function matchCondition(m: MatchProperties): string {
  const regexp = m.match_type === 'regexp';
  const text = (path: string, v: string) => (regexp ? `IsMatch(${path}, ${JSON.stringify(v)})` : `${path} == ${JSON.stringify(v)}`);
  const value = (path: string, v: unknown) => (v === undefined ? `${path} != nil` : regexp ? `IsMatch(${path}, ${JSON.stringify(v)})` : `${path} == ${literal(v)}`);
  const all: string[] = [];
  if (m.services.length > 0) all.push(anyOf(m.services.map((v) => text('resource.attributes["service.name"]', v))));
  if (m.span_names.length > 0) all.push(anyOf(m.span_names.map((v) => text('name', v))));
  for (const kv of m.attributes) all.push(value(`attributes[${JSON.stringify(kv.key)}]`, kv.value));
  for (const kv of m.resources) all.push(value(`resource.attributes[${JSON.stringify(kv.key)}]`, kv.value));
  if (m.libraries.length > 0) all.push(anyOf(m.libraries.map((l) => (l.version === undefined ? text('scope.name', l.name) : `(${text('scope.name', l.name)} and ${text('scope.version', l.version)})`))));
  if (m.span_kinds.length > 0) all.push(anyOf(m.span_kinds.map((k) => `kind == ${k}`)));
  return all.join(' and ');
}

/**
 * The spans a processor with `include` and `exclude` works on, as one condition text (span context):
 * include matches and exclude does not. Null when neither is set (every span).
 */
export function selectionCondition(include: MatchProperties | undefined, exclude: MatchProperties | undefined): string | null {
  const parts: string[] = [];
  if (include !== undefined) parts.push(`(${matchCondition(include)})`);
  if (exclude !== undefined) parts.push(`not (${matchCondition(exclude)})`);
  return parts.length === 0 ? null : parts.join(' and ');
}
