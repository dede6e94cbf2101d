import { s, type Infer } from '../../pipeline/config/schema.js';
import { actionSchema } from '../attributes/actions.js';

export const resourceConfigSchema = s.object({
  /** Applied in order to every resource's attributes (the attributes processor's actions). */
  attributes: s.array(actionSchema, { minItems: 1 }),
});

export type ResourceConfig = Infer<typeof resourceConfigSchema>;
