import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { memoryLimiterConfigSchema, type MemoryLimiterConfig } from './config.js';
import { MemoryLimiter } from './memory-limiter.js';

export const factory: ProcessorFactory<MemoryLimiterConfig> = {
  type: 'memory_limiter',
  kind: 'processor',
  schema: memoryLimiterConfigSchema,
  create: (settings, config, next) => new MemoryLimiter(settings, config, next),
};
