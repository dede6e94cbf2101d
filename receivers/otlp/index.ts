import type { ReceiverFactory } from '../../pipeline/service/component.js';
import { configSchema, type OtlpReceiverConfig } from './config.js';
import { OtlpReceiver } from './receiver.js';

export { OtlpReceiver } from './receiver.js';
export type { OtlpReceiverConfig } from './config.js';

export const factory: ReceiverFactory<OtlpReceiverConfig> = {
  type: 'otlp',
  kind: 'receiver',
  schema: configSchema,
  create: (settings, config, next) => new OtlpReceiver(settings, config, next),
};
