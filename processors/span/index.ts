import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { spanConfigSchema, type SpanConfig } from './config.js';
import { SpanProcessor } from './span-processor.js';

export const factory: ProcessorFactory<SpanConfig> = {
  type: 'span',
  kind: 'processor',
  schema: spanConfigSchema,
  create: (settings, config, next) => new SpanProcessor(settings, config, next),
  reads: (config) => [...(config.name?.from_attributes ?? []), ...[config.include, config.exclude].flatMap((m) => m?.attributes.map((kv) => kv.key) ?? [])],
};
