/**
 * The converters (upper-case functions that compute a value) that trace pipelines use, with the
 * Collector's semantics (pkg/ottl/ottlfuncs). Strings are Go strings there, so lengths and offsets count
 * UTF-8 bytes here too.
 */
import { createHash } from 'node:crypto';
import { parseDuration } from '../pipeline/config/schema.js';
import { goTest } from '../pipeline/config/go-regexp.js';
import { OttlRuntimeError } from './errors.js';
import { floatLike, intLike, type Arg, type FunctionDef, type ParamKind } from './function-def.js';
import type { Eval } from './paths.js';
import { SPAN_PARENT_SPAN_ID } from './target.js';
import { OttlDuration, OttlTime, typeOf, type OttlMap, type StaticType, type Value } from './values.js';

const str = (a: Arg): Eval => a as Eval;

/** A converter of one argument whose result depends on that value alone. */
function unary(name: string, kind: ParamKind, returns: StaticType, fn: (v: Value) => Value): FunctionDef {
  return {
    name,
    params: [{ name: kind === 'duration' || kind === 'time' || kind === 'bytes' ? kind : 'value', kind }],
    returns,
    build: ([arg]) => {
      const get = str(arg);
      return (t) => fn(get(t));
    },
  };
}

/** TraceID and SpanID: the bytes as they are, when they are an id's length. */
function idOfLength(n: number, what: string): (v: Value) => Value {
  return (v) => {
    const b = v as Uint8Array;
    if (b.length !== n) throw new OttlRuntimeError(`${what} ids must be ${n} bytes, got ${b.length}`);
    return b;
  };
}

/** Int and Double: a value that cannot be converted gives nil, not an error. */
function orNil(convert: (v: Value) => Value): (v: Value) => Value {
  return (v) => {
    try {
      return convert(v);
    } catch {
      return null;
    }
  };
}

function hashHex(alg: string): (s: string) => string {
  return (s) => createHash(alg).update(s, 'utf8').digest('hex');
}

/** FNV-1a 64-bit, as Go's hash/fnv New64a, returned as int64. */
export function fnv64a(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, h);
}

/** Converter names usable as replace_pattern's `function` argument: one string in, a string out. */
export const STRING_HASHES: Record<string, (s: string) => string> = {
  SHA1: hashHex('sha1'),
  SHA256: hashHex('sha256'),
  SHA512: hashHex('sha512'),
  MD5: hashHex('md5'),
  FNV: (s) => fnv64a(s).toString(),
};

function fromJson(x: unknown): Value {
  if (x === null) return null;
  if (Array.isArray(x)) return x.map(fromJson);
  switch (typeof x) {
    case 'string':
    case 'boolean':
      return x;
    case 'number':
      // encoding/json decodes every number as float64.
      return x;
    case 'object': {
      const m: OttlMap = new Map();
      for (const [k, v] of Object.entries(x as Record<string, unknown>)) m.set(k, fromJson(v));
      return m;
    }
    default:
      return null;
  }
}

function toCase(s: string, c: string): string {
  switch (c) {
    case 'lower':
      return s.toLowerCase();
    case 'upper':
      return s.toUpperCase();
    case 'snake':
      return s
        .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
        .replace(/[\s-]+/g, '_')
        .toLowerCase();
    default: {
      const parts = s.split(/[_\s-]+/).filter((p) => p !== '');
      return parts.map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase()).join('');
    }
  }
}

const typeTest = (type: string): FunctionDef => ({
  name: `Is${type === 'string' ? 'String' : type === 'int' ? 'Int' : type === 'float' ? 'Double' : type === 'bool' ? 'Bool' : type === 'map' ? 'Map' : 'List'}`,
  params: [{ name: 'value', kind: 'getter' }],
  returns: 'bool',
  build: ([v]) => {
    const get = v as Eval;
    return (t) => {
      const x = get(t);
      return x !== null && typeOf(x) === type;
    };
  },
});

// Go's UnixMilli and Unix round toward negative infinity; for times after 1970 that is division.
const timeOf = (unit: bigint, name: string): FunctionDef => unary(name, 'time', 'int', (v) => (v as OttlTime).ns / unit);

export const CONVERTERS: readonly FunctionDef[] = [
  {
    name: 'IsMatch',
    params: [
      { name: 'target', kind: 'stringlike' },
      { name: 'pattern', kind: 'regex' },
    ],
    returns: 'bool',
    build: ([target, pattern]) => {
      const get = str(target);
      const re = pattern as RegExp;
      return (t) => {
        const s = get(t);
        return s !== null && goTest(re, s as string);
      };
    },
  },
  {
    name: 'Concat',
    params: [
      { name: 'vals', kind: 'getters' },
      { name: 'delimiter', kind: 'string' },
    ],
    returns: 'string',
    build: ([vals, delimiter]) => {
      const gets = vals as Eval[];
      const delim = str(delimiter);
      return (t) => {
        const d = delim(t) as string;
        let out = '';
        for (let i = 0; i < gets.length; i++) {
          if (i > 0) out += d;
          const v = gets[i]!(t);
          out += v === null ? '<nil>' : (v as string);
        }
        return out;
      };
    },
  },
  {
    name: 'Split',
    params: [
      { name: 'target', kind: 'string' },
      { name: 'delimiter', kind: 'lit_string' },
    ],
    returns: 'list',
    build: ([target, delimiter]) => {
      const get = str(target);
      const d = delimiter as string;
      // Go's strings.Split with an empty separator splits into UTF-8 sequences.
      return (t) => (d === '' ? [...(get(t) as string)] : (get(t) as string).split(d));
    },
  },
  {
    name: 'Len',
    params: [{ name: 'target', kind: 'getter' }],
    returns: 'int',
    build: ([target]) => {
      const get = str(target);
      return (t) => {
        const v = get(t);
        if (typeof v === 'string') return BigInt(Buffer.byteLength(v, 'utf8'));
        if (Array.isArray(v) || v instanceof Uint8Array) return BigInt(v.length);
        if (v instanceof Map) return BigInt(v.size);
        throw new OttlRuntimeError(`Len takes a string, a list, bytes or a map, got ${v === null ? 'nil' : typeOf(v)}`);
      };
    },
  },
  unary('Int', 'getter', 'int', orNil(intLike)),
  unary('Double', 'getter', 'float', orNil(floatLike)),
  {
    name: 'String',
    params: [{ name: 'value', kind: 'stringlike' }],
    returns: 'string',
    build: ([value]) => str(value),
  },
  {
    name: 'Substring',
    params: [
      { name: 'target', kind: 'string' },
      { name: 'start', kind: 'int' },
      { name: 'length', kind: 'int' },
    ],
    returns: 'string',
    build: ([target, start, length]) => {
      const get = str(target);
      const s0 = str(start);
      const l0 = str(length);
      return (t) => {
        const b = Buffer.from(get(t) as string, 'utf8');
        const s = s0(t) as bigint;
        const l = l0(t) as bigint;
        if (s < 0n) throw new OttlRuntimeError(`invalid start for Substring: ${s}`);
        if (l <= 0n) throw new OttlRuntimeError(`invalid length for Substring: ${l}`);
        if (s + l > BigInt(b.length)) throw new OttlRuntimeError(`invalid range for Substring: start ${s}, length ${l}, string length ${b.length}`);
        return b.subarray(Number(s), Number(s + l)).toString('utf8');
      };
    },
  },
  ...Object.entries(STRING_HASHES).map(
    ([name, fn]): FunctionDef => ({
      name,
      params: [{ name: 'value', kind: 'string' }],
      returns: name === 'FNV' ? 'int' : 'string',
      build: ([value]) => {
        const get = str(value);
        return name === 'FNV' ? (t) => fnv64a(get(t) as string) : (t) => fn(get(t) as string);
      },
    }),
  ),
  typeTest('string'),
  typeTest('int'),
  typeTest('float'),
  typeTest('bool'),
  typeTest('map'),
  typeTest('list'),
  {
    name: 'IsRootSpan',
    params: [],
    returns: 'bool',
    build: () => (t) => t.spanFieldStart(SPAN_PARENT_SPAN_ID) < 0 || t.spanFieldEnd(SPAN_PARENT_SPAN_ID) === t.spanFieldStart(SPAN_PARENT_SPAN_ID),
  },
  {
    name: 'ConvertCase',
    params: [
      { name: 'target', kind: 'string' },
      { name: 'to_case', kind: 'lit_string' },
    ],
    returns: 'string',
    build: ([target, c]) => {
      const to = c as string;
      if (!['lower', 'upper', 'snake', 'camel'].includes(to)) throw `invalid case: ${to}, allowed cases are: lower, upper, snake, camel`;
      const get = str(target);
      return (t) => toCase(get(t) as string, to);
    },
  },
  unary('ToLowerCase', 'string', 'string', (v) => (v as string).toLowerCase()),
  unary('ToUpperCase', 'string', 'string', (v) => (v as string).toUpperCase()),
  {
    name: 'HasPrefix',
    params: [
      { name: 'target', kind: 'string' },
      { name: 'prefix', kind: 'string' },
    ],
    returns: 'bool',
    build: ([target, prefix]) => {
      const get = str(target);
      const p = str(prefix);
      return (t) => (get(t) as string).startsWith(p(t) as string);
    },
  },
  {
    name: 'HasSuffix',
    params: [
      { name: 'target', kind: 'string' },
      { name: 'suffix', kind: 'string' },
    ],
    returns: 'bool',
    build: ([target, suffix]) => {
      const get = str(target);
      const p = str(suffix);
      return (t) => (get(t) as string).endsWith(p(t) as string);
    },
  },
  unary('TraceID', 'bytes', 'bytes', idOfLength(16, 'trace')),
  unary('SpanID', 'bytes', 'bytes', idOfLength(8, 'span')),
  {
    name: 'Now',
    params: [],
    returns: 'time',
    build: () => () => new OttlTime(BigInt(Date.now()) * 1_000_000n),
  },
  timeOf(1n, 'UnixNano'),
  timeOf(1_000_000n, 'UnixMilli'),
  timeOf(1_000_000_000n, 'UnixSeconds'),
  {
    name: 'Duration',
    params: [{ name: 'duration', kind: 'string' }],
    returns: 'duration',
    build: ([d]) => {
      const get = str(d);
      return (t) => {
        const text = get(t) as string;
        const neg = text.startsWith('-');
        const ms = parseDuration(neg || text.startsWith('+') ? text.slice(1) : text);
        if (ms === null) throw new OttlRuntimeError('Duration: the string is not a duration such as 1h30m or 250ms');
        const ns = BigInt(Math.round(ms * 1e6));
        return new OttlDuration(neg ? -ns : ns);
      };
    },
  },
  unary('Nanoseconds', 'duration', 'int', (v) => (v as OttlDuration).ns),
  unary('Milliseconds', 'duration', 'int', (v) => (v as OttlDuration).ns / 1_000_000n),
  unary('Seconds', 'duration', 'float', (v) => Number((v as OttlDuration).ns) / 1e9),
  {
    name: 'ParseJSON',
    params: [{ name: 'target', kind: 'string' }],
    returns: 'any',
    build: ([target]) => {
      const get = str(target);
      return (t) => {
        let x: unknown;
        try {
          x = JSON.parse(get(t) as string);
        } catch {
          // The parser's message quotes the text, which may be anything a span carried.
          throw new OttlRuntimeError('ParseJSON: the string is not valid JSON');
        }
        if (x === null || typeof x !== 'object') throw new OttlRuntimeError('ParseJSON: the text is not a JSON object or array');
        return fromJson(x);
      };
    },
  },
];

