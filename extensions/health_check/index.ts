import type { ExtensionFactory } from '../../pipeline/service/component.js';
import { healthCheckSchema, type HealthCheckConfig } from './config.js';
import { HealthCheckExtension } from './health-check.js';

export const factory: ExtensionFactory<HealthCheckConfig> = {
  type: 'health_check',
  kind: 'extension',
  schema: healthCheckSchema,
  create: (settings, config) => new HealthCheckExtension(settings, config),
};
