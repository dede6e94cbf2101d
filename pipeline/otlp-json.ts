/**
 * OTLP/JSON to protobuf, once, at the receiver. Follows the OTLP specification's JSON mapping: lowerCamelCase
 * keys (snake_case accepted too, as protobuf JSON parsers do), trace and span ids as hex, 64-bit integers as
 * decimal strings or numbers, enums as integers (names accepted), bytes values as base64, unknown fields
 * ignored. Every type mismatch is an INVALID_ARGUMENT naming the JSON path.
 */
import protobuf from 'protobufjs';
import { invalidArgument } from './errors.js';

type Json = unknown;
type Obj = Record<string, Json>;

const SPAN_KIND: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODE: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };
const MAX_DEPTH = 32;

/** Parses an OTLP/JSON ExportTraceServiceRequest body and returns its protobuf encoding. */
export function otlpJsonToProtobuf(body: Uint8Array | string): Uint8Array {
  let doc: Json;
  try {
    doc = JSON.parse(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    // JSON.parse's message quotes the input, which may hold a credential: say only what is wrong.
    throw invalidArgument('request body is not valid JSON');
  }
  const w = protobuf.Writer.create();
  const req = obj(doc, '$');
  for (const [i, rs] of arr(field(req, 'resourceSpans', 'resource_spans'), '$.resourceSpans')) {
    w.uint32(0x0a).fork();
    resourceSpans(w, obj(rs, `$.resourceSpans[${i}]`), `$.resourceSpans[${i}]`);
    w.ldelim();
  }
  return w.finish();
}

function field(o: Obj, camel: string, snake: string): Json {
  const v = o[camel];
  return v === undefined ? o[snake] : v;
}

function obj(v: Json, path: string): Obj {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidArgument(`${path}: expected an object`);
  return v as Obj;
}

function* arr(v: Json, path: string): Generator<[number, Json]> {
  if (v === null || v === undefined) return;
  if (!Array.isArray(v)) throw invalidArgument(`${path}: expected an array`);
  for (let i = 0; i < v.length; i++) yield [i, v[i]];
}

function str(v: Json, path: string): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidArgument(`${path}: expected a string`);
  return v;
}

function writeString(w: protobuf.Writer, fieldNo: number, v: Json, path: string): void {
  const s = str(v, path);
  if (s !== undefined && s !== '') w.uint32((fieldNo << 3) | 2).string(s);
}

function uint32(v: Json, path: string): number | undefined {
  if (v === null || v === undefined) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw invalidArgument(`${path}: expected an unsigned 32-bit integer`);
  return n;
}

function writeUint32(w: protobuf.Writer, fieldNo: number, v: Json, path: string): void {
  const n = uint32(v, path);
  if (n) w.uint32(fieldNo << 3).uint32(n);
}

function int64(v: Json, path: string, signed: boolean): bigint | undefined {
  if (v === null || v === undefined) return undefined;
  try {
    if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
    if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  } catch {
    // falls through to the error below
  }
  throw invalidArgument(`${path}: expected a ${signed ? '' : 'non-negative '}64-bit integer (a decimal string or a number)`);
}

function longBits(n: bigint): { low: number; high: number; unsigned: boolean } {
  const u = BigInt.asUintN(64, n);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false };
}

function writeFixed64(w: protobuf.Writer, fieldNo: number, v: Json, path: string): void {
  const n = int64(v, path, false);
  if (n === undefined || n === 0n) return;
  if (n < 0n || n > 0xffffffffffffffffn) throw invalidArgument(`${path}: out of range for an unsigned 64-bit integer`);
  const b = longBits(n);
  w.uint32((fieldNo << 3) | 1).fixed32(b.low).fixed32(b.high);
}

function writeEnum(w: protobuf.Writer, fieldNo: number, v: Json, names: Record<string, number>, path: string): void {
  if (v === null || v === undefined) return;
  let n: number | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) n = v;
  else if (typeof v === 'string') n = names[v];
  if (n === undefined) throw invalidArgument(`${path}: expected an enum value`);
  if (n !== 0) w.uint32(fieldNo << 3).int32(n);
}

function writeId(w: protobuf.Writer, fieldNo: number, v: Json, bytes: number, path: string): void {
  const s = str(v, path);
  if (s === undefined || s === '') return;
  if (s.length !== bytes * 2 || !/^[0-9a-fA-F]+$/.test(s)) throw invalidArgument(`${path}: expected ${bytes * 2} hex characters`);
  w.uint32((fieldNo << 3) | 2).bytes(Buffer.from(s, 'hex'));
}

function writeFixed32(w: protobuf.Writer, fieldNo: number, v: Json, path: string): void {
  const n = uint32(v, path);
  if (n) w.uint32((fieldNo << 3) | 5).fixed32(n);
}

function resourceSpans(w: protobuf.Writer, o: Obj, path: string): void {
  const res = o['resource'];
  if (res !== undefined && res !== null) {
    w.uint32(0x0a).fork();
    const r = obj(res, `${path}.resource`);
    attributes(w, 1, r['attributes'], `${path}.resource.attributes`, 0);
    writeUint32(w, 2, field(r, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.resource.droppedAttributesCount`);
    w.ldelim();
  }
  for (const [i, ss] of arr(field(o, 'scopeSpans', 'scope_spans'), `${path}.scopeSpans`)) {
    const p = `${path}.scopeSpans[${i}]`;
    w.uint32(0x12).fork();
    scopeSpans(w, obj(ss, p), p);
    w.ldelim();
  }
  writeString(w, 3, field(o, 'schemaUrl', 'schema_url'), `${path}.schemaUrl`);
}

function scopeSpans(w: protobuf.Writer, o: Obj, path: string): void {
  const scope = o['scope'];
  if (scope !== undefined && scope !== null) {
    const s = obj(scope, `${path}.scope`);
    w.uint32(0x0a).fork();
    writeString(w, 1, s['name'], `${path}.scope.name`);
    writeString(w, 2, s['version'], `${path}.scope.version`);
    attributes(w, 3, s['attributes'], `${path}.scope.attributes`, 0);
    writeUint32(w, 4, field(s, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.scope.droppedAttributesCount`);
    w.ldelim();
  }
  for (const [i, sp] of arr(o['spans'], `${path}.spans`)) {
    const p = `${path}.spans[${i}]`;
    w.uint32(0x12).fork();
    span(w, obj(sp, p), p);
    w.ldelim();
  }
  writeString(w, 3, field(o, 'schemaUrl', 'schema_url'), `${path}.schemaUrl`);
}

function span(w: protobuf.Writer, o: Obj, path: string): void {
  writeId(w, 1, field(o, 'traceId', 'trace_id'), 16, `${path}.traceId`);
  writeId(w, 2, field(o, 'spanId', 'span_id'), 8, `${path}.spanId`);
  writeString(w, 3, field(o, 'traceState', 'trace_state'), `${path}.traceState`);
  writeId(w, 4, field(o, 'parentSpanId', 'parent_span_id'), 8, `${path}.parentSpanId`);
  writeString(w, 5, o['name'], `${path}.name`);
  writeEnum(w, 6, o['kind'], SPAN_KIND, `${path}.kind`);
  writeFixed64(w, 7, field(o, 'startTimeUnixNano', 'start_time_unix_nano'), `${path}.startTimeUnixNano`);
  writeFixed64(w, 8, field(o, 'endTimeUnixNano', 'end_time_unix_nano'), `${path}.endTimeUnixNano`);
  attributes(w, 9, o['attributes'], `${path}.attributes`, 0);
  writeUint32(w, 10, field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.droppedAttributesCount`);
  for (const [i, ev] of arr(o['events'], `${path}.events`)) {
    const p = `${path}.events[${i}]`;
    const e = obj(ev, p);
    w.uint32(0x5a).fork();
    writeFixed64(w, 1, field(e, 'timeUnixNano', 'time_unix_nano'), `${p}.timeUnixNano`);
    writeString(w, 2, e['name'], `${p}.name`);
    attributes(w, 3, e['attributes'], `${p}.attributes`, 0);
    writeUint32(w, 4, field(e, 'droppedAttributesCount', 'dropped_attributes_count'), `${p}.droppedAttributesCount`);
    w.ldelim();
  }
  writeUint32(w, 12, field(o, 'droppedEventsCount', 'dropped_events_count'), `${path}.droppedEventsCount`);
  for (const [i, lk] of arr(o['links'], `${path}.links`)) {
    const p = `${path}.links[${i}]`;
    const l = obj(lk, p);
    w.uint32(0x6a).fork();
    writeId(w, 1, field(l, 'traceId', 'trace_id'), 16, `${p}.traceId`);
    writeId(w, 2, field(l, 'spanId', 'span_id'), 8, `${p}.spanId`);
    writeString(w, 3, field(l, 'traceState', 'trace_state'), `${p}.traceState`);
    attributes(w, 4, l['attributes'], `${p}.attributes`, 0);
    writeUint32(w, 5, field(l, 'droppedAttributesCount', 'dropped_attributes_count'), `${p}.droppedAttributesCount`);
    writeFixed32(w, 6, l['flags'], `${p}.flags`);
    w.ldelim();
  }
  writeUint32(w, 14, field(o, 'droppedLinksCount', 'dropped_links_count'), `${path}.droppedLinksCount`);
  const status = o['status'];
  if (status !== undefined && status !== null) {
    const s = obj(status, `${path}.status`);
    w.uint32(0x7a).fork();
    writeString(w, 2, s['message'], `${path}.status.message`);
    writeEnum(w, 3, s['code'], STATUS_CODE, `${path}.status.code`);
    w.ldelim();
  }
  writeFixed32(w, 16, o['flags'], `${path}.flags`);
}

function attributes(w: protobuf.Writer, fieldNo: number, v: Json, path: string, depth: number): void {
  for (const [i, kv] of arr(v, path)) {
    const p = `${path}[${i}]`;
    w.uint32((fieldNo << 3) | 2).fork();
    keyValue(w, obj(kv, p), p, depth);
    w.ldelim();
  }
}

function keyValue(w: protobuf.Writer, o: Obj, path: string, depth: number): void {
  writeString(w, 1, o['key'], `${path}.key`);
  const value = o['value'];
  if (value !== undefined && value !== null) {
    w.uint32(0x12).fork();
    anyValue(w, obj(value, `${path}.value`), `${path}.value`, depth + 1);
    w.ldelim();
  }
}

function anyValue(w: protobuf.Writer, o: Obj, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw invalidArgument(`${path}: attribute values nested too deeply`);
  let v: Json;
  if ((v = field(o, 'stringValue', 'string_value')) !== undefined) {
    const s = str(v, `${path}.stringValue`) ?? '';
    w.uint32(0x0a).string(s);
  } else if ((v = field(o, 'boolValue', 'bool_value')) !== undefined) {
    if (typeof v !== 'boolean') throw invalidArgument(`${path}.boolValue: expected a boolean`);
    w.uint32(0x10).bool(v);
  } else if ((v = field(o, 'intValue', 'int_value')) !== undefined) {
    const n = int64(v, `${path}.intValue`, true)!;
    if (n < -(2n ** 63n) || n >= 2n ** 63n) throw invalidArgument(`${path}.intValue: out of range for a 64-bit integer`);
    w.uint32(0x18).int64(longBits(n) as unknown as number);
  } else if ((v = field(o, 'doubleValue', 'double_value')) !== undefined) {
    const d = typeof v === 'string' ? Number(v) : v;
    if (typeof d !== 'number' || (typeof v === 'string' && Number.isNaN(d) && v !== 'NaN')) throw invalidArgument(`${path}.doubleValue: expected a number`);
    w.uint32(0x21).double(d);
  } else if ((v = field(o, 'arrayValue', 'array_value')) !== undefined) {
    const a = obj(v, `${path}.arrayValue`);
    w.uint32(0x2a).fork();
    for (const [i, item] of arr(a['values'], `${path}.arrayValue.values`)) {
      const p = `${path}.arrayValue.values[${i}]`;
      w.uint32(0x0a).fork();
      anyValue(w, obj(item, p), p, depth + 1);
      w.ldelim();
    }
    w.ldelim();
  } else if ((v = field(o, 'kvlistValue', 'kvlist_value')) !== undefined) {
    const l = obj(v, `${path}.kvlistValue`);
    w.uint32(0x32).fork();
    attributes(w, 1, l['values'], `${path}.kvlistValue.values`, depth + 1);
    w.ldelim();
  } else if ((v = field(o, 'bytesValue', 'bytes_value')) !== undefined) {
    const s = str(v, `${path}.bytesValue`) ?? '';
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) throw invalidArgument(`${path}.bytesValue: expected base64`);
    w.uint32(0x3a).bytes(Buffer.from(s, 'base64'));
  }
}
