import { s, type Infer } from '../../pipeline/config/schema.js';

/** The forward connector takes no settings, as in the Collector. */
export const forwardConfigSchema = s.object({});

export type ForwardConfig = Infer<typeof forwardConfigSchema>;
