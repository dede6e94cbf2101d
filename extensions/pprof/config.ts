import { endpointSchema, s, type Infer } from '../../pipeline/config/schema.js';

/** The Collector's pprof extension keys. The profiles are Node's (V8), in the formats its tools open. */
export const pprofSchema = s.object(
  {
    endpoint: endpointSchema().default('localhost:1777'),
    /** A CPU profile from start to shutdown, written to this file at shutdown (a .cpuprofile). */
    save_to_file: s.string({ nonEmpty: true }).optional(),
  },
  {
    block_profile_fraction: 'Go runtime setting; Node has no block profile',
    mutex_profile_fraction: 'Go runtime setting; Node has no mutex profile',
  },
);

export type PprofConfig = Infer<typeof pprofSchema>;
