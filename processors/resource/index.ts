import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { resourceConfigSchema, type ResourceConfig } from './config.js';
import { ResourceProcessor } from './resource-processor.js';

export const factory: ProcessorFactory<ResourceConfig> = {
  type: 'resource',
  kind: 'processor',
  schema: resourceConfigSchema,
  create: (settings, config, next) => new ResourceProcessor(settings, config, next),
};
