import type { ExporterFactory } from '../../pipeline/service/component.js';
import { otlpConfigSchema, type OtlpConfig } from './config.js';
import { OtlpGrpcExporter } from './grpc-exporter.js';

export const factory: ExporterFactory<OtlpConfig> = {
  type: 'otlp',
  kind: 'exporter',
  schema: otlpConfigSchema,
  create: (settings, config) => new OtlpGrpcExporter(settings, config),
};
