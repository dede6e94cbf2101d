/**
 * The filter processor: the OpenTelemetry Collector's `filter` for traces. A span for which any
 * `traces.span` condition is true, or that the legacy `spans.include` does not match or `spans.exclude`
 * matches, is dropped (counted as dropped with reason `filtered`); a span event
 * for which any `traces.spanevent` condition is true is removed from its span. What becomes empty (a scope
 * or resource without spans) is not exported; a batch left with no span is not passed on.
 *
 * Conditions are compiled once (ottl/) and read the batch's bytes; one that compares an attribute with a
 * string decodes nothing. A batch that earlier processors edited is sealed first, so the conditions see
 * what would be exported.
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, TracesConsumer } from '../../pipeline/service/component.js';
import { EditingProcessor } from '../../pipeline/service/editing-processor.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import { ErrorModeHandler } from '../../ottl/error-mode.js';
import { CTX_SPAN, CTX_SPANEVENT, Target, compileCondition, type CompiledCondition } from '../../ottl/index.js';
import type { FilterConfig } from './config.js';
import { matchCondition } from '../../ottl/match-properties.js';

const REMOVED = new Uint8Array(0);

/** The legacy `spans: { include, exclude }` as drop conditions: not included, or excluded. */
function legacyConditions(config: FilterConfig): string[] {
  const out: string[] = [];
  if (config.spans?.include !== undefined) out.push(`not (${matchCondition(config.spans.include)})`);
  if (config.spans?.exclude !== undefined) out.push(matchCondition(config.spans.exclude));
  return out;
}

export class FilterProcessor extends EditingProcessor {
  private readonly spanConditions: CompiledCondition[];
  private readonly eventConditions: CompiledCondition[];
  private readonly errors: ErrorModeHandler;
  private readonly target = new Target();
  private readonly filtered: { inc(n?: number): void };
  private readonly eventsFiltered: { inc(n?: number): void };

  constructor(settings: ComponentSettings, config: FilterConfig, next: TracesConsumer) {
    super(settings, next);
    this.spanConditions = [...config.traces.span, ...legacyConditions(config)].map((c) => compileCondition(c, CTX_SPAN));
    this.eventConditions = config.traces.spanevent.map((c) => compileCondition(c, CTX_SPANEVENT));
    this.errors = new ErrorModeHandler(settings, config.error_mode);
    const t = settings.telemetry;
    this.filtered = zeroed(t.dropped(settings.id, 'filtered'));
    this.eventsFiltered = zeroed(t.counter('tracewarden_filter_span_events_removed_total', 'Span events the filter processor removed (their spans went on).', ['processor']).labels(settings.id));
  }

  protected get active(): boolean {
    return this.spanConditions.length > 0 || this.eventConditions.length > 0;
  }

  protected process(b: TraceBatch): TraceBatch {
    const dropped = this.filter(b);
    if (dropped > 0) this.filtered.inc(dropped);
    return b;
  }

  /** Drops matching spans and events; returns how many spans were dropped. */
  private filter(b: TraceBatch): number {
    const t = this.target;
    t.reset(b, CTX_SPAN);
    const spans = b.spanCount;
    let dropped = 0;
    let events = 0;
    for (let span = 0; span < spans; span++) {
      t.atSpan(span);
      if (this.spanConditions.length > 0 && this.matches(this.spanConditions, t)) {
        b.dropSpan(span);
        dropped++;
        continue;
      }
      if (this.eventConditions.length === 0) continue;
      t.firstEvent();
      while (t.nextEvent()) {
        if (this.matches(this.eventConditions, t)) {
          b.replaceInSpan(span, t.eventTag, t.eventEnd, REMOVED);
          events++;
        }
      }
    }
    if (events > 0) this.eventsFiltered.inc(events);
    return dropped;
  }

  /** Whether any condition is true; a condition that fails counts as false unless error_mode propagates. */
  private matches(conditions: CompiledCondition[], t: Target): boolean {
    for (let i = 0; i < conditions.length; i++) {
      const c = conditions[i]!;
      try {
        if (c.test(t)) return true;
      } catch (err) {
        this.errors.failed(err, c.text);
      }
    }
    return false;
  }
}
