import type { ExporterFactory } from '../../pipeline/service/component.js';
import { otlphttpConfigSchema, type OtlpHttpConfig } from './config.js';
import { OtlpHttpExporter } from './http-exporter.js';

export const factory: ExporterFactory<OtlpHttpConfig> = {
  type: 'otlphttp',
  kind: 'exporter',
  schema: otlphttpConfigSchema,
  create: (settings, config) => new OtlpHttpExporter(settings, config),
};
