/**
 * The trace contexts' paths (the Collector's ottlresource, ottlscope, ottlspan and ottlspanevent): what
 * each path reads, its static type, and whether and how it can be set. A path may name its context
 * (`span.name`, `resource.attributes["k"]`) or, in the context a component was configured with, leave it
 * out (`name`); a context can read its parents' paths (a span reads `resource.*` and `scope.*`, a span
 * event also `span.*`), never its children's.
 */
import type { Key, PathField, ValueNode } from './ast.js';
import { OttlError, OttlRuntimeError } from './errors.js';
import {
  CTX_RESOURCE,
  CTX_SCOPE,
  CTX_SPAN,
  CTX_SPANEVENT,
  EVENT_DROPPED_ATTRIBUTES,
  EVENT_NAME,
  EVENT_TIME,
  SCOPE_DROPPED_ATTRIBUTES,
  SCOPE_NAME,
  SCOPE_VERSION,
  SPAN_DROPPED_ATTRIBUTES,
  SPAN_DROPPED_EVENTS,
  SPAN_DROPPED_LINKS,
  SPAN_END,
  SPAN_FLAGS,
  SPAN_KIND,
  SPAN_PARENT_SPAN_ID,
  SPAN_START,
  SPAN_TRACE_STATE,
  DELETED,
  type ContextLevel,
  type Target,
} from './target.js';
import { decodePayload } from './any-value.js';
import { OttlTime, type OttlMap, type StaticType, type Value } from './values.js';
import { decodeUtf8 } from '../pipeline/batch/values.js';

export type Eval = (t: Target) => Value;

export interface PathExpr {
  type: StaticType;
  get: Eval;
  /** Sets the value; null when the path cannot be set. */
  set: ((t: Target, v: Value) => void) | null;
  /** For map paths that editors change in place: the writable map (null when not a settable map). */
  writableMap: ((t: Target) => OttlMap) | null;
  /** For a map path: removes one key without materialising the map (null when not available). */
  deleteKey?: ((t: Target, key: string) => void) | null;
  /** For `attributes["k"] == "text"` without decoding: the attribute list and its first key. */
  attribute: { level: ContextLevel; key: Uint8Array } | null;
  text: string;
}

/** Resolves a key expression (a path or converter inside brackets) at run time. */
export type KeyCompiler = (node: ValueNode) => Eval;

const CONTEXT_OF: Record<string, ContextLevel> = {
  resource: CTX_RESOURCE,
  scope: CTX_SCOPE,
  instrumentation_scope: CTX_SCOPE,
  span: CTX_SPAN,
  spanevent: CTX_SPANEVENT,
};

const KIND_STRINGS = ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'];
const KIND_DEPRECATED = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];

export const ENUMS: Record<string, bigint> = {
  SPAN_KIND_UNSPECIFIED: 0n,
  SPAN_KIND_INTERNAL: 1n,
  SPAN_KIND_SERVER: 2n,
  SPAN_KIND_CLIENT: 3n,
  SPAN_KIND_PRODUCER: 4n,
  SPAN_KIND_CONSUMER: 5n,
  STATUS_CODE_UNSET: 0n,
  STATUS_CODE_OK: 1n,
  STATUS_CODE_ERROR: 2n,
};

/** The context a path names with its first segment, or null when it names none. */
export function pathContext(fields: PathField[]): ContextLevel | null {
  const first = fields[0]!.name;
  return fields.length > 1 && first in CONTEXT_OF ? CONTEXT_OF[first]! : null;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** W3C tracestate `k=v,k2=v2` as a map. */
function traceStateMap(s: string): OttlMap {
  const m: OttlMap = new Map();
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) m.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return m;
}

/** Indexes a value by keys at run time, as ctxutil does: string keys into maps, int keys into lists. */
export function indexValue(v: Value, keys: readonly Eval[], t: Target, from: number): Value {
  for (let i = from; i < keys.length; i++) {
    const k = keys[i]!(t);
    if (v === null) return null;
    if (typeof k === 'string') {
      if (!(v instanceof Map)) throw new OttlRuntimeError(`cannot index a ${typeOfName(v)} by a string key`);
      v = v.has(k) ? v.get(k)! : null;
    } else if (typeof k === 'bigint') {
      if (!Array.isArray(v)) throw new OttlRuntimeError(`cannot index a ${typeOfName(v)} by an integer key`);
      if (k < 0n || k >= BigInt(v.length)) throw new OttlRuntimeError(`index ${k} out of bounds (length ${v.length})`);
      v = v[Number(k)]!;
    } else {
      throw new OttlRuntimeError('a key must be a string or an integer');
    }
  }
  return v;
}

function typeOfName(v: Value): string {
  return v instanceof Map ? 'map' : Array.isArray(v) ? 'list' : typeof v;
}

/** Sets `value` under keys in a map, creating maps on the way as pcommon's SetMapValue does. */
function setIn(root: OttlMap, keys: readonly Eval[], t: Target, value: Value): void {
  let cur: Value = root;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!(t);
    const last = i === keys.length - 1;
    if (typeof k === 'string') {
      if (!(cur instanceof Map)) throw new OttlRuntimeError(`cannot set a string key in a ${typeOfName(cur)}`);
      if (last) {
        cur.set(k, value);
        return;
      }
      let next = cur.get(k);
      if (next === undefined || next === null) {
        const nextKey = keys[i + 1]!(t);
        next = typeof nextKey === 'bigint' ? [] : new Map();
        cur.set(k, next);
      }
      cur = next;
    } else if (typeof k === 'bigint') {
      if (!Array.isArray(cur)) throw new OttlRuntimeError(`cannot set an integer key in a ${typeOfName(cur)}`);
      if (k < 0n || k >= BigInt(cur.length)) throw new OttlRuntimeError(`index ${k} out of bounds (length ${cur.length})`);
      if (last) {
        cur[Number(k)] = value;
        return;
      }
      cur = cur[Number(k)]!;
    } else {
      throw new OttlRuntimeError('a key must be a string or an integer');
    }
  }
}

/** Deep copy: a value set from a map or list must not alias the one it came from. */
export function copyValue(v: Value): Value {
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, copyValue(x)]));
  if (Array.isArray(v)) return v.map(copyValue);
  return v;
}

interface Scalar {
  type: StaticType;
  get: Eval;
  set?: (t: Target, v: Value) => void;
}

function spanScalars(): Record<string, Scalar> {
  return {
    trace_id: { type: 'bytes', get: (t) => idBytes(t, t.batch.traceIdOffset(t.span), 16) },
    'trace_id.string': { type: 'string', get: (t) => hex(idBytes(t, t.batch.traceIdOffset(t.span), 16)) },
    span_id: { type: 'bytes', get: (t) => idBytes(t, t.batch.spanIdOffset(t.span), 8) },
    'span_id.string': { type: 'string', get: (t) => hex(idBytes(t, t.batch.spanIdOffset(t.span), 8)) },
    parent_span_id: { type: 'bytes', get: (t) => t.spanBytes(SPAN_PARENT_SPAN_ID) },
    'parent_span_id.string': { type: 'string', get: (t) => hex(t.spanBytes(SPAN_PARENT_SPAN_ID)) },
    trace_state: { type: 'string', get: (t) => t.spanString(SPAN_TRACE_STATE) },
    name: {
      type: 'string',
      get: (t) => (t.name !== null ? t.name : t.batch.spanName(t.span)),
      set: (t, v) => {
        if (typeof v === 'string') t.name = v;
      },
    },
    kind: {
      type: 'int',
      get: (t) => (t.kind >= 0 ? BigInt(t.kind) : BigInt.asIntN(32, t.spanUint(SPAN_KIND))),
      set: (t, v) => {
        if (typeof v === 'bigint' && v >= 0n && v <= 0x7fffffffn) t.kind = Number(v);
      },
    },
    'kind.string': { type: 'string', get: (t) => KIND_STRINGS[Number(t.kind >= 0 ? t.kind : t.spanUint(SPAN_KIND))] ?? '' },
    'kind.deprecated_string': { type: 'string', get: (t) => KIND_DEPRECATED[Number(t.kind >= 0 ? t.kind : t.spanUint(SPAN_KIND))] ?? '' },
    start_time_unix_nano: { type: 'int', get: (t) => BigInt.asIntN(64, t.spanFixed64(SPAN_START)) },
    end_time_unix_nano: { type: 'int', get: (t) => BigInt.asIntN(64, t.spanFixed64(SPAN_END)) },
    start_time: { type: 'time', get: (t) => new OttlTime(t.spanFixed64(SPAN_START)) },
    end_time: { type: 'time', get: (t) => new OttlTime(t.spanFixed64(SPAN_END)) },
    dropped_attributes_count: { type: 'int', get: (t) => t.spanUint(SPAN_DROPPED_ATTRIBUTES) },
    dropped_events_count: { type: 'int', get: (t) => t.spanUint(SPAN_DROPPED_EVENTS) },
    dropped_links_count: { type: 'int', get: (t) => t.spanUint(SPAN_DROPPED_LINKS) },
    flags: { type: 'int', get: (t) => t.spanFixed32(SPAN_FLAGS) },
    'status.code': {
      type: 'int',
      get: (t) => t.statusCodeRead(),
      set: (t, v) => {
        if (typeof v === 'bigint' && v >= 0n && v <= 2n) t.statusCode = Number(v);
      },
    },
    'status.message': {
      type: 'string',
      get: (t) => t.statusMessageRead(),
      set: (t, v) => {
        if (typeof v === 'string') t.statusMessage = v;
      },
    },
  };
}

function idBytes(t: Target, offset: number, n: number): Uint8Array {
  return offset < 0 ? new Uint8Array(n) : t.batch.bytes.slice(offset, offset + n);
}

function fieldString(buf: Uint8Array, s: number, e: number): string {
  return s < 0 ? '' : decodeUtf8(buf, s, e);
}

function eventScalars(): Record<string, Scalar> {
  const fixed = (t: Target): bigint => {
    const s = t.eventFieldStart(EVENT_TIME);
    return s < 0 ? 0n : Buffer.from(t.batch.bytes.buffer, t.batch.bytes.byteOffset + s, 8).readBigUInt64LE(0);
  };
  return {
    name: { type: 'string', get: (t) => fieldString(t.batch.bytes, t.eventFieldStart(EVENT_NAME), t.eventFieldEnd(EVENT_NAME)) },
    time_unix_nano: { type: 'int', get: (t) => BigInt.asIntN(64, fixed(t)) },
    time: { type: 'time', get: (t) => new OttlTime(fixed(t)) },
    dropped_attributes_count: { type: 'int', get: (t) => uintAt(t, t.eventFieldStart(EVENT_DROPPED_ATTRIBUTES), t.eventFieldEnd(EVENT_DROPPED_ATTRIBUTES)) },
  };
}

function scopeScalars(): Record<string, Scalar> {
  return {
    name: { type: 'string', get: (t) => fieldString(t.batch.bytes, t.scopeFieldStart(SCOPE_NAME), t.scopeFieldEnd(SCOPE_NAME)) },
    version: { type: 'string', get: (t) => fieldString(t.batch.bytes, t.scopeFieldStart(SCOPE_VERSION), t.scopeFieldEnd(SCOPE_VERSION)) },
    dropped_attributes_count: { type: 'int', get: (t) => uintAt(t, t.scopeFieldStart(SCOPE_DROPPED_ATTRIBUTES), t.scopeFieldEnd(SCOPE_DROPPED_ATTRIBUTES)) },
  };
}

function uintAt(t: Target, s: number, e: number): bigint {
  if (s < 0) return 0n;
  let v = 0n;
  let shift = 0n;
  for (let p = s; p < e; p++) {
    const b = t.batch.bytes[p]!;
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) break;
    shift += 7n;
  }
  return v;
}

const SCALARS: Record<ContextLevel, Record<string, Scalar>> = {
  [CTX_RESOURCE]: { dropped_attributes_count: { type: 'int', get: (t) => t.resourceDroppedAttributes() } },
  [CTX_SCOPE]: scopeScalars(),
  [CTX_SPAN]: spanScalars(),
  [CTX_SPANEVENT]: eventScalars(),
};

/** Map-valued paths: attribute lists, the cache and trace_state. */
interface MapPath {
  level: ContextLevel;
  read: (t: Target) => OttlMap;
  writable: ((t: Target) => OttlMap) | null;
  /** For attributes: find one key without decoding the list (when nothing was written to it). */
  find: ((t: Target, key: Uint8Array) => boolean) | null;
  /** Whether the list was materialised (then it is read from the map). */
  written: ((t: Target) => boolean) | null;
  /** Keyed writes not yet materialised, and the map to record them in (created on first use). */
  keyed: ((t: Target) => Map<string, Value | typeof DELETED> | null) | null;
  keyedWritable: ((t: Target) => Map<string, Value | typeof DELETED>) | null;
}

function attributeMap(level: ContextLevel): MapPath {
  switch (level) {
    case CTX_RESOURCE:
      return {
        level,
        read: (t) => t.resourceAttributeMap(),
        writable: (t) => t.writableResourceAttributes(),
        find: (t, key) => t.batch.findResourceAttribute(t.resource, key),
        written: (t) => t.resourceAttrs !== null,
        keyed: (t) => t.resourceKeyed,
        keyedWritable: (t) => (t.resourceKeyed ??= new Map()),
      };
    case CTX_SCOPE:
      return { level, read: (t) => t.scopeAttributeMap(), writable: null, find: null, written: null, keyed: null, keyedWritable: null };
    case CTX_SPAN:
      return {
        level,
        read: (t) => t.spanAttributeMap(),
        writable: (t) => t.writableSpanAttributes(),
        find: (t, key) => t.batch.findSpanAttribute(t.span, key),
        written: (t) => t.spanAttrs !== null,
        keyed: (t) => t.spanKeyed,
        keyedWritable: (t) => (t.spanKeyed ??= new Map()),
      };
    default:
      return { level, read: (t) => t.eventAttributeMap(), writable: null, find: null, written: null, keyed: null, keyedWritable: null };
  }
}

const CACHE: MapPath = {
  level: CTX_SPAN,
  read: (t) => (t.cache ??= new Map()),
  writable: (t) => (t.cache ??= new Map()),
  find: null,
  written: null,
  keyed: null,
  keyedWritable: null,
};

const CONTEXT_WORDS = ['resource', 'scope', 'span', 'spanevent'];

/**
 * Resolves a path in a statement whose context is `context`. `compileKey` compiles key expressions.
 * Throws OttlError (unknown path, a child context's path, keys where none are allowed).
 */
export function resolvePath(node: Extract<ValueNode, { t: 'path' }>, context: ContextLevel, compileKey: KeyCompiler): PathExpr {
  let fields = node.fields;
  let level = context;
  const named = pathContext(fields);
  if (named !== null) {
    level = named;
    fields = fields.slice(1);
    if (level > context && !(context === CTX_SPANEVENT && level === CTX_SPAN)) {
      throw new OttlError('OTTL_CONTEXT', `the path ${pathText(node.fields)} belongs to the ${CONTEXT_WORDS[level]} context and cannot be used in the ${CONTEXT_WORDS[context]} context`, node.pos);
    }
  }
  const text = pathText(node.fields);
  const first = fields[0]!;
  // Two-segment names (status.code, kind.string, trace_id.string).
  const joined = fields.length >= 2 && fields[0]!.keys.length === 0 ? `${fields[0]!.name}.${fields[1]!.name}` : null;
  const scalars = SCALARS[level];
  const scalarName = joined !== null && joined in scalars ? joined : first.name;
  const scalar = scalars[scalarName];
  const traceStateKeys = level === CTX_SPAN && scalarName === 'trace_state' && first.keys.length > 0;
  if (scalar !== undefined && !traceStateKeys && (scalarName === joined ? fields.length === 2 : fields.length === 1)) {
    const last = fields[fields.length - 1]!;
    if (last.keys.length > 0) throw new OttlError('OTTL_TYPE', `the path ${text} cannot be indexed`, last.keys[0]!.pos);
    return { type: scalar.type, get: scalar.get, set: scalar.set ?? null, writableMap: null, attribute: null, text };
  }
  let map: MapPath | null = null;
  if (first.name === 'attributes' && fields.length === 1) map = attributeMap(level);
  else if (first.name === 'cache' && fields.length === 1) map = CACHE;
  else if (level === CTX_SPAN && first.name === 'trace_state' && fields.length === 1) {
    map = { level, read: (t) => traceStateMap(t.spanString(SPAN_TRACE_STATE)), writable: null, find: null, written: null, keyed: null, keyedWritable: null };
  }
  if (map === null) {
    const known = [...Object.keys(scalars), 'attributes'].join(', ');
    throw new OttlError('OTTL_UNKNOWN_PATH', `unknown path ${text} in the ${CONTEXT_WORDS[level]} context (known: ${known})`, first.pos);
  }
  return mapPath(map, first.keys, compileKey, text);
}

function keyEval(k: Key, compileKey: KeyCompiler): Eval {
  if (k.str !== undefined) {
    const s = k.str;
    return () => s;
  }
  if (k.int !== undefined) {
    const n = k.int;
    return () => n;
  }
  return compileKey(k.expr!);
}

function mapPath(map: MapPath, keys: Key[], compileKey: KeyCompiler, text: string): PathExpr {
  if (keys.length === 0) {
    const writable = map.writable;
    return {
      type: 'map',
      get: map.read,
      set:
        writable === null
          ? null
          : (t, v) => {
              if (!(v instanceof Map)) return;
              const m = writable(t);
              const copy = copyValue(v) as OttlMap;
              m.clear();
              for (const [k, x] of copy) m.set(k, x);
            },
      writableMap: writable,
      deleteKey:
        map.keyedWritable === null || map.written === null
          ? null
          : (t, k) => {
              if (map.written!(t)) writable!(t).delete(k);
              else map.keyedWritable!(t).set(k, DELETED);
            },
      attribute: null,
      text,
    };
  }
  const evals = keys.map((k) => keyEval(k, compileKey));
  const firstKey = keys[0]!.str;
  const find = map.find;
  const written = map.written;
  let get: Eval;
  if (find !== null && written !== null && firstKey !== undefined) {
    // Find the first key in the bytes; decode only that value (and index into it for further keys).
    const key = Buffer.from(firstKey, 'utf8');
    const read = map.read;
    get = (t) => {
      let v: Value;
      const pending = written(t) ? null : map.keyed!(t);
      if (written(t)) {
        const m = read(t);
        v = m.has(firstKey) ? m.get(firstKey)! : null;
      } else if (pending !== null && pending.has(firstKey)) {
        const p = pending.get(firstKey)!;
        if (p === DELETED) return null;
        v = p;
      } else if (find(t, key)) {
        const f = t.batch.found;
        v = decodePayload(t.batch.bytes, f.kind, f.valueStart, f.valueEnd);
      } else {
        return null;
      }
      return evals.length === 1 ? v : indexValue(v, evals, t, 1);
    };
  } else {
    const read = map.read;
    get = (t) => indexValue(read(t), evals, t, 0);
  }
  const writable = map.writable;
  const keyedWritable = map.keyedWritable;
  return {
    type: 'any',
    get,
    set:
      writable === null
        ? null
        : keyedWritable !== null && written !== null && firstKey !== undefined && evals.length === 1
          ? (t, v) => {
              if (written(t)) writable(t).set(firstKey, copyValue(v));
              else keyedWritable(t).set(firstKey, copyValue(v));
            }
          : (t, v) => {
              setIn(writable(t), evals, t, copyValue(v));
            },
    writableMap:
      writable === null
        ? null
        : (t) => {
            const v = indexValue(writable(t), evals, t, 0);
            if (!(v instanceof Map)) throw new OttlRuntimeError(`${text} is not a map`);
            return v;
          },
    deleteKey: null,
    attribute: find !== null && firstKey !== undefined && keys.length === 1 ? { level: map.level, key: Buffer.from(firstKey, 'utf8') } : null,
    text,
  };
}

export function pathText(fields: PathField[]): string {
  return fields.map((f) => f.name + f.keys.map((k) => (k.str !== undefined ? `[${JSON.stringify(k.str)}]` : k.int !== undefined ? `[${k.int}]` : '[…]')).join('')).join('.');
}

