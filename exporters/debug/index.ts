import type { ExporterFactory } from '../../pipeline/service/component.js';
import { debugConfigSchema, type DebugConfig } from './config.js';
import { DebugExporter } from './debug-exporter.js';

export const factory: ExporterFactory<DebugConfig> = {
  type: 'debug',
  kind: 'exporter',
  schema: debugConfigSchema,
  create: (settings, config) => new DebugExporter(settings, config),
};
