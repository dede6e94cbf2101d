import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { attributesConfigSchema, type AttributesConfig } from './config.js';
import { AttributesProcessor } from './attributes-processor.js';

export const factory: ProcessorFactory<AttributesConfig> = {
  type: 'attributes',
  kind: 'processor',
  schema: attributesConfigSchema,
  create: (settings, config, next) => new AttributesProcessor(settings, config, next),
  reads: (config) => [...config.actions.flatMap((a) => [a.key ?? '', a.from_attribute ?? '']), ...[config.include, config.exclude].flatMap((m) => m?.attributes.map((kv) => kv.key) ?? [])].filter((k) => k !== ''),
};
