import { endpointSchema, s, type Infer } from '../../pipeline/config/schema.js';

/** The Collector's health_check extension keys, so existing configs that enable it keep working. */
export const healthCheckSchema = s.object(
  {
    endpoint: endpointSchema().default('localhost:13133'),
    path: s.string({ pattern: /^\//, patternHint: 'a path starting with /' }).default('/'),
  },
  { check_collector_pipeline: 'deprecated in the Collector; readiness covers it', tls: 'served over plain HTTP', response_body: 'no effect' },
);

export type HealthCheckConfig = Infer<typeof healthCheckSchema>;
