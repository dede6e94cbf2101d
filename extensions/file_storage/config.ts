/**
 * The Collector's file_storage extension keys and defaults. Only what a persistent sending queue uses has
 * an effect; compaction is accepted and has nothing to do (see file-storage.ts), and the keys that would
 * change what an operator relies on without our doing it are errors.
 */
import { s, type Infer } from '../../pipeline/config/schema.js';

const COMPACTION_HAS_NOTHING_TO_DO =
  'segments of a persistent queue are deleted as soon as every batch in them is delivered, so there is nothing to compact';

export const fileStorageSchema = s.object({
  directory: s.string({ nonEmpty: true }).default('/var/lib/otelcol/file_storage'),
  /** How long start-up waits for another process to release the directory's lock. */
  timeout: s.duration().default(1000),
  /** fdatasync every write before a batch is acknowledged to its sender. */
  fsync: s.bool().default(false),
  create_directory: s.bool().default(false),
  directory_permissions: s
    .string({ pattern: /^0?[0-7]{3,4}$/, patternHint: 'an octal mode such as 0750' })
    .default('0750'),
  compaction: s.object(
    {},
    {
      on_start: COMPACTION_HAS_NOTHING_TO_DO,
      on_rebound: COMPACTION_HAS_NOTHING_TO_DO,
      directory: COMPACTION_HAS_NOTHING_TO_DO,
      max_transaction_size: COMPACTION_HAS_NOTHING_TO_DO,
      rebound_needed_threshold_mib: COMPACTION_HAS_NOTHING_TO_DO,
      rebound_trigger_threshold_mib: COMPACTION_HAS_NOTHING_TO_DO,
      check_interval: COMPACTION_HAS_NOTHING_TO_DO,
      cleanup_on_start: COMPACTION_HAS_NOTHING_TO_DO,
    },
  ),
  recreate: s
    .bool()
    .default(false)
    .refine((v) => (v ? 'recreate: true is not supported: it would discard undelivered batches; move the directory aside by hand instead' : null)),
});

export type FileStorageConfig = Infer<typeof fileStorageSchema>;
