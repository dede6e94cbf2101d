/**
 * OTLP AnyValue and KeyValue bytes to OTTL values and back. Decoding is for what a statement actually
 * reads (one attribute, or a whole list when a function takes the map); nothing else of a span is decoded.
 */
import { VALUE_ARRAY, VALUE_BOOL, VALUE_BYTES, VALUE_DOUBLE, VALUE_INT, VALUE_KVLIST, VALUE_STRING, decodeUtf8 } from '../pipeline/batch/values.js';
import { WT_I64, WT_LEN, WT_VARINT, WireReader, lenFieldSize, varintSize, writeLenHeader, writeVarint } from '../pipeline/batch/wire.js';
import { OttlDuration, OttlTime, type OttlMap, type Value } from './values.js';

function readVarint64(buf: Uint8Array, start: number, end: number): bigint {
  let v = 0n;
  let shift = 0n;
  for (let p = start; p < end && shift < 70n; p++) {
    const b = buf[p]!;
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) break;
    shift += 7n;
  }
  return BigInt.asIntN(64, v);
}

/** The value of a found attribute: its oneof kind and payload range, as TraceBatch.found describes it. */
export function decodePayload(buf: Uint8Array, kind: number, start: number, end: number): Value {
  switch (kind) {
    case VALUE_STRING:
      return decodeUtf8(buf, start, end);
    case VALUE_BOOL:
      return readVarint64(buf, start, end) !== 0n;
    case VALUE_INT:
      return readVarint64(buf, start, end);
    case VALUE_DOUBLE:
      return Buffer.from(buf.buffer, buf.byteOffset + start, 8).readDoubleLE(0);
    case VALUE_BYTES:
      return buf.slice(start, end);
    case VALUE_ARRAY:
      return decodeArray(buf, start, end);
    case VALUE_KVLIST:
      return decodeKeyValues(buf, start, end, 1);
    default:
      return null;
  }
}

/** An AnyValue message's content at buf[start, end): the last oneof member present wins, as in protobuf. */
export function decodeAnyValue(buf: Uint8Array, start: number, end: number): Value {
  let kind = 0;
  let ps = 0;
  let pe = 0;
  const r = new WireReader();
  r.reset(buf, start);
  while (r.pos < end) {
    const tag = r.uint32(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    const at = r.pos;
    if (wt === WT_LEN) {
      pe = r.lengthDelimitedEnd(end);
      ps = r.pos;
      r.pos = pe;
    } else {
      r.skip(wt, end);
      ps = at;
      pe = r.pos;
      if (wt !== WT_VARINT && wt !== WT_I64) continue;
    }
    if (field >= VALUE_STRING && field <= VALUE_BYTES) kind = field;
  }
  return kind === 0 ? null : decodePayload(buf, kind, ps, pe);
}

function decodeArray(buf: Uint8Array, start: number, end: number): Value[] {
  const out: Value[] = [];
  const r = new WireReader();
  r.reset(buf, start);
  while (r.pos < end) {
    const tag = r.uint32(end);
    if (tag === 0x0a) {
      const stop = r.lengthDelimitedEnd(end);
      out.push(decodeAnyValue(buf, r.pos, stop));
      r.pos = stop;
    } else {
      r.skip(tag & 7, end);
    }
  }
  return out;
}

/**
 * The KeyValue fields numbered `field` in buf[start, end) as a map. A key that repeats keeps its first
 * value, as pdata's Map.Get finds the first.
 */
export function decodeKeyValues(buf: Uint8Array, start: number, end: number, field: number): OttlMap {
  const out: OttlMap = new Map();
  const r = new WireReader();
  r.reset(buf, start);
  while (r.pos < end) {
    const tag = r.uint32(end);
    if (tag >>> 3 === field && (tag & 7) === WT_LEN) {
      const stop = r.lengthDelimitedEnd(end);
      const kv = readKeyValue(buf, r.pos, stop);
      if (!out.has(kv[0])) out.set(kv[0], kv[1]);
      r.pos = stop;
    } else {
      r.skip(tag & 7, end);
    }
  }
  return out;
}

function readKeyValue(buf: Uint8Array, start: number, end: number): [string, Value] {
  let key = '';
  let value: Value = null;
  const r = new WireReader();
  r.reset(buf, start);
  while (r.pos < end) {
    const tag = r.uint32(end);
    if ((tag & 7) === WT_LEN) {
      const stop = r.lengthDelimitedEnd(end);
      if (tag >>> 3 === 1) key = decodeUtf8(buf, r.pos, stop);
      else if (tag >>> 3 === 2) value = decodeAnyValue(buf, r.pos, stop);
      r.pos = stop;
    } else {
      r.skip(tag & 7, end);
    }
  }
  return [key, value];
}

// ---- encoding ----

const utf8 = new TextEncoder();

function lenField(field: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(lenFieldSize(body.length));
  const p = writeLenHeader(out, 0, field, body.length);
  out.set(body, p);
  return out;
}

function varintField(field: number, v: bigint): Uint8Array {
  let u = BigInt.asUintN(64, v);
  const bytes = [(field << 3) | WT_VARINT];
  while (u >= 0x80n) {
    bytes.push(Number(u & 0x7fn) | 0x80);
    u >>= 7n;
  }
  bytes.push(Number(u));
  return Uint8Array.from(bytes);
}

/**
 * An OTTL value as an AnyValue message body. Times are written as their RFC 3339 text and durations as
 * Go prints them, as pdata's FromRaw would; nil is an empty AnyValue.
 */
export function encodeAnyValue(v: Value): Uint8Array {
  if (v === null) return new Uint8Array(0);
  switch (typeof v) {
    case 'string':
      return lenField(VALUE_STRING, utf8.encode(v));
    case 'boolean':
      return Uint8Array.of(VALUE_BOOL << 3, v ? 1 : 0);
    case 'bigint':
      return varintField(VALUE_INT, v);
    case 'number': {
      const out = new Uint8Array(9);
      out[0] = (VALUE_DOUBLE << 3) | WT_I64;
      Buffer.from(out.buffer).writeDoubleLE(v, 1);
      return out;
    }
  }
  if (v instanceof Uint8Array) return lenField(VALUE_BYTES, v);
  if (v instanceof OttlTime) return lenField(VALUE_STRING, utf8.encode(new Date(Number(v.ns / 1_000_000n)).toISOString()));
  if (v instanceof OttlDuration) return lenField(VALUE_STRING, utf8.encode(`${v.ns}ns`));
  if (v instanceof Map) return lenField(VALUE_KVLIST, encodeKeyValues(v, 1));
  return lenField(VALUE_ARRAY, Buffer.concat(v.map((x) => lenField(1, encodeAnyValue(x)))));
}

/** A map as a run of KeyValue fields numbered `field` (9 for span attributes, 1 for resource ones). */
export function encodeKeyValues(m: OttlMap, field: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of m) parts.push(encodeKeyValue(field, k, v));
  return Buffer.concat(parts);
}

export function encodeKeyValue(field: number, key: string, v: Value): Uint8Array {
  return lenField(field, Buffer.concat([lenField(1, utf8.encode(key)), lenField(2, encodeAnyValue(v))]));
}

/** A string field (tag `field`), for span and event names and status messages. */
export function stringField(field: number, s: string): Uint8Array {
  return lenField(field, utf8.encode(s));
}

export function uintField(field: number, v: number): Uint8Array {
  const out = new Uint8Array(1 + varintSize(v));
  out[0] = (field << 3) | WT_VARINT;
  writeVarint(out, 1, v);
  return out;
}

