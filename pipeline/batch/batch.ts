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
 *
 * Over 500 lines on purpose: TraceBatch is one class, the API processors read and edit through; the
 * scanner, index, encoder and value encoders live in their own modules beside it.
 */
import type { BatchIndex } from './batch-index.js';
import { E_CANCELLED, E_DEL_RES, E_DEL_SPAN, E_INS_RES, E_INS_SPAN, E_REP_RES, E_REP_SCOPE, E_REP_SPAN, type EditState } from './edits.js';
import { Encoder } from './encoder.js';
import type { Inspection } from './inspection.js';
import { KeyMatcher } from './key-matcher.js';
import { scanner } from './scanner.js';
import { ENCODED_FALSE, ENCODED_TRUE, VALUE_ARRAY, VALUE_BYTES, VALUE_STRING, decodeUtf8, encodeString, type EncodedValue } from './values.js';
import { WireReader, WT_LEN, bytesEqual, lenFieldSize, varintSize, writeLenHeader } from './wire.js';

export { KeyMatcher };
export * from './values.js';

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
  scopeResource(scope: number): number {
    return this.x.ssResource[scope]!;
  }
  /** Scopes and spans are numbered in byte order, so each scope's spans are a run: its first and count. */
  scopeFirstSpan(scope: number): number {
    return this.x.ssFirstSpan[scope]!;
  }
  scopeSpanCount(scope: number): number {
    return this.x.ssSpanCount[scope]!;
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
    return new Encoder(this.bytes, this.editState(), this.x, 0, this.x.spans).run();
  }

  /** A request holding only spans [from, to) (after edits): how oversized batches are split. */
  encodeRange(from: number, to: number): Uint8Array {
    return new Encoder(this.bytes, this.editState(), this.x, from, to).run();
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
