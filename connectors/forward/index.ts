import type { ConnectorFactory } from '../../pipeline/service/component.js';
import { forwardConfigSchema, type ForwardConfig } from './config.js';
import { ForwardConnector } from './forward-connector.js';

export const factory: ConnectorFactory<ForwardConfig> = {
  type: 'forward',
  kind: 'connector',
  schema: forwardConfigSchema,
  create: (_settings, _config, pipelines) => new ForwardConnector(pipelines),
};
