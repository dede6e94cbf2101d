import { ParseContext, Schema, s, type Infer, type Path } from '../../pipeline/config/schema.js';
import { MIN_PROBABILITY } from './sampling.js';

export const MODES = ['hash_seed', 'proportional', 'equalizing'] as const;
export type SamplerMode = (typeof MODES)[number];

/**
 * `mode`: one of the three, or empty (the Collector's "unset", which for traces means hash_seed whether or
 * not `hash_seed` is set).
 */
class ModeSchema extends Schema<SamplerMode | ''> {
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): SamplerMode | '' | undefined {
    if (v === '' || (typeof v === 'string' && (MODES as readonly string[]).includes(v))) return v as SamplerMode | '';
    ctx.error(path, `unsupported sampler mode ${JSON.stringify(v)} (expected one of ${MODES.join(', ')})`);
    return undefined;
  }
  override wantsText(): boolean {
    return true;
  }
  describe(): string {
    return `one of ${MODES.join(', ')}`;
  }
}

const LOGS_ONLY = 'the Collector uses it for logs only, and tracewarden samples traces, where it has no effect';

/**
 * A logs-only key of the Collector's config: its value is checked as the Collector checks it, and it is
 * accepted with a warning, so one `probabilistic_sampler` block that serves logs and traces in a Collector
 * config still validates here (the Collector ignores these keys for traces too).
 */
class LogsOnlySchema extends Schema<string> {
  constructor(private readonly values: readonly string[] | null) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): string | undefined {
    if (typeof v !== 'string') {
      ctx.error(path, `expected a string, got ${v === null ? 'null' : typeof v}`);
      return undefined;
    }
    if (this.values !== null && v !== '' && !this.values.includes(v)) {
      ctx.error(path, `invalid attribute source: ${v}. Expected: ${this.values.join(' or ')}`);
      return undefined;
    }
    ctx.warn(path, `accepted for OpenTelemetry Collector compatibility; ${LOGS_ONLY}`);
    return v;
  }
  override wantsText(): boolean {
    return true;
  }
  describe(): string {
    return 'a string (logs only)';
  }
}

/** The Collector's checks of `sampling_percentage`, on the float32 the Collector stores it as. */
function percentageProblem(v: number): string | null {
  const pct = Math.fround(v);
  if (!Number.isFinite(pct)) return `sampling rate is invalid: ${v}%`;
  const ratio = pct / 100;
  if (ratio < 0) return `sampling rate is negative: ${v}%`;
  if (ratio > 0 && ratio < MIN_PROBABILITY) return `sampling rate is too small: ${v}% (the smallest is 2^-56, ${MIN_PROBABILITY * 100}%)`;
  return null;
}

export const probabilisticSamplerConfigSchema = s.object({
  /** Percentage of spans kept (a float32, as in the Collector); 100 or more keeps all, 0 none. */
  sampling_percentage: s.number().refine(percentageProblem).default(0),
  /** Seed of the hash_seed mode's FNV hash: samplers in one tier must share it. */
  hash_seed: s.int({ min: 0, max: 0xffffffff }).default(0),
  /** hash_seed (the default), proportional or equalizing. */
  mode: new ModeSchema().default(''),
  /** Hex digits of the `th` threshold written into the trace state (1 to 14). */
  sampling_precision: s.int({ min: 1, max: 14 }).default(4),
  /** Drop spans whose sampling information is missing or malformed (true), or keep them (false). */
  fail_closed: s.bool().default(true),
  attribute_source: new LogsOnlySchema(['traceID', 'record']).optional(),
  from_attribute: new LogsOnlySchema(null).optional(),
  sampling_priority: new LogsOnlySchema(null).optional(),
});

export type ProbabilisticSamplerConfig = Infer<typeof probabilisticSamplerConfigSchema>;
