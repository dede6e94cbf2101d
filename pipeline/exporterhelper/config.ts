/**
 * `sending_queue`, `retry_on_failure` and `timeout`: the keys every queued exporter has, with the
 * Collector's names and defaults.
 */
import { Schema, s, type Infer, type ParseContext, type Path } from '../config/schema.js';

/**
 * A Collector queue key this helper does not implement. At the Collector's default it changes nothing and
 * is accepted with a warning; any other value would silently change what the operator asked for (how the
 * queue is sized, whether a full queue blocks), so it is an error.
 */
class CollectorDefaultOnly extends Schema<unknown> {
  constructor(
    private readonly isDefault: (v: unknown) => boolean,
    private readonly atDefault: string,
    private readonly otherwise: string,
  ) {
    super();
  }
  protected parseValue(v: unknown, path: Path, ctx: ParseContext): unknown {
    if (this.isDefault(v)) {
      ctx.warn(path, `accepted for OpenTelemetry Collector compatibility; ${this.atDefault}`);
    } else {
      ctx.error(path, this.otherwise);
    }
    return v;
  }
  describe(): string {
    return "the Collector's default";
  }
}

const isFalse = (v: unknown): boolean => v === false;
const refusesWhenFull = (key: string) =>
  new CollectorDefaultOnly(
    isFalse,
    'a full queue refuses new batches (QUEUE_FULL)',
    `${key}: true is not supported: a full queue refuses new batches (QUEUE_FULL) so the sender retries; remove ${key} or set it to false`,
  ).optional();

export const sendingQueueSchema = s
  .object({
    enabled: s.bool().default(true),
    num_consumers: s.int({ min: 1, max: 1000 }).default(10),
    /** Batches held at once, waiting or being delivered. */
    queue_size: s.int({ min: 1 }).default(1000),
    sizer: new CollectorDefaultOnly(
      (v) => v === 'requests',
      'queue_size counts batches (requests)',
      'only sizer: requests is supported: the queue counts batches, so queue_size is a number of batches, not of items or bytes',
    ).optional(),
    /** The ID of a storage extension (file_storage): the queue is kept on disk and survives restarts. */
    storage: s.string({ nonEmpty: true }).optional(),
    /** tracewarden's own: the most MiB of undelivered batches a persistent queue keeps on disk. */
    max_storage_mib: s.int({ min: 1 }).optional(),
    blocking: refusesWhenFull('blocking'),
    block_on_overflow: refusesWhenFull('block_on_overflow'),
    wait_for_result: new CollectorDefaultOnly(
      isFalse,
      'a batch is acknowledged once queued',
      'wait_for_result: true is not supported with the queue: a batch is acknowledged once queued; to answer senders only after the backend accepted their data, set enabled: false instead',
    ).optional(),
    batch: new CollectorDefaultOnly(
      () => false,
      '',
      'batching in the exporter is not supported: batches are sent as they arrive; use the batch processor (send_batch_size, send_batch_max_size, timeout) instead',
    ).optional(),
  })
  .refine((q) => (q.max_storage_mib !== undefined && q.storage === undefined ? 'max_storage_mib bounds a persistent queue: set storage as well, or remove it' : null));

/** The on-disk bound of a persistent queue when `max_storage_mib` is not set. */
export const DEFAULT_MAX_STORAGE_MIB = 1024;

export const retrySchema = s.object({
  enabled: s.bool().default(true),
  initial_interval: s.duration().default(5000),
  randomization_factor: s.number({ min: 0, max: 1 }).default(0.5),
  multiplier: s.number({ min: 1 }).default(1.5),
  max_interval: s.duration().default(30_000),
  /** 0 means retry until shutdown. */
  max_elapsed_time: s.duration().default(300_000),
});

export type SendingQueueConfig = Infer<typeof sendingQueueSchema>;
export type RetryConfig = Infer<typeof retrySchema>;

/** The keys every queued exporter's config has, under the Collector's names. */
export interface QueuedExporterConfig {
  sending_queue: SendingQueueConfig;
  retry_on_failure: RetryConfig;
  timeout: number;
}
