/**
 * What a statement is evaluated against: one resource, scope, span or span event of a batch, read from
 * the batch's bytes through its index. A span's scalar fields (kind, times, status...) are located by one
 * walk over its top-level fields, made the first time a statement reads one of them and reused by every
 * later read of that span; attributes are found by key without decoding the others.
 *
 * The transform processor's writes are held here per unit (materialised attribute maps, a new name or
 * status) so that each later statement reads what the earlier ones wrote, and become batch edits once all
 * statements have run on the unit (see flush).
 */
import type { TraceBatch } from '../pipeline/batch/batch.js';
import { WT_I32, WT_I64, WT_LEN, WT_VARINT, WireReader, lenFieldSize, writeLenHeader } from '../pipeline/batch/wire.js';
import { decodeKeyValues, decodePayload, encodeAnyValue, encodeKeyValues, stringField, uintField } from './any-value.js';
import type { OttlMap, Value } from './values.js';

export const CTX_RESOURCE = 0;
export const CTX_SCOPE = 1;
export const CTX_SPAN = 2;
export const CTX_SPANEVENT = 3;
export type ContextLevel = typeof CTX_RESOURCE | typeof CTX_SCOPE | typeof CTX_SPAN | typeof CTX_SPANEVENT;
export const CONTEXT_NAMES = ['resource', 'scope', 'span', 'spanevent'] as const;
export type ContextName = (typeof CONTEXT_NAMES)[number];

// Span field numbers (opentelemetry/proto/trace/v1/trace.proto).
export const SPAN_TRACE_STATE = 3;
export const SPAN_PARENT_SPAN_ID = 4;
export const SPAN_NAME = 5;
export const SPAN_KIND = 6;
export const SPAN_START = 7;
export const SPAN_END = 8;
export const SPAN_ATTRIBUTES = 9;
export const SPAN_DROPPED_ATTRIBUTES = 10;
export const SPAN_EVENTS = 11;
export const SPAN_DROPPED_EVENTS = 12;
export const SPAN_DROPPED_LINKS = 14;
export const SPAN_STATUS = 15;
export const SPAN_FLAGS = 16;
const SPAN_FIELDS = 17;
// Status, Event and InstrumentationScope field numbers.
const STATUS_MESSAGE = 2;
const STATUS_CODE = 3;
export const EVENT_TIME = 1;
export const EVENT_NAME = 2;
export const EVENT_ATTRIBUTES = 3;
export const EVENT_DROPPED_ATTRIBUTES = 4;
export const SCOPE_NAME = 1;
export const SCOPE_VERSION = 2;
export const SCOPE_ATTRIBUTES = 3;
export const SCOPE_DROPPED_ATTRIBUTES = 4;

const EMPTY = new Uint8Array(0);

/** A key deleted by a keyed write. */
export const DELETED: unique symbol = Symbol('deleted');

function withKeyed(m: OttlMap, keyed: Map<string, Value | typeof DELETED> | null): OttlMap {
  if (keyed !== null) {
    for (const [k, v] of keyed) {
      if (v === DELETED) m.delete(k);
      else m.set(k, v);
    }
  }
  return m;
}

const keyCache = new Map<string, Uint8Array>();

/** UTF-8 bytes of an attribute key; the keys statements write are few (those in the config), so kept. */
function keyBytes(k: string): Uint8Array {
  let b = keyCache.get(k);
  if (b === undefined) {
    b = Buffer.from(k, 'utf8');
    if (keyCache.size < 4096) keyCache.set(k, b);
  }
  return b;
}

/** Where each top-level field of one message lies: field tag offset, payload start and end (-1: absent). */
class FieldTable {
  readonly tag: Int32Array;
  readonly start: Int32Array;
  readonly end: Int32Array;
  constructor(n: number) {
    this.tag = new Int32Array(n);
    this.start = new Int32Array(n);
    this.end = new Int32Array(n);
  }

  /** Records the last occurrence of each singular field below `n` in buf[start, end). */
  fill(r: WireReader, buf: Uint8Array, start: number, end: number): void {
    this.tag.fill(-1);
    this.start.fill(-1);
    this.end.fill(-1);
    const n = this.tag.length;
    r.reset(buf, start);
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      const f = tag >>> 3;
      const wt = tag & 7;
      if (wt === WT_LEN) {
        const stop = r.lengthDelimitedEnd(end);
        if (f < n) this.set(f, tagPos, r.pos, stop);
        r.pos = stop;
      } else {
        const at = r.pos;
        r.skip(wt, end);
        if (f < n && (wt === WT_VARINT || wt === WT_I64 || wt === WT_I32)) this.set(f, tagPos, at, r.pos);
      }
    }
  }

  private set(f: number, tag: number, s: number, e: number): void {
    this.tag[f] = tag;
    this.start[f] = s;
    this.end[f] = e;
  }
}

function readUint(buf: Uint8Array, s: number, e: number): bigint {
  let v = 0n;
  let shift = 0n;
  for (let p = s; p < e; p++) {
    v |= BigInt(buf[p]! & 0x7f) << shift;
    if (buf[p]! < 0x80) break;
    shift += 7n;
  }
  return v;
}

function lenField(field: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(lenFieldSize(body.length));
  out.set(body, writeLenHeader(out, 0, field, body.length));
  return out;
}

export class Target {
  batch!: TraceBatch;
  level: ContextLevel = CTX_SPAN;
  resource = -1;
  scope = -1;
  span = -1;
  /** The event's field in its span: tag offset, content start and end; -1 outside the spanevent context. */
  eventTag = -1;
  eventStart = -1;
  eventEnd = -1;

  private readonly r = new WireReader();
  private readonly spanTable = new FieldTable(SPAN_FIELDS);
  private spanTableFor = -1;
  private readonly statusTable = new FieldTable(4);
  private statusFor = -1;
  private readonly eventTable = new FieldTable(5);
  private eventTableFor = -1;
  private readonly scopeTable = new FieldTable(5);
  private readonly resourceTable = new FieldTable(3);
  private resourceTableFor = -1;
  private scopeTableFor = -1;

  // Writes of the transform processor for the current unit; null/undefined when nothing was written.
  /** A whole attribute list, materialised because an editor changes the list as a map. */
  spanAttrs: OttlMap | null = null;
  resourceAttrs: OttlMap | null = null;
  /**
   * Writes to single keys (`set(attributes["k"], v)`, `delete_key`) while the list is not materialised:
   * the common transform costs one set per key, not a decode and re-encode of every attribute.
   */
  spanKeyed: Map<string, Value | typeof DELETED> | null = null;
  resourceKeyed: Map<string, Value | typeof DELETED> | null = null;
  name: string | null = null;
  kind = -1;
  statusCode = -1;
  statusMessage: string | null = null;
  /** The transform processor's `cache` map, for the current unit. */
  cache: OttlMap | null = null;

  /** Points the target at a batch; forgets every table and write. */
  reset(batch: TraceBatch, level: ContextLevel): void {
    this.batch = batch;
    this.level = level;
    this.resource = -1;
    this.scope = -1;
    this.span = -1;
    this.spanTableFor = -1;
    this.statusFor = -1;
    this.eventTableFor = -1;
    this.scopeTableFor = -1;
    this.resourceTableFor = -1;
    this.clearWrites();
  }

  clearWrites(): void {
    this.spanAttrs = null;
    this.resourceAttrs = null;
    this.spanKeyed = null;
    this.resourceKeyed = null;
    this.name = null;
    this.kind = -1;
    this.statusCode = -1;
    this.statusMessage = null;
    this.cache = null;
  }

  atResource(resource: number): void {
    this.resource = resource;
    this.scope = -1;
    this.span = -1;
  }

  atScope(scope: number): void {
    this.scope = scope;
    this.resource = this.batch.scopeResource(scope);
    this.span = -1;
  }

  atSpan(span: number): void {
    this.span = span;
    this.scope = this.batch.spanScope(span);
    this.resource = this.batch.spanResource(span);
    this.eventTag = -1;
  }

  atEvent(tag: number, start: number, end: number): void {
    this.eventTag = tag;
    this.eventStart = start;
    this.eventEnd = end;
  }

  // ---- span fields ----

  private table(): FieldTable {
    if (this.spanTableFor !== this.span) {
      const b = this.batch;
      this.spanTable.fill(this.r, b.bytes, b.spanStart(this.span), b.spanEnd(this.span));
      this.spanTableFor = this.span;
    }
    return this.spanTable;
  }

  /** Payload range of a singular span field, or start -1. */
  spanFieldStart(f: number): number {
    return this.table().start[f]!;
  }
  spanFieldEnd(f: number): number {
    return this.table().end[f]!;
  }

  spanUint(f: number): bigint {
    const t = this.table();
    const s = t.start[f]!;
    return s < 0 ? 0n : readUint(this.batch.bytes, s, t.end[f]!);
  }

  spanFixed64(f: number): bigint {
    const s = this.table().start[f]!;
    return s < 0 ? 0n : Buffer.from(this.batch.bytes.buffer, this.batch.bytes.byteOffset + s, 8).readBigUInt64LE(0);
  }

  spanFixed32(f: number): bigint {
    const s = this.table().start[f]!;
    return s < 0 ? 0n : BigInt(Buffer.from(this.batch.bytes.buffer, this.batch.bytes.byteOffset + s, 4).readUInt32LE(0));
  }

  spanString(f: number): string {
    const t = this.table();
    const s = t.start[f]!;
    return s < 0 ? '' : Buffer.from(this.batch.bytes.buffer, this.batch.bytes.byteOffset + s, t.end[f]! - s).toString('utf8');
  }

  spanBytes(f: number): Uint8Array {
    const t = this.table();
    const s = t.start[f]!;
    return s < 0 ? EMPTY : this.batch.bytes.slice(s, t.end[f]!);
  }

  private status(): FieldTable {
    if (this.statusFor !== this.span) {
      const t = this.table();
      const s = t.start[SPAN_STATUS]!;
      if (s < 0) {
        this.statusTable.tag.fill(-1);
        this.statusTable.start.fill(-1);
        this.statusTable.end.fill(-1);
      } else {
        this.statusTable.fill(this.r, this.batch.bytes, s, t.end[SPAN_STATUS]!);
      }
      this.statusFor = this.span;
    }
    return this.statusTable;
  }

  statusCodeRead(): bigint {
    if (this.statusCode >= 0) return BigInt(this.statusCode);
    const t = this.status();
    const s = t.start[STATUS_CODE]!;
    return s < 0 ? 0n : BigInt.asIntN(32, readUint(this.batch.bytes, s, t.end[STATUS_CODE]!));
  }

  statusMessageRead(): string {
    if (this.statusMessage !== null) return this.statusMessage;
    const t = this.status();
    const s = t.start[STATUS_MESSAGE]!;
    return s < 0 ? '' : Buffer.from(this.batch.bytes.buffer, this.batch.bytes.byteOffset + s, t.end[STATUS_MESSAGE]! - s).toString('utf8');
  }

  // ---- event fields ----

  private eventFields(): FieldTable {
    if (this.eventTableFor !== this.eventTag) {
      this.eventTable.fill(this.r, this.batch.bytes, this.eventStart, this.eventEnd);
      this.eventTableFor = this.eventTag;
    }
    return this.eventTable;
  }

  eventFieldStart(f: number): number {
    return this.eventFields().start[f]!;
  }
  eventFieldEnd(f: number): number {
    return this.eventFields().end[f]!;
  }

  private readonly events = new WireReader();

  /** Starts a walk over the current span's events: call nextEvent() until it returns false. */
  firstEvent(): void {
    this.events.reset(this.batch.bytes, this.batch.spanStart(this.span));
  }

  /** Points the target at the span's next event (eventTag/Start/End); false when there is none. */
  nextEvent(): boolean {
    const r = this.events;
    const end = this.batch.spanEnd(this.span);
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      if (tag === ((SPAN_EVENTS << 3) | WT_LEN)) {
        const stop = r.lengthDelimitedEnd(end);
        this.atEvent(tagPos, r.pos, stop);
        r.pos = stop;
        return true;
      }
      r.skip(tag & 7, end);
    }
    this.eventTag = -1;
    return false;
  }

  // ---- scope fields ----

  private scopeFields(): FieldTable {
    if (this.scopeTableFor !== this.scope) {
      const b = this.batch;
      const tag = b.scopeFieldStart(this.scope);
      if (tag < 0) {
        this.scopeTable.tag.fill(-1);
        this.scopeTable.start.fill(-1);
        this.scopeTable.end.fill(-1);
      } else {
        // Step over the InstrumentationScope field's own tag and length to its content.
        const r = this.r;
        r.reset(b.bytes, tag);
        const end = b.scopeFieldEnd(this.scope);
        r.uint32(end);
        const stop = r.lengthDelimitedEnd(end);
        this.scopeTable.fill(r, b.bytes, r.pos, stop);
      }
      this.scopeTableFor = this.scope;
    }
    return this.scopeTable;
  }

  scopeFieldStart(f: number): number {
    return this.scopeFields().start[f]!;
  }
  scopeFieldEnd(f: number): number {
    return this.scopeFields().end[f]!;
  }

  scopeAttributeMap(): OttlMap {
    const b = this.batch;
    const tag = b.scopeFieldStart(this.scope);
    if (tag < 0) return new Map();
    const r = this.r;
    r.reset(b.bytes, tag);
    const end = b.scopeFieldEnd(this.scope);
    r.uint32(end);
    const stop = r.lengthDelimitedEnd(end);
    return decodeKeyValues(b.bytes, r.pos, stop, SCOPE_ATTRIBUTES);
  }

  /** Resource.dropped_attributes_count (field 2 of the Resource message). */
  resourceDroppedAttributes(): bigint {
    const b = this.batch;
    const s = b.resourceStart(this.resource);
    if (s < 0) return 0n;
    if (this.resourceTableFor !== this.resource) {
      this.resourceTable.fill(this.r, b.bytes, s, b.resourceEnd(this.resource));
      this.resourceTableFor = this.resource;
    }
    const f = this.resourceTable.start[2]!;
    return f < 0 ? 0n : readUint(b.bytes, f, this.resourceTable.end[2]!);
  }

  // ---- attribute maps ----

  spanAttributeMap(): OttlMap {
    if (this.spanAttrs !== null) return this.spanAttrs;
    const b = this.batch;
    return withKeyed(decodeKeyValues(b.bytes, b.spanStart(this.span), b.spanEnd(this.span), SPAN_ATTRIBUTES), this.spanKeyed);
  }

  resourceAttributeMap(): OttlMap {
    if (this.resourceAttrs !== null) return this.resourceAttrs;
    const b = this.batch;
    const s = b.resourceStart(this.resource);
    return withKeyed(s < 0 ? new Map() : decodeKeyValues(b.bytes, s, b.resourceEnd(this.resource), 1), this.resourceKeyed);
  }

  eventAttributeMap(): OttlMap {
    return decodeKeyValues(this.batch.bytes, this.eventStart, this.eventEnd, EVENT_ATTRIBUTES);
  }

  /** The span's attributes, materialised for writing: later reads and writes go to this map. */
  writableSpanAttributes(): OttlMap {
    if (this.spanAttrs === null) {
      this.spanAttrs = this.spanAttributeMap();
      this.spanKeyed = null;
    }
    return this.spanAttrs;
  }

  writableResourceAttributes(): OttlMap {
    if (this.resourceAttrs === null) {
      this.resourceAttrs = this.resourceAttributeMap();
      this.resourceKeyed = null;
    }
    return this.resourceAttrs;
  }

  // ---- one attribute by key (the attributes, resource and span processors' actions) ----

  /** The current span's (CTX_SPAN) or resource's attribute `key` as written so far; undefined when absent. */
  attr(level: ContextLevel, key: string): Value | undefined {
    const whole = level === CTX_SPAN ? this.spanAttrs : this.resourceAttrs;
    if (whole !== null) return whole.has(key) ? whole.get(key)! : undefined;
    const keyed = level === CTX_SPAN ? this.spanKeyed : this.resourceKeyed;
    if (keyed !== null && keyed.has(key)) {
      const v = keyed.get(key)!;
      return v === DELETED ? undefined : v;
    }
    const b = this.batch;
    const k = keyBytes(key);
    if (!(level === CTX_SPAN ? b.findSpanAttribute(this.span, k) : b.findResourceAttribute(this.resource, k))) return undefined;
    const f = b.found;
    return decodePayload(b.bytes, f.kind, f.valueStart, f.valueEnd);
  }

  setAttr(level: ContextLevel, key: string, v: Value): void {
    const whole = level === CTX_SPAN ? this.spanAttrs : this.resourceAttrs;
    if (whole !== null) whole.set(key, v);
    else if (level === CTX_SPAN) (this.spanKeyed ??= new Map()).set(key, v);
    else (this.resourceKeyed ??= new Map()).set(key, v);
  }

  deleteAttr(level: ContextLevel, key: string): void {
    const whole = level === CTX_SPAN ? this.spanAttrs : this.resourceAttrs;
    if (whole !== null) whole.delete(key);
    else if (level === CTX_SPAN) (this.spanKeyed ??= new Map()).set(key, DELETED);
    else (this.resourceKeyed ??= new Map()).set(key, DELETED);
  }

  /** Every key of the list, for actions that match keys by pattern (the list is materialised). */
  attrKeys(level: ContextLevel): string[] {
    return [...(level === CTX_SPAN ? this.writableSpanAttributes() : this.writableResourceAttributes()).keys()];
  }

  // ---- turning writes into edits ----

  /** Records the current span's writes as batch edits, and forgets them. */
  flushSpan(): void {
    const b = this.batch;
    const span = this.span;
    if (this.spanAttrs !== null) {
      this.walkFields(b.spanStart(span), b.spanEnd(span), SPAN_ATTRIBUTES, (s, e) => b.replaceInSpan(span, s, e, EMPTY));
      b.appendSpanAttributesEncoded(span, encodeKeyValues(this.spanAttrs, SPAN_ATTRIBUTES));
    } else if (this.spanKeyed !== null) {
      for (const [k, v] of this.spanKeyed) {
        if (v === DELETED) b.removeSpanAttribute(span, keyBytes(k));
        else b.setSpanAttribute(span, keyBytes(k), this.encoded(v));
      }
    }
    this.spanKeyed = null;
    if (this.name !== null) this.replaceSpanField(SPAN_NAME, stringField(SPAN_NAME, this.name));
    if (this.kind >= 0) this.replaceSpanField(SPAN_KIND, uintField(SPAN_KIND, this.kind));
    if (this.statusCode >= 0 || this.statusMessage !== null) {
      const message = this.statusMessageRead();
      const code = Number(this.statusCodeRead());
      const body = Buffer.concat([message === '' ? EMPTY : stringField(STATUS_MESSAGE, message), code === 0 ? EMPTY : uintField(STATUS_CODE, code)]);
      this.replaceSpanField(SPAN_STATUS, lenField(SPAN_STATUS, body));
    }
    this.spanAttrs = null;
    this.name = null;
    this.kind = -1;
    this.statusCode = -1;
    this.statusMessage = null;
    this.cache = null;
    this.spanTableFor = -1;
    this.statusFor = -1;
  }

  /** Records the current resource's attribute writes as batch edits, and forgets them. */
  flushResource(): void {
    const attrs = this.resourceAttrs;
    const keyed = this.resourceKeyed;
    this.resourceAttrs = null;
    this.resourceKeyed = null;
    this.cache = null;
    const b = this.batch;
    const r = this.resource;
    if (attrs === null && keyed !== null) {
      for (const [k, v] of keyed) {
        if (v === DELETED) b.removeResourceAttribute(r, keyBytes(k));
        else b.setResourceAttribute(r, keyBytes(k), this.encoded(v));
      }
    }
    if (attrs === null) return;
    const s = b.resourceStart(r);
    const fields = encodeKeyValues(attrs, 1);
    if (s < 0) {
      // No Resource message: attribute insertions create it.
      for (const [k, v] of attrs) b.setResourceAttribute(r, Buffer.from(k, 'utf8'), encodeAnyValue(v));
      return;
    }
    let first = true;
    this.walkFields(s, b.resourceEnd(r), 1, (fs, fe) => {
      b.replaceInResource(r, fs, fe, first ? fields : EMPTY);
      first = false;
    });
    if (first) b.replaceInResource(r, b.resourceEnd(r), b.resourceEnd(r), fields);
  }

  private lastValue: Value | undefined = undefined;
  private lastEncoded: Uint8Array = EMPTY;

  /** The encoded value, reusing the last encoding when the same scalar is written again (a constant set on every span). */
  private encoded(v: Value): Uint8Array {
    if (!Object.is(v, this.lastValue) || typeof v === 'object') {
      this.lastEncoded = encodeAnyValue(v);
      this.lastValue = v;
    }
    return this.lastEncoded;
  }

  private replaceSpanField(f: number, field: Uint8Array): void {
    const t = this.table();
    const b = this.batch;
    if (t.tag[f]! >= 0) b.replaceInSpan(this.span, t.tag[f]!, t.end[f]!, field);
    else b.replaceInSpan(this.span, b.spanEnd(this.span), b.spanEnd(this.span), field);
  }

  private walkFields(start: number, end: number, field: number, each: (s: number, e: number) => void): void {
    const r = new WireReader();
    r.reset(this.batch.bytes, start);
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      if (tag === ((field << 3) | WT_LEN)) {
        const stop = r.lengthDelimitedEnd(end);
        each(tagPos, stop);
        r.pos = stop;
      } else {
        r.skip(tag & 7, end);
      }
    }
  }
}

