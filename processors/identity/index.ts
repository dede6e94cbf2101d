import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { identitySchema, type IdentityConfig } from './config.js';
import { IdentityProcessor } from './identity-processor.js';
import { protectedKeys } from './attributes.js';

export const factory: ProcessorFactory<IdentityConfig> = {
  type: 'identity',
  kind: 'processor',
  schema: identitySchema,
  create: (settings, config, next) => new IdentityProcessor(settings, config, next),
  // Every key it strips from what senders wrote and writes itself; identity.* and enduser.* as namespaces.
  writesFacts: (config) => ({ keys: protectedKeys([...Object.keys(config.claims), ...Object.keys(config.sender.attributes)]), prefixes: ['identity.', 'enduser.'] }),
};
