import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { filterConfigSchema, type FilterConfig } from './config.js';
import { FilterProcessor } from './filter-processor.js';
import { attributeKeysOf } from '../../ottl/index.js';

export const factory: ProcessorFactory<FilterConfig> = {
  type: 'filter',
  kind: 'processor',
  schema: filterConfigSchema,
  create: (settings, config, next) => new FilterProcessor(settings, config, next),
  reads: (config) => [...config.traces.span, ...config.traces.spanevent].flatMap((c) => attributeKeysOf(c, 'condition')),
};
