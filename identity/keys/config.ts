/** Key source timing and limits, in the configuration of every component that loads keys. */
import { s, Schema, type Infer, type ParseContext, type Path } from '../../pipeline/config/schema.js';

/**
 * The default unknown-kid cooldown. Short enough that a key an issuer starts signing with before
 * publishing it (or during a storm of invented kids, which keeps the cooldown busy) is loaded within about
 * one cooldown plus a fetch, through the key source's trailing refresh; long enough that such a storm costs
 * the issuer at most one fetch every few seconds.
 */
export const DEFAULT_UNKNOWN_KID_COOLDOWN_MS = 5_000;

/**
 * Below this an unknown-kid cooldown lets any sender cause a key fetch about every batch. Smaller values
 * (tests use 0 to 100 ms) are accepted with a warning rather than refused.
 */
export const MIN_SAFE_UNKNOWN_KID_COOLDOWN_MS = 1_000;

/** A duration that warns (without failing validation) when it is below the safe floor. */
class CooldownSchema extends Schema<number> {
  private readonly inner = s.duration();
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): number | undefined {
    const ms = this.inner.parse(v, path, ctx);
    if (ms !== undefined && ms < MIN_SAFE_UNKNOWN_KID_COOLDOWN_MS) {
      ctx.warn(
        path,
        `${ms} ms is below ${MIN_SAFE_UNKNOWN_KID_COOLDOWN_MS / 1000}s: any sender with invented key ids can then make the daemon fetch the issuer's keys about once per batch; meant for tests only`,
      );
    }
    return ms;
  }
  describe(): string {
    return this.inner.describe();
  }
}

export const keysSchema = s.object({
  refresh_interval: s.duration().default(3_600_000),
  min_refresh_interval: s.duration().default(60_000),
  max_refresh_interval: s.duration().default(86_400_000),
  unknown_kid_cooldown: new CooldownSchema().default(DEFAULT_UNKNOWN_KID_COOLDOWN_MS),
  max_stale: s.duration().default(12 * 3_600_000),
  fetch_timeout: s.duration().default(5_000),
  max_response_bytes: s.int({ min: 1024 }).default(1_048_576),
});

export type KeysConfig = Infer<typeof keysSchema>;
