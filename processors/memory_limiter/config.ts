import { s, type Infer } from '../../pipeline/config/schema.js';

export const memoryLimiterConfigSchema = s
  .object(
    {
      /** How often process memory is sampled; the refusing state changes only at a check. */
      check_interval: s
        .duration()
        .default(1000)
        .refine((ms) => (ms > 0 ? null : 'must be greater than 0')),
      limit_mib: s.int({ min: 1 }).optional(),
      /** Headroom below limit_mib; refusing starts at limit − spike. Default 20% of the limit. */
      spike_limit_mib: s.int({ min: 0 }).optional(),
      /** Limit as a percentage of total memory (the cgroup v2 limit when set and lower). */
      limit_percentage: s.int({ min: 1, max: 100 }).optional(),
      spike_limit_percentage: s.int({ min: 0, max: 100 }).optional(),
      /** Over the soft limit, garbage is collected before refusing, at most this often (the Collector's). */
      min_gc_interval_when_soft_limited: s.duration().default(10_000),
      /** The same over the hard limit (0: at every check). */
      min_gc_interval_when_hard_limited: s.duration().default(0),
    },
  )
  .refine((c) => {
    const byMib = c.limit_mib !== undefined;
    const byPct = c.limit_percentage !== undefined;
    if (byMib === byPct) return 'set exactly one of limit_mib or limit_percentage';
    if (byMib && c.spike_limit_percentage !== undefined) return 'spike_limit_percentage goes with limit_percentage; use spike_limit_mib with limit_mib';
    if (byPct && c.spike_limit_mib !== undefined) return 'spike_limit_mib goes with limit_mib; use spike_limit_percentage with limit_percentage';
    if (byMib && c.spike_limit_mib !== undefined && c.spike_limit_mib >= c.limit_mib!)
      return `spike_limit_mib (${c.spike_limit_mib}) must be less than limit_mib (${c.limit_mib})`;
    if (byPct && c.spike_limit_percentage !== undefined && c.spike_limit_percentage >= c.limit_percentage!)
      return `spike_limit_percentage (${c.spike_limit_percentage}) must be less than limit_percentage (${c.limit_percentage})`;
    return null;
  });

export type MemoryLimiterConfig = Infer<typeof memoryLimiterConfigSchema>;
