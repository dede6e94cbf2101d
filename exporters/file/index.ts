import type { ExporterFactory } from '../../pipeline/service/component.js';
import { fileConfigSchema, type FileConfig } from './config.js';
import { FileExporter } from './file-exporter.js';

export const factory: ExporterFactory<FileConfig> = {
  type: 'file',
  kind: 'exporter',
  schema: fileConfigSchema,
  create: (settings, config) => new FileExporter(settings, config),
};
