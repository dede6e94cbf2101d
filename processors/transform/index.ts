import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { transformConfigSchema, type TransformConfig } from './config.js';
import { TransformProcessor } from './transform-processor.js';

export const factory: ProcessorFactory<TransformConfig> = {
  type: 'transform',
  kind: 'processor',
  schema: transformConfigSchema,
  create: (settings, config, next) => new TransformProcessor(settings, config, next),
};
