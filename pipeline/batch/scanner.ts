/**
 * The validating walk over an ExportTraceServiceRequest that builds the batch index: the one place that
 * parses untrusted bytes on the hot path. Every length is bounds-checked; malformed input is an
 * INVALID_ARGUMENT for that request only. With an inspection it also marks what needs a close look.
 *
 * Over 500 lines on purpose: one method per message of the OTLP trace schema, read top to bottom as the
 * schema nests; splitting the walk would split the one place that decides what a request means.
 */
import { invalidArgument } from '../service/errors.js';
import { BatchIndex } from './batch-index.js';
import { ENDS_LIKE_KEY, ENDS_LIKE_SENSITIVE, Inspection, MIN_TOKEN_KEY, MIN_TOKEN_TEXT, PROTECT_EXACT, PROTECT_PREFIX, URL_KEY, tokenShapeIn } from './inspection.js';
import { VALUE_ARRAY, VALUE_BOOL, VALUE_BYTES, VALUE_DOUBLE, VALUE_INT, VALUE_KVLIST, VALUE_STRING } from './values.js';
import { WireReader, WT_I32, WT_I64, WT_LEN, WT_VARINT } from './wire.js';

const MAX_VALUE_DEPTH = 32;
const TRACE_ID_LEN = 16;
const SPAN_ID_LEN = 8;

// The attribute lists an inspection tells apart: span and resource attributes are stripped of protected
// keys by the processor's own pass; the others are only marked.
const LIST_SPAN = 0;
const LIST_RESOURCE = 1;
const LIST_OTHER = 2;
// The unit being scanned, which an inspection hit marks.
const UNIT_NONE = 0;
const UNIT_RESOURCE = 1;
const UNIT_SCOPE = 2;
const UNIT_SPAN = 3;

/**
 * Walks an ExportTraceServiceRequest, validating every nested message against the OTLP trace schema
 * (wire types, lengths, id sizes, nesting depth) and recording the index. Unknown fields are validated
 * for framing and kept. One scanner is shared: scanning is synchronous and never re-entered.
 *
 * One view of the bytes. Protobuf lets a singular field occur more than once: a decoder merges repeated
 * embedded messages and keeps the last scalar. Anything that reads only one occurrence would then inspect
 * something other than what the backend decodes (a forged attribute in the first copy of a `resource`
 * field, a credential in the first of two `value`s). So every singular field of the trace schema, and
 * every member of a oneof, may occur at most once; a request where one occurs twice is refused with
 * INVALID_ARGUMENT naming the field. No conforming encoder writes such a request. Repeated fields
 * (spans, attributes, events, links) are lists and are read as lists: every occurrence counts.
 */
class Scanner {
  private r = new WireReader();
  private ix!: BatchIndex;

  private insp: Inspection | null = null;
  private buf: Uint8Array = new Uint8Array(0);
  private unit = UNIT_NONE;
  private unitIndex = 0;
  // Whether the depth-0 KeyValue just walked has a protected key (span attributes: indexed as watched).
  private watchHit = false;
  // While an attribute's value is walked, marks wait for its key: the value of a protected key that the
  // processor strips anyway (the credential itself) marks nothing.
  private deferring = false;
  private deferred = false;
  // While the value of a protected span or resource attribute is walked: nothing in it is looked at.
  private quiet = false;

  scan(buf: Uint8Array, insp: Inspection | null = null): BatchIndex {
    // Most spans are a few hundred bytes or more; an index sized for 60-byte spans over-allocates (and the
    // garbage collector pays) for every realistic batch. Regrowth is cheap.
    const ix = new BatchIndex((buf.length / 256) | 0, buf.length);
    ix.inspection = insp;
    ix.watch = insp === null ? null : insp.keys;
    this.ix = ix;
    this.insp = insp;
    this.buf = buf;
    this.unit = UNIT_NONE;
    this.deferring = false;
    this.quiet = false;
    const r = this.r;
    r.reset(buf, 0);
    const end = buf.length;
    try {
      while (r.pos < end) {
        const tagStart = r.pos;
        const tag = r.uint32(end);
        if (tag >>> 3 === 1 && (tag & 7) === WT_LEN) {
          const stop = r.lengthDelimitedEnd(end);
          this.resourceSpans(tagStart, r.pos, stop);
          r.pos = stop;
        } else {
          this.unknown(tag, end);
        }
      }
    } finally {
      this.ix = undefined as unknown as BatchIndex;
      this.insp = null;
      this.buf = new Uint8Array(0);
    }
    return ix;
  }

  /**
   * A field the schema does not have: kept as it is. A newer schema may know it, so with tokens inspected a
   * length-delimited one holding a credential shape marks its unit (the close look removes it); outside
   * any resource, scope or span, where nothing can be removed, the request is refused instead.
   */
  private unknown(tag: number, end: number): void {
    if (tag >>> 3 === 0) throw invalidArgument('field number 0');
    const r = this.r;
    const insp = this.insp;
    if ((tag & 7) !== WT_LEN || insp === null || !insp.tokens || this.quiet) {
      r.skip(tag & 7, end);
      return;
    }
    const stop = r.lengthDelimitedEnd(end);
    if (stop - r.pos >= MIN_TOKEN_TEXT && tokenShapeIn(this.buf, r.pos, stop)) {
      if (this.unit === UNIT_NONE) throw invalidArgument('an unknown field outside any resource, scope or span holds a credential-shaped value');
      this.mark();
    }
    r.pos = stop;
  }

  private expect(tag: number, wireType: number, what: string): void {
    if ((tag & 7) !== wireType) throw invalidArgument(`${what} has wire type ${tag & 7}, expected ${wireType}`);
  }

  /** Records singular field `field` (by its bit in `seen`) and refuses a second occurrence. */
  private once(seen: number, field: number, what: string): number {
    const bit = 1 << field;
    if ((seen & bit) !== 0) throw invalidArgument(`${what} occurs more than once (a singular field must be sent once)`);
    return seen | bit;
  }

  /** Marks the unit being scanned for a close look by the processor that asked for the inspection. */
  private mark(): void {
    if (this.deferring) {
      this.deferred = true;
      return;
    }
    const ix = this.ix;
    const u = this.unit;
    const i = this.unitIndex;
    const marks = u === UNIT_SPAN ? ix.spMark : u === UNIT_SCOPE ? ix.ssMark : u === UNIT_RESOURCE ? ix.rsMark : null;
    if (marks !== null && marks[i] === 0) {
      marks[i] = 1;
      ix.marked++;
    }
  }

  /** A string field of the schema: skipped, and looked into when tokens are inspected. */
  private text(end: number): void {
    const r = this.r;
    const stop = r.lengthDelimitedEnd(end);
    this.checkText(r.pos, stop);
    r.pos = stop;
  }

  private checkText(start: number, end: number): void {
    const insp = this.insp;
    if (insp !== null && insp.tokens && !this.quiet && end - start >= MIN_TOKEN_TEXT && tokenShapeIn(this.buf, start, end)) {
      // Outside a unit (a schema_url) nothing can be rewritten, and a credential there is never legitimate.
      if (this.unit === UNIT_NONE) throw invalidArgument('a schema_url holds a credential-shaped value');
      this.mark();
    }
  }

  private resourceSpans(tagStart: number, start: number, end: number): void {
    const ix = this.ix;
    if (ix.resources === ix.rsTag.length) ix.growResources();
    const ri = ix.resources++;
    ix.rsTag[ri] = tagStart;
    ix.rsStart[ri] = start;
    ix.rsEnd[ri] = end;
    ix.rsResTag[ri] = -1;
    ix.rsResStart[ri] = -1;
    ix.rsResEnd[ri] = -1;
    ix.rsFirstScope[ri] = ix.scopes;
    ix.rsScopeCount[ri] = 0;
    const r = this.r;
    let seen = 0;
    while (r.pos < end) {
      const fieldTag = r.pos;
      const tag = r.uint32(end);
      switch (tag >>> 3) {
        case 1: {
          this.expect(tag, WT_LEN, 'ResourceSpans.resource');
          seen = this.once(seen, 1, 'ResourceSpans.resource');
          const stop = r.lengthDelimitedEnd(end);
          ix.rsResTag[ri] = fieldTag;
          ix.rsResStart[ri] = r.pos;
          ix.rsResEnd[ri] = stop;
          this.unit = UNIT_RESOURCE;
          this.unitIndex = ri;
          this.resource(stop);
          this.unit = UNIT_NONE;
          break;
        }
        case 2: {
          this.expect(tag, WT_LEN, 'ResourceSpans.scope_spans');
          const stop = r.lengthDelimitedEnd(end);
          this.scopeSpans(ri, fieldTag, r.pos, stop);
          ix.rsScopeCount[ri]!++;
          r.pos = stop;
          break;
        }
        case 3:
          this.expect(tag, WT_LEN, 'ResourceSpans.schema_url');
          seen = this.once(seen, 3, 'ResourceSpans.schema_url');
          this.text(end);
          break;
        default:
          this.unknown(tag, end);
      }
    }
  }

  private resource(end: number): void {
    const r = this.r;
    let seen = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      switch (tag >>> 3) {
        case 1:
          this.expect(tag, WT_LEN, 'Resource.attributes');
          this.keyValue(r.lengthDelimitedEnd(end), 0, LIST_RESOURCE);
          break;
        case 2:
          this.expect(tag, WT_VARINT, 'Resource.dropped_attributes_count');
          seen = this.once(seen, 2, 'Resource.dropped_attributes_count');
          r.skipVarint(end);
          break;
        default:
          this.unknown(tag, end);
      }
    }
  }

  private scopeSpans(ri: number, tagStart: number, start: number, end: number): void {
    const ix = this.ix;
    if (ix.scopes === ix.ssTag.length) ix.growScopes();
    const si = ix.scopes++;
    ix.ssTag[si] = tagStart;
    ix.ssStart[si] = start;
    ix.ssEnd[si] = end;
    ix.ssScopeTag[si] = -1;
    ix.ssScopeEnd[si] = -1;
    ix.ssResource[si] = ri;
    ix.ssFirstSpan[si] = ix.spans;
    ix.ssSpanCount[si] = 0;
    const r = this.r;
    let seen = 0;
    while (r.pos < end) {
      const fieldTag = r.pos;
      const tag = r.uint32(end);
      switch (tag >>> 3) {
        case 1: {
          this.expect(tag, WT_LEN, 'ScopeSpans.scope');
          seen = this.once(seen, 1, 'ScopeSpans.scope');
          const stop = r.lengthDelimitedEnd(end);
          ix.ssScopeTag[si] = fieldTag;
          ix.ssScopeEnd[si] = stop;
          this.unit = UNIT_SCOPE;
          this.unitIndex = si;
          this.scope(stop);
          this.unit = UNIT_NONE;
          break;
        }
        case 2: {
          this.expect(tag, WT_LEN, 'ScopeSpans.spans');
          const stop = r.lengthDelimitedEnd(end);
          this.span(si, fieldTag, r.pos, stop);
          ix.ssSpanCount[si]!++;
          break;
        }
        case 3:
          this.expect(tag, WT_LEN, 'ScopeSpans.schema_url');
          seen = this.once(seen, 3, 'ScopeSpans.schema_url');
          this.text(end);
          break;
        default:
          this.unknown(tag, end);
      }
    }
  }

  private scope(end: number): void {
    const r = this.r;
    let seen = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      switch (tag >>> 3) {
        case 1:
          this.expect(tag, WT_LEN, 'InstrumentationScope.name');
          seen = this.once(seen, 1, 'InstrumentationScope.name');
          this.text(end);
          break;
        case 2:
          this.expect(tag, WT_LEN, 'InstrumentationScope.version');
          seen = this.once(seen, 2, 'InstrumentationScope.version');
          this.text(end);
          break;
        case 3:
          this.expect(tag, WT_LEN, 'InstrumentationScope.attributes');
          this.keyValue(r.lengthDelimitedEnd(end), 0, LIST_OTHER);
          break;
        case 4:
          this.expect(tag, WT_VARINT, 'InstrumentationScope.dropped_attributes_count');
          seen = this.once(seen, 4, 'InstrumentationScope.dropped_attributes_count');
          r.skipVarint(end);
          break;
        default:
          this.unknown(tag, end);
      }
    }
  }

  private span(si: number, tagStart: number, start: number, end: number): void {
    const ix = this.ix;
    if (ix.spans === ix.spTag.length) ix.growSpans();
    const pi = ix.spans++;
    ix.spTag[pi] = tagStart;
    ix.spStart[pi] = start;
    ix.spEnd[pi] = end;
    ix.spScope[pi] = si;
    ix.spTraceId[pi] = -1;
    ix.spSpanId[pi] = -1;
    ix.spName[pi] = -1;
    ix.spNameEnd[pi] = -1;
    ix.spWatchFirst[pi] = ix.watched;
    this.unit = UNIT_SPAN;
    this.unitIndex = pi;
    const r = this.r;
    let seen = 0;
    while (r.pos < end) {
      const fieldTag = r.pos;
      const tag = r.uint32(end);
      const field = tag >>> 3;
      switch (field) {
        case 1: {
          this.expect(tag, WT_LEN, 'Span.trace_id');
          seen = this.once(seen, 1, 'Span.trace_id');
          const stop = r.lengthDelimitedEnd(end);
          const len = stop - r.pos;
          if (len !== TRACE_ID_LEN && len !== 0) throw invalidArgument(`trace_id is ${len} bytes, expected 16`);
          ix.spTraceId[pi] = len === 0 ? -1 : r.pos;
          r.pos = stop;
          break;
        }
        case 2:
        case 4: {
          this.expect(tag, WT_LEN, field === 2 ? 'Span.span_id' : 'Span.parent_span_id');
          seen = this.once(seen, field, field === 2 ? 'Span.span_id' : 'Span.parent_span_id');
          const stop = r.lengthDelimitedEnd(end);
          const len = stop - r.pos;
          if (len !== SPAN_ID_LEN && len !== 0) throw invalidArgument(`span id is ${len} bytes, expected 8`);
          if (field === 2) ix.spSpanId[pi] = len === 0 ? -1 : r.pos;
          r.pos = stop;
          break;
        }
        case 3:
          this.expect(tag, WT_LEN, 'Span.trace_state');
          seen = this.once(seen, 3, 'Span.trace_state');
          this.text(end);
          break;
        case 5: {
          this.expect(tag, WT_LEN, 'Span.name');
          seen = this.once(seen, 5, 'Span.name');
          const stop = r.lengthDelimitedEnd(end);
          ix.spName[pi] = r.pos;
          ix.spNameEnd[pi] = stop;
          this.checkText(r.pos, stop);
          r.pos = stop;
          break;
        }
        case 6:
        case 10:
        case 12:
        case 14:
          this.expect(tag, WT_VARINT, SPAN_VARINTS[field]!);
          seen = this.once(seen, field, SPAN_VARINTS[field]!);
          r.skipVarint(end);
          break;
        case 7:
        case 8:
          this.expect(tag, WT_I64, field === 7 ? 'Span.start_time_unix_nano' : 'Span.end_time_unix_nano');
          seen = this.once(seen, field, field === 7 ? 'Span.start_time_unix_nano' : 'Span.end_time_unix_nano');
          r.skip(WT_I64, end);
          break;
        case 9: {
          this.expect(tag, WT_LEN, 'Span.attributes');
          const stop = r.lengthDelimitedEnd(end);
          const start = r.pos;
          this.watchHit = false;
          this.keyValue(stop, 0, LIST_SPAN);
          if (this.watchHit) {
            if (ix.watched === ix.wTag.length) ix.growWatched();
            const w = ix.watched++;
            ix.wTag[w] = fieldTag;
            ix.wStart[w] = start;
            ix.wEnd[w] = stop;
          }
          break;
        }
        case 11:
          this.expect(tag, WT_LEN, 'Span.events');
          this.event(r.lengthDelimitedEnd(end));
          break;
        case 13:
          this.expect(tag, WT_LEN, 'Span.links');
          this.link(r.lengthDelimitedEnd(end));
          break;
        case 15:
          this.expect(tag, WT_LEN, 'Span.status');
          seen = this.once(seen, 15, 'Span.status');
          this.status(r.lengthDelimitedEnd(end));
          break;
        case 16:
          this.expect(tag, WT_I32, 'Span.flags');
          seen = this.once(seen, 16, 'Span.flags');
          r.skip(WT_I32, end);
          break;
        default:
          this.unknown(tag, end);
      }
    }
    ix.spWatchCount[pi] = ix.watched - ix.spWatchFirst[pi]!;
    this.unit = UNIT_NONE;
  }

  private event(end: number): void {
    const r = this.r;
    let seen = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      switch (tag >>> 3) {
        case 1:
          this.expect(tag, WT_I64, 'Event.time_unix_nano');
          seen = this.once(seen, 1, 'Event.time_unix_nano');
          r.skip(WT_I64, end);
          break;
        case 2:
          this.expect(tag, WT_LEN, 'Event.name');
          seen = this.once(seen, 2, 'Event.name');
          this.text(end);
          break;
        case 3:
          this.expect(tag, WT_LEN, 'Event.attributes');
          this.keyValue(r.lengthDelimitedEnd(end), 0, LIST_OTHER);
          break;
        case 4:
          this.expect(tag, WT_VARINT, 'Event.dropped_attributes_count');
          seen = this.once(seen, 4, 'Event.dropped_attributes_count');
          r.skipVarint(end);
          break;
        default:
          this.unknown(tag, end);
      }
    }
  }

  private link(end: number): void {
    const r = this.r;
    let seen = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      const field = tag >>> 3;
      switch (field) {
        case 1:
        case 2:
          this.expect(tag, WT_LEN, field === 1 ? 'Link.trace_id' : 'Link.span_id');
          seen = this.once(seen, field, field === 1 ? 'Link.trace_id' : 'Link.span_id');
          r.pos = r.lengthDelimitedEnd(end);
          break;
        case 3:
          this.expect(tag, WT_LEN, 'Link.trace_state');
          seen = this.once(seen, 3, 'Link.trace_state');
          this.text(end);
          break;
        case 4:
          this.expect(tag, WT_LEN, 'Link.attributes');
          this.keyValue(r.lengthDelimitedEnd(end), 0, LIST_OTHER);
          break;
        case 5:
          this.expect(tag, WT_VARINT, 'Link.dropped_attributes_count');
          seen = this.once(seen, 5, 'Link.dropped_attributes_count');
          r.skipVarint(end);
          break;
        case 6:
          this.expect(tag, WT_I32, 'Link.flags');
          seen = this.once(seen, 6, 'Link.flags');
          r.skip(WT_I32, end);
          break;
        default:
          this.unknown(tag, end);
      }
    }
  }

  private status(end: number): void {
    const r = this.r;
    let seen = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag >>> 3 === 2) {
        this.expect(tag, WT_LEN, 'Status.message');
        seen = this.once(seen, 2, 'Status.message');
        this.text(end);
      } else if (tag >>> 3 === 3) {
        this.expect(tag, WT_VARINT, 'Status.code');
        seen = this.once(seen, 3, 'Status.code');
        r.skipVarint(end);
      } else {
        this.unknown(tag, end);
      }
    }
  }

  /** KeyValue at r.pos up to `end`, in attribute list `list` when at depth 0; leaves r.pos at `end`. */
  private keyValue(end: number, depth: number, list: number): void {
    const r = this.r;
    let keyStart = -1;
    let keyEnd = -1;
    let valueStart = -1;
    let valueEnd = -1;
    let cls = -1;
    const top = depth === 0 && this.insp !== null;
    if (top) {
      this.deferring = true;
      this.deferred = false;
    }
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag >>> 3 === 1) {
        this.expect(tag, WT_LEN, 'KeyValue.key');
        // Decoders keep the last of repeated fields; anything matching keys here would read the first.
        // One attribute with two keys could then be stripped under one name and exported under another.
        if (keyStart >= 0) throw invalidArgument('KeyValue.key occurs more than once (an attribute has more than one key)');
        keyEnd = r.lengthDelimitedEnd(end);
        keyStart = r.pos;
        r.pos = keyEnd;
      } else if (tag >>> 3 === 2) {
        this.expect(tag, WT_LEN, 'KeyValue.value');
        if (valueStart >= 0) throw invalidArgument('KeyValue.value occurs more than once (an attribute has one value)');
        valueEnd = r.lengthDelimitedEnd(end);
        valueStart = r.pos;
        // The value of a key the strip pass removes (the evidence itself) needs no look: with the key
        // first, as every encoder writes it, it is known before the value is walked.
        if (top && keyStart >= 0 && list !== LIST_OTHER) {
          cls = (this.insp!.endsLike(this.buf, keyStart, keyEnd) & ENDS_LIKE_KEY) !== 0 ? this.insp!.keyClass(this.buf, keyStart, keyEnd) : 0;
          if ((cls & PROTECT_EXACT) !== 0) this.quiet = true;
        }
        this.anyValue(valueEnd, depth);
        if (top) this.quiet = false;
      } else {
        this.unknown(tag, end);
      }
    }
    const insp = this.insp;
    if (insp === null || (this.quiet && !top)) return;
    if (top) this.deferring = false;
    if (keyStart < 0) {
      if (this.deferred) this.mark();
      return;
    }
    const buf = this.buf;
    const ends = insp.endsLike(buf, keyStart, keyEnd);
    if (cls < 0) cls = (ends & ENDS_LIKE_KEY) !== 0 ? insp.keyClass(buf, keyStart, keyEnd) : 0;
    if (top) {
      if ((cls & (PROTECT_EXACT | PROTECT_PREFIX)) !== 0) {
        // Protected keys on spans and resources are the processor's own strip pass's work; a dotted prefix
        // (`identity` holding {verified: true}) and protected keys in other lists need a close look.
        if (list === LIST_OTHER || (cls & PROTECT_PREFIX) !== 0) this.mark();
        if (list !== LIST_OTHER && (cls & PROTECT_EXACT) !== 0) {
          this.watchHit = list === LIST_SPAN;
          return;
        }
      }
      if (this.deferred) this.mark();
    }
    if (((ends & ENDS_LIKE_SENSITIVE) !== 0 && insp.sensitiveTail(buf, keyStart, keyEnd)) || (insp.tokens && keyEnd - keyStart >= MIN_TOKEN_KEY && tokenShapeIn(buf, keyStart, keyEnd))) {
      this.mark();
      return;
    }
    // A URL attribute's string value (the AnyValue's one member; unknown fields may stand beside it).
    if ((cls & URL_KEY) !== 0 && valueStart >= 0) {
      r.pos = valueStart;
      while (r.pos < valueEnd) {
        const tag = r.uint32(valueEnd);
        if (tag !== 0x0a) {
          r.skip(tag & 7, valueEnd);
          continue;
        }
        const stop = r.lengthDelimitedEnd(valueEnd);
        if (insp.secretParamIn(buf, r.pos, stop)) this.mark();
        break;
      }
      r.pos = end;
    }
  }

  private anyValue(end: number, depth: number): void {
    if (depth > MAX_VALUE_DEPTH) throw invalidArgument('attribute values nested too deeply');
    const r = this.r;
    let fields = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      const field = tag >>> 3;
      // AnyValue is a oneof: a decoder keeps the last member sent, so a second one would be a second view.
      if (field >= VALUE_STRING && field <= VALUE_BYTES && ++fields > 1) throw invalidArgument('AnyValue has more than one value (a oneof must be sent once)');
      switch (field) {
        case VALUE_STRING:
        case VALUE_BYTES:
          this.expect(tag, WT_LEN, 'AnyValue string/bytes');
          this.text(end);
          break;
        case VALUE_BOOL:
        case VALUE_INT:
          this.expect(tag, WT_VARINT, 'AnyValue bool/int');
          r.skipVarint(end);
          break;
        case VALUE_DOUBLE:
          this.expect(tag, WT_I64, 'AnyValue double');
          r.skip(WT_I64, end);
          break;
        case VALUE_ARRAY:
        case VALUE_KVLIST: {
          this.expect(tag, WT_LEN, 'AnyValue array/kvlist');
          const stop = r.lengthDelimitedEnd(end);
          const isArray = field === VALUE_ARRAY;
          while (r.pos < stop) {
            const t = r.uint32(stop);
            if (t >>> 3 === 1) {
              this.expect(t, WT_LEN, 'ArrayValue/KeyValueList values');
              const s = r.lengthDelimitedEnd(stop);
              if (isArray) this.anyValue(s, depth + 1);
              else this.keyValue(s, depth + 1, LIST_OTHER);
            } else {
              this.unknown(t, stop);
            }
          }
          break;
        }
        default:
          this.unknown(tag, end);
      }
    }
  }
}

const SPAN_VARINTS: Record<number, string> = {
  6: 'Span.kind',
  10: 'Span.dropped_attributes_count',
  12: 'Span.dropped_events_count',
  14: 'Span.dropped_links_count',
};

/** One scanner is shared: scanning is synchronous and never re-entered. */
export const scanner = new Scanner();
