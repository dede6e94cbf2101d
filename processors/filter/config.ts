import { s, type Infer } from '../../pipeline/config/schema.js';
import { conditionsSchema, errorModeSchema } from '../../ottl/config.js';
import { CTX_SPAN, CTX_SPANEVENT } from '../../ottl/target.js';
import { matchPropertiesSchema } from '../../ottl/match-properties.js';

const OTHER_SIGNAL = 'tracewarden handles traces only; this section has no effect';

export const filterConfigSchema = s.object(
  {
    error_mode: errorModeSchema(),
    traces: s.object(
      {
        /** Spans for which any condition is true are dropped. */
        span: conditionsSchema(CTX_SPAN),
        /** Span events for which any condition is true are dropped (the span stays). */
        spanevent: conditionsSchema(CTX_SPANEVENT),
      },
      {},
    ),
    /** The legacy form: spans `include` does not match, or `exclude` matches, are dropped. */
    spans: s.object({ include: matchPropertiesSchema.optional(), exclude: matchPropertiesSchema.optional() }).optional(),
  },
  { metrics: OTHER_SIGNAL, logs: OTHER_SIGNAL, profiles: OTHER_SIGNAL },
);

export type FilterConfig = Infer<typeof filterConfigSchema>;
