import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { redactionConfigSchema, type RedactionConfig } from './config.js';
import { RedactionProcessor } from './redaction-processor.js';

export const factory: ProcessorFactory<RedactionConfig> = {
  type: 'redaction',
  kind: 'processor',
  schema: redactionConfigSchema,
  create: (settings, config, next) => new RedactionProcessor(settings, config, next),
};
