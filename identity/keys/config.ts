/** Key source timing and limits, in the configuration of every component that loads keys. */
import { s, type Infer } from '../../pipeline/schema.js';

export const keysSchema = s.object({
  refresh_interval: s.duration().default(3_600_000),
  min_refresh_interval: s.duration().default(60_000),
  max_refresh_interval: s.duration().default(86_400_000),
  unknown_kid_cooldown: s.duration().default(30_000),
  max_stale: s.duration().default(12 * 3_600_000),
  fetch_timeout: s.duration().default(5_000),
  max_response_bytes: s.int({ min: 1024 }).default(1_048_576),
});

export type KeysConfig = Infer<typeof keysSchema>;
