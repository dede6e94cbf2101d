/**
 * An attribute value as the Collector's `pcommon.Value.AsString()` writes it, read from the wire: what
 * `redact_all_types` matches patterns against. Strings as they are; booleans `true`/`false`; integers in
 * decimal; doubles as ES6 number-to-string (JavaScript's own rule, but `-0` stays `-0` and non-finite
 * values give Go's JSON error text); bytes in standard base64; arrays and key-value lists as JSON with
 * sorted keys and no HTML escaping (a list holding a non-finite double gives "", as in Go).
 */
import { VALUE_ARRAY, VALUE_BOOL, VALUE_BYTES, VALUE_DOUBLE, VALUE_INT, VALUE_KVLIST, VALUE_STRING, decodeUtf8 } from '../../pipeline/batch/batch.js';
import { WireReader, WT_LEN } from '../../pipeline/batch/wire.js';

const MAX_DEPTH = 64;

export function readVarint64(buf: Uint8Array, start: number, end: number): bigint {
  let v = 0n;
  let shift = 0n;
  for (let p = start; p < end; p++) {
    const b = buf[p]!;
    v |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (b < 0x80) break;
  }
  return BigInt.asIntN(64, v);
}

function readDouble(buf: Uint8Array, start: number): number {
  return new DataView(buf.buffer, buf.byteOffset + start, 8).getFloat64(0, true);
}

export function goFloatString(f: number): string {
  if (Number.isNaN(f)) return 'json: unsupported value: NaN';
  if (!Number.isFinite(f)) return `json: unsupported value: ${f > 0 ? '+Inf' : '-Inf'}`;
  if (Object.is(f, -0)) return '-0';
  return String(f);
}

function base64(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('base64');
}

/** The value's AsString(); `kind` 0 is an empty value. */
export function valueAsString(buf: Uint8Array, kind: number, start: number, end: number): string {
  switch (kind) {
    case VALUE_STRING:
      return decodeUtf8(buf, start, end);
    case VALUE_BOOL:
      return readVarint64(buf, start, end) !== 0n ? 'true' : 'false';
    case VALUE_INT:
      return readVarint64(buf, start, end).toString();
    case VALUE_DOUBLE:
      return goFloatString(readDouble(buf, start));
    case VALUE_BYTES:
      return base64(buf, start, end);
    case VALUE_ARRAY:
    case VALUE_KVLIST: {
      const j = new JsonWriter(buf);
      return j.container(kind, start, end, 0) ? j.out : '';
    }
    default:
      return '';
  }
}

/** Go's encoding/json string quoting with HTML escaping off. */
export function goJsonString(s: string): string {
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | null = null;
    if (c < 0x20) {
      esc = c === 0x08 ? '\\b' : c === 0x0c ? '\\f' : c === 0x0a ? '\\n' : c === 0x0d ? '\\r' : c === 0x09 ? '\\t' : '\\u00' + c.toString(16).padStart(2, '0');
    } else if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = '\\\\';
    else if (c === 0x2028) esc = '\\u2028';
    else if (c === 0x2029) esc = '\\u2029';
    if (esc !== null) {
      out += s.slice(from, i) + esc;
      from = i + 1;
    }
  }
  return out + s.slice(from) + '"';
}

function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Go's sort.Strings order (bytewise UTF-8, which is code point order). */
export function sortGoStrings(list: string[]): string[] {
  return list.sort(compareCodePoints);
}

class JsonWriter {
  out = '';
  private readonly r = new WireReader();

  constructor(private readonly buf: Uint8Array) {}

  /** Appends an AnyValue message body [start, end) as JSON; false when it holds a non-finite double. */
  private anyValue(start: number, end: number, depth: number): boolean {
    const r = this.r;
    r.reset(this.buf, start);
    let kind = 0;
    let vs = -1;
    let ve = -1;
    while (r.pos < end) {
      const tag = r.uint32(end);
      const s = r.pos;
      if ((tag & 7) === WT_LEN) {
        const stop = r.lengthDelimitedEnd(end);
        kind = tag >>> 3;
        vs = r.pos;
        ve = stop;
        r.pos = stop;
      } else {
        r.skip(tag & 7, end);
        kind = tag >>> 3;
        vs = s;
        ve = r.pos;
      }
    }
    switch (kind) {
      case VALUE_STRING:
        this.out += goJsonString(decodeUtf8(this.buf, vs, ve));
        return true;
      case VALUE_BOOL:
      case VALUE_INT:
        this.out += valueAsString(this.buf, kind, vs, ve);
        return true;
      case VALUE_DOUBLE: {
        const f = readDouble(this.buf, vs);
        if (!Number.isFinite(f)) return false;
        this.out += goFloatString(f);
        return true;
      }
      case VALUE_BYTES:
        this.out += '"' + base64(this.buf, vs, ve) + '"';
        return true;
      case VALUE_ARRAY:
      case VALUE_KVLIST:
        return this.container(kind, vs, ve, depth + 1);
      default:
        this.out += 'null';
        return true;
    }
  }

  /** An ArrayValue or KeyValueList message body as a JSON array or object. */
  container(kind: number, start: number, end: number, depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    // Element ranges first: the reader is shared with the nested walk.
    const items: number[] = [];
    const r = this.r;
    r.reset(this.buf, start);
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === 0x0a) {
        const stop = r.lengthDelimitedEnd(end);
        items.push(r.pos, stop);
        r.pos = stop;
      } else r.skip(tag & 7, end);
    }
    if (kind === VALUE_ARRAY) {
      this.out += '[';
      for (let i = 0; i < items.length; i += 2) {
        if (i > 0) this.out += ',';
        if (!this.anyValue(items[i]!, items[i + 1]!, depth)) return false;
      }
      this.out += ']';
      return true;
    }
    // A map: duplicate keys keep the last value; keys sorted.
    const byKey = new Map<string, [number, number]>();
    for (let i = 0; i < items.length; i += 2) {
      const kv = this.keyValue(items[i]!, items[i + 1]!);
      byKey.set(kv.key, [kv.vs, kv.ve]);
    }
    const keys = sortGoStrings([...byKey.keys()]);
    this.out += '{';
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) this.out += ',';
      this.out += goJsonString(keys[i]!) + ':';
      const [vs, ve] = byKey.get(keys[i]!)!;
      if (vs < 0) this.out += 'null';
      else if (!this.anyValue(vs, ve, depth)) return false;
    }
    this.out += '}';
    return true;
  }

  private keyValue(start: number, end: number): { key: string; vs: number; ve: number } {
    const r = this.r;
    r.reset(this.buf, start);
    let key = '';
    let vs = -1;
    let ve = -1;
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === 0x0a) {
        const stop = r.lengthDelimitedEnd(end);
        key = decodeUtf8(this.buf, r.pos, stop);
        r.pos = stop;
      } else if (tag === 0x12) {
        ve = r.lengthDelimitedEnd(end);
        vs = r.pos;
        r.pos = ve;
      } else r.skip(tag & 7, end);
    }
    return { key, vs, ve };
  }
}
