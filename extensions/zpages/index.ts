import type { ExtensionFactory } from '../../pipeline/service/component.js';
import { zpagesSchema, type ZpagesConfig } from './config.js';
import { ZpagesExtension } from './zpages-extension.js';

export const factory: ExtensionFactory<ZpagesConfig> = {
  type: 'zpages',
  kind: 'extension',
  schema: zpagesSchema,
  create: (settings, config) => new ZpagesExtension(settings, config),
};
