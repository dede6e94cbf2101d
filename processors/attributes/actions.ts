/**
 * The Collector's attribute actions (coreinternal/attraction), shared by the attributes processor (span
 * attributes) and the resource processor (resource attributes): insert, update, upsert, delete, hash,
 * extract and convert, applied in order to one attribute list held by an OTTL Target, so reads see the
 * earlier actions' writes and only what changes becomes edits of the batch.
 */
import { createHash } from 'node:crypto';
import { s, type Infer } from '../../pipeline/config/schema.js';
import { compileGoRegexp, goRegexpProblem } from '../../pipeline/config/go-regexp.js';
import { floatLike, intLike } from '../../ottl/function-def.js';
import type { ContextLevel, Target } from '../../ottl/target.js';
import { asString, type OttlMap, type Value } from '../../ottl/values.js';

const ACTIONS = ['insert', 'update', 'upsert', 'delete', 'hash', 'extract', 'convert'] as const;
type ActionName = (typeof ACTIONS)[number];

export const actionSchema = s
  .object({
    key: s.string().optional(),
    action: s.string({ nonEmpty: true }),
    value: s.any().optional(),
    from_attribute: s.string().optional(),
    from_context: s.refused('from_context (request metadata, auth and client address) is not supported yet; use value or from_attribute'),
    pattern: s.string().optional(),
    converted_type: s.string().optional(),
  })
  .refine((a) => {
    const action = a.action.toLowerCase() as ActionName;
    if (!ACTIONS.includes(action)) return `unsupported action ${JSON.stringify(a.action)}; expected one of ${ACTIONS.join(', ')}`;
    const sources = (a.value !== undefined ? 1 : 0) + (a.from_attribute !== undefined ? 1 : 0);
    const key = a.key !== undefined && a.key !== '';
    if ((action === 'delete' || action === 'hash') && !key && a.pattern === undefined) return `action ${action} needs key or pattern (or both)`;
    if (action !== 'delete' && action !== 'hash' && !key) return `action ${action} needs key`;
    if (a.pattern !== undefined) {
      if (action !== 'delete' && action !== 'hash' && action !== 'extract') return `action ${action} does not use pattern`;
      const problem = goRegexpProblem(a.pattern);
      if (problem !== null) return `pattern: ${problem}`;
    }
    if (action === 'insert' || action === 'update' || action === 'upsert') {
      if (sources === 0) return `action ${action} needs value or from_attribute`;
      if (sources > 1) return `action ${action} takes one of value and from_attribute, not both`;
    } else if (sources > 0) {
      return `action ${action} does not use value or from_attribute`;
    }
    if (action === 'extract') {
      if (a.pattern === undefined) return 'action extract needs pattern';
      const groups = /\(\?P?<([^>]*)>/g;
      const names = [...a.pattern.matchAll(groups)].map((m) => m[1]!);
      const all = countGroups(a.pattern);
      if (names.length === 0) return 'the pattern of action extract has no named groups';
      if (names.length < all) return 'the pattern of action extract has an unnamed group; name every group';
    }
    if (action === 'convert') {
      if (a.converted_type === undefined) return 'action convert needs converted_type';
      if (!['int', 'double', 'string'].includes(a.converted_type)) return `converted_type must be int, double or string, got ${JSON.stringify(a.converted_type)}`;
    } else if (a.converted_type !== undefined) {
      return `action ${action} does not use converted_type`;
    }
    return null;
  });

export type ActionConfig = Infer<typeof actionSchema>;

/** Capturing groups in an RE2 pattern (not `(?:`, `(?i)` flags, or escaped parentheses). */
function countGroups(pattern: string): number {
  let n = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '[') {
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
    } else if (c === '(' && (pattern[i + 1] !== '?' || pattern[i + 2] === 'P' || pattern[i + 2] === '<')) n++;
  }
  return n;
}

/** A YAML value as an attribute value: integers are ints, other numbers doubles; maps and lists nest. */
export function yamlValue(v: unknown): Value {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : v;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(yamlValue);
  const m: OttlMap = new Map();
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) m.set(k, yamlValue(x));
  return m;
}

/** The Collector's hash action: SHA-256 of the value's bytes (strings as UTF-8, ints and doubles as 8 little-endian bytes, bools as one byte), hex; other types hash to "". */
export function hashValue(v: Value): string {
  let bytes: Buffer;
  if (typeof v === 'string') bytes = Buffer.from(v, 'utf8');
  else if (typeof v === 'boolean') bytes = Buffer.of(v ? 1 : 0);
  else if (typeof v === 'bigint') {
    bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(BigInt.asUintN(64, v));
  } else if (typeof v === 'number') {
    bytes = Buffer.alloc(8);
    bytes.writeDoubleLE(v);
  } else return '';
  return createHash('sha256').update(bytes).digest('hex');
}

function convert(v: Value, to: string): Value | undefined {
  try {
    if (to === 'string') return typeof v === 'string' ? v : asString(v);
    if (to === 'int') return typeof v === 'bigint' ? v : (intLike(v) ?? undefined);
    return typeof v === 'number' ? v : (floatLike(v) ?? undefined);
  } catch {
    // Not convertible: left as it is, as in the Collector.
    return undefined;
  }
}

export type CompiledAction = (t: Target, level: ContextLevel) => void;

export function compileAction(a: ActionConfig): CompiledAction {
  const key = a.key ?? '';
  const pattern = a.pattern === undefined ? null : compileGoRegexp(a.pattern);
  const matching = (t: Target, level: ContextLevel): string[] => (pattern === null ? [] : t.attrKeys(level).filter((k) => ((pattern.lastIndex = 0), pattern.test(k))));
  const source = (t: Target, level: ContextLevel): Value | undefined => (a.value !== undefined ? yamlValue(a.value) : t.attr(level, a.from_attribute!));
  switch (a.action.toLowerCase() as ActionName) {
    case 'insert':
      return (t, level) => {
        const v = source(t, level);
        if (v !== undefined && t.attr(level, key) === undefined) t.setAttr(level, key, v);
      };
    case 'update':
      return (t, level) => {
        const v = source(t, level);
        if (v !== undefined && t.attr(level, key) !== undefined) t.setAttr(level, key, v);
      };
    case 'upsert':
      return (t, level) => {
        const v = source(t, level);
        if (v !== undefined) t.setAttr(level, key, v);
      };
    case 'delete':
      return (t, level) => {
        if (key !== '') t.deleteAttr(level, key);
        for (const k of matching(t, level)) t.deleteAttr(level, k);
      };
    case 'hash':
      return (t, level) => {
        const hash = (k: string) => {
          const v = t.attr(level, k);
          if (v !== undefined) t.setAttr(level, k, hashValue(v));
        };
        if (key !== '') hash(key);
        for (const k of matching(t, level)) hash(k);
      };
    case 'extract': {
      const re = new RegExp(pattern!.source, pattern!.flags.replace('g', ''));
      return (t, level) => {
        const v = t.attr(level, key);
        if (typeof v !== 'string') return;
        const m = re.exec(v);
        if (m === null) return;
        for (const [name, value] of Object.entries(m.groups ?? {})) t.setAttr(level, name, value ?? '');
      };
    }
    case 'convert': {
      const to = a.converted_type!;
      return (t, level) => {
        const v = t.attr(level, key);
        if (v === undefined) return;
        const c = convert(v, to);
        if (c !== undefined && c !== v) t.setAttr(level, key, c);
      };
    }
  }
}
