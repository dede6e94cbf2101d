import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { resourceDetectionConfigSchema, type ResourceDetectionConfig } from './config.js';
import { ResourceDetectionProcessor } from './resource-detection.js';

export const factory: ProcessorFactory<ResourceDetectionConfig> = {
  type: 'resourcedetection',
  kind: 'processor',
  schema: resourceDetectionConfigSchema,
  create: (settings, config, next) => new ResourceDetectionProcessor(settings, config, next),
};
