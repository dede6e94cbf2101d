import type { ExtensionFactory } from '../../pipeline/service/component.js';
import { pprofSchema, type PprofConfig } from './config.js';
import { PprofExtension } from './pprof-extension.js';

export const factory: ExtensionFactory<PprofConfig> = {
  type: 'pprof',
  kind: 'extension',
  schema: pprofSchema,
  create: (settings, config) => new PprofExtension(settings, config),
};
