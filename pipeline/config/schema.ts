/**
 * A small schema language for component configuration. Parsing never stops at the first problem: every
 * issue is collected with its path, so `tracewarden validate` can show them all at once. Defaults are
 * part of the schema, so a component's default config is `schema.parse({})`.
 */

import { EnvValue } from './env.js';

export type Path = (string | number)[];

export interface Issue {
  path: Path;
  message: string;
  /** Warnings do not fail validation (keys accepted for Collector compatibility that do nothing here). */
  warning?: boolean;
}

export class ParseContext {
  readonly issues: Issue[] = [];
  error(path: Path, message: string): void {
    this.issues.push({ path: [...path], message });
  }
  warn(path: Path, message: string): void {
    this.issues.push({ path: [...path], message, warning: true });
  }
}

export abstract class Schema<T> {
  /** Returns the parsed value, or undefined after recording at least one issue. */
  parse(value: unknown, path: Path, ctx: ParseContext): T | undefined {
    if (value instanceof EnvValue) value = this.wantsText() ? value.text : value.typed;
    return this.parseValue(value, path, ctx);
  }
  protected abstract parseValue(value: unknown, path: Path, ctx: ParseContext): T | undefined;
  /** Whether an env-expanded value should reach this schema as the text it was set to. */
  wantsText(): boolean {
    return false;
  }
  abstract describe(): string;

  /** The value used when the key is absent; `undefined` means the key is required unless optional. */
  defaultValue(): T | undefined {
    return undefined;
  }
  /** Whether this is a mapping of keys, parsed from `{}` (every key at its default) when absent. */
  isObject(): boolean {
    return false;
  }

  default(value: T): Schema<T> {
    return new DefaultSchema(this, value);
  }
  optional(): Schema<T | undefined> {
    return new OptionalSchema(this);
  }
  /** A check on the parsed value; `check` returns an error message or null. */
  refine(check: (value: T) => string | null): Schema<T> {
    return new RefinedSchema(this, check);
  }
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

class DefaultSchema<T> extends Schema<T> {
  constructor(
    private readonly inner: Schema<T>,
    private readonly value: T,
  ) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): T | undefined {
    return v === undefined || v === null ? this.value : this.inner.parse(v, path, ctx);
  }
  override defaultValue(): T {
    return this.value;
  }
  override wantsText(): boolean {
    return this.inner.wantsText();
  }
  describe(): string {
    return this.inner.describe();
  }
}

class OptionalSchema<T> extends Schema<T | undefined> {
  constructor(private readonly inner: Schema<T>) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): T | undefined {
    return v === undefined || v === null ? undefined : this.inner.parse(v, path, ctx);
  }
  override wantsText(): boolean {
    return this.inner.wantsText();
  }
  describe(): string {
    return this.inner.describe();
  }
  wrapsObject(): boolean {
    return this.inner instanceof ObjectSchema;
  }
}

class RefinedSchema<T> extends Schema<T> {
  constructor(
    private readonly inner: Schema<T>,
    private readonly check: (v: T) => string | null,
  ) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): T | undefined {
    const out = this.inner.parse(v, path, ctx);
    if (out === undefined) return undefined;
    const problem = this.check(out);
    if (problem !== null) {
      ctx.error(path, problem);
      return undefined;
    }
    return out;
  }
  override defaultValue(): T | undefined {
    return this.inner.defaultValue();
  }
  override isObject(): boolean {
    return this.inner.isObject();
  }
  override wantsText(): boolean {
    return this.inner.wantsText();
  }
  describe(): string {
    return this.inner.describe();
  }
}

class StringSchema extends Schema<string> {
  constructor(private readonly opts: { nonEmpty?: boolean; pattern?: RegExp; patternHint?: string }) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): string | undefined {
    if (typeof v === 'number' || typeof v === 'boolean') v = String(v);
    if (typeof v !== 'string') {
      ctx.error(path, `expected a string, got ${typeName(v)}`);
      return undefined;
    }
    if (this.opts.nonEmpty && v.length === 0) {
      ctx.error(path, 'must not be empty');
      return undefined;
    }
    if (this.opts.pattern && !this.opts.pattern.test(v)) {
      ctx.error(path, `expected ${this.opts.patternHint ?? `a string matching ${this.opts.pattern}`}, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }
  override wantsText(): boolean {
    return true;
  }
  describe(): string {
    return 'a string';
  }
}

class NumberSchema extends Schema<number> {
  constructor(private readonly opts: { integer?: boolean; min?: number; max?: number }) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): number | undefined {
    const what = this.opts.integer ? 'an integer' : 'a number';
    if (typeof v !== 'number' || Number.isNaN(v) || (this.opts.integer && !Number.isInteger(v))) {
      ctx.error(path, `expected ${what}, got ${typeName(v)}`);
      return undefined;
    }
    if (this.opts.min !== undefined && v < this.opts.min) {
      ctx.error(path, `must be at least ${this.opts.min}, got ${v}`);
      return undefined;
    }
    if (this.opts.max !== undefined && v > this.opts.max) {
      ctx.error(path, `must be at most ${this.opts.max}, got ${v}`);
      return undefined;
    }
    return v;
  }
  describe(): string {
    return this.opts.integer ? 'an integer' : 'a number';
  }
}

class BoolSchema extends Schema<boolean> {
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): boolean | undefined {
    if (typeof v !== 'boolean') {
      ctx.error(path, `expected true or false, got ${typeName(v)}`);
      return undefined;
    }
    return v;
  }
  describe(): string {
    return 'a boolean';
  }
}

class EnumSchema<T extends string> extends Schema<T> {
  constructor(private readonly values: readonly T[]) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): T | undefined {
    if (typeof v !== 'string' || !(this.values as readonly string[]).includes(v)) {
      ctx.error(path, `expected one of ${this.values.join(', ')}, got ${typeName(v)}`);
      return undefined;
    }
    return v as T;
  }
  describe(): string {
    return `one of ${this.values.join(', ')}`;
  }
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go duration syntax as the Collector writes it ("5s", "200ms", "1h30m"), parsed to milliseconds. */
export function parseDuration(text: string): number | null {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += parseFloat(m[1]!) * DURATION_UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === text.length && matched > 0 ? total : null;
}

class DurationSchema extends Schema<number> {
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): number | undefined {
    const ms = typeof v === 'string' ? parseDuration(v) : v === 0 ? 0 : null;
    if (ms === null) {
      ctx.error(path, `expected a duration such as 5s, 200ms or 1m30s, got ${typeName(v)}`);
      return undefined;
    }
    return ms;
  }
  describe(): string {
    return 'a duration';
  }
}

class ArraySchema<T> extends Schema<T[]> {
  constructor(
    private readonly item: Schema<T>,
    private readonly opts: { minItems?: number },
  ) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): T[] | undefined {
    if (!Array.isArray(v)) {
      ctx.error(path, `expected a list, got ${typeName(v)}`);
      return undefined;
    }
    if (this.opts.minItems !== undefined && v.length < this.opts.minItems) {
      ctx.error(path, `expected at least ${this.opts.minItems} item${this.opts.minItems === 1 ? '' : 's'}`);
      return undefined;
    }
    const out: T[] = [];
    let ok = true;
    v.forEach((item, i) => {
      const parsed = this.item.parse(item, [...path, i], ctx);
      if (parsed === undefined) ok = false;
      else out.push(parsed);
    });
    return ok ? out : undefined;
  }
  describe(): string {
    return `a list of ${this.item.describe()}`;
  }
}

class MapSchema<T> extends Schema<Record<string, T>> {
  constructor(private readonly item: Schema<T>) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): Record<string, T> | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      ctx.error(path, `expected a mapping, got ${typeName(v)}`);
      return undefined;
    }
    const out: Record<string, T> = {};
    let ok = true;
    for (const [k, item] of Object.entries(v)) {
      const parsed = this.item.parse(item, [...path, k], ctx);
      if (parsed === undefined) ok = false;
      else out[k] = parsed;
    }
    return ok ? out : undefined;
  }
  describe(): string {
    return `a mapping of ${this.item.describe()}`;
  }
}

type Shape = Record<string, Schema<unknown>>;
type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

class ObjectSchema<S extends Shape> extends Schema<ObjectOf<S>> {
  constructor(
    readonly shape: S,
    private readonly ignored: Record<string, string>,
  ) {
    super();
  }
  override isObject(): boolean {
    return true;
  }

  protected parseValue(v: unknown, path: Path, ctx: ParseContext): ObjectOf<S> | undefined {
    if (v === null || v === undefined) v = {};
    if (typeof v !== 'object' || Array.isArray(v)) {
      ctx.error(path, `expected a mapping, got ${typeName(v)}`);
      return undefined;
    }
    const input = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    let ok = true;
    for (const key of Object.keys(input)) {
      if (key in this.shape) continue;
      if (key in this.ignored) {
        ctx.warn([...path, key], `accepted for OpenTelemetry Collector compatibility; ${this.ignored[key]}`);
        continue;
      }
      ctx.error([...path, key], `unknown key; expected one of ${Object.keys(this.shape).join(', ') || '(none)'}`);
      ok = false;
    }
    for (const [key, schema] of Object.entries(this.shape)) {
      let raw = input[key];
      // `grpc:` with nothing after it means "enabled, with defaults", as in the Collector.
      if (raw === null && key in input && schema instanceof OptionalSchema && schema.wrapsObject()) raw = {};
      if (raw === undefined || raw === null) {
        if (schema instanceof OptionalSchema) continue;
        const d = schema.defaultValue();
        if (d !== undefined) {
          out[key] = structuredClone(d);
          continue;
        }
        if (schema.isObject()) {
          out[key] = schema.parse({}, [...path, key], ctx);
          if (out[key] === undefined) ok = false;
          continue;
        }
        ctx.error([...path, key], `required: ${schema.describe()}`);
        ok = false;
        continue;
      }
      const parsed = schema.parse(raw, [...path, key], ctx);
      if (parsed === undefined) ok = false;
      else out[key] = parsed;
    }
    return ok ? (out as ObjectOf<S>) : undefined;
  }
  describe(): string {
    return 'a mapping';
  }
}

/** One value or a list of them, always parsed to a list (`claims: { enduser.id: sub }` or `[sub, uid]`). */
class OneOrManySchema<T> extends Schema<T[]> {
  constructor(private readonly item: Schema<T>) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): T[] | undefined {
    if (!Array.isArray(v)) {
      const one = this.item.parse(v, path, ctx);
      return one === undefined ? undefined : [one];
    }
    return new ArraySchema(this.item, { minItems: 1 }).parse(v, path, ctx);
  }
  override wantsText(): boolean {
    return this.item.wantsText();
  }
  describe(): string {
    return `${this.item.describe()} or a list of them`;
  }
}

/** A Collector key a component does not implement: refused with a message that says so, never ignored. */
class RefusedSchema extends Schema<undefined> {
  constructor(private readonly message: string) {
    super();
  }
  protected parseValue(_v: unknown, path: Path, ctx: ParseContext): undefined {
    ctx.error(path, this.message);
    return undefined;
  }
  describe(): string {
    return 'not supported';
  }
}

/** Accepts anything; for values a component checks itself. */
class AnySchema extends Schema<unknown> {
  protected parseValue(v: unknown): unknown {
    return v;
  }
  describe(): string {
    return 'any value';
  }
}

export const s = {
  string: (opts: { nonEmpty?: boolean; pattern?: RegExp; patternHint?: string } = {}) => new StringSchema(opts),
  int: (opts: { min?: number; max?: number } = {}) => new NumberSchema({ ...opts, integer: true }),
  number: (opts: { min?: number; max?: number } = {}) => new NumberSchema(opts),
  bool: () => new BoolSchema(),
  enum: <T extends string>(...values: T[]) => new EnumSchema<T>(values),
  duration: () => new DurationSchema(),
  array: <T>(item: Schema<T>, opts: { minItems?: number } = {}) => new ArraySchema(item, opts),
  map: <T>(item: Schema<T>) => new MapSchema(item),
  oneOrMany: <T>(item: Schema<T>) => new OneOrManySchema(item),
  /**
   * A mapping with exactly these keys. `ignored` names keys the OpenTelemetry Collector accepts that have
   * no effect here: they are accepted with a warning instead of failing an operator's existing config.
   */
  object: <S extends Shape>(shape: S, ignored: Record<string, string> = {}) => new ObjectSchema(shape, ignored),
  any: () => new AnySchema(),
  /** A key that is refused with `message` whenever it is present. */
  refused: (message: string) => new RefusedSchema(message).optional(),
};

/** "host:port" with a port in range; host may be empty, a name, IPv4 or [IPv6]. */
export const endpointSchema = () =>
  s.string({ pattern: /^(\[[0-9a-fA-F:.]+\]|[^:\s/]*):(\d{1,5})$/, patternHint: 'host:port' }).refine((v) => {
    const port = Number(v.slice(v.lastIndexOf(':') + 1));
    return port <= 65535 ? null : `port ${port} is out of range`;
  });

/** Parses a value against a schema outside of config loading (defaults in tests, for instance). */
export function parseOrThrow<T>(schema: Schema<T>, value: unknown): T {
  const ctx = new ParseContext();
  const out = schema.parse(value, [], ctx);
  const errors = ctx.issues.filter((i) => !i.warning);
  if (out === undefined || errors.length > 0) {
    throw new Error(errors.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  }
  return out;
}
