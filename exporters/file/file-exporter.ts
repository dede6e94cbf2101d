/**
 * The file exporter: the Collector's `file`. Each batch is written as one OTLP ExportTraceServiceRequest:
 * a line of OTLP/JSON (`format: json`, no compression), or, for `format: proto` or with `compression:
 * zstd`, the encoded (and compressed) message preceded by its length as a 4-byte big-endian integer, as the
 * Collector writes them. Writes are in arrival order, one at a time; a batch is acknowledged once written
 * to the file (the page cache).
 *
 * Rotation as the Collector's (lumberjack): when the next write would take the file over max_megabytes,
 * it is renamed with the time before its extension (`data-2026-12-02T10-15-00.000.json`), a new file is
 * started at `path`, and backups beyond max_backups or older than max_days are deleted, oldest first.
 */
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import { compress } from '../../pipeline/compression/compression.js';
import { otlpProtobufToJsonBytes } from '../../pipeline/batch/otlp-json-writer.js';
import type { ComponentSettings, Exporter } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import type { FileConfig } from './config.js';

const NEWLINE = Buffer.from('\n');

/** Go time layout 2006-01-02T15-04-05.000, in UTC or local time. */
export function backupTimestamp(d: Date, local: boolean): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const [y, mo, da, h, mi, s, ms] = local
    ? [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()]
    : [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()];
  return `${y}-${p(mo)}-${p(da)}T${p(h)}-${p(mi)}-${p(s)}.${p(ms, 3)}`;
}

export class FileExporter implements Exporter {
  private file: FileHandle | null = null;
  private size = 0;
  /** Writes run one after another, in arrival order. */
  private chain: Promise<void> = Promise.resolve();
  private readonly sent: { inc(n?: number): void };
  private readonly failed: { inc(n?: number): void };

  constructor(
    private readonly settings: ComponentSettings,
    private readonly config: FileConfig,
  ) {
    const t = settings.telemetry;
    this.sent = zeroed(t.exporterSent.labels(settings.id));
    this.failed = zeroed(t.exporterSendFailed.labels(settings.id));
  }

  async start(): Promise<void> {
    await mkdir(dirname(this.config.path), { recursive: true });
    await this.openFile(this.config.append ? 'a' : 'w');
    this.settings.logger.info('file exporter writing', { path: this.config.path, format: this.config.format, compression: this.config.compression || 'none' });
  }

  private async openFile(flags: 'a' | 'w'): Promise<void> {
    this.file = await open(this.config.path, flags, 0o640);
    this.size = flags === 'a' ? (await this.file.stat()).size : 0;
  }

  consume(batch: TraceBatch): Promise<void> {
    const spans = batch.liveSpanCount;
    const bytes = batch.encode();
    const write = this.chain.then(() => this.write(bytes));
    this.chain = write.catch(() => {});
    return write.then(
      () => this.sent.inc(spans),
      (err: unknown) => {
        this.failed.inc(spans);
        throw err instanceof PipelineError ? err : new PipelineError('UNAVAILABLE', `the file exporter cannot write ${this.config.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      },
    );
  }

  private async record(bytes: Uint8Array): Promise<Buffer[]> {
    const c = this.config;
    let body: Buffer = c.format === 'json' ? otlpProtobufToJsonBytes(bytes) : Buffer.from(bytes);
    if (c.compression === 'zstd') body = await compress(body, 'zstd', 3);
    if (c.format === 'json' && c.compression === '') return [body, NEWLINE];
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    return [len, body];
  }

  private async write(bytes: Uint8Array): Promise<void> {
    if (this.file === null) throw new PipelineError('UNAVAILABLE', 'the file exporter is not running');
    const parts = await this.record(bytes);
    const n = parts.reduce((a, p) => a + p.length, 0);
    const max = (this.config.rotation?.max_megabytes ?? 100) * 1024 * 1024;
    if (this.size > 0 && this.size + n > max) await this.rotate();
    await this.file.writev(parts);
    this.size += n;
  }

  private async rotate(): Promise<void> {
    const path = this.config.path;
    const ext = extname(path);
    const stem = basename(path, ext);
    // Two rotations within one millisecond must not overwrite a backup: the later one takes the next.
    let when = Date.now();
    let backup: string;
    for (;;) {
      backup = join(dirname(path), `${stem}-${backupTimestamp(new Date(when), this.config.rotation?.localtime ?? false)}${ext}`);
      if (!(await exists(backup))) break;
      when++;
    }
    await this.file!.close();
    this.file = null;
    await rename(path, backup);
    await this.openFile('w');
    await this.prune(stem, ext);
  }

  /** Deletes backups beyond max_backups (oldest first) and older than max_days. */
  private async prune(stem: string, ext: string): Promise<void> {
    const dir = dirname(this.config.path);
    const r = this.config.rotation;
    const pattern = new RegExp(`^${escapeRegExp(stem)}-\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}\\.\\d{3}${escapeRegExp(ext)}$`);
    const backups = (await readdir(dir)).filter((f) => pattern.test(f)).sort();
    const tooMany = backups.length - (r?.max_backups ?? 100);
    const maxAgeMs = (r?.max_days ?? 0) * 86_400_000;
    for (let i = 0; i < backups.length; i++) {
      const file = join(dir, backups[i]!);
      const old = maxAgeMs > 0 && Date.now() - (await stat(file)).mtimeMs > maxAgeMs;
      if ((r?.max_backups ?? 100) > 0 && i < tooMany) await rm(file, { force: true });
      else if (old) await rm(file, { force: true });
    }
  }

  async shutdown(): Promise<void> {
    await this.chain;
    await this.file?.close();
    this.file = null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
