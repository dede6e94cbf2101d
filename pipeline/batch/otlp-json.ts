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
import { invalidArgument } from '../service/errors.js';
import { JsonNumber, exactInteger, numberParts, parseJson, type Json } from './json-reader.js';
import { HEX, ProtoWriter } from './proto-writer.js';

export { MAX_JSON_DEPTH } from './json-reader.js';

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

const U32_MAX = 0xffffffffn;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;


/** Parses an OTLP/JSON ExportTraceServiceRequest body and returns its protobuf encoding (synchronously). */
export function otlpJsonToProtobuf(body: Uint8Array | string): Uint8Array {
  const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  const doc = parseJson(text);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw invalidArgument('$: expected an object');
  return new Converter(text.length).request(doc as Obj);
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
    this.list(field(o, 'entityRefs', 'entity_refs'), 3, 'entityRefs', this.entityRef);
  }

  private entityRef(o: Obj): void {
    this.string(1, field(o, 'schemaUrl', 'schema_url'), 'schemaUrl');
    this.string(2, o['type'], 'type');
    this.strings(3, field(o, 'idKeys', 'id_keys'), 'idKeys');
    this.strings(4, field(o, 'descriptionKeys', 'description_keys'), 'descriptionKeys');
  }

  /** A repeated string field: every element written, "" included. */
  private strings(fieldNo: number, v: Json, name: string): void {
    if (v === null || v === undefined) return;
    if (!Array.isArray(v)) this.fail('expected an array', name);
    this.enter(name);
    for (let i = 0; i < v.length; i++) {
      const item: Json = v[i];
      this.enter(i);
      if (typeof item !== 'string') this.fail('expected a string');
      this.w.tag(fieldNo, 2);
      this.w.string(item);
      this.leave();
    }
    this.leave();
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
