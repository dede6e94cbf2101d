import { endpointSchema, s, type Infer } from '../../pipeline/config/schema.js';

/** The Collector's zpages extension keys. */
export const zpagesSchema = s.object(
  {
    endpoint: endpointSchema().default('localhost:55679'),
  },
  { expvar: 'Go runtime variables; see /metrics for the process metrics' },
);

export type ZpagesConfig = Infer<typeof zpagesSchema>;
