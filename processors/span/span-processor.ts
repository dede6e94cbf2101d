/**
 * The span processor: the Collector's `span`. For each span that `include` matches and `exclude` does not:
 * the name from attributes (all present, joined), then attributes from the name (each rule's named groups,
 * the name rewritten with `{group}`, each rule on the previous one's result), then the status.
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, TracesConsumer } from '../../pipeline/service/component.js';
import { EditingProcessor } from '../../pipeline/service/editing-processor.js';
import { translateGoRegexp } from '../../pipeline/config/go-regexp.js';
import { CTX_SPAN, Target, compileCondition, type Predicate } from '../../ottl/index.js';
import { selectionCondition } from '../../ottl/match-properties.js';
import { formatFloat, type Value } from '../../ottl/values.js';
import type { SpanConfig } from './config.js';

const STATUS = { Unset: 0, Ok: 1, Error: 2 } as const;

/** How the Collector writes an attribute into a span name. */
function nameText(v: Value): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return formatFloat(v);
  return '<unknown-attribute-type>';
}

/** Each capturing group's name in order ('' for an unnamed one), in a translated (JavaScript) pattern. */
function groupNames(source: string): string[] {
  const names: string[] = [];
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (c === '[') {
      while (i < source.length && source[i] !== ']') i += source[i] === '\\' ? 2 : 1;
    } else if (c === '(') {
      const named = /^\(\?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(source.slice(i));
      if (named !== null) names.push(named[1]!);
      else if (source[i + 1] !== '?') names.push('');
    }
  }
  return names;
}

export class SpanProcessor extends EditingProcessor {
  /** Which spans the processor works on (include and not exclude); null for every span. */
  private readonly selected: Predicate | null;
  private readonly rules: { re: RegExp; names: string[] }[];
  private readonly target = new Target();

  constructor(
    settings: ComponentSettings,
    private readonly config: SpanConfig,
    next: TracesConsumer,
  ) {
    super(settings, next);
    const selection = selectionCondition(config.include, config.exclude);
    this.selected = selection === null ? null : compileCondition(selection, CTX_SPAN).test;
    this.rules = (config.name?.to_attributes?.rules ?? []).map((rule) => {
      const { source, flags } = translateGoRegexp(rule);
      // `d` gives each group's position, to put `{group}` where it matched.
      return { re: new RegExp(source, flags + 'd'), names: groupNames(source) };
    });
  }

  protected get active(): boolean {
    return true;
  }

  protected process(b: TraceBatch): TraceBatch {
    const t = this.target;
    t.reset(b, CTX_SPAN);
    for (let span = 0; span < b.spanCount; span++) {
      t.atSpan(span);
      if (this.selected !== null && !this.selected(t)) continue;
      this.fromAttributes(t);
      this.toAttributes(t);
      const status = this.config.status;
      if (status !== undefined) {
        t.statusCode = STATUS[status.code];
        t.statusMessage = status.code === 'Error' ? status.description : '';
      }
      t.flushSpan();
    }
    return b;
  }

  private fromAttributes(t: Target): void {
    const keys = this.config.name?.from_attributes ?? [];
    if (keys.length === 0) return;
    let name = '';
    for (let i = 0; i < keys.length; i++) {
      const v = t.attr(CTX_SPAN, keys[i]!);
      if (v === undefined) return;
      if (i > 0) name += this.config.name!.separator;
      name += nameText(v);
    }
    t.name = name;
  }

  private toAttributes(t: Target): void {
    const opts = this.config.name?.to_attributes;
    if (opts === undefined) return;
    for (const { re, names } of this.rules) {
      const old = t.name ?? t.batch.spanName(t.span);
      if (old === '') return;
      const m = re.exec(old);
      if (m === null) continue;
      let out = '';
      let at = 0;
      for (let g = 1; g < m.length; g++) {
        const name = names[g - 1]!;
        t.setAttr(CTX_SPAN, name, m[g] ?? '');
        const span = m.indices![g];
        if (span === undefined) continue;
        out += old.slice(at, span[0]) + '{' + name + '}';
        at = span[1];
      }
      out += old.slice(at);
      if (!opts.keep_original_name) t.name = out;
      if (opts.break_after_match) return;
    }
  }
}
