/** `debug` exporter configuration, as the Collector's debugexporter. */
import { s, type Infer } from '../../pipeline/config/schema.js';

export const debugConfigSchema = s.object(
  {
    verbosity: s.enum('basic', 'normal', 'detailed').default('basic'),
  },
  {
    sampling_initial: 'every batch is written',
    sampling_thereafter: 'every batch is written',
    use_internal_logger: 'output always goes to stdout',
  },
);

export type DebugConfig = Infer<typeof debugConfigSchema>;
