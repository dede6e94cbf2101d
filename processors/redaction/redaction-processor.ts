/**
 * The redaction processor: the OpenTelemetry Collector's `redaction` processor for traces. Every attribute
 * list the Collector's processor handles — resource, instrumentation scope, span and span event — is
 * redacted, masked and summarized as the Collector does (see redactor.ts). Links' attributes are left
 * alone, as there.
 *
 * Edits, all at known offsets (no search): a removed attribute is its KeyValue field replaced by nothing,
 * a masked one its field replaced by one with the masked value (in place: repeated keys are handled one by
 * one, as the Collector handles them); summary attributes are set (replacing any already there). Scope and
 * event attributes sit in nested messages, so a scope's InstrumentationScope or an event is rewritten as a
 * whole field when one of its attributes changes.
 *
 * Attributes are read from the batch's bytes by a walk of the request (resource → scope → span → event)
 * numbered as the batch's index numbers them, which the walk checks at every resource, scope and span. A
 * batch that earlier processors edited is sealed first, so what is read is what would be exported.
 */
import type { Counter } from 'prom-client';
import { encodeString, type EncodedValue, type TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, Processor, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import { invalidArgument } from '../../pipeline/service/errors.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import { WireReader, lenFieldSize, writeLenHeader } from '../../pipeline/batch/wire.js';
import { AttrList } from './attr-list.js';
import type { RedactionConfig } from './config.js';
import { A_ALLOWED, A_IGNORED, A_MASKED, A_REDACTED, Redactor } from './redactor.js';

// Field tags (number << 3 | wire type 2) on the walk.
const TAG_1 = 0x0a; // ExportTraceServiceRequest.resource_spans, ResourceSpans.resource, ScopeSpans.scope
const TAG_2 = 0x12; // ResourceSpans.scope_spans, ScopeSpans.spans
const TAG_SPAN_EVENTS = 0x5a; // Span.events (11)
// Attribute field numbers.
const RESOURCE_ATTRS = 1;
const SCOPE_ATTRS = 3;
const SPAN_ATTRS = 9;
const EVENT_ATTRS = 3;
// Field numbers of the rewritten messages in their parents.
const SCOPE_FIELD = 1;
const EVENT_FIELD = 11;

const REMOVED = new Uint8Array(0);

const ACTION_LABELS: [number, string][] = [
  [A_REDACTED, 'redacted'],
  [A_MASKED, 'masked'],
  [A_ALLOWED, 'allowed'],
  [A_IGNORED, 'ignored'],
];

/** A complete KeyValue field: tag `field`, then key and value. */
function keyValueField(field: number, key: Uint8Array, value: EncodedValue): Uint8Array {
  const kvLen = lenFieldSize(key.length) + lenFieldSize(value.length);
  const out = new Uint8Array(lenFieldSize(kvLen));
  let p = writeLenHeader(out, 0, field, kvLen);
  p = writeLenHeader(out, p, 1, key.length);
  out.set(key, p);
  p += key.length;
  p = writeLenHeader(out, p, 2, value.length);
  out.set(value, p);
  return out;
}

export class RedactionProcessor implements Processor {
  private readonly redactor: Redactor;
  private readonly incoming: Counter.Internal;
  private readonly outgoing: Counter.Internal;
  private readonly attributes: Counter.Internal[];
  /** Per batch, attributes by action (indexed by A_*), added to the counters once. */
  private readonly tally = new Float64Array(5);

  // One reader per nesting level of the walk, and one attribute list per kind of list: reused.
  private readonly r0 = new WireReader();
  private readonly r1 = new WireReader();
  private readonly r2 = new WireReader();
  private readonly r3 = new WireReader();
  private readonly resourceAttrs = new AttrList();
  private readonly scopeAttrs = new AttrList(8);
  private readonly spanAttrs = new AttrList();
  private readonly eventAttrs = new AttrList(8);
  private scope = 0;

  constructor(
    settings: ComponentSettings,
    config: RedactionConfig,
    private readonly next: TracesConsumer,
  ) {
    this.redactor = new Redactor(config);
    const t = settings.telemetry;
    this.incoming = zeroed(t.processorIncoming.labels(settings.id, 'traces'));
    this.outgoing = zeroed(t.processorOutgoing.labels(settings.id, 'traces'));
    const attrs = t.counter('tracewarden_redaction_attributes_total', 'Attributes (resource, scope, span, event) by what the redaction processor did: redacted, masked, allowed, ignored.', ['processor', 'action']);
    this.attributes = [];
    for (const [a, label] of ACTION_LABELS) this.attributes[a] = zeroed(attrs.labels(settings.id, label));
  }

  async start(): Promise<void> {}

  async shutdown(): Promise<void> {}

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    const n = batch.liveSpanCount;
    this.incoming.inc(n);
    if (this.redactor.noop) {
      await this.next.consume(batch, ctx);
      this.outgoing.inc(n);
      return;
    }
    const b = batch.seal();
    this.walk(b);
    for (const [a] of ACTION_LABELS) {
      if (this.tally[a]! > 0) {
        this.attributes[a]!.inc(this.tally[a]);
        this.tally[a] = 0;
      }
    }
    const live = b.liveSpanCount;
    if (live === 0) return;
    await this.next.consume(b, ctx);
    this.outgoing.inc(live);
  }

  /** Redacts every attribute list of the batch (its bytes are those it will export: no pending edits). */
  private walk(batch: TraceBatch): void {
    const buf = batch.bytes;
    const resources = batch.resourceCount; // scans (validates) the batch when nothing has yet
    const r = this.r0;
    r.reset(buf, 0);
    const end = buf.length;
    let ri = 0;
    let pi = 0;
    this.scope = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === TAG_1) {
        const stop = r.lengthDelimitedEnd(end);
        if (ri >= resources) throw indexMismatch();
        pi = this.resourceSpans(batch, ri++, r.pos, stop, pi);
        r.pos = stop;
      } else r.skip(tag & 7, end);
    }
    if (ri !== resources || this.scope !== batch.scopeCount || pi !== batch.spanCount) throw indexMismatch();
  }

  private resourceSpans(batch: TraceBatch, ri: number, start: number, end: number, pi: number): number {
    const buf = batch.bytes;
    const r = this.r1;
    r.reset(buf, start);
    let resourceFields = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === TAG_1) {
        // Decoders merge repeated Resource messages; the batch's resource edits reach only one of them.
        if (++resourceFields > 1) throw invalidArgument('a ResourceSpans has more than one resource');
        const stop = r.lengthDelimitedEnd(end);
        if (batch.resourceStart(ri) !== r.pos) throw indexMismatch();
        this.resource(batch, ri, r.pos, stop);
        r.pos = stop;
      } else if (tag === TAG_2) {
        const stop = r.lengthDelimitedEnd(end);
        pi = this.scopeSpans(batch, r.pos, stop, pi);
        r.pos = stop;
      } else r.skip(tag & 7, end);
    }
    return pi;
  }

  private resource(batch: TraceBatch, ri: number, start: number, end: number): void {
    const buf = batch.bytes;
    const list = this.resourceAttrs;
    const red = this.redactor;
    list.read(buf, start, end, RESOURCE_ATTRS);
    if (list.count === 0) return;
    red.decide(buf, list);
    this.count();
    const n = red.summarize(buf, list);
    for (let i = 0; i < list.count; i++) {
      const a = list.action[i]!;
      if (a === A_REDACTED) batch.replaceInResource(ri, list.fStart[i]!, list.fEnd[i]!, REMOVED);
      else if (a === A_MASKED && !(n > 0 && red.summaryWrites(buf, list, i))) batch.replaceInResource(ri, list.fStart[i]!, list.fEnd[i]!, this.maskedField(buf, list, i, RESOURCE_ATTRS));
    }
    for (let s = 0; s < n; s++) batch.setResourceAttribute(ri, red.summaryKeys[s]!, red.summaryValues[s]!);
  }

  private scopeSpans(batch: TraceBatch, start: number, end: number, pi: number): number {
    const buf = batch.bytes;
    const si = this.scope++;
    const r = this.r2;
    r.reset(buf, start);
    let scopeFields = 0;
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      if (tag === TAG_1) {
        if (++scopeFields > 1) throw invalidArgument('a ScopeSpans has more than one scope');
        const stop = r.lengthDelimitedEnd(end);
        if (batch.scopeFieldStart(si) !== tagPos) throw indexMismatch();
        this.scopeAttributes(batch, si, tagPos, r.pos, stop);
        r.pos = stop;
      } else if (tag === TAG_2) {
        const stop = r.lengthDelimitedEnd(end);
        this.span(batch, pi++, r.pos, stop);
        r.pos = stop;
      } else r.skip(tag & 7, end);
    }
    return pi;
  }

  private scopeAttributes(batch: TraceBatch, si: number, fieldStart: number, start: number, end: number): void {
    const list = this.scopeAttrs;
    const field = this.rewritten(batch.bytes, list, start, end, SCOPE_ATTRS, SCOPE_FIELD);
    if (field !== null) batch.replaceInScope(si, fieldStart, end, field);
  }

  private span(batch: TraceBatch, p: number, start: number, end: number): void {
    const buf = batch.bytes;
    const red = this.redactor;
    // The walk must number spans exactly as the batch's index does: every edit below is addressed by it.
    if (p >= batch.spanCount || batch.spanStart(p) !== start || batch.spanEnd(p) !== end) throw indexMismatch();
    const r = this.r3;
    r.reset(buf, start);
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      if (tag === TAG_SPAN_EVENTS) {
        const stop = r.lengthDelimitedEnd(end);
        const field = this.rewritten(buf, this.eventAttrs, r.pos, stop, EVENT_ATTRS, EVENT_FIELD);
        if (field !== null) batch.replaceInSpan(p, tagPos, stop, field);
        r.pos = stop;
      } else r.skip(tag & 7, end);
    }
    const list = this.spanAttrs;
    list.read(buf, start, end, SPAN_ATTRS);
    if (list.count === 0) return;
    red.decide(buf, list);
    this.count();
    const n = red.summarize(buf, list);
    for (let i = 0; i < list.count; i++) {
      const a = list.action[i]!;
      if (a === A_REDACTED) batch.replaceInSpan(p, list.fStart[i]!, list.fEnd[i]!, REMOVED);
      else if (a === A_MASKED && !(n > 0 && red.summaryWrites(buf, list, i))) batch.replaceInSpan(p, list.fStart[i]!, list.fEnd[i]!, this.maskedField(buf, list, i, SPAN_ATTRS));
    }
    for (let s = 0; s < n; s++) batch.setSpanAttribute(p, red.summaryKeys[s]!, red.summaryValues[s]!);
  }

  /**
   * The message body [start, end) (a scope or an event) redacted, as a whole field numbered `field` of
   * its parent; null when nothing in it changes. Summary attributes replace any with their keys, at the end.
   */
  private rewritten(buf: Uint8Array, list: AttrList, start: number, end: number, attrField: number, field: number): Uint8Array | null {
    const red = this.redactor;
    list.read(buf, start, end, attrField);
    if (list.count === 0) return null;
    red.decide(buf, list);
    this.count();
    const n = red.summarize(buf, list);
    if (!red.changes && n === 0) return null;
    const parts: Uint8Array[] = [];
    let cur = start;
    for (let i = 0; i < list.count; i++) {
      const a = list.action[i]!;
      const drop = a === A_REDACTED || (n > 0 && red.summaryWrites(buf, list, i));
      if (!drop && a !== A_MASKED) continue;
      parts.push(buf.subarray(cur, list.fStart[i]!));
      if (!drop) parts.push(this.maskedField(buf, list, i, attrField));
      cur = list.fEnd[i]!;
    }
    parts.push(buf.subarray(cur, end));
    for (let s = 0; s < n; s++) parts.push(keyValueField(attrField, red.summaryKeys[s]!, red.summaryValues[s]!));
    let len = 0;
    for (const part of parts) len += part.length;
    const out = new Uint8Array(lenFieldSize(len));
    let pos = writeLenHeader(out, 0, field, len);
    for (const part of parts) {
      out.set(part, pos);
      pos += part.length;
    }
    return out;
  }

  private maskedField(buf: Uint8Array, list: AttrList, i: number, attrField: number): Uint8Array {
    return keyValueField(attrField, buf.subarray(list.kStart[i]!, list.kEnd[i]!), encodeString(list.masked[i]!));
  }

  private count(): void {
    const c = this.redactor.counts;
    for (let a = 0; a < c.length; a++) this.tally[a]! += c[a]!;
  }
}

function indexMismatch(): Error {
  return new Error('redaction: the request walk does not match the batch index');
}
