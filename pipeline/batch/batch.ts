/**
 * A trace batch is the OTLP ExportTraceServiceRequest bytes it arrived in, an index of where each
 * resource, scope and span lies (built on first use by a validating wire-format walk), and a list of
 * edits. Encoding applies every edit in one pass that copies untouched byte ranges and rewrites only the
 * length prefixes that enclose a change; a batch without edits encodes to the very bytes it was given.
 *
 * The index is immutable once built, so `fork()` gives each pipeline that shares a receiver its own edit
 * list over the same bytes and index.
 *
 * The trust boundary: the index describes a request exactly as a conforming protobuf decoder reads it, or
 * the request is refused. Decoders merge a singular embedded message sent twice and keep the last of a
 * repeated scalar; rather than reproduce that, the scan refuses any singular field (or oneof member) that
 * occurs twice, naming it (see Scanner). Every security decision is made on this one view, and reads see
 * the bytes as received: a processor that must see another's edits seals the batch first.
 */
import { invalidArgument } from '../service/errors.js';
import { ENDS_LIKE_KEY, ENDS_LIKE_SENSITIVE, Inspection, MIN_TOKEN_KEY, MIN_TOKEN_TEXT, PROTECT_EXACT, PROTECT_PREFIX, URL_KEY, tokenShapeIn } from './inspection.js';
import { KeyMatcher } from './key-matcher.js';

export { KeyMatcher };
import { WireReader, WT_I32, WT_I64, WT_LEN, WT_VARINT, bytesEqual, lenFieldSize, varintSize, writeLenHeader, writeVarint } from './wire.js';

/** AnyValue oneof field numbers, exposed as the kind of a found attribute value. */
export const VALUE_STRING = 1;
export const VALUE_BOOL = 2;
export const VALUE_INT = 3;
export const VALUE_DOUBLE = 4;
export const VALUE_ARRAY = 5;
export const VALUE_KVLIST = 6;
export const VALUE_BYTES = 7;

const MAX_VALUE_DEPTH = 32;
const TRACE_ID_LEN = 16;
const SPAN_ID_LEN = 8;

// Edit kinds.
const E_DEL_SPAN = 0;
const E_INS_SPAN = 1;
const E_DEL_RES = 2;
const E_INS_RES = 3;
/** An insertion superseded by a later set of the same key on the same target. */
const E_CANCELLED = 4;
// Replacements of a whole field (source range a..b) by arena bytes (c..d): in a span's content, in a
// Resource message, or in a ScopeSpans outside its spans (its InstrumentationScope).
const E_REP_SPAN = 5;
const E_REP_RES = 6;
const E_REP_SCOPE = 7;

function isSpanEdit(k: number): boolean {
  return k === E_DEL_SPAN || k === E_INS_SPAN || k === E_REP_SPAN;
}
/** Deletions and replacements: edits at a source offset, applied in offset order. */
function isPlaced(k: number): boolean {
  return k === E_DEL_SPAN || k === E_DEL_RES || k === E_REP_SPAN || k === E_REP_RES || k === E_REP_SCOPE;
}
function isReplacement(k: number): boolean {
  return k === E_REP_SPAN || k === E_REP_RES || k === E_REP_SCOPE;
}

/** The index: parallel typed arrays, one entry per resource, scope and span, in byte order. */
class BatchIndex {
  resources = 0;
  scopes = 0;
  spans = 0;
  // ResourceSpans: field tag offset, content start/end; its Resource message (-1 when absent).
  rsTag: Int32Array;
  rsStart: Int32Array;
  rsEnd: Int32Array;
  rsResTag: Int32Array;
  rsResStart: Int32Array;
  rsResEnd: Int32Array;
  rsFirstScope: Int32Array;
  rsScopeCount: Int32Array;
  // ScopeSpans, and its InstrumentationScope field (tag offset and end; -1 when absent).
  ssTag: Int32Array;
  ssStart: Int32Array;
  ssEnd: Int32Array;
  ssScopeTag: Int32Array;
  ssScopeEnd: Int32Array;
  ssResource: Int32Array;
  ssFirstSpan: Int32Array;
  ssSpanCount: Int32Array;
  // Spans, plus the offsets of their ids (-1 when absent) because identity binding and logs need them.
  spTag: Int32Array;
  spStart: Int32Array;
  spEnd: Int32Array;
  spScope: Int32Array;
  spTraceId: Int32Array;
  spSpanId: Int32Array;
  spName: Int32Array;
  spNameEnd: Int32Array;
  // What the scan was asked to look for, and the units it marked for a close look (1 = marked).
  inspection: Inspection | null = null;
  rsMark: Uint8Array;
  ssMark: Uint8Array;
  spMark: Uint8Array;
  marked = 0;
  // Watched span attributes (protected keys, which processors strip on every span), found by the
  // validating scan so no processor walks the span again: per span a run of entries in span order.
  watch: KeyMatcher | null = null;
  watched = 0;
  spWatchFirst: Int32Array;
  spWatchCount: Int32Array;
  wTag: Int32Array;
  wStart: Int32Array;
  wEnd: Int32Array;

  /**
   * Index memory may not exceed a multiple of the request's size: a request of empty messages (two bytes
   * each) would otherwise cost 16 bytes of index per byte received.
   */
  private readonly budget: number;

  constructor(spanHint: number, requestBytes: number) {
    const r = 4;
    const s = 8;
    const p = Math.max(16, spanHint);
    this.budget = 4 * requestBytes + 1_048_576;
    this.rsTag = new Int32Array(r);
    this.rsStart = new Int32Array(r);
    this.rsEnd = new Int32Array(r);
    this.rsResTag = new Int32Array(r);
    this.rsResStart = new Int32Array(r);
    this.rsResEnd = new Int32Array(r);
    this.rsFirstScope = new Int32Array(r);
    this.rsScopeCount = new Int32Array(r);
    this.rsMark = new Uint8Array(r);
    this.ssTag = new Int32Array(s);
    this.ssStart = new Int32Array(s);
    this.ssEnd = new Int32Array(s);
    this.ssScopeTag = new Int32Array(s);
    this.ssScopeEnd = new Int32Array(s);
    this.ssResource = new Int32Array(s);
    this.ssFirstSpan = new Int32Array(s);
    this.ssSpanCount = new Int32Array(s);
    this.ssMark = new Uint8Array(s);
    this.spTag = new Int32Array(p);
    this.spStart = new Int32Array(p);
    this.spEnd = new Int32Array(p);
    this.spScope = new Int32Array(p);
    this.spTraceId = new Int32Array(p);
    this.spSpanId = new Int32Array(p);
    this.spName = new Int32Array(p);
    this.spNameEnd = new Int32Array(p);
    this.spWatchFirst = new Int32Array(p);
    this.spWatchCount = new Int32Array(p);
    this.spMark = new Uint8Array(p);
    this.wTag = new Int32Array(16);
    this.wStart = new Int32Array(16);
    this.wEnd = new Int32Array(16);
  }

  growWatched(): void {
    const n = this.wTag.length * 2;
    this.checkBudget(this.rsTag.length, this.ssTag.length, this.spTag.length + n);
    this.wTag = grow(this.wTag, n);
    this.wStart = grow(this.wStart, n);
    this.wEnd = grow(this.wEnd, n);
  }

  /** Bytes the index would hold with these capacities; throws when over the budget. */
  private checkBudget(resources: number, scopes: number, spans: number): void {
    if ((resources * 9 + scopes * 9 + spans * 11) * 4 > this.budget) {
      throw invalidArgument('the request holds too many resources, scopes or spans for its size');
    }
  }

  growResources(): void {
    const n = this.rsTag.length * 2;
    this.checkBudget(n, this.ssTag.length, this.spTag.length);
    this.rsTag = grow(this.rsTag, n);
    this.rsStart = grow(this.rsStart, n);
    this.rsEnd = grow(this.rsEnd, n);
    this.rsResTag = grow(this.rsResTag, n);
    this.rsResStart = grow(this.rsResStart, n);
    this.rsResEnd = grow(this.rsResEnd, n);
    this.rsFirstScope = grow(this.rsFirstScope, n);
    this.rsScopeCount = grow(this.rsScopeCount, n);
    this.rsMark = growBytes(this.rsMark, n);
  }

  growScopes(): void {
    const n = this.ssTag.length * 2;
    this.checkBudget(this.rsTag.length, n, this.spTag.length);
    this.ssTag = grow(this.ssTag, n);
    this.ssStart = grow(this.ssStart, n);
    this.ssEnd = grow(this.ssEnd, n);
    this.ssScopeTag = grow(this.ssScopeTag, n);
    this.ssScopeEnd = grow(this.ssScopeEnd, n);
    this.ssResource = grow(this.ssResource, n);
    this.ssFirstSpan = grow(this.ssFirstSpan, n);
    this.ssSpanCount = grow(this.ssSpanCount, n);
    this.ssMark = growBytes(this.ssMark, n);
  }

  growSpans(): void {
    const n = this.spTag.length * 2;
    this.checkBudget(this.rsTag.length, this.ssTag.length, n);
    this.spTag = grow(this.spTag, n);
    this.spStart = grow(this.spStart, n);
    this.spEnd = grow(this.spEnd, n);
    this.spScope = grow(this.spScope, n);
    this.spTraceId = grow(this.spTraceId, n);
    this.spSpanId = grow(this.spSpanId, n);
    this.spName = grow(this.spName, n);
    this.spNameEnd = grow(this.spNameEnd, n);
    this.spWatchFirst = grow(this.spWatchFirst, n);
    this.spWatchCount = grow(this.spWatchCount, n);
    this.spMark = growBytes(this.spMark, n);
  }
}

function grow(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

function growBytes(a: Uint8Array, n: number): Uint8Array {
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}

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

const scanner = new Scanner();

/**
 * Where `findSpanAttribute`/`findResourceAttribute` found a value. Reused by each batch so a lookup
 * allocates nothing; read the fields before the next lookup.
 */
export class AttributeRef {
  /** Offset of the KeyValue field's tag, or -1 when not found. */
  fieldStart = -1;
  fieldEnd = -1;
  /** The AnyValue's oneof kind (VALUE_*) and its payload range (string bytes, array content, ...). */
  kind = 0;
  valueStart = -1;
  valueEnd = -1;
}

export class TraceBatch {
  /** The request bytes as received. Never modified. */
  readonly bytes: Uint8Array;
  private ix: BatchIndex | null;
  private readonly reader = new WireReader();
  private readonly kvReader = new WireReader();
  readonly found = new AttributeRef();

  // Edits: parallel arrays; a per-target linked list is built at encode time.
  private edits = 0;
  private eKind: Uint8Array | null = null;
  private eTarget: Int32Array | null = null;
  private eA: Int32Array | null = null;
  private eB: Int32Array | null = null;
  private eC: Int32Array | null = null;
  private eD: Int32Array | null = null;
  private arena: Uint8Array | null = null;
  private arenaUsed = 0;
  private dropped: Uint8Array | null = null;
  private droppedCount = 0;

  /** Span count of a batch our own encoder produced, known without scanning (-1 when unknown). */
  private readonly knownSpans: number;

  constructor(bytes: Uint8Array, index: BatchIndex | null = null, knownSpans = -1) {
    this.bytes = bytes;
    this.ix = index;
    this.knownSpans = knownSpans;
  }

  /**
   * A batch over bytes this process encoded itself (already validated), whose span count is known: what
   * processors that re-pack batches pass on, so that nothing downstream scans them again just to count.
   */
  static encoded(bytes: Uint8Array, spanCount: number): TraceBatch {
    return new TraceBatch(bytes, null, spanCount);
  }

  /** This batch with its edits applied, as a batch of its own (itself when there are no edits). */
  seal(): TraceBatch {
    if (!this.hasEdits) return this;
    return TraceBatch.encoded(this.encode(), this.liveSpanCount);
  }

  /**
   * Builds the index if it is not built yet; throws INVALID_ARGUMENT for malformed bytes. With an
   * inspection, the scan also records where protected span attributes are (so processors that strip them
   * on every span need not walk the span again) and marks the units that need a close look (the receiver
   * passes the inspection its pipelines' processors declared).
   */
  index(inspection: Inspection | null = null): void {
    if (this.ix === null) this.ix = scanner.scan(this.bytes, inspection);
  }

  /**
   * Makes sure the index was built with this inspection (or one that marks the same units), scanning the
   * bytes again when it was not. Edits stay valid: they refer to byte offsets and span numbers, which a
   * scan of the same bytes reproduces.
   */
  inspect(inspection: Inspection): void {
    const x = this.ix;
    if (x !== null && x.inspection !== null && (x.inspection === inspection || x.inspection.signature === inspection.signature)) return;
    this.ix = scanner.scan(this.bytes, inspection);
  }

  /** Units the inspection marked for a close look (0 when none, or without an inspection). */
  get markedCount(): number {
    return this.x.marked;
  }
  spanMarked(span: number): boolean {
    return this.x.spMark[span] === 1;
  }
  scopeMarked(scope: number): boolean {
    return this.x.ssMark[scope] === 1;
  }
  resourceMarked(resource: number): boolean {
    return this.x.rsMark[resource] === 1;
  }
  /** Content range of span `span` (inside its length prefix). */
  spanStart(span: number): number {
    return this.x.spStart[span]!;
  }
  spanEnd(span: number): number {
    return this.x.spEnd[span]!;
  }
  /** Content range of resource `resource`'s Resource message; start is -1 when it has none. */
  resourceStart(resource: number): number {
    return this.x.rsResStart[resource]!;
  }
  resourceEnd(resource: number): number {
    return this.x.rsResEnd[resource]!;
  }
  /** The InstrumentationScope field of scope `scope`, tag to end; start is -1 when it has none. */
  scopeFieldStart(scope: number): number {
    return this.x.ssScopeTag[scope]!;
  }
  scopeFieldEnd(scope: number): number {
    return this.x.ssScopeEnd[scope]!;
  }

  private get x(): BatchIndex {
    if (this.ix === null) this.ix = scanner.scan(this.bytes);
    return this.ix;
  }

  /** A batch over the same bytes and index with no edits: for each pipeline that shares a receiver. */
  fork(): TraceBatch {
    return new TraceBatch(this.bytes, this.x);
  }

  get spanCount(): number {
    if (this.ix === null && this.knownSpans >= 0) return this.knownSpans;
    return this.x.spans;
  }
  get resourceCount(): number {
    return this.x.resources;
  }
  get scopeCount(): number {
    return this.x.scopes;
  }
  /** Spans left after drops (what an exporter will send). */
  get liveSpanCount(): number {
    return this.spanCount - this.droppedCount;
  }
  get hasEdits(): boolean {
    return this.edits > 0 || this.droppedCount > 0;
  }

  spanResource(span: number): number {
    const x = this.x;
    return x.ssResource[x.spScope[span]!]!;
  }
  spanScope(span: number): number {
    return this.x.spScope[span]!;
  }
  isDropped(span: number): boolean {
    return this.dropped !== null && this.dropped[span] === 1;
  }
  /** Offset of the 16 trace id bytes in `bytes`, or -1. */
  traceIdOffset(span: number): number {
    return this.x.spTraceId[span]!;
  }
  /** Offset of the 8 span id bytes in `bytes`, or -1. */
  spanIdOffset(span: number): number {
    return this.x.spSpanId[span]!;
  }
  spanName(span: number): string {
    const x = this.x;
    const s = x.spName[span]!;
    return s < 0 ? '' : decodeUtf8(this.bytes, s, x.spNameEnd[span]!);
  }
  spanNameEquals(span: number, name: Uint8Array): boolean {
    const x = this.x;
    const s = x.spName[span]!;
    return s >= 0 ? bytesEqual(this.bytes, s, x.spNameEnd[span]!, name) : name.length === 0;
  }

  /** Finds the first span attribute with this UTF-8 key; fills `found` and returns whether it exists. */
  findSpanAttribute(span: number, key: Uint8Array): boolean {
    const x = this.x;
    return this.findIn(x.spStart[span]!, x.spEnd[span]!, 9, key, 0);
  }

  /** Like findSpanAttribute, continuing after the last match (attributes can repeat on the wire). */
  findNextSpanAttribute(span: number, key: Uint8Array): boolean {
    const from = this.found.fieldEnd;
    return from >= 0 && this.findIn(this.x.spStart[span]!, this.x.spEnd[span]!, 9, key, from);
  }

  findResourceAttribute(resource: number, key: Uint8Array): boolean {
    const x = this.x;
    const s = x.rsResStart[resource]!;
    if (s < 0) {
      this.found.fieldStart = -1;
      return false;
    }
    return this.findIn(s, x.rsResEnd[resource]!, 1, key, 0);
  }

  /** Like findResourceAttribute, continuing after the last match. */
  findNextResourceAttribute(resource: number, key: Uint8Array): boolean {
    const x = this.x;
    const from = this.found.fieldEnd;
    return from >= 0 && x.rsResStart[resource]! >= 0 && this.findIn(x.rsResStart[resource]!, x.rsResEnd[resource]!, 1, key, from);
  }

  private findIn(start: number, end: number, field: number, key: Uint8Array, from: number): boolean {
    const r = this.reader;
    const f = this.found;
    r.reset(this.bytes, from > start ? from : start);
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      if (tag >>> 3 === field && (tag & 7) === WT_LEN) {
        const stop = r.lengthDelimitedEnd(end);
        if (this.keyValueMatches(r.pos, stop, key)) {
          f.fieldStart = tagPos;
          f.fieldEnd = stop;
          return true;
        }
        r.pos = stop;
      } else {
        r.skip(tag & 7, end);
      }
    }
    f.fieldStart = -1;
    return false;
  }

  private keyStart = 0;
  private keyEnd = 0;

  /** Finds the key of the KeyValue in [start,end) into keyStart/keyEnd; false when it has none. */
  private readKey(start: number, end: number): boolean {
    const r = this.kvReader;
    r.reset(this.bytes, start);
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === 0x0a) {
        this.keyEnd = r.lengthDelimitedEnd(end);
        this.keyStart = r.pos;
        return true;
      }
      r.skip(tag & 7, end);
    }
    return false;
  }

  /** Whether the KeyValue in [start,end) has `key` (any key when null); on a match fills the value part of `found`. */
  private keyValueMatches(start: number, end: number, key: Uint8Array | null): boolean {
    const r = this.kvReader;
    r.reset(this.bytes, start);
    let matched = false;
    let vStart = -1;
    let vEnd = -1;
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === 0x0a) {
        const stop = r.lengthDelimitedEnd(end);
        if (key !== null && !bytesEqual(this.bytes, r.pos, stop, key)) return false;
        matched = true;
        r.pos = stop;
      } else if (tag === 0x12) {
        vEnd = r.lengthDelimitedEnd(end);
        vStart = r.pos;
        r.pos = vEnd;
      } else {
        r.skip(tag & 7, end);
      }
    }
    if (!matched && key !== null && key.length !== 0) return false;
    const f = this.found;
    f.kind = 0;
    f.valueStart = -1;
    f.valueEnd = -1;
    if (vStart >= 0) {
      // The AnyValue: its one member (the scan refused more), beside which unknown fields are skipped.
      r.reset(this.bytes, vStart);
      while (r.pos < vEnd) {
        const tag = r.uint32(vEnd);
        const kind = tag >>> 3;
        if (kind < VALUE_STRING || kind > VALUE_BYTES) {
          r.skip(tag & 7, vEnd);
        } else if ((tag & 7) === WT_LEN) {
          const stop = r.lengthDelimitedEnd(vEnd);
          f.kind = kind;
          f.valueStart = r.pos;
          f.valueEnd = stop;
          r.pos = stop;
        } else {
          const s = r.pos;
          r.skip(tag & 7, vEnd);
          f.kind = kind;
          f.valueStart = s;
          f.valueEnd = r.pos;
        }
      }
    }
    return true;
  }

  /** The found value as a string when it is a string, or the first string of a string array; else null. */
  foundString(): string | null {
    const f = this.found;
    if (f.kind === VALUE_STRING) return decodeUtf8(this.bytes, f.valueStart, f.valueEnd);
    if (f.kind === VALUE_ARRAY && this.foundFirstArrayString()) return decodeUtf8(this.bytes, f.valueStart, f.valueEnd);
    return null;
  }

  /**
   * When the found value is an array whose first element is a string, narrows `found` to that string's
   * bytes (kind VALUE_STRING) and returns true. OpenTelemetry records HTTP headers as string arrays.
   */
  foundFirstArrayString(): boolean {
    const f = this.found;
    if (f.kind !== VALUE_ARRAY) return f.kind === VALUE_STRING;
    const r = this.reader;
    r.reset(this.bytes, f.valueStart);
    const end = f.valueEnd;
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === 0x0a) {
        const stop = r.lengthDelimitedEnd(end);
        // First element: an AnyValue; look for its string field.
        while (r.pos < stop) {
          const t = r.uint32(stop);
          if (t === 0x0a) {
            const s = r.lengthDelimitedEnd(stop);
            f.kind = VALUE_STRING;
            f.valueStart = r.pos;
            f.valueEnd = s;
            return true;
          }
          r.skip(t & 7, stop);
        }
        return false;
      }
      r.skip(tag & 7, end);
    }
    return false;
  }

  // ---- edits ----

  /** Removes every attribute with this key from the span. Returns how many were removed. */
  removeSpanAttribute(span: number, key: Uint8Array): number {
    let n = 0;
    let more = this.findSpanAttribute(span, key);
    while (more) {
      this.pushEdit(E_DEL_SPAN, span, this.found.fieldStart, this.found.fieldEnd);
      n++;
      more = this.findNextSpanAttribute(span, key);
    }
    return n;
  }

  /**
   * Removes every attribute whose key is one of `keys`, in one pass over the span: what a processor that
   * strips several keys (a credential, plus identity attributes a sender may have forged) should use.
   */
  removeSpanAttributes(span: number, keys: KeyMatcher): number {
    const x = this.x;
    return this.stripIn(x.spStart[span]!, x.spEnd[span]!, 0x4a, E_DEL_SPAN, span, keys, null);
  }

  /**
   * One pass over a span's attributes: removes every attribute whose key is in `keys` and records in
   * `firstAt[k]` where the first attribute with `keys[k]` began (-1 when absent), so the caller can read
   * the evidence it just stripped with `readAttributeAt`. Returns how many were removed.
   */
  stripSpanAttributes(span: number, keys: KeyMatcher, firstAt: Int32Array): number {
    firstAt.fill(-1, 0, keys.size);
    const x = this.x;
    if (x.watch !== null && x.watch.covers(keys)) {
      // The validating scan already found every attribute that can match: only those are looked at.
      let n = 0;
      const first = x.spWatchFirst[span]!;
      const last = first + x.spWatchCount[span]!;
      for (let w = first; w < last; w++) {
        if (!this.readKey(x.wStart[w]!, x.wEnd[w]!)) continue;
        const k = keys.match(this.bytes, this.keyStart, this.keyEnd);
        if (k < 0) continue;
        if (firstAt[k] === -1) firstAt[k] = x.wTag[w]!;
        this.pushEdit(E_DEL_SPAN, span, x.wTag[w]!, x.wEnd[w]!);
        n++;
      }
      return n;
    }
    return this.stripIn(x.spStart[span]!, x.spEnd[span]!, 0x4a, E_DEL_SPAN, span, keys, firstAt);
  }

  /** Removes every resource attribute whose key is one of `keys`, in one pass. Returns how many. */
  stripResourceAttributes(resource: number, keys: KeyMatcher): number {
    const x = this.x;
    const start = x.rsResStart[resource]!;
    return start < 0 ? 0 : this.stripIn(start, x.rsResEnd[resource]!, 0x0a, E_DEL_RES, resource, keys, null);
  }

  /** The walk behind the strip methods: KeyValue fields with this tag in [start, end). */
  private stripIn(start: number, end: number, kvTag: number, kind: number, target: number, keys: KeyMatcher, firstAt: Int32Array | null): number {
    const r = this.reader;
    r.reset(this.bytes, start);
    let n = 0;
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      if (tag === kvTag) {
        const stop = r.lengthDelimitedEnd(end);
        const k = this.readKey(r.pos, stop) ? keys.match(this.bytes, this.keyStart, this.keyEnd) : -1;
        if (k >= 0) {
          if (firstAt !== null && firstAt[k] === -1) firstAt[k] = tagPos;
          this.pushEdit(kind, target, tagPos, stop);
          n++;
        }
        r.pos = stop;
      } else {
        r.skip(tag & 7, end);
      }
    }
    return n;
  }

  /** Reads the KeyValue field starting at `fieldStart` (as recorded by stripSpanAttributes) into `found`. */
  readAttributeAt(fieldStart: number): boolean {
    const r = this.reader;
    r.reset(this.bytes, fieldStart);
    const end = this.bytes.length;
    r.uint32(end);
    const stop = r.lengthDelimitedEnd(end);
    const start = r.pos;
    this.found.fieldStart = fieldStart;
    this.found.fieldEnd = stop;
    return this.keyValueMatches(start, stop, null);
  }

  /**
   * Appends pre-encoded span attributes: a run of complete KeyValue fields (tag 9), as made by
   * `encodeSpanAttributes`. One edit however many attributes: what a processor that writes the same
   * attributes on many spans precomputes once.
   */
  appendSpanAttributesEncoded(span: number, fields: Uint8Array): void {
    const start = this.reserveArena(fields.length);
    this.arena!.set(fields, start);
    this.pushEdit(E_INS_SPAN, span, start, start + fields.length);
  }

  /** Adds an attribute the caller knows is absent (it just removed the key): no search. */
  appendSpanAttribute(span: number, key: Uint8Array, value: EncodedValue): void {
    this.appendKeyValue(E_INS_SPAN, span, 9, key, value);
  }

  removeResourceAttribute(resource: number, key: Uint8Array): number {
    const x = this.x;
    const s = x.rsResStart[resource]!;
    if (s < 0) return 0;
    let n = 0;
    let from = 0;
    while (this.findIn(s, x.rsResEnd[resource]!, 1, key, from)) {
      this.pushEdit(E_DEL_RES, resource, this.found.fieldStart, this.found.fieldEnd);
      from = this.found.fieldEnd;
      n++;
    }
    return n;
  }

  /** Sets (replaces) a span attribute. `value` is an encoded AnyValue from `AttributeValueEncoder`. */
  /**
   * Sets (replaces) a span attribute. `value` is an encoded AnyValue from `AttributeValueEncoder`. Reads
   * see the bytes as received, but a later set of the same key replaces an earlier set: the span never
   * carries the key twice.
   */
  setSpanAttribute(span: number, key: Uint8Array, value: EncodedValue): void {
    this.removeSpanAttribute(span, key);
    this.cancelSetsOf(E_INS_SPAN, span, key);
    this.appendKeyValue(E_INS_SPAN, span, 9, key, value);
    this.linkSet(span, this.edits - 1, false);
  }

  setResourceAttribute(resource: number, key: Uint8Array, value: EncodedValue): void {
    this.removeResourceAttribute(resource, key);
    this.cancelSetsOf(E_INS_RES, resource, key);
    this.appendKeyValue(E_INS_RES, resource, 1, key, value);
    this.linkSet(resource, this.edits - 1, true);
  }

  // Per target, the insertions made by set*Attribute, linked newest first, so a repeated set can cancel
  // the earlier one without scanning every edit of the batch.
  private setHeadSpan: Int32Array | null = null;
  private setHeadRes: Int32Array | null = null;
  private setNext: Int32Array | null = null;

  private linkSet(target: number, edit: number, resource: boolean): void {
    let heads = resource ? this.setHeadRes : this.setHeadSpan;
    if (heads === null) {
      heads = new Int32Array(resource ? this.x.resources : this.x.spans).fill(-1);
      if (resource) this.setHeadRes = heads;
      else this.setHeadSpan = heads;
    }
    if (this.setNext === null || this.setNext.length < this.eKind!.length) {
      const next = new Int32Array(this.eKind!.length);
      if (this.setNext !== null) next.set(this.setNext);
      this.setNext = next;
    }
    this.setNext[edit] = heads[target]!;
    heads[target] = edit;
  }

  private cancelSetsOf(kind: number, target: number, key: Uint8Array): void {
    const heads = kind === E_INS_RES ? this.setHeadRes : this.setHeadSpan;
    if (heads === null) return;
    for (let i = heads[target]!; i >= 0; i = this.setNext![i]!) {
      if (this.eKind![i] === kind && this.insertedKeyEquals(this.eA![i]!, this.eB![i]!, key)) this.eKind![i] = E_CANCELLED;
    }
  }

  /** Whether the single KeyValue field at arena[start, end) has this key. */
  private insertedKeyEquals(start: number, end: number, key: Uint8Array): boolean {
    const r = this.kvReader;
    r.reset(this.arena!, start);
    r.uint32(end);
    const kvEnd = r.lengthDelimitedEnd(end);
    while (r.pos < kvEnd) {
      const tag = r.uint32(kvEnd);
      if (tag === 0x0a) {
        const stop = r.lengthDelimitedEnd(kvEnd);
        return bytesEqual(this.arena!, r.pos, stop, key);
      }
      r.skip(tag & 7, kvEnd);
    }
    return false;
  }

  setSpanString(span: number, key: Uint8Array, value: string): void {
    this.setSpanAttribute(span, key, encodeString(value));
  }
  setSpanBool(span: number, key: Uint8Array, value: boolean): void {
    this.setSpanAttribute(span, key, value ? ENCODED_TRUE : ENCODED_FALSE);
  }

  dropSpan(span: number): void {
    if (this.dropped === null) this.dropped = new Uint8Array(this.x.spans);
    if (this.dropped[span] === 0) {
      this.dropped[span] = 1;
      this.droppedCount++;
    }
  }

  private appendKeyValue(kind: number, target: number, field: number, key: Uint8Array, value: EncodedValue): void {
    const kvLen = lenFieldSize(key.length) + lenFieldSize(value.length);
    const total = 1 + varintSize(kvLen) + kvLen;
    const start = this.reserveArena(total);
    const a = this.arena!;
    let p = writeLenHeader(a, start, field, kvLen);
    p = writeLenHeader(a, p, 1, key.length);
    a.set(key, p);
    p += key.length;
    p = writeLenHeader(a, p, 2, value.length);
    a.set(value, p);
    p += value.length;
    this.pushEdit(kind, target, start, p);
  }

  private reserveArena(n: number): number {
    if (this.arena === null) this.arena = new Uint8Array(Math.max(4096, n));
    else if (this.arenaUsed + n > this.arena.length) {
      const next = new Uint8Array(Math.max(this.arena.length * 2, this.arenaUsed + n));
      next.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = next;
    }
    const start = this.arenaUsed;
    this.arenaUsed += n;
    return start;
  }

  private pushEdit(kind: number, target: number, a: number, b: number, c = 0, d = 0): void {
    if (this.eKind === null || this.edits === this.eKind.length) {
      const n = this.eKind === null ? 64 : this.eKind.length * 2;
      const k = new Uint8Array(n);
      const t = new Int32Array(n);
      const ea = new Int32Array(n);
      const eb = new Int32Array(n);
      const ec = new Int32Array(n);
      const ed = new Int32Array(n);
      if (this.eKind !== null) {
        k.set(this.eKind);
        t.set(this.eTarget!);
        ea.set(this.eA!);
        eb.set(this.eB!);
        ec.set(this.eC!);
        ed.set(this.eD!);
      }
      this.eKind = k;
      this.eTarget = t;
      this.eA = ea;
      this.eB = eb;
      this.eC = ec;
      this.eD = ed;
    }
    // The same attribute may be removed twice (by two processors): the encoder, which sorts each target's
    // deletions anyway, counts such duplicates once, so recording stays O(1).
    const i = this.edits++;
    this.eKind[i] = kind;
    this.eTarget![i] = target;
    this.eA![i] = a;
    this.eB![i] = b;
    this.eC![i] = c;
    this.eD![i] = d;
  }

  /**
   * Replaces the whole field at bytes[start, end) inside span `span`'s content with `field` (a complete
   * field: tag, length, content; empty to remove it). Fields that overlap an earlier removal are left to it.
   */
  replaceInSpan(span: number, start: number, end: number, field: Uint8Array): void {
    this.pushReplacement(E_REP_SPAN, span, start, end, field);
  }

  /** Like replaceInSpan, for a field inside resource `resource`'s Resource message. */
  replaceInResource(resource: number, start: number, end: number, field: Uint8Array): void {
    this.pushReplacement(E_REP_RES, resource, start, end, field);
  }

  /** Like replaceInSpan, for a field of ScopeSpans `scope` outside its spans (its InstrumentationScope). */
  replaceInScope(scope: number, start: number, end: number, field: Uint8Array): void {
    this.pushReplacement(E_REP_SCOPE, scope, start, end, field);
  }

  private pushReplacement(kind: number, target: number, start: number, end: number, field: Uint8Array): void {
    const c = this.reserveArena(field.length);
    this.arena!.set(field, c);
    this.pushEdit(kind, target, start, end, c, c + field.length);
  }

  // ---- encoding ----

  /** The request with every edit applied; the original bytes when there are none. */
  encode(): Uint8Array {
    if (this.edits === 0 && this.droppedCount === 0) return this.bytes;
    return new Encoder(this, this.x, 0, this.x.spans).run();
  }

  /** A request holding only spans [from, to) (after edits): how oversized batches are split. */
  encodeRange(from: number, to: number): Uint8Array {
    return new Encoder(this, this.x, from, to).run();
  }

  /** @internal used by the encoder */
  editState(): EditState {
    return {
      count: this.edits,
      kind: this.eKind,
      target: this.eTarget,
      a: this.eA,
      b: this.eB,
      c: this.eC,
      d: this.eD,
      arena: this.arena,
      dropped: this.dropped,
    };
  }
}

interface EditState {
  count: number;
  kind: Uint8Array | null;
  target: Int32Array | null;
  a: Int32Array | null;
  b: Int32Array | null;
  c: Int32Array | null;
  d: Int32Array | null;
  arena: Uint8Array | null;
  dropped: Uint8Array | null;
}

/** One encoding pass. Sizes are computed bottom-up first, then bytes are written once into an exact buffer. */
class Encoder {
  private readonly src: Buffer;
  private readonly arena: Buffer | null;
  private readonly e: EditState;
  private out!: Buffer;
  // Per target: first edit, linked through eNext (sorted by source offset when written).
  private readonly spanFirst: Int32Array;
  private readonly resFirst: Int32Array;
  private readonly scopeFirst: Int32Array;
  /** The next scope edit to apply while a scope is written. */
  private scopeCursor = -1;
  private readonly eNext: Int32Array;
  private readonly spanLen: Int32Array; // new content length; -1 = dropped
  private readonly scopeLen: Int32Array; // -1 = dropped
  private readonly scopeChanged: Uint8Array; // 1 = rewritten (a span in it dropped or edited)
  private readonly resLen: Int32Array; // ResourceSpans new content length; -1 = dropped
  private readonly resMsgLen: Int32Array; // Resource message new content length; -1 = unchanged/absent

  constructor(
    batch: TraceBatch,
    private readonly x: BatchIndex,
    private readonly from: number,
    private readonly to: number,
  ) {
    // Buffer.copy moves bytes natively without the view `subarray` would allocate for every range.
    this.src = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    this.e = batch.editState();
    const arena = this.e.arena;
    this.arena = arena === null ? null : Buffer.from(arena.buffer, arena.byteOffset, arena.byteLength);
    this.spanFirst = new Int32Array(x.spans).fill(-1);
    this.resFirst = new Int32Array(x.resources).fill(-1);
    this.scopeFirst = new Int32Array(x.scopes).fill(-1);
    this.eNext = new Int32Array(this.e.count);
    this.spanLen = new Int32Array(x.spans);
    this.scopeLen = new Int32Array(x.scopes);
    this.scopeChanged = new Uint8Array(x.scopes);
    this.resLen = new Int32Array(x.resources);
    this.resMsgLen = new Int32Array(x.resources).fill(-1);
  }

  run(): Uint8Array {
    const { x, e } = this;
    const isRange = this.from !== 0 || this.to !== x.spans;
    // Link edits per target, keeping source order for deletions (insertions have no source order).
    for (let i = e.count - 1; i >= 0; i--) {
      const k = e.kind![i]!;
      const t = e.target![i]!;
      if (k === E_CANCELLED) continue;
      if (isSpanEdit(k)) {
        this.eNext[i] = this.spanFirst[t]!;
        this.spanFirst[t] = i;
      } else if (k === E_REP_SCOPE) {
        this.eNext[i] = this.scopeFirst[t]!;
        this.scopeFirst[t] = i;
      } else {
        this.eNext[i] = this.resFirst[t]!;
        this.resFirst[t] = i;
      }
    }
    for (let p = 0; p < x.spans; p++) this.spanFirst[p] = this.sortDeletions(this.spanFirst[p]!);
    for (let r = 0; r < x.resources; r++) this.resFirst[r] = this.sortDeletions(this.resFirst[r]!);
    for (let s = 0; s < x.scopes; s++) this.scopeFirst[s] = this.sortDeletions(this.scopeFirst[s]!);

    const dropped = e.dropped;
    for (let p = 0; p < x.spans; p++) {
      if (p < this.from || p >= this.to || (dropped !== null && dropped[p] === 1)) {
        this.spanLen[p] = -1;
        continue;
      }
      this.spanLen[p] = x.spEnd[p]! - x.spStart[p]! + this.delta(this.spanFirst[p]!);
    }
    // Unchanged spans and scopes are copied with their original headers (which a sender may have written
    // with non-minimal varints); rewritten ones get fresh minimal headers. Sizes follow the same rule.
    // A range holds only its resources: top-level bytes between them (unknown fields) are not copied.
    let total = isRange ? 0 : this.src.length;
    for (let r = 0; r < x.resources; r++) {
      if (isRange) total += x.rsEnd[r]! - x.rsTag[r]!;
      const resOld = x.rsEnd[r]! - x.rsStart[r]!;
      let rsLen = resOld;
      let keptScopes = 0;
      const fs = x.rsFirstScope[r]!;
      const ns = x.rsScopeCount[r]!;
      for (let s = fs; s < fs + ns; s++) {
        const oldLen = x.ssEnd[s]! - x.ssStart[s]!;
        let len = oldLen;
        let kept = 0;
        const fp = x.ssFirstSpan[s]!;
        const np = x.ssSpanCount[s]!;
        let changed = false;
        for (let p = fp; p < fp + np; p++) {
          const old = x.spEnd[p]! - x.spTag[p]!;
          const nl = this.spanLen[p]!;
          if (nl < 0) {
            len -= old;
            changed = true;
          } else {
            kept++;
            if (this.spanFirst[p]! >= 0) {
              len += lenFieldSize(nl) - old;
              changed = true;
            }
          }
        }
        if (this.scopeFirst[s]! >= 0) {
          len += this.delta(this.scopeFirst[s]!);
          changed = true;
        }
        const keep = kept > 0 || (np === 0 && !isRange);
        this.scopeLen[s] = keep ? len : -1;
        this.scopeChanged[s] = changed ? 1 : 0;
        const oldEnc = x.ssEnd[s]! - x.ssTag[s]!;
        if (keep) {
          keptScopes++;
          if (changed) rsLen += lenFieldSize(len) - oldEnc;
        } else rsLen -= oldEnc;
      }
      const fr = this.resFirst[r]!;
      if (fr >= 0) {
        const hasMsg = x.rsResTag[r]! >= 0;
        const oldContent = hasMsg ? x.rsResEnd[r]! - x.rsResStart[r]! : 0;
        const newContent = oldContent + this.delta(fr);
        this.resMsgLen[r] = newContent;
        rsLen += lenFieldSize(newContent) - (hasMsg ? x.rsResEnd[r]! - x.rsResTag[r]! : 0);
      }
      const keep = keptScopes > 0 || (ns === 0 && !isRange);
      this.resLen[r] = keep ? rsLen : -1;
      const oldEnc = x.rsEnd[r]! - x.rsTag[r]!;
      total += keep ? lenFieldSize(rsLen) - oldEnc : -oldEnc;
    }

    // Every byte is written (checked below), so the buffer need not be zeroed first.
    this.out = Buffer.allocUnsafeSlow(total);
    let pos = 0;
    let cur = 0;
    for (let r = 0; r < x.resources; r++) {
      if (!isRange) pos = this.copy(cur, x.rsTag[r]!, pos);
      cur = x.rsEnd[r]!;
      if (this.resLen[r]! >= 0) pos = this.writeResourceSpans(r, pos);
    }
    if (!isRange) pos = this.copy(cur, this.src.length, pos);
    if (pos !== total) throw new Error(`encoder size mismatch: wrote ${pos}, computed ${total}`);
    return this.out;
  }

  /**
   * Size change of a target's sorted edit list. A placed edit overlapping the one before it (the same
   * attribute removed by two processors) is skipped, here and when writing.
   */
  private delta(first: number): number {
    const e = this.e;
    let d = 0;
    let cur = -1;
    for (let i = first; i >= 0; i = this.eNext[i]!) {
      const k = e.kind![i]!;
      const a = e.a![i]!;
      if (isPlaced(k)) {
        if (a < cur) continue;
        d -= e.b![i]! - a;
        if (isReplacement(k)) d += e.d![i]! - e.c![i]!;
        cur = e.b![i]!;
      } else d += e.b![i]! - a;
    }
    return d;
  }

  /** Insertion sort of a short edit list by kind (deletions first) then source offset. */
  private sortDeletions(first: number): number {
    if (first < 0 || this.eNext[first]! < 0) return first;
    let sorted = -1;
    let i = first;
    while (i >= 0) {
      const next = this.eNext[i]!;
      const ki = this.sortKey(i);
      if (sorted < 0 || this.sortKey(sorted) > ki) {
        this.eNext[i] = sorted;
        sorted = i;
      } else {
        let p = sorted;
        while (this.eNext[p]! >= 0 && this.sortKey(this.eNext[p]!) <= ki) p = this.eNext[p]!;
        this.eNext[i] = this.eNext[p]!;
        this.eNext[p] = i;
      }
      i = next;
    }
    return sorted;
  }

  private sortKey(i: number): number {
    return isPlaced(this.e.kind![i]!) ? this.e.a![i]! : 0x7fffffff;
  }

  private copy(from: number, to: number, pos: number): number {
    if (to > from) {
      this.src.copy(this.out, pos, from, to);
      return pos + (to - from);
    }
    return pos;
  }

  /** Copies [start,end) applying the deletions and replacements in the list, then appends its insertions. */
  private writeEdited(start: number, end: number, first: number, pos: number): number {
    const e = this.e;
    let cur = start;
    for (let i = first; i >= 0; i = this.eNext[i]!) {
      const k = e.kind![i]!;
      if (isPlaced(k) && e.a![i]! >= cur) {
        pos = this.copy(cur, e.a![i]!, pos);
        if (isReplacement(k)) pos = this.writeArena(e.c![i]!, e.d![i]!, pos);
        cur = e.b![i]!;
      }
    }
    pos = this.copy(cur, end, pos);
    for (let i = first; i >= 0; i = this.eNext[i]!) {
      const k = e.kind![i]!;
      if (k === E_INS_SPAN || k === E_INS_RES) {
        this.arena!.copy(this.out, pos, e.a![i]!, e.b![i]!);
        pos += e.b![i]! - e.a![i]!;
      }
    }
    return pos;
  }

  private writeResourceSpans(r: number, pos: number): number {
    const x = this.x;
    const out = this.out;
    pos = writeLenHeader(out, pos, 1, this.resLen[r]!);
    const resEdited = this.resMsgLen[r]! >= 0;
    const resTag = x.rsResTag[r]!;
    let cur = x.rsStart[r]!;
    if (resEdited && resTag < 0) {
      // No Resource message was sent: the new one goes first.
      pos = writeLenHeader(out, pos, 1, this.resMsgLen[r]!);
      pos = this.writeEdited(0, 0, this.resFirst[r]!, pos);
    }
    let resourcePending = resEdited && resTag >= 0;
    const fs = x.rsFirstScope[r]!;
    const ns = x.rsScopeCount[r]!;
    for (let s = fs; s <= fs + ns; s++) {
      const scopeTag = s < fs + ns ? x.ssTag[s]! : 0x7fffffff;
      if (resourcePending && resTag < scopeTag) {
        pos = this.copy(cur, resTag, pos);
        pos = writeLenHeader(out, pos, 1, this.resMsgLen[r]!);
        pos = this.writeEdited(x.rsResStart[r]!, x.rsResEnd[r]!, this.resFirst[r]!, pos);
        cur = x.rsResEnd[r]!;
        resourcePending = false;
      }
      if (s === fs + ns) break;
      pos = this.copy(cur, scopeTag, pos);
      cur = x.ssEnd[s]!;
      if (this.scopeLen[s]! >= 0) pos = this.writeScope(s, pos);
    }
    return this.copy(cur, x.rsEnd[r]!, pos);
  }

  private writeArena(from: number, to: number, pos: number): number {
    if (to > from) {
      this.arena!.copy(this.out, pos, from, to);
      return pos + (to - from);
    }
    return pos;
  }

  /** Copies the bytes of a scope between its spans, applying the scope's replacements that fall there. */
  private copyScopeGap(from: number, to: number, pos: number): number {
    const e = this.e;
    let cur = from;
    let i = this.scopeCursor;
    while (i >= 0 && e.a![i]! < to) {
      if (e.a![i]! >= cur) {
        pos = this.copy(cur, e.a![i]!, pos);
        pos = this.writeArena(e.c![i]!, e.d![i]!, pos);
        cur = e.b![i]!;
      }
      i = this.eNext[i]!;
    }
    this.scopeCursor = i;
    return this.copy(cur, to, pos);
  }

  private writeScope(s: number, pos: number): number {
    const x = this.x;
    const fp = x.ssFirstSpan[s]!;
    const np = x.ssSpanCount[s]!;
    if (this.scopeChanged[s] === 0) return this.copy(x.ssTag[s]!, x.ssEnd[s]!, pos);
    pos = writeLenHeader(this.out, pos, 2, this.scopeLen[s]!);
    let cur = x.ssStart[s]!;
    this.scopeCursor = this.scopeFirst[s]!;
    for (let p = fp; p < fp + np; p++) {
      pos = this.copyScopeGap(cur, x.spTag[p]!, pos);
      cur = x.spEnd[p]!;
      const len = this.spanLen[p]!;
      if (len < 0) continue;
      if (this.spanFirst[p]! < 0) pos = this.copy(x.spTag[p]!, x.spEnd[p]!, pos);
      else {
        pos = writeLenHeader(this.out, pos, 2, len);
        pos = this.writeEdited(x.spStart[p]!, x.spEnd[p]!, this.spanFirst[p]!, pos);
      }
    }
    return this.copyScopeGap(cur, x.ssEnd[s]!, pos);
  }
}

// ---- attribute value encoding ----

/** An encoded AnyValue message body (without its own tag and length). */
export type EncodedValue = Uint8Array;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

export function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  return utf8Decoder.decode(buf.subarray(start, end));
}

export function encodeKey(key: string): Uint8Array {
  return utf8.encode(key);
}

export function encodeString(value: string): EncodedValue {
  const s = utf8.encode(value);
  const out = new Uint8Array(lenFieldSize(s.length));
  const p = writeLenHeader(out, 0, VALUE_STRING, s.length);
  out.set(s, p);
  return out;
}

export const ENCODED_TRUE: EncodedValue = Uint8Array.of(0x10, 1);
export const ENCODED_FALSE: EncodedValue = Uint8Array.of(0x10, 0);

export function encodeBool(value: boolean): EncodedValue {
  return value ? ENCODED_TRUE : ENCODED_FALSE;
}

export function encodeInt(value: number | bigint): EncodedValue {
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [0x18];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Uint8Array.from(bytes);
}

export function encodeDouble(value: number): EncodedValue {
  const out = new Uint8Array(9);
  out[0] = 0x21;
  new DataView(out.buffer).setFloat64(1, value, true);
  return out;
}

export function encodeStringArray(values: readonly string[]): EncodedValue {
  const items = values.map((v) => encodeString(v));
  let arrLen = 0;
  for (const it of items) arrLen += lenFieldSize(it.length);
  const out = new Uint8Array(lenFieldSize(arrLen));
  let p = writeLenHeader(out, 0, VALUE_ARRAY, arrLen);
  for (const it of items) {
    p = writeLenHeader(out, p, 1, it.length);
    out.set(it, p);
    p += it.length;
  }
  return out;
}

const encodedKeys = new Map<string, Uint8Array>();

/** Encodes attributes as a run of span attribute fields (KeyValue, field 9) for appendSpanAttributesEncoded. */
export function encodeSpanAttributes(attrs: readonly (readonly [string, EncodedValue])[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [key, value] of attrs) {
    let k = encodedKeys.get(key);
    if (k === undefined) {
      k = utf8.encode(key);
      // Keys written over and over are few (configured attribute names); bound it anyway.
      if (encodedKeys.size < 1024) encodedKeys.set(key, k);
    }
    const kvLen = lenFieldSize(k.length) + lenFieldSize(value.length);
    const out = new Uint8Array(lenFieldSize(kvLen));
    let p = writeLenHeader(out, 0, 9, kvLen);
    p = writeLenHeader(out, p, 1, k.length);
    out.set(k, p);
    p += k.length;
    p = writeLenHeader(out, p, 2, value.length);
    out.set(value, p);
    parts.push(out);
  }
  return Buffer.concat(parts);
}

// Re-exported for processors that write their own varints.
export { writeVarint, varintSize };
