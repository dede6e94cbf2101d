import { s, type Infer } from '../../pipeline/config/schema.js';
import { actionSchema } from './actions.js';
import { matchPropertiesSchema } from '../../ottl/match-properties.js';

export const attributesConfigSchema = s.object({
  /** Applied in order to the attributes of every span that include matches and exclude does not. */
  actions: s.array(actionSchema, { minItems: 1 }),
  include: matchPropertiesSchema.optional(),
  exclude: matchPropertiesSchema.optional(),
});

export type AttributesConfig = Infer<typeof attributesConfigSchema>;
