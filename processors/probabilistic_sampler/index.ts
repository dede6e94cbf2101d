import type { ProcessorFactory } from '../../pipeline/service/component.js';
import { probabilisticSamplerConfigSchema, type ProbabilisticSamplerConfig } from './config.js';
import { ProbabilisticSamplerProcessor } from './probabilistic-sampler.js';

export const factory: ProcessorFactory<ProbabilisticSamplerConfig> = {
  type: 'probabilistic_sampler',
  kind: 'processor',
  schema: probabilisticSamplerConfigSchema,
  create: (settings, config, next) => new ProbabilisticSamplerProcessor(settings, config, next),
  reads: () => ['sampling.priority'],
};
