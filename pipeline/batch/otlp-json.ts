/**
 * OTLP/JSON to protobuf, once, at the receiver. Follows the OTLP specification's JSON encoding (proto3's
 * JSON mapping with hex trace and span ids): lowerCamelCase keys (snake_case accepted too, as protobuf JSON
 * parsers do), enums as integers (names accepted), bytes values as base64, unknown fields ignored, `null`
 * as an absent field. Every value is checked against its protobuf type:
 *
 * - 64-bit integers are exact whether sent as numbers or as strings: the body is read by this module's own
 *   JSON reader, which keeps the text of any number a double cannot hold exactly (JSON.parse would round
 *   9007199254740993 to ...992). Strings must hold a JSON number (`"1e3"` is 1000; `""`, `" 1"`, `"0x10"`
 *   are refused), integers must be integral and in range for the field (int64, fixed64, uint32, fixed32).
 * - Doubles are numbers, or strings holding a JSON number or "NaN", "Infinity", "-Infinity"; a literal
 *   beyond the double range is refused rather than turned into Infinity.
 * - Enums are in range (SpanKind 0..5, StatusCode 0..2) or one of their names.
 * - Trace and span ids are hex of the right length, and not all zeros (the OTLP protos call that invalid).
 * - The body is a JSON object; an element of a list is an object, never `null`; an AnyValue holds at most
 *   one value.
 *
 * Every refusal is an INVALID_ARGUMENT whose message names the field by its JSON path
 * (`$.resourceSpans[0].scopeSpans[1].spans[2].kind: ...`) and never quotes what the client sent.
 *
 * Conversion cost grows with the body. Measured on the 2-core reference machine, 12 MB holding a million
 * attributes: JSON.parse alone 150-400 ms (one synchronous call that cannot be chunked), JSON.parse plus
 * protobufjs's Writer 1.0-1.4 s, this module's reader and writer 0.3-0.5 s, about 30 ns a byte. Any of
 * these on the event loop stalls health checks and every other client. So `otlpJsonToProtobufAsync`
 * converts small bodies inline and hands larger ones to a small pool of worker threads; each worker has a
 * bounded heap, so a request that needs more memory than that costs only itself (413) and its worker.
 */
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { INTERNAL_ERROR, PipelineError, asPipelineError, invalidArgument, type PipelineErrorCode } from '../service/errors.js';

type Json = unknown;
type Obj = Record<string, Json>;

interface EnumType {
  names: Readonly<Record<string, number>>;
  max: bigint;
  expected: string;
  range: string;
}

function enumType(type: string, names: Record<string, number>): EnumType {
  const max = Object.keys(names).length - 1;
  return { names, max: BigInt(max), expected: `expected a ${type} (an integer or its name)`, range: `${type} (0 to ${max})` };
}

const SPAN_KIND = enumType('SpanKind', {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
});
const STATUS_CODE = enumType('StatusCode', { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 });

/** AnyValue nesting (arrays and kvlists inside attribute values). */
const MAX_VALUE_DEPTH = 32;
/** JSON nesting of the whole body; deep enough for MAX_VALUE_DEPTH values (4 JSON levels each). */
export const MAX_JSON_DEPTH = 256;

const U32_MAX = 0xffffffffn;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

/** Hex digit values by character code; -1 for anything else. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

/** Parses an OTLP/JSON ExportTraceServiceRequest body and returns its protobuf encoding (synchronously). */
export function otlpJsonToProtobuf(body: Uint8Array | string): Uint8Array {
  const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  const doc = parseJson(text);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw invalidArgument('$: expected an object');
  return new Converter(text.length).request(doc as Obj);
}

// ---------------------------------------------------------------------------------------------------------
// JSON reader

/**
 * A JSON number a double may not hold exactly: more than 15 significant digits, or an exponent. Kept as
 * its source text; integer fields read it exactly, double fields round it as JSON.parse would.
 */
class JsonNumber {
  constructor(readonly text: string) {}
}

const NOT_JSON = 'request body is not valid JSON';

/**
 * JSON.parse's grammar and results, except that numbers which a double may not hold exactly are
 * JsonNumbers, and a `__proto__` key is skipped (no field of OTLP has that name). JSON.parse's error
 * messages quote the input, which may hold a credential: every failure here says only what is wrong.
 */
export function parseJson(text: string): Json {
  const r = new JsonReader(text);
  r.ws();
  const v = r.value(0);
  r.ws();
  if (r.i !== text.length) throw invalidArgument(NOT_JSON);
  return v;
}

class JsonReader {
  i = 0;
  constructor(private readonly s: string) {}

  ws(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  value(depth: number): Json {
    const c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(depth + 1);
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.literal('true', true);
      case 0x66: // f
        return this.literal('false', false);
      case 0x6e: // n
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        throw invalidArgument(NOT_JSON);
    }
  }

  private literal(word: string, v: Json): Json {
    if (!this.s.startsWith(word, this.i)) throw invalidArgument(NOT_JSON);
    this.i += word.length;
    return v;
  }

  private object(depth: number): Obj {
    if (depth > MAX_JSON_DEPTH) throw invalidArgument(`request body nests JSON more than ${MAX_JSON_DEPTH} levels deep`);
    const s = this.s;
    const o: Obj = {};
    this.i++;
    this.ws();
    if (s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return o;
    }
    for (;;) {
      if (s.charCodeAt(this.i) !== 0x22) throw invalidArgument(NOT_JSON);
      const key = this.string();
      this.ws();
      if (s.charCodeAt(this.i) !== 0x3a) throw invalidArgument(NOT_JSON);
      this.i++;
      this.ws();
      const v = this.value(depth);
      if (key !== '__proto__') o[key] = v;
      this.ws();
      const c = s.charCodeAt(this.i++);
      if (c === 0x2c) this.ws();
      else if (c === 0x7d) return o;
      else throw invalidArgument(NOT_JSON);
    }
  }

  private array(depth: number): Json[] {
    if (depth > MAX_JSON_DEPTH) throw invalidArgument(`request body nests JSON more than ${MAX_JSON_DEPTH} levels deep`);
    const s = this.s;
    const a: Json[] = [];
    this.i++;
    this.ws();
    if (s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return a;
    }
    for (;;) {
      a.push(this.value(depth));
      this.ws();
      const c = s.charCodeAt(this.i++);
      if (c === 0x2c) this.ws();
      else if (c === 0x5d) return a;
      else throw invalidArgument(NOT_JSON);
    }
  }

  private string(): string {
    const s = this.s;
    const start = this.i + 1;
    let escaped = false;
    let j = start;
    for (;;) {
      const c = s.charCodeAt(j);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        j += 2;
        continue;
      }
      if (c < 0x20 || c !== c) throw invalidArgument(NOT_JSON); // a control character, or the end (NaN)
      j++;
    }
    this.i = j + 1;
    if (!escaped) return s.slice(start, j);
    try {
      // Escapes (\n, \uXXXX, surrogate pairs) exactly as JSON.parse reads them.
      return JSON.parse(s.slice(start - 1, j + 1)) as string;
    } catch {
      throw invalidArgument(NOT_JSON);
    }
  }

  private number(): number | JsonNumber {
    const s = this.s;
    const start = this.i;
    let i = start;
    let digits = 0;
    let exact = true;
    let n = 0;
    if (s.charCodeAt(i) === 0x2d) i++;
    let c = s.charCodeAt(i);
    if (c === 0x30) {
      i++;
    } else if (c >= 0x31 && c <= 0x39) {
      do {
        n = n * 10 + (c - 0x30);
        digits++;
        c = s.charCodeAt(++i);
      } while (c >= 0x30 && c <= 0x39);
    } else {
      throw invalidArgument(NOT_JSON);
    }
    c = s.charCodeAt(i);
    if (c === 0x2e) {
      exact = false;
      c = s.charCodeAt(++i);
      if (!(c >= 0x30 && c <= 0x39)) throw invalidArgument(NOT_JSON);
      do {
        digits++;
        c = s.charCodeAt(++i);
      } while (c >= 0x30 && c <= 0x39);
    }
    let exponent = false;
    if (c === 0x65 || c === 0x45) {
      exponent = true;
      c = s.charCodeAt(++i);
      if (c === 0x2b || c === 0x2d) c = s.charCodeAt(++i);
      if (!(c >= 0x30 && c <= 0x39)) throw invalidArgument(NOT_JSON);
      do c = s.charCodeAt(++i);
      while (c >= 0x30 && c <= 0x39);
    }
    this.i = i;
    // Up to 15 significant digits without an exponent: the double is exact for an integer, and no
    // non-integer of that many digits rounds to an integer.
    if (exponent || digits > 15) return new JsonNumber(s.slice(start, i));
    if (exact) return s.charCodeAt(start) === 0x2d ? -n : n;
    return Number(s.slice(start, i));
  }
}

/** The parts of a JSON number's text, or null when the text is not one (no spaces, no '+', no hex). */
function numberParts(t: string): { negative: boolean; digits: string; fractionDigits: number; exponent: number } | null {
  const m = /^(-?)(0|[1-9]\d*)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(t);
  if (m === null) return null;
  const frac = m[3] ?? '';
  const e = m[4] ?? '0';
  // An exponent beyond any 64-bit integer is clamped: enough to say "out of range" or "not integral".
  const exponent = e.replace(/^[+-]?0*/, '').length > 6 ? (e.startsWith('-') ? -1e7 : 1e7) : Number(e);
  return { negative: m[1] === '-', digits: m[2]! + frac, fractionDigits: frac.length, exponent };
}

/** Stands for any magnitude past 64 bits: out of range for every integer field. */
const HUGE = 2n ** 70n;

/**
 * The exact integer a JSON number's text denotes: null when it is not integral, undefined when the text is
 * not a JSON number. Magnitudes past 21 digits are HUGE (no giant power or BigInt is ever built).
 */
function exactInteger(t: string): bigint | null | undefined {
  const p = numberParts(t);
  if (p === null) return undefined;
  const digits = p.digits.replace(/^0+/, '');
  if (digits === '') return 0n;
  const shift = p.exponent - p.fractionDigits; // value = digits × 10^shift
  const intDigits = digits.length + shift;
  if (shift < 0 && !/^0*$/.test(digits.slice(Math.max(0, intDigits)))) return null;
  let v: bigint;
  if (intDigits > 21) v = HUGE;
  else if (shift >= 0) v = BigInt(digits) * 10n ** BigInt(shift);
  else v = intDigits <= 0 ? 0n : BigInt(digits.slice(0, intDigits));
  return p.negative ? -v : v;
}

// ---------------------------------------------------------------------------------------------------------
// Protobuf writer: one growing buffer, a one-byte length slot per nested message that is widened in place
// when the message turns out longer than 127 bytes (no per-field objects, unlike protobufjs's Writer).

class ProtoWriter {
  buf: Buffer;
  pos = 0;
  private readonly starts: number[] = [];
  private depth = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(8192, capacity));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(v: number): void {
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  tag(field: number, wireType: number): void {
    this.varint(((field << 3) | wireType) >>> 0);
  }

  /** A varint of a non-negative safe integer (up to 2^53), without BigInt. */
  varintNumber(v: number): void {
    if (v <= 0xffffffff) return this.varint(v);
    this.ensure(8);
    const b = this.buf;
    let p = this.pos;
    while (v > 0x7f) {
      b[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    b[p++] = v;
    this.pos = p;
  }

  /** A 64-bit varint of a value in [-2^63, 2^64): two's complement for negatives, as int64 is encoded. */
  varint64(v: bigint): void {
    this.ensure(10);
    let u = BigInt.asUintN(64, v);
    const b = this.buf;
    let p = this.pos;
    while (u > 0x7fn) {
      b[p++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    b[p++] = Number(u);
    this.pos = p;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(v: number | bigint): void {
    this.ensure(8);
    if (typeof v === 'number') {
      this.buf.writeUInt32LE(v % 0x100000000, this.pos);
      this.buf.writeUInt32LE(Math.floor(v / 0x100000000), this.pos + 4);
    } else {
      this.buf.writeBigUInt64LE(v, this.pos);
    }
    this.pos += 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  string(s: string): void {
    if (s.length === 0) return this.varint(0);
    if (s.length < 0x80) {
      // Short ASCII, the common case (keys, names): copied by hand, cheaper than a call into Buffer.write.
      this.ensure(1 + s.length);
      const b = this.buf;
      const p = this.pos + 1;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p + i] = c;
      }
      if (i === s.length) {
        b[this.pos] = i;
        this.pos = p + i;
        return;
      }
    }
    const n = s.length < 0x2a ? -1 : Buffer.byteLength(s, 'utf8');
    if (n < 0) {
      // Short: at most 3 × 41 = 123 bytes, so one length byte; written first, then fixed up.
      this.ensure(1 + s.length * 3);
      const written = this.buf.write(s, this.pos + 1, 'utf8');
      this.buf[this.pos] = written;
      this.pos += 1 + written;
      return;
    }
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The bytes of a hex string already checked to be valid and of even length. */
  hex(h: string): void {
    const n = h.length >>> 1;
    this.varint(n);
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < h.length; i += 2) b[p++] = (HEX[h.charCodeAt(i)]! << 4) | HEX[h.charCodeAt(i + 1)]!;
    this.pos = p;
  }

  fork(): void {
    this.ensure(1);
    this.starts[this.depth++] = this.pos;
    this.pos += 1;
  }

  ldelim(): void {
    const start = this.starts[--this.depth]!;
    const len = this.pos - start - 1;
    const size = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    if (size > 1) {
      this.ensure(size - 1);
      this.buf.copyWithin(start + size, start + 1, this.pos);
      this.pos += size - 1;
    }
    const b = this.buf;
    let p = start;
    let v = len;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p] = v;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Converter: walks the parsed document and writes protobuf. The JSON path of the value at hand is a stack of
// segments turned into text only when something is refused.

function field(o: Obj, camel: string, snake: string): Json {
  const v = o[camel];
  return v === undefined ? o[snake] : v;
}

function isObject(v: Json): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

class Converter {
  private readonly w: ProtoWriter;
  /** Path segments: a field name or a list index. */
  private readonly seg: (string | number)[] = [];
  private n = 0;

  constructor(sizeHint: number) {
    this.w = new ProtoWriter(sizeHint >>> 1);
  }

  private enter(s: string | number): void {
    this.seg[this.n++] = s;
  }

  private leave(): void {
    this.n--;
  }

  /** Refuses the value at the current path, or at its field `leaf`. */
  private fail(message: string, leaf?: string): never {
    let p = '$';
    for (let i = 0; i < this.n; i++) {
      const s = this.seg[i]!;
      p += typeof s === 'number' ? `[${s}]` : `.${s}`;
    }
    if (leaf !== undefined) p += `.${leaf}`;
    throw invalidArgument(`${p}: ${message}`);
  }

  request(doc: Obj): Uint8Array {
    this.list(field(doc, 'resourceSpans', 'resource_spans'), 1, 'resourceSpans', this.resourceSpans);
    return this.w.finish();
  }

  /** A repeated message field: each element an object (never null), written by `each` inside its own length. */
  private list(v: Json, fieldNo: number, name: string, each: (this: Converter, o: Obj) => void): void {
    if (v === null || v === undefined) return;
    if (!Array.isArray(v)) this.fail('expected an array', name);
    this.enter(name);
    for (let i = 0; i < v.length; i++) {
      const item: Json = v[i];
      this.enter(i);
      if (!isObject(item)) this.fail('expected an object');
      this.w.tag(fieldNo, 2);
      this.w.fork();
      each.call(this, item);
      this.w.ldelim();
      this.leave();
    }
    this.leave();
  }

  /** A singular message field; null or absent writes nothing. */
  private message(v: Json, fieldNo: number, name: string, write: (this: Converter, o: Obj) => void): void {
    if (v === null || v === undefined) return;
    this.enter(name);
    if (!isObject(v)) this.fail('expected an object');
    this.w.tag(fieldNo, 2);
    this.w.fork();
    write.call(this, v);
    this.w.ldelim();
    this.leave();
  }

  private resourceSpans(o: Obj): void {
    this.message(o['resource'], 1, 'resource', this.resource);
    this.list(field(o, 'scopeSpans', 'scope_spans'), 2, 'scopeSpans', this.scopeSpans);
    this.string(3, field(o, 'schemaUrl', 'schema_url'), 'schemaUrl');
  }

  private resource(o: Obj): void {
    this.list(o['attributes'], 1, 'attributes', this.keyValue);
    this.uint32(2, field(o, 'droppedAttributesCount', 'dropped_attributes_count'), 'droppedAttributesCount');
  }

  private scopeSpans(o: Obj): void {
    this.message(o['scope'], 1, 'scope', this.scope);
    this.list(o['spans'], 2, 'spans', this.span);
    this.string(3, field(o, 'schemaUrl', 'schema_url'), 'schemaUrl');
  }

  private scope(o: Obj): void {
    this.string(1, o['name'], 'name');
    this.string(2, o['version'], 'version');
    this.list(o['attributes'], 3, 'attributes', this.keyValue);
    this.uint32(4, field(o, 'droppedAttributesCount', 'dropped_attributes_count'), 'droppedAttributesCount');
  }

  private span(o: Obj): void {
    this.id(1, field(o, 'traceId', 'trace_id'), 16, 'traceId', true);
    this.id(2, field(o, 'spanId', 'span_id'), 8, 'spanId', true);
    this.string(3, field(o, 'traceState', 'trace_state'), 'traceState');
    this.id(4, field(o, 'parentSpanId', 'parent_span_id'), 8, 'parentSpanId', false);
    this.string(5, o['name'], 'name');
    this.enumeration(6, o['kind'], SPAN_KIND, 'kind');
    this.fixed64(7, field(o, 'startTimeUnixNano', 'start_time_unix_nano'), 'startTimeUnixNano');
    this.fixed64(8, field(o, 'endTimeUnixNano', 'end_time_unix_nano'), 'endTimeUnixNano');
    this.list(o['attributes'], 9, 'attributes', this.keyValue);
    this.uint32(10, field(o, 'droppedAttributesCount', 'dropped_attributes_count'), 'droppedAttributesCount');
    this.list(o['events'], 11, 'events', this.event);
    this.uint32(12, field(o, 'droppedEventsCount', 'dropped_events_count'), 'droppedEventsCount');
    this.list(o['links'], 13, 'links', this.link);
    this.uint32(14, field(o, 'droppedLinksCount', 'dropped_links_count'), 'droppedLinksCount');
    this.message(o['status'], 15, 'status', this.status);
    this.fixed32(16, o['flags'], 'flags');
  }

  private event(o: Obj): void {
    this.fixed64(1, field(o, 'timeUnixNano', 'time_unix_nano'), 'timeUnixNano');
    this.string(2, o['name'], 'name');
    this.list(o['attributes'], 3, 'attributes', this.keyValue);
    this.uint32(4, field(o, 'droppedAttributesCount', 'dropped_attributes_count'), 'droppedAttributesCount');
  }

  private link(o: Obj): void {
    // A link may carry an invalid (all-zero) context when it has attributes or a trace state (the API spec).
    this.id(1, field(o, 'traceId', 'trace_id'), 16, 'traceId', false);
    this.id(2, field(o, 'spanId', 'span_id'), 8, 'spanId', false);
    this.string(3, field(o, 'traceState', 'trace_state'), 'traceState');
    this.list(o['attributes'], 4, 'attributes', this.keyValue);
    this.uint32(5, field(o, 'droppedAttributesCount', 'dropped_attributes_count'), 'droppedAttributesCount');
    this.fixed32(6, o['flags'], 'flags');
  }

  private status(o: Obj): void {
    this.string(2, o['message'], 'message');
    this.enumeration(3, o['code'], STATUS_CODE, 'code');
  }

  private keyValue(o: Obj): void {
    this.keyValueAt(o, 0);
  }

  /** A KeyValue whose value is at `depth` (0 for an attribute; one more inside each array or kvlist, as the scanner counts). */
  private keyValueAt(o: Obj, depth: number): void {
    this.string(1, o['key'], 'key');
    const value = o['value'];
    if (value === null || value === undefined) return;
    this.enter('value');
    if (!isObject(value)) this.fail('expected an object');
    this.w.tag(2, 2);
    this.w.fork();
    this.anyValue(value, depth);
    this.w.ldelim();
    this.leave();
  }

  /** The AnyValue at the current path (already entered); at most one of its members set. */
  private anyValue(o: Obj, depth: number): void {
    if (depth > MAX_VALUE_DEPTH) this.fail('attribute values nested too deeply');
    let member = '';
    let value: Json = undefined;
    for (const k in o) {
      const v = o[k];
      if (v === null) continue;
      let name: string;
      switch (k) {
        case 'stringValue':
        case 'string_value':
          name = 'stringValue';
          break;
        case 'boolValue':
        case 'bool_value':
          name = 'boolValue';
          break;
        case 'intValue':
        case 'int_value':
          name = 'intValue';
          break;
        case 'doubleValue':
        case 'double_value':
          name = 'doubleValue';
          break;
        case 'arrayValue':
        case 'array_value':
          name = 'arrayValue';
          break;
        case 'kvlistValue':
        case 'kvlist_value':
          name = 'kvlistValue';
          break;
        case 'bytesValue':
        case 'bytes_value':
          name = 'bytesValue';
          break;
        default:
          continue; // unknown fields are ignored
      }
      if (member !== '') this.fail('more than one value is set (an AnyValue holds one)');
      member = name;
      value = v;
    }
    const w = this.w;
    switch (member) {
      case 'stringValue':
        if (typeof value !== 'string') this.fail('expected a string', member);
        w.tag(1, 2);
        w.string(value);
        break;
      case 'boolValue':
        if (typeof value !== 'boolean') this.fail('expected a boolean', member);
        w.tag(2, 0);
        w.varint(value ? 1 : 0);
        break;
      case 'intValue': {
        const n = this.integer(value, member, I64_MIN, I64_MAX, 'a signed 64-bit integer');
        w.tag(3, 0);
        if (typeof n === 'number' && n >= 0) w.varintNumber(n);
        else w.varint64(BigInt(n));
        break;
      }
      case 'doubleValue':
        w.tag(4, 1);
        w.double(this.double(value, member));
        break;
      case 'arrayValue': {
        this.enter(member);
        if (!isObject(value)) this.fail('expected an object');
        w.tag(5, 2);
        w.fork();
        const values = value['values'];
        if (values !== null && values !== undefined) {
          if (!Array.isArray(values)) this.fail('expected an array', 'values');
          this.enter('values');
          for (let i = 0; i < values.length; i++) {
            const item: Json = values[i];
            this.enter(i);
            if (!isObject(item)) this.fail('expected an object');
            w.tag(1, 2);
            w.fork();
            this.anyValue(item, depth + 1);
            w.ldelim();
            this.leave();
          }
          this.leave();
        }
        w.ldelim();
        this.leave();
        break;
      }
      case 'kvlistValue': {
        this.enter(member);
        if (!isObject(value)) this.fail('expected an object');
        w.tag(6, 2);
        w.fork();
        const values = value['values'];
        if (values !== null && values !== undefined) {
          if (!Array.isArray(values)) this.fail('expected an array', 'values');
          this.enter('values');
          for (let i = 0; i < values.length; i++) {
            const item: Json = values[i];
            this.enter(i);
            if (!isObject(item)) this.fail('expected an object');
            w.tag(1, 2);
            w.fork();
            this.keyValueAt(item, depth + 1);
            w.ldelim();
            this.leave();
          }
          this.leave();
        }
        w.ldelim();
        this.leave();
        break;
      }
      case 'bytesValue': {
        if (typeof value !== 'string') this.fail('expected a string', member);
        const b = decodeBase64(value);
        if (b === null) this.fail('expected base64', member);
        w.tag(7, 2);
        w.bytes(b);
        break;
      }
    }
  }

  // Scalars. Each writes nothing for null, absent or the default value (proto3).

  private string(fieldNo: number, v: Json, name: string): void {
    if (v === null || v === undefined) return;
    if (typeof v !== 'string') this.fail('expected a string', name);
    if (v === '') return;
    this.w.tag(fieldNo, 2);
    this.w.string(v);
  }

  private id(fieldNo: number, v: Json, bytes: number, name: string, nonZero: boolean): void {
    if (v === null || v === undefined) return;
    if (typeof v !== 'string') this.fail('expected a string', name);
    if (v === '') return;
    if (v.length !== bytes * 2) this.fail(`expected ${bytes * 2} hex characters`, name);
    let bits = 0;
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      const h = c < 128 ? HEX[c]! : -1;
      if (h < 0) this.fail(`expected ${bytes * 2} hex characters`, name);
      bits |= h;
    }
    if (nonZero && bits === 0) this.fail(`an all-zero ${bytes === 16 ? 'trace' : 'span'} id is invalid`, name);
    this.w.tag(fieldNo, 2);
    this.w.hex(v);
  }

  private uint32(fieldNo: number, v: Json, name: string): void {
    if (v === null || v === undefined) return;
    const n = this.integer(v, name, 0n, U32_MAX, 'an unsigned 32-bit integer');
    if (n === 0 || n === 0n) return;
    this.w.tag(fieldNo, 0);
    this.w.varint(Number(n));
  }

  private fixed32(fieldNo: number, v: Json, name: string): void {
    if (v === null || v === undefined) return;
    const n = this.integer(v, name, 0n, U32_MAX, 'an unsigned 32-bit integer');
    if (n === 0 || n === 0n) return;
    this.w.tag(fieldNo, 5);
    this.w.fixed32(Number(n));
  }

  private fixed64(fieldNo: number, v: Json, name: string): void {
    if (v === null || v === undefined) return;
    const n = this.integer(v, name, 0n, U64_MAX, 'an unsigned 64-bit integer');
    if (n === 0 || n === 0n) return;
    this.w.tag(fieldNo, 1);
    this.w.fixed64(n);
  }

  private enumeration(fieldNo: number, v: Json, e: EnumType, name: string): void {
    if (v === null || v === undefined) return;
    let n: number;
    if (typeof v === 'string') {
      const known = Object.hasOwn(e.names, v) ? e.names[v] : undefined;
      if (known === undefined) this.fail(e.expected, name);
      n = known;
    } else {
      if (typeof v !== 'number' && !(v instanceof JsonNumber)) this.fail(e.expected, name);
      n = Number(this.integer(v, name, 0n, e.max, e.range));
    }
    if (n === 0) return;
    this.w.tag(fieldNo, 0);
    this.w.varint(n);
  }

  /**
   * An integer field: a number or a string holding a JSON number, integral and within [min, max]. A number
   * (as most senders write counts and small values) stays a number; only what a double cannot hold is a bigint.
   */
  private integer(v: Json, name: string, min: bigint, max: bigint, what: string): number | bigint {
    let n: number | bigint | null | undefined;
    if (typeof v === 'number') n = Number.isInteger(v) ? v : null;
    else if (v instanceof JsonNumber) n = exactInteger(v.text);
    else if (typeof v === 'string') n = exactInteger(v);
    if (n === null || n === undefined) this.fail('expected an integer (a number or a decimal string)', name);
    if (n < min || n > max) this.fail(`out of range for ${what}`, name);
    return n;
  }

  /** A double: a number, or a string holding a JSON number or NaN, Infinity, -Infinity. */
  private double(v: Json, name: string): number {
    let d: number;
    if (typeof v === 'number') return v;
    if (v instanceof JsonNumber) d = Number(v.text);
    else if (typeof v === 'string') {
      if (v === 'NaN') return NaN;
      if (v === 'Infinity') return Infinity;
      if (v === '-Infinity') return -Infinity;
      if (numberParts(v) === null) this.fail('expected a number, or a string holding a number, "NaN", "Infinity" or "-Infinity"', name);
      d = Number(v);
    } else {
      this.fail('expected a number, or a string holding a number, "NaN", "Infinity" or "-Infinity"', name);
    }
    if (!Number.isFinite(d)) this.fail('out of range for a double', name);
    return d;
  }
}

/**
 * base64 as protobuf's JSON mapping reads bytes: the standard or the URL-safe alphabet (not both), with
 * padding or without; null when the text is neither.
 */
function decodeBase64(s: string): Buffer | null {
  if (s === '') return Buffer.alloc(0);
  const m = /^([A-Za-z0-9+/]*|[A-Za-z0-9_-]*)(={0,2})$/.exec(s);
  if (m === null) return null;
  const body = m[1]!;
  const pad = m[2]!.length;
  if (pad > 0 && s.length % 4 !== 0) return null;
  if (body.length % 4 === 1) return null;
  return Buffer.from(body, body.includes('-') || body.includes('_') ? 'base64url' : 'base64');
}

// ---------------------------------------------------------------------------------------------------------
// Off the event loop: a pool of worker threads for bodies larger than INLINE_MAX_BYTES.

/**
 * Bodies up to this size are converted inline: at about 30 ns a byte, 64 KiB costs about 2 ms, not worth
 * the copy and the round trip to a worker.
 */
export const INLINE_MAX_BYTES = 64 * 1024;
/**
 * Heap one worker may use; a request that needs more is refused (413) and only its worker restarts. A
 * 20 MiB body (the default max_request_body_size) of the smallest JSON values needs a few hundred MiB.
 */
const WORKER_HEAP_MB = 1024;
const WORKER_TAG = 'tracewarden/otlp-json';
const POOL_SIZE = Math.min(4, Math.max(2, availableParallelism() - 1));

interface Job {
  body: Uint8Array;
  resolve: (bytes: Uint8Array) => void;
  reject: (err: PipelineError) => void;
}

type Reply = { ok: true; bytes: Uint8Array } | { ok: false; code: PipelineErrorCode; message: string };

class PoolWorker {
  job: Job | null = null;
  readonly worker: Worker;
  dead = false;

  constructor(private readonly pool: ConverterPool) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: WORKER_TAG, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    this.worker.unref();
    this.worker.on('message', (r: Reply) => this.settle(r));
    this.worker.on('error', (err) => this.die(err));
    this.worker.on('exit', () => this.die(null));
  }

  run(job: Job): void {
    this.job = job;
    this.worker.ref();
    // A private copy is transferred: the caller's buffer may be a view into memory it still uses.
    const copy = new Uint8Array(job.body.byteLength);
    copy.set(job.body);
    this.worker.postMessage(copy, [copy.buffer]);
  }

  private settle(r: Reply): void {
    const job = this.job;
    this.job = null;
    this.worker.unref();
    if (job !== null) {
      if (r.ok) job.resolve(r.bytes);
      else job.reject(new PipelineError(r.code, r.message));
    }
    this.pool.idle(this);
  }

  private die(err: Error | null): void {
    if (this.dead) return;
    this.dead = true;
    const job = this.job;
    this.job = null;
    if (job !== null) {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      job.reject(
        code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new PipelineError('PAYLOAD_TOO_LARGE', 'the JSON request needs more memory to convert than one request may use')
          : asPipelineError(err ?? new Error(INTERNAL_ERROR)),
      );
    }
    this.pool.died(this);
    void this.worker.terminate();
  }
}

class ConverterPool {
  private readonly workers: PoolWorker[] = [];
  private readonly idleWorkers: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private head = 0;

  submit(job: Job): void {
    const w = this.idleWorkers.pop() ?? (this.workers.length < POOL_SIZE ? this.spawn() : null);
    if (w !== null) w.run(job);
    else this.queue.push(job);
  }

  private spawn(): PoolWorker {
    const w = new PoolWorker(this);
    this.workers.push(w);
    return w;
  }

  idle(w: PoolWorker): void {
    if (w.dead) return;
    const next = this.next();
    if (next !== undefined) w.run(next);
    else this.idleWorkers.push(w);
  }

  died(w: PoolWorker): void {
    const i = this.workers.indexOf(w);
    if (i >= 0) this.workers.splice(i, 1);
    const j = this.idleWorkers.indexOf(w);
    if (j >= 0) this.idleWorkers.splice(j, 1);
    const next = this.next();
    if (next !== undefined) this.spawn().run(next);
  }

  private next(): Job | undefined {
    if (this.head >= this.queue.length) return undefined;
    const job = this.queue[this.head]!;
    this.queue[this.head++] = undefined as unknown as Job;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return job;
  }
}

let pool: ConverterPool | null = null;

/**
 * otlpJsonToProtobuf without blocking the event loop for long: bodies over INLINE_MAX_BYTES are converted
 * on a worker thread. Same results and the same errors (INVALID_ARGUMENT with the JSON path); a body whose
 * conversion needs more than the worker's heap is PAYLOAD_TOO_LARGE.
 */
export function otlpJsonToProtobufAsync(body: Uint8Array): Promise<Uint8Array> {
  if (body.byteLength <= INLINE_MAX_BYTES) {
    try {
      return Promise.resolve(otlpJsonToProtobuf(body));
    } catch (err) {
      return Promise.reject(asPipelineError(err));
    }
  }
  pool ??= new ConverterPool();
  const p = pool;
  return new Promise((resolve, reject) => p.submit({ body, resolve, reject }));
}

// The worker side: the same module, loaded in a worker thread started by PoolWorker.
if (!isMainThread && workerData === WORKER_TAG && parentPort !== null) {
  const port = parentPort;
  port.on('message', (body: Uint8Array) => {
    let reply: Reply;
    let transfer: ArrayBuffer[] = [];
    try {
      const out = otlpJsonToProtobuf(body);
      reply = { ok: true, bytes: out };
      transfer = [out.buffer as ArrayBuffer];
    } catch (err) {
      const e = asPipelineError(err);
      reply = { ok: false, code: e.code, message: e.message };
    }
    port.postMessage(reply, transfer);
  });
}
