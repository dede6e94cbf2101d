import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import type { Host } from '../../pipeline/service/component.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { Telemetry } from '../../pipeline/telemetry/telemetry.js';
import { fileStorageSchema } from './config.js';
import { LOCK_FILE } from './directory-lock.js';
import { FileStorageExtension } from './file-storage.js';

const host: Host = { getExtension: () => undefined, readiness: () => ({ ready: true, notReady: [] }) };

function extension(id: string, config: Record<string, unknown>): FileStorageExtension {
  const settings = { id, logger: new Logger(new MemorySink(), 'debug'), telemetry: new Telemetry({ processMetrics: false }) };
  return new FileStorageExtension(settings, parseOrThrow(fileStorageSchema, config));
}

describe('file_storage', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'tw-fs-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("the Collector's keys and defaults; compaction accepted with a warning, recreate refused", () => {
    assert.deepEqual(parseOrThrow(fileStorageSchema, {}), {
      directory: '/var/lib/otelcol/file_storage',
      timeout: 1000,
      fsync: false,
      create_directory: false,
      directory_permissions: '0750',
      compaction: {},
      recreate: false,
    });
    const ctx = new ParseContext();
    fileStorageSchema.parse({ directory: dir, compaction: { on_start: true, directory: '/tmp', max_transaction_size: 65536 } }, ['extensions', 'file_storage'], ctx);
    assert.deepEqual(
      ctx.issues.map((i) => [i.path.join('.'), i.warning === true, /nothing to compact/.test(i.message)]),
      [
        ['extensions.file_storage.compaction.on_start', true, true],
        ['extensions.file_storage.compaction.directory', true, true],
        ['extensions.file_storage.compaction.max_transaction_size', true, true],
      ],
    );
    assert.throws(() => parseOrThrow(fileStorageSchema, { recreate: true }), /recreate: true is not supported: it would discard undelivered batches/);
    assert.throws(() => parseOrThrow(fileStorageSchema, { directory_permissions: 'rwx' }), /octal mode/);
  });

  test('a missing directory is an error unless create_directory, which creates it with its permissions', async () => {
    const missing = join(dir, 'a', 'b');
    await assert.rejects(extension('file_storage', { directory: missing }).start(host), /file_storage: directory .*a\/b does not exist; create it, or set create_directory: true/);
    const ext = extension('file_storage', { directory: missing, create_directory: true, directory_permissions: '0700' });
    await ext.start(host);
    assert.equal(fs.statSync(missing).mode & 0o777, 0o700);
    await ext.shutdown();
    fs.writeFileSync(join(dir, 'file'), '');
    await assert.rejects(extension('file_storage', { directory: join(dir, 'file') }).start(host), /is not a directory/);
  });

  test('each component gets its own directory, named as the Collector names its files', () => {
    const ext = extension('file_storage', { directory: dir, fsync: true });
    assert.deepEqual(ext.storageFor('exporter', 'otlp', 'traces'), { directory: join(dir, 'exporter_otlp__traces'), fsync: true });
    assert.equal(ext.storageFor('exporter', 'otlp/backend', 'traces').directory, join(dir, 'exporter_otlp_backend_traces'));
    assert.equal(ext.storageFor('exporter', 'otlp/../x y', 'traces').directory, join(dir, 'exporter_otlp_..~2fx~20y_traces'));
  });

  test('one directory, one owner: a second extension in this process and a live process elsewhere are refused; a dead owner is taken over', async () => {
    const first = extension('file_storage/a', { directory: dir, timeout: '50ms' });
    await first.start(host);
    await assert.rejects(extension('file_storage/b', { directory: dir }).start(host), new RegExp(`file_storage/b: directory ${dir} is already used by file_storage/a in this process`));
    await first.shutdown();
    assert.ok(!fs.existsSync(join(dir, LOCK_FILE)), 'released at shutdown');

    // a live process of this host holds it: refused after the timeout, naming that process
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, host: hostname() }));
      const t0 = Date.now();
      await assert.rejects(
        extension('file_storage', { directory: dir, timeout: '150ms' }).start(host),
        new RegExp(`directory ${dir} is in use by another tracewarden \\(pid ${other.pid} on ${hostname()}; lock file .*\\)\\. Each daemon needs a directory of its own`),
      );
      assert.ok(Date.now() - t0 >= 100, 'waited for the owner to let go');
    } finally {
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
    }
    // the same process is gone now (kill -9): its lock is taken over
    const next = extension('file_storage', { directory: dir });
    await next.start(host);
    assert.equal(JSON.parse(fs.readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
    await next.shutdown();

    // a lock from another host is never taken over; a torn lock file is
    fs.writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'elsewhere.example' }));
    await assert.rejects(extension('file_storage', { directory: dir, timeout: '10ms' }).start(host), /pid 1 on elsewhere.example/);
    fs.writeFileSync(join(dir, LOCK_FILE), '{"pid": 12');
    const afterTorn = extension('file_storage', { directory: dir });
    await afterTorn.start(host);
    await afterTorn.shutdown();
  });
});
