/**
 * The editors (lower-case functions, a statement's action) that trace pipelines use, with the Collector's
 * semantics (pkg/ottl/ottlfuncs). They change the target's pending writes (see Target), which become batch
 * edits when the unit is done.
 */
import { goReplaceAllExec, goTest } from '../pipeline/config/go-regexp.js';
import { OttlRuntimeError } from './errors.js';
import type { Arg, FunctionDef, Param } from './function-def.js';
import type { Eval, PathExpr } from './paths.js';
import { copyValue } from './paths.js';
import type { Target } from './target.js';
import type { OttlMap } from './values.js';

const NOTHING = null;

function mapOf(a: Arg): (t: Target) => OttlMap {
  return (a as PathExpr).writableMap!;
}

/** Go's Regexp.Expand template: $1, ${1}, $name, ${name}, $$. A missing group expands to nothing. */
export function expandGoTemplate(template: string, m: RegExpExecArray): string {
  if (template.indexOf('$') < 0) return template;
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '$') {
      out += c;
      continue;
    }
    if (template[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    let name: string;
    let next: number;
    if (template[i + 1] === '{') {
      const close = template.indexOf('}', i + 2);
      const inner = close < 0 ? '' : template.slice(i + 2, close);
      if (close < 0 || !/^[A-Za-z0-9_]+$/.test(inner)) {
        out += c;
        continue;
      }
      name = inner;
      next = close;
    } else {
      const run = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1));
      if (run === null) {
        out += c;
        continue;
      }
      name = run[0];
      next = i + run[0].length;
    }
    if (/^\d+$/.test(name)) out += m[Number(name)] ?? '';
    else out += m.groups?.[name] ?? '';
    i = next;
  }
  return out;
}

/** A glob (gobwas/glob, as replace_match takes) as an anchored RegExp: `*`, `?`, `[...]`, `{a,b}`, `\\x`. */
export function globToRegExp(glob: string): RegExp {
  let out = '^';
  let inAlt = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) out += glob[++i]!.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
    else if (c === '*') out += '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) throw `unclosed [ in the glob ${JSON.stringify(glob)}`;
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (c === '{') {
      inAlt++;
      out += '(?:';
    } else if (c === '}' && inAlt > 0) {
      inAlt--;
      out += ')';
    } else if (c === ',' && inAlt > 0) out += '|';
    else out += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  if (inAlt > 0) throw `unclosed { in the glob ${JSON.stringify(glob)}`;
  return new RegExp(out + '$', 's');
}

/** replace_*'s optional `function` and `replacement_format` applied to an expanded replacement. */
function finisher(fn: Arg, format: Arg): ((t: Target, s: string) => string) | null {
  if (fn === undefined) {
    if (format !== undefined) throw 'replacement_format needs a function';
    return null;
  }
  const f = fn as (s: string) => string;
  const fmt = format as Eval | undefined;
  return (t, s) => {
    const hashed = f(s);
    if (fmt === undefined) return hashed;
    const pattern = fmt(t) as string;
    if (pattern.indexOf('%s') < 0) throw new OttlRuntimeError('replacement_format must contain %s');
    return pattern.replace('%s', hashed);
  };
}

function replaceIn(value: string, re: RegExp, replacement: string, finish: ((t: Target, s: string) => string) | null, t: Target): string {
  return goReplaceAllExec(re, value, (m) => {
    const expanded = expandGoTemplate(replacement, m);
    return finish === null ? expanded : finish(t, expanded);
  });
}

const replacementParams = [
  { name: 'replacement', kind: 'string' },
  { name: 'function', kind: 'function', optional: true },
  { name: 'replacement_format', kind: 'string', optional: true },
] as const;

/** An editor that removes from a map every key `remove(argument)` selects. */
function removeKeys(name: string, param: Param, remove: (arg: Arg) => (key: string) => boolean): FunctionDef {
  return {
    name,
    params: [{ name: 'target', kind: 'mapsetter' }, param],
    returns: 'nil',
    build: ([target, arg]) => {
      const map = mapOf(target);
      const selects = remove(arg);
      return (t) => {
        const m = map(t);
        for (const k of [...m.keys()]) if (selects(k)) m.delete(k);
        return NOTHING;
      };
    },
  };
}

export const EDITORS: readonly FunctionDef[] = [
  {
    name: 'set',
    params: [
      { name: 'target', kind: 'setter' },
      { name: 'value', kind: 'getter' },
    ],
    returns: 'nil',
    build: ([target, value]) => {
      const set = (target as PathExpr).set!;
      const get = value as Eval;
      return (t) => {
        const v = get(t);
        // As in the Collector: setting nil changes nothing.
        if (v !== null) set(t, v);
        return NOTHING;
      };
    },
  },
  {
    name: 'delete_key',
    params: [
      { name: 'target', kind: 'mapsetter' },
      { name: 'key', kind: 'lit_string' },
    ],
    returns: 'nil',
    build: ([target, key]) => {
      const map = mapOf(target);
      const k = key as string;
      const del = (target as PathExpr).deleteKey;
      if (del) {
        return (t) => {
          del(t, k);
          return NOTHING;
        };
      }
      return (t) => {
        map(t).delete(k);
        return NOTHING;
      };
    },
  },
  removeKeys('delete_matching_keys', { name: 'pattern', kind: 'regex' }, (arg) => (k) => goTest(arg as RegExp, k)),
  removeKeys('keep_keys', { name: 'keys', kind: 'lit_strings' }, (arg) => {
    const keep = new Set(arg as string[]);
    return (k) => !keep.has(k);
  }),
  removeKeys('keep_matching_keys', { name: 'pattern', kind: 'regex' }, (arg) => (k) => !goTest(arg as RegExp, k)),
  {
    name: 'limit',
    params: [
      { name: 'target', kind: 'mapsetter' },
      { name: 'limit', kind: 'lit_int' },
      { name: 'priority_keys', kind: 'lit_strings' },
    ],
    returns: 'nil',
    build: ([target, limit, priority]) => {
      const n = limit as bigint;
      const keys = priority as string[];
      if (n < 1n) throw `invalid limit for limit function, ${n} cannot be less than 1`;
      if (BigInt(keys.length) > n) throw `invalid limit for limit function, ${n} cannot be less than the number of priority attributes ${keys.length}`;
      const map = mapOf(target);
      const max = Number(n);
      return (t) => {
        const m = map(t);
        if (m.size <= max) return NOTHING;
        const keep = new Set<string>();
        for (const k of keys) if (m.has(k)) keep.add(k);
        for (const k of m.keys()) {
          if (keep.size >= max) break;
          keep.add(k);
        }
        for (const k of [...m.keys()]) if (!keep.has(k)) m.delete(k);
        return NOTHING;
      };
    },
  },
  {
    name: 'truncate_all',
    params: [
      { name: 'target', kind: 'mapsetter' },
      { name: 'limit', kind: 'lit_int' },
    ],
    returns: 'nil',
    build: ([target, limit]) => {
      const n = limit as bigint;
      if (n < 0n) throw `invalid limit for truncate_all function, ${n} cannot be negative`;
      const map = mapOf(target);
      const max = Number(n);
      return (t) => {
        const m = map(t);
        for (const [k, v] of m) {
          if (typeof v === 'string' && Buffer.byteLength(v, 'utf8') > max) m.set(k, truncateUtf8(v, max));
        }
        return NOTHING;
      };
    },
  },
  {
    name: 'replace_pattern',
    params: [{ name: 'target', kind: 'setter' }, { name: 'regex', kind: 'regex' }, ...replacementParams],
    returns: 'nil',
    build: ([target, regex, replacement, fn, format]) => {
      const path = target as PathExpr;
      const re = regex as RegExp;
      const rep = replacement as Eval;
      const finish = finisher(fn, format);
      return (t) => {
        const v = path.get(t);
        if (typeof v !== 'string') return NOTHING;
        const out = replaceIn(v, re, rep(t) as string, finish, t);
        if (out !== v) path.set!(t, out);
        return NOTHING;
      };
    },
  },
  {
    name: 'replace_all_patterns',
    params: [{ name: 'target', kind: 'mapsetter' }, { name: 'mode', kind: 'lit_string' }, { name: 'regex', kind: 'regex' }, ...replacementParams],
    returns: 'nil',
    build: ([target, mode, regex, replacement, fn, format]) => {
      if (mode !== 'key' && mode !== 'value') throw `invalid mode ${mode}, must be "key" or "value"`;
      const map = mapOf(target);
      const re = regex as RegExp;
      const rep = replacement as Eval;
      const finish = finisher(fn, format);
      return (t) => {
        const m = map(t);
        const r = rep(t) as string;
        if (mode === 'value') {
          for (const [k, v] of m) if (typeof v === 'string' && goTest(re, v)) m.set(k, replaceIn(v, re, r, finish, t));
        } else {
          const entries = [...m];
          m.clear();
          for (const [k, v] of entries) m.set(goTest(re, k) ? replaceIn(k, re, r, finish, t) : k, v);
        }
        return NOTHING;
      };
    },
  },
  {
    name: 'replace_match',
    params: [{ name: 'target', kind: 'setter' }, { name: 'pattern', kind: 'glob' }, ...replacementParams],
    returns: 'nil',
    build: ([target, pattern, replacement, fn, format]) => {
      const path = target as PathExpr;
      const glob = pattern as RegExp;
      const rep = replacement as Eval;
      const finish = finisher(fn, format);
      return (t) => {
        const v = path.get(t);
        if (typeof v === 'string' && glob.test(v)) {
          const r = rep(t) as string;
          path.set!(t, finish === null ? r : finish(t, r));
        }
        return NOTHING;
      };
    },
  },
  {
    name: 'replace_all_matches',
    params: [{ name: 'target', kind: 'mapsetter' }, { name: 'pattern', kind: 'glob' }, ...replacementParams],
    returns: 'nil',
    build: ([target, pattern, replacement, fn, format]) => {
      const map = mapOf(target);
      const glob = pattern as RegExp;
      const rep = replacement as Eval;
      const finish = finisher(fn, format);
      return (t) => {
        const m = map(t);
        const r = rep(t) as string;
        for (const [k, v] of m) if (typeof v === 'string' && glob.test(v)) m.set(k, finish === null ? r : finish(t, r));
        return NOTHING;
      };
    },
  },
  {
    name: 'merge_maps',
    params: [
      { name: 'target', kind: 'mapsetter' },
      { name: 'source', kind: 'map' },
      { name: 'strategy', kind: 'lit_string' },
    ],
    returns: 'nil',
    build: ([target, source, strategy]) => {
      if (strategy !== 'insert' && strategy !== 'update' && strategy !== 'upsert') throw `invalid value for strategy, ${strategy}, must be 'insert', 'update' or 'upsert'`;
      const map = mapOf(target);
      const src = source as Eval;
      return (t) => {
        const from = src(t) as OttlMap;
        const m = map(t);
        for (const [k, v] of from) {
          const has = m.has(k);
          if (strategy === 'upsert' || (strategy === 'insert' && !has) || (strategy === 'update' && has)) m.set(k, copyValue(v));
        }
        return NOTHING;
      };
    },
  },
];

/** The first `max` bytes of `s` in UTF-8, without a character cut in half. */
function truncateUtf8(s: string, max: number): string {
  const b = Buffer.from(s, 'utf8');
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}

