import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { BatchProcessor } from './batch-processor.js';
import { batchConfigSchema, type BatchConfig } from './config.js';

export const factory: ProcessorFactory<BatchConfig> = {
  type: 'batch',
  kind: 'processor',
  schema: batchConfigSchema,
  create: (settings, config, next) => new BatchProcessor(settings, config, next),
};
