import type { ConnectorFactory } from '../../pipeline/service/component.js';
import { attributeKeysOf } from '../../ottl/index.js';
import { checkRoutingPipelines, routingConfigSchema, type RoutingConfig } from './config.js';
import { RoutingConnector } from './routing-connector.js';

export const factory: ConnectorFactory<RoutingConfig> = {
  type: 'routing',
  kind: 'connector',
  schema: routingConfigSchema,
  create: (settings, config, pipelines) => new RoutingConnector(settings, config, pipelines),
  checkPipelines: checkRoutingPipelines,
  reads: (config) => config.table.flatMap((r) => attributeKeysOf(r.condition, 'condition')),
};
