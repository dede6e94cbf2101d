import { s, type Infer } from '../../pipeline/config/schema.js';
import { goRegexpProblem } from '../../pipeline/config/go-regexp.js';
import { matchPropertiesSchema } from '../../ottl/match-properties.js';

export const spanConfigSchema = s.object({
  name: s
    .object({
      /** The name becomes these attributes' values joined by `separator`, when every one is present. */
      from_attributes: s.array(s.string({ nonEmpty: true })).default([]),
      separator: s.string().default(''),
      /** Named groups of each matching rule become attributes, and `{group}` in the name. */
      to_attributes: s
        .object({
          rules: s.array(s.string().refine(goRegexpProblem), { minItems: 1 }),
          break_after_match: s.bool().default(false),
          keep_original_name: s.bool().default(false),
        })
        .optional(),
    })
    .optional(),
  status: s.object({ code: s.enum('Ok', 'Error', 'Unset'), description: s.string().default('') }).optional(),
  include: matchPropertiesSchema.optional(),
  exclude: matchPropertiesSchema.optional(),
});

export type SpanConfig = Infer<typeof spanConfigSchema>;
