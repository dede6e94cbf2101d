import type { ExtensionFactory } from '../../pipeline/service/component.js';
import { fileStorageSchema, type FileStorageConfig } from './config.js';
import { FileStorageExtension } from './file-storage.js';

export const factory: ExtensionFactory<FileStorageConfig> = {
  type: 'file_storage',
  kind: 'extension',
  schema: fileStorageSchema,
  create: (settings, config) => new FileStorageExtension(settings, config),
};
