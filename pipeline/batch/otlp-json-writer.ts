/**
 * Protobuf to OTLP/JSON, for the otlphttp exporter's `encoding: json`: the batch's ExportTraceServiceRequest
 * bytes are walked once per message (no protobufjs objects, no intermediate strings) and written straight
 * into a byte buffer as the OTLP specification's JSON encoding says:
 *
 * - field names in lowerCamelCase (proto3's JSON names);
 * - trace and span ids as lowercase hex (the OTLP exception to proto3's base64), other bytes as base64;
 * - enums (span kind, status code) as integers;
 * - 64-bit integers (int_value, the fixed64 times) as decimal strings, 32-bit ones as numbers;
 * - doubles as numbers, or "NaN", "Infinity", "-Infinity";
 * - fields holding their default value are omitted (proto3), except the members of AnyValue's oneof, which
 *   have presence and are always written; empty lists are omitted.
 *
 * The inverse of otlp-json.ts: what this writes, that module reads back to the same protobuf message.
 *
 * The same one-view rule as the scanner: a singular field (or a second member of an AnyValue) that occurs
 * twice is refused rather than merged, so the JSON never says something other than what was inspected.
 * Fields the trace schema does not know are dropped (proto3's JSON has no place for them; the Collector
 * drops them when it decodes). Strings that are not valid UTF-8 have the bad bytes replaced by U+FFFD, as
 * Go's encoding/json does: JSON text cannot carry them.
 *
 * Each message is walked twice: once over its tags to refuse duplicates and see whether the elements of each
 * list are contiguous (every encoder writes them so), then to write it, in the order the fields come. A
 * message whose list elements are interleaved with other fields is written one field at a time instead.
 */
import { isUtf8 } from 'node:buffer';
import { invalidArgument } from '../service/errors.js';
import { WireReader, WT_I32, WT_I64, WT_LEN, WT_VARINT } from './wire.js';

const MAX_VALUE_DEPTH = 32;
const TWO_32 = 0x100000000;

const enum Kind {
  Message,
  String,
  Hex,
  Uint32,
  Enum,
  Fixed64,
  Fixed32,
  Int64,
  Bool,
  Double,
  Bytes,
}

interface FieldSpec {
  /** `"name":` as bytes. */
  key: Buffer;
  kind: Kind;
  wireType: number;
  repeated: boolean;
  /** A oneof member: written even when it holds the default value. */
  presence: boolean;
  message: MessageSpec | null;
  /** For errors: `Span.name`. */
  name: string;
}

interface MessageSpec {
  name: string;
  fields: (FieldSpec | undefined)[];
  /** AnyValue: its fields are one oneof. */
  oneof: boolean;
  /** ArrayValue and KeyValueList: one level deeper in attribute-value nesting. */
  nests: boolean;
}

function spec(name: string, oneof = false, nests = false): MessageSpec {
  return { name, fields: [], oneof, nests };
}

const WIRE: Record<Kind, number> = {
  [Kind.Message]: WT_LEN,
  [Kind.String]: WT_LEN,
  [Kind.Hex]: WT_LEN,
  [Kind.Bytes]: WT_LEN,
  [Kind.Uint32]: WT_VARINT,
  [Kind.Enum]: WT_VARINT,
  [Kind.Int64]: WT_VARINT,
  [Kind.Bool]: WT_VARINT,
  [Kind.Fixed64]: WT_I64,
  [Kind.Double]: WT_I64,
  [Kind.Fixed32]: WT_I32,
};

function field(m: MessageSpec, no: number, protoName: string, jsonName: string, kind: Kind, opts: { repeated?: boolean; message?: MessageSpec } = {}): void {
  m.fields[no] = {
    key: Buffer.from(`"${jsonName}":`),
    kind,
    wireType: WIRE[kind],
    repeated: opts.repeated === true,
    presence: m.oneof,
    message: opts.message ?? null,
    name: `${m.name}.${protoName}`,
  };
}

// The OTLP trace schema (otlp-schema.ts), field by field.
const REQUEST = spec('ExportTraceServiceRequest');
const RESOURCE_SPANS = spec('ResourceSpans');
const RESOURCE = spec('Resource');
const ENTITY_REF = spec('EntityRef');
const SCOPE_SPANS = spec('ScopeSpans');
const SCOPE = spec('InstrumentationScope');
const SPAN = spec('Span');
const EVENT = spec('Span.Event');
const LINK = spec('Span.Link');
const STATUS = spec('Status');
const KEY_VALUE = spec('KeyValue');
const ANY_VALUE = spec('AnyValue', true);
const ARRAY_VALUE = spec('ArrayValue', false, true);
const KEY_VALUE_LIST = spec('KeyValueList', false, true);

field(REQUEST, 1, 'resource_spans', 'resourceSpans', Kind.Message, { repeated: true, message: RESOURCE_SPANS });
field(RESOURCE_SPANS, 1, 'resource', 'resource', Kind.Message, { message: RESOURCE });
field(RESOURCE_SPANS, 2, 'scope_spans', 'scopeSpans', Kind.Message, { repeated: true, message: SCOPE_SPANS });
field(RESOURCE_SPANS, 3, 'schema_url', 'schemaUrl', Kind.String);
field(RESOURCE, 1, 'attributes', 'attributes', Kind.Message, { repeated: true, message: KEY_VALUE });
field(RESOURCE, 2, 'dropped_attributes_count', 'droppedAttributesCount', Kind.Uint32);
field(RESOURCE, 3, 'entity_refs', 'entityRefs', Kind.Message, { repeated: true, message: ENTITY_REF });
field(ENTITY_REF, 1, 'schema_url', 'schemaUrl', Kind.String);
field(ENTITY_REF, 2, 'type', 'type', Kind.String);
field(ENTITY_REF, 3, 'id_keys', 'idKeys', Kind.String, { repeated: true });
field(ENTITY_REF, 4, 'description_keys', 'descriptionKeys', Kind.String, { repeated: true });
field(SCOPE_SPANS, 1, 'scope', 'scope', Kind.Message, { message: SCOPE });
field(SCOPE_SPANS, 2, 'spans', 'spans', Kind.Message, { repeated: true, message: SPAN });
field(SCOPE_SPANS, 3, 'schema_url', 'schemaUrl', Kind.String);
field(SCOPE, 1, 'name', 'name', Kind.String);
field(SCOPE, 2, 'version', 'version', Kind.String);
field(SCOPE, 3, 'attributes', 'attributes', Kind.Message, { repeated: true, message: KEY_VALUE });
field(SCOPE, 4, 'dropped_attributes_count', 'droppedAttributesCount', Kind.Uint32);
field(SPAN, 1, 'trace_id', 'traceId', Kind.Hex);
field(SPAN, 2, 'span_id', 'spanId', Kind.Hex);
field(SPAN, 3, 'trace_state', 'traceState', Kind.String);
field(SPAN, 4, 'parent_span_id', 'parentSpanId', Kind.Hex);
field(SPAN, 5, 'name', 'name', Kind.String);
field(SPAN, 6, 'kind', 'kind', Kind.Enum);
field(SPAN, 7, 'start_time_unix_nano', 'startTimeUnixNano', Kind.Fixed64);
field(SPAN, 8, 'end_time_unix_nano', 'endTimeUnixNano', Kind.Fixed64);
field(SPAN, 9, 'attributes', 'attributes', Kind.Message, { repeated: true, message: KEY_VALUE });
field(SPAN, 10, 'dropped_attributes_count', 'droppedAttributesCount', Kind.Uint32);
field(SPAN, 11, 'events', 'events', Kind.Message, { repeated: true, message: EVENT });
field(SPAN, 12, 'dropped_events_count', 'droppedEventsCount', Kind.Uint32);
field(SPAN, 13, 'links', 'links', Kind.Message, { repeated: true, message: LINK });
field(SPAN, 14, 'dropped_links_count', 'droppedLinksCount', Kind.Uint32);
field(SPAN, 15, 'status', 'status', Kind.Message, { message: STATUS });
field(SPAN, 16, 'flags', 'flags', Kind.Fixed32);
field(EVENT, 1, 'time_unix_nano', 'timeUnixNano', Kind.Fixed64);
field(EVENT, 2, 'name', 'name', Kind.String);
field(EVENT, 3, 'attributes', 'attributes', Kind.Message, { repeated: true, message: KEY_VALUE });
field(EVENT, 4, 'dropped_attributes_count', 'droppedAttributesCount', Kind.Uint32);
field(LINK, 1, 'trace_id', 'traceId', Kind.Hex);
field(LINK, 2, 'span_id', 'spanId', Kind.Hex);
field(LINK, 3, 'trace_state', 'traceState', Kind.String);
field(LINK, 4, 'attributes', 'attributes', Kind.Message, { repeated: true, message: KEY_VALUE });
field(LINK, 5, 'dropped_attributes_count', 'droppedAttributesCount', Kind.Uint32);
field(LINK, 6, 'flags', 'flags', Kind.Fixed32);
// Status field 1 (deprecated_code) is reserved: dropped like any unknown field.
field(STATUS, 2, 'message', 'message', Kind.String);
field(STATUS, 3, 'code', 'code', Kind.Enum);
field(KEY_VALUE, 1, 'key', 'key', Kind.String);
field(KEY_VALUE, 2, 'value', 'value', Kind.Message, { message: ANY_VALUE });
field(ANY_VALUE, 1, 'string_value', 'stringValue', Kind.String);
field(ANY_VALUE, 2, 'bool_value', 'boolValue', Kind.Bool);
field(ANY_VALUE, 3, 'int_value', 'intValue', Kind.Int64);
field(ANY_VALUE, 4, 'double_value', 'doubleValue', Kind.Double);
field(ANY_VALUE, 5, 'array_value', 'arrayValue', Kind.Message, { message: ARRAY_VALUE });
field(ANY_VALUE, 6, 'kvlist_value', 'kvlistValue', Kind.Message, { message: KEY_VALUE_LIST });
field(ANY_VALUE, 7, 'bytes_value', 'bytesValue', Kind.Bytes);
field(ARRAY_VALUE, 1, 'values', 'values', Kind.Message, { repeated: true, message: ANY_VALUE });
field(KEY_VALUE_LIST, 1, 'values', 'values', Kind.Message, { repeated: true, message: KEY_VALUE });

const QUOTE = 0x22;
const COMMA = 0x2c;
const HEX_DIGITS = Buffer.from('0123456789abcdef');
const SHORT_ESCAPES: Record<number, number> = { 0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72 };
const LIT_TRUE = Buffer.from('true');
const LIT_FALSE = Buffer.from('false');

/** The OTLP/JSON text of an ExportTraceServiceRequest given as protobuf bytes, as UTF-8 bytes. */
export function otlpProtobufToJsonBytes(bytes: Uint8Array): Buffer {
  const src = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return new JsonWriter(src).write();
}

/** The same as a string. */
export function otlpProtobufToJson(bytes: Uint8Array): string {
  return otlpProtobufToJsonBytes(bytes).toString('utf8');
}

class JsonWriter {
  private readonly r = new WireReader();
  private out: Buffer;
  private pos = 0;

  constructor(private readonly src: Buffer) {
    // OTLP/JSON is about three times its protobuf; grown by doubling when not.
    this.out = Buffer.allocUnsafe(Math.max(256, src.length * 3));
    this.r.reset(src, 0);
  }

  write(): Buffer {
    this.message(REQUEST, 0, this.src.length, 0);
    return this.out.subarray(0, this.pos);
  }

  /** Writes the message in src[start, end) as a JSON object. */
  private message(m: MessageSpec, start: number, end: number, depth: number): void {
    const r = this.r;
    const fields = m.fields;
    // Pass 1: tags only. Duplicated singular fields and extra oneof members are refused; `interleaved` says
    // whether some list's elements are split by another field.
    let seen = 0;
    let last = -1;
    let interleaved = false;
    let members = 0;
    r.pos = start;
    while (r.pos < end) {
      const tag = r.uint32(end);
      const no = tag >>> 3;
      const f = no < fields.length ? fields[no] : undefined;
      if (f === undefined) {
        r.skip(tag & 7, end);
        continue;
      }
      if ((tag & 7) !== f.wireType) throw invalidArgument(`${f.name} has wire type ${tag & 7}, expected ${f.wireType}`);
      const bit = 1 << no;
      if ((seen & bit) !== 0 && (!f.repeated || last !== no)) {
        if (!f.repeated) throw invalidArgument(`${f.name} occurs more than once (a singular field must be sent once)`);
        interleaved = true;
      }
      if ((seen & bit) === 0 && m.oneof && ++members > 1) throw invalidArgument('AnyValue has more than one value set (an AnyValue holds one)');
      seen |= bit;
      last = no;
      r.skip(tag & 7, end);
    }
    const childDepth = m.nests ? depth + 1 : depth;
    if (m === ANY_VALUE && depth > MAX_VALUE_DEPTH) throw invalidArgument('attribute values nested too deeply');
    this.byte(0x7b);
    if (!interleaved) {
      // Pass 2: in the order the fields come; a list opens at its first element and closes at the next field.
      let open = -1;
      let first = true;
      r.pos = start;
      while (r.pos < end) {
        const tag = r.uint32(end);
        const no = tag >>> 3;
        const f = no < fields.length ? fields[no] : undefined;
        if (f === undefined) {
          r.skip(tag & 7, end);
          continue;
        }
        if (f.repeated) {
          if (open === no) this.byte(COMMA);
          else {
            if (open >= 0) this.byte(0x5d);
            if (!first) this.byte(COMMA);
            this.bytes(f.key);
            this.byte(0x5b);
            open = no;
            first = false;
          }
          this.value(f, end, childDepth);
        } else {
          if (open >= 0) {
            this.byte(0x5d);
            open = -1;
          }
          first = this.member(f, end, childDepth, first);
        }
      }
      if (open >= 0) this.byte(0x5d);
    } else {
      // Interleaved lists: one field at a time, each with every occurrence, in the order they first come.
      let done = 0;
      let first = true;
      r.pos = start;
      while (r.pos < end) {
        const tag = r.uint32(end);
        const no = tag >>> 3;
        const f = no < fields.length ? fields[no] : undefined;
        const bit = 1 << no;
        if (f === undefined || (done & bit) !== 0) {
          r.skip(tag & 7, end);
          continue;
        }
        done |= bit;
        if (!f.repeated) {
          first = this.member(f, end, childDepth, first);
        } else {
          if (!first) this.byte(COMMA);
          first = false;
          this.bytes(f.key);
          this.byte(0x5b);
          this.value(f, end, childDepth);
          const after = r.pos;
          while (r.pos < end) {
            const t = r.uint32(end);
            if (t >>> 3 === no) {
              this.byte(COMMA);
              this.value(f, end, childDepth);
            } else {
              r.skip(t & 7, end);
            }
          }
          this.byte(0x5d);
          r.pos = after;
        }
      }
    }
    this.byte(0x7d);
  }

  /** A singular field at r.pos: its key and value, unless it holds its default and has no presence. */
  private member(f: FieldSpec, end: number, depth: number, first: boolean): boolean {
    if (!f.presence && this.isDefault(f, end)) return first;
    if (!first) this.byte(COMMA);
    this.bytes(f.key);
    this.value(f, end, depth);
    return false;
  }

  /** Whether the value at r.pos is its type's default (then skipped past); messages never are. */
  private isDefault(f: FieldSpec, end: number): boolean {
    const r = this.r;
    const at = r.pos;
    switch (f.kind) {
      case Kind.Message:
        return false;
      case Kind.String:
      case Kind.Hex:
      case Kind.Bytes:
        if (r.lengthDelimitedEnd(end) === r.pos) return true;
        break;
      case Kind.Uint32:
      case Kind.Enum:
      case Kind.Int64:
      case Kind.Bool:
        if (this.varintIsZero(end)) return true;
        break;
      case Kind.Fixed64:
      case Kind.Double:
        if (at + 8 > end) throw invalidArgument('truncated fixed64');
        // A double's default is +0: -0 has its sign bit set, so it is written.
        if (this.src.readUInt32LE(at) === 0 && this.src.readUInt32LE(at + 4) === 0) {
          r.pos = at + 8;
          return true;
        }
        break;
      case Kind.Fixed32:
        if (at + 4 > end) throw invalidArgument('truncated fixed32');
        if (this.src.readUInt32LE(at) === 0) {
          r.pos = at + 4;
          return true;
        }
        break;
    }
    r.pos = at;
    return false;
  }

  /** The value at r.pos, as JSON. */
  private value(f: FieldSpec, end: number, depth: number): void {
    const r = this.r;
    switch (f.kind) {
      case Kind.Message: {
        const stop = r.lengthDelimitedEnd(end);
        this.message(f.message!, r.pos, stop, depth);
        r.pos = stop;
        return;
      }
      case Kind.String: {
        const stop = r.lengthDelimitedEnd(end);
        this.string(r.pos, stop);
        r.pos = stop;
        return;
      }
      case Kind.Hex: {
        const stop = r.lengthDelimitedEnd(end);
        this.hex(r.pos, stop);
        r.pos = stop;
        return;
      }
      case Kind.Bytes: {
        const stop = r.lengthDelimitedEnd(end);
        this.byte(QUOTE);
        this.latin1(this.src.toString('base64', r.pos, stop));
        this.byte(QUOTE);
        r.pos = stop;
        return;
      }
      case Kind.Uint32: {
        const [lo] = this.varint64(end);
        this.latin1(String(lo));
        return;
      }
      case Kind.Enum: {
        const [lo] = this.varint64(end);
        this.latin1(String(lo | 0));
        return;
      }
      case Kind.Bool: {
        const [lo, hi] = this.varint64(end);
        this.bytes(lo === 0 && hi === 0 ? LIT_FALSE : LIT_TRUE);
        return;
      }
      case Kind.Int64: {
        const [lo, hi] = this.varint64(end);
        this.byte(QUOTE);
        if (hi === 0) this.latin1(String(lo));
        else if (hi < 0x200000) this.latin1(String(hi * TWO_32 + lo));
        else this.latin1(BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString());
        this.byte(QUOTE);
        return;
      }
      case Kind.Fixed64: {
        if (r.pos + 8 > end) throw invalidArgument('truncated fixed64');
        const lo = this.src.readUInt32LE(r.pos);
        const hi = this.src.readUInt32LE(r.pos + 4);
        r.pos += 8;
        this.byte(QUOTE);
        this.latin1(hi < 0x200000 ? String(hi * TWO_32 + lo) : ((BigInt(hi) << 32n) | BigInt(lo)).toString());
        this.byte(QUOTE);
        return;
      }
      case Kind.Fixed32: {
        if (r.pos + 4 > end) throw invalidArgument('truncated fixed32');
        this.latin1(String(this.src.readUInt32LE(r.pos)));
        r.pos += 4;
        return;
      }
      case Kind.Double: {
        if (r.pos + 8 > end) throw invalidArgument('truncated double');
        const d = this.src.readDoubleLE(r.pos);
        r.pos += 8;
        if (Number.isFinite(d)) this.latin1(Object.is(d, -0) ? '-0' : String(d));
        else this.latin1(Number.isNaN(d) ? '"NaN"' : d > 0 ? '"Infinity"' : '"-Infinity"');
        return;
      }
    }
  }

  // Output.

  private ensure(n: number): void {
    if (this.pos + n <= this.out.length) return;
    let size = this.out.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.out.copy(next, 0, 0, this.pos);
    this.out = next;
  }

  private byte(b: number): void {
    if (this.pos >= this.out.length) this.ensure(1);
    this.out[this.pos++] = b;
  }

  private bytes(b: Buffer): void {
    this.ensure(b.length);
    this.pos = copyBytes(b, 0, b.length, this.out, this.pos);
  }

  /** Text known to be ASCII (digits, base64, fixed literals). */
  private latin1(s: string): void {
    this.ensure(s.length);
    this.pos += this.out.write(s, this.pos, 'latin1');
  }

  /** src[start, end) as a JSON string: UTF-8 copied as it is, control characters, `"` and `\` escaped. */
  private string(start: number, end: number): void {
    const src = this.src;
    // Worst case: every byte a \u00XX escape.
    this.ensure((end - start) * 6 + 2);
    const out = this.out;
    const begin = this.pos;
    let pos = begin;
    out[pos++] = QUOTE;
    let run = start;
    let high = 0;
    for (let i = start; i < end; i++) {
      const c = src[i]!;
      high |= c;
      if (c >= 0x20 && c !== QUOTE && c !== 0x5c) continue;
      if (i > run) pos = copyBytes(src, run, i, out, pos);
      run = i + 1;
      out[pos++] = 0x5c;
      const short = c === QUOTE || c === 0x5c ? c : SHORT_ESCAPES[c];
      if (short !== undefined) out[pos++] = short;
      else {
        out[pos++] = 0x75;
        out[pos++] = 0x30;
        out[pos++] = 0x30;
        out[pos++] = HEX_DIGITS[c >>> 4]!;
        out[pos++] = HEX_DIGITS[c & 15]!;
      }
    }
    if (end > run) pos = copyBytes(src, run, end, out, pos);
    out[pos++] = QUOTE;
    this.pos = pos;
    if (high >= 0x80 && !isUtf8(src.subarray(start, end))) {
      // Not UTF-8: written again, decoded with U+FFFD for each bad sequence.
      this.pos = begin;
      const text = JSON.stringify(src.toString('utf8', start, end));
      this.ensure(Buffer.byteLength(text));
      this.pos += this.out.write(text, this.pos, 'utf8');
    }
  }

  private hex(start: number, end: number): void {
    this.ensure((end - start) * 2 + 2);
    const out = this.out;
    const src = this.src;
    let pos = this.pos;
    out[pos++] = QUOTE;
    for (let i = start; i < end; i++) {
      const b = src[i]!;
      out[pos++] = HEX_DIGITS[b >>> 4]!;
      out[pos++] = HEX_DIGITS[b & 15]!;
    }
    out[pos++] = QUOTE;
    this.pos = pos;
  }

  // Input.

  /** A varint's low and high 32 bits (protobuf truncates wider values to the field's width). */
  private varint64(end: number): [number, number] {
    const r = this.r;
    const src = this.src;
    let pos = r.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw invalidArgument('truncated varint');
      const b = src[pos++]!;
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (b < 0x80) {
        r.pos = pos;
        return [lo >>> 0, hi >>> 0];
      }
    }
    throw invalidArgument('varint longer than 10 bytes');
  }

  private varintIsZero(end: number): boolean {
    const [lo, hi] = this.varint64(end);
    return lo === 0 && hi === 0;
  }
}

/** Copies src[start, end) to dst at `at`; a loop for the short runs that keys and most values are (Buffer#copy costs more than it saves there). */
function copyBytes(src: Buffer, start: number, end: number, dst: Buffer, at: number): number {
  if (end - start > 48) return at + src.copy(dst, at, start, end);
  for (let i = start; i < end; i++) dst[at++] = src[i]!;
  return at;
}
