import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { identitySchema, type IdentityConfig } from './config.js';
import { IdentityProcessor } from './identity-processor.js';

export const factory: ProcessorFactory<IdentityConfig> = {
  type: 'identity',
  kind: 'processor',
  schema: identitySchema,
  create: (settings, config, next) => new IdentityProcessor(settings, config, next),
};
