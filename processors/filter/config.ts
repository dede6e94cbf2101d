import { s, type Infer } from '../../pipeline/config/schema.js';
import { conditionsSchema, errorModeSchema } from '../../ottl/config.js';
import { CTX_SPAN, CTX_SPANEVENT } from '../../ottl/target.js';

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
    spans: s.refused(
      'the legacy spans include/exclude form is not supported yet; write the same match as OTTL conditions under traces.span, for example traces: { span: [\'resource.attributes["service.name"] == "checkout"\'] }',
    ),
  },
  { metrics: OTHER_SIGNAL, logs: OTHER_SIGNAL, profiles: OTHER_SIGNAL },
);

export type FilterConfig = Infer<typeof filterConfigSchema>;
