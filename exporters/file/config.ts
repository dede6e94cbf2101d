import { s, type Infer } from '../../pipeline/config/schema.js';

/** The Collector's file exporter keys. */
export const fileConfigSchema = s
  .object({
    path: s.string({ nonEmpty: true }),
    /** Append to an existing file instead of starting a new one (the Collector refuses it with compression). */
    append: s.bool().default(false),
    rotation: s
      .object({
        max_megabytes: s.int({ min: 1 }).default(100),
        /** Backups older than this many days are deleted (0: kept whatever their age). */
        max_days: s.int({ min: 0 }).default(0),
        max_backups: s.int({ min: 0 }).default(100),
        localtime: s.bool().default(false),
      })
      .optional(),
    format: s.enum('json', 'proto').default('json'),
    compression: s.enum('', 'zstd').default(''),
    /** Accepted for compatibility: every batch is written to the file as it arrives (nothing is held back). */
    flush_interval: s.duration().default(1000),
    group_by: s.refused('group_by (a file per resource attribute value) is not supported yet; use one file exporter per pipeline'),
    encoding: s.refused('encoding extensions are not supported; use format: json or proto'),
  })
  .refine((c) => (c.append && c.compression !== '' ? 'append cannot be used with compression (as in the Collector): a compressed stream cannot be appended to' : null));

export type FileConfig = Infer<typeof fileConfigSchema>;
