/** The index a scan builds: parallel typed arrays, one entry per resource, scope and span, in byte order. */
import { invalidArgument } from '../service/errors.js';
import type { Inspection } from './inspection.js';
import type { KeyMatcher } from './key-matcher.js';

export class BatchIndex {
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
