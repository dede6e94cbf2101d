import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { transformConfigSchema, type TransformConfig } from './config.js';
import { TransformProcessor } from './transform-processor.js';
import { attributeKeysOf } from '../../ottl/index.js';

export const factory: ProcessorFactory<TransformConfig> = {
  type: 'transform',
  kind: 'processor',
  schema: transformConfigSchema,
  create: (settings, config, next) => new TransformProcessor(settings, config, next),
  reads: (config) => config.trace_statements.flatMap((g) => [...g.statements.flatMap((st) => attributeKeysOf(st, 'statement')), ...g.conditions.flatMap((c) => attributeKeysOf(c, 'condition'))]),
};
