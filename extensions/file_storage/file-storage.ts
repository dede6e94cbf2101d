/**
 * The Collector's file_storage extension, as a place on disk for persistent sending queues: each
 * component gets a directory of its own under `directory`, named as the Collector names its files
 * (`exporter_otlp_backend_traces` for `otlp/backend`), and the directory is locked for this process.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import type { ComponentKind, ComponentSettings, Host, StorageExtension, StorageLocation } from '../../pipeline/service/component.js';
import type { FileStorageConfig } from './config.js';
import { DirectoryLock } from './directory-lock.js';

export class FileStorageExtension implements StorageExtension {
  private lock: DirectoryLock | null = null;

  constructor(
    private readonly settings: ComponentSettings,
    private readonly config: FileStorageConfig,
  ) {}

  async start(_host: Host): Promise<void> {
    const dir = this.config.directory;
    if (!fs.existsSync(dir)) {
      if (!this.config.create_directory) {
        throw new Error(`${this.settings.id}: directory ${dir} does not exist; create it, or set create_directory: true`);
      }
      fs.mkdirSync(dir, { recursive: true, mode: parseInt(this.config.directory_permissions, 8) });
    } else if (!fs.statSync(dir).isDirectory()) {
      throw new Error(`${this.settings.id}: ${dir} is not a directory`);
    }
    try {
      fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK);
    } catch {
      throw new Error(`${this.settings.id}: directory ${dir} is not readable and writable by this process`);
    }
    try {
      this.lock = await DirectoryLock.acquire(dir, this.settings.id, this.config.timeout);
    } catch (err) {
      throw new Error(`${this.settings.id}: ${(err as Error).message}`);
    }
    this.settings.logger.info('file storage ready', { directory: dir, fsync: this.config.fsync });
  }

  storageFor(kind: ComponentKind, componentId: string, signal: 'traces'): StorageLocation {
    const slash = componentId.indexOf('/');
    const type = slash < 0 ? componentId : componentId.slice(0, slash);
    const name = slash < 0 ? '' : componentId.slice(slash + 1);
    return { directory: join(this.config.directory, `${kind}_${safe(type)}_${safe(name)}_${signal}`), fsync: this.config.fsync };
  }

  async shutdown(): Promise<void> {
    this.lock?.release();
    this.lock = null;
  }
}

/** A component ID part as a file name: characters outside [A-Za-z0-9._-] as ~XX (UTF-8 bytes in hex). */
function safe(part: string): string {
  return Array.from(Buffer.from(part, 'utf8'), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9._-]/.test(c) ? c : `~${b.toString(16).padStart(2, '0')}`;
  }).join('');
}
