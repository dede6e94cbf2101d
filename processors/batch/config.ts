import { s, type Infer } from '../../pipeline/config/schema.js';

export const batchConfigSchema = s
  .object(
    {
      /** Pending spans that trigger a send before the timeout; a trigger, not a cap (see send_batch_max_size). */
      send_batch_size: s.int({ min: 0 }).default(8192),
      /** Longest a span waits for company; 0 sends every batch as it arrives. */
      timeout: s.duration().default(200),
      /** Largest batch passed on; 0 means no limit. */
      send_batch_max_size: s.int({ min: 0 }).default(0),
    },
    {
      metadata_keys: 'batches are not partitioned by client metadata; merged batches carry no sender identity',
      metadata_cardinality_limit: 'batches are not partitioned by client metadata',
    },
  )
  .refine((c) =>
    c.send_batch_max_size > 0 && c.send_batch_max_size < c.send_batch_size
      ? `send_batch_max_size (${c.send_batch_max_size}) must be at least send_batch_size (${c.send_batch_size}) when set`
      : null,
  );

export type BatchConfig = Infer<typeof batchConfigSchema>;
