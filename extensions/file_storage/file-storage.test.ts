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
import { HEARTBEAT_MS, LOCK_FILE, STALE_MS, currentOwner, type LockOwner } from './directory-lock.js';
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

    const lockPath = join(dir, LOCK_FILE);
    const me = currentOwner();
    const writeLock = (o: Partial<LockOwner> | string, ageMs = 0) => {
      fs.writeFileSync(lockPath, typeof o === 'string' ? o : JSON.stringify({ ...me, instance: 'other', ...o }));
      const t = new Date(Date.now() - ageMs);
      fs.utimesSync(lockPath, t, t);
    };

    // a live process in our pid namespace holds it: refused after the timeout, naming that process
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      writeLock({ pid: other.pid });
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
    // the same process is gone now (kill -9): its lock is taken over at once
    const next = extension('file_storage', { directory: dir });
    await next.start(host);
    assert.equal(JSON.parse(fs.readFileSync(lockPath, 'utf8')).pid, process.pid);
    await next.shutdown();

    const refusedWith = async (o: Partial<LockOwner> | string, ageMs: number, pattern: RegExp) => {
      writeLock(o, ageMs);
      await assert.rejects(extension('file_storage', { directory: dir, timeout: '10ms' }).start(host), pattern);
    };
    const takenOver = async (o: Partial<LockOwner> | string, ageMs: number) => {
      writeLock(o, ageMs);
      const ext = extension('file_storage', { directory: dir, timeout: '10ms' });
      await ext.start(host);
      await ext.shutdown();
    };
    // another host, or another container's pid namespace with our very pid (pid 1 in both, say): its pid
    // cannot be checked from here, so only a lock left untouched for STALE_MS is taken over
    await refusedWith({ pid: 1, host: 'elsewhere.example' }, 0, /pid 1 on elsewhere.example/);
    await takenOver({ pid: 1, host: 'elsewhere.example' }, STALE_MS + 1000);
    await refusedWith({ pidns: 'pid:[1]' }, 0, new RegExp(`pid ${process.pid} on `));
    await takenOver({ pidns: 'pid:[1]' }, STALE_MS + 1000);
    // a lock from before a reboot is taken over at once; an unreadable one once untouched
    await takenOver({ pid: 1, boot: 'another-boot' }, 0);
    await refusedWith('{"pid": 12', 0, /an unreadable lock/);
    await takenOver('{"pid": 12', STALE_MS + 1000);
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing left behind: no lock, no file put aside');

    // the holder keeps its lock fresh
    const held = extension('file_storage', { directory: dir });
    await held.start(host);
    const t = new Date(Date.now() - 60_000);
    fs.utimesSync(lockPath, t, t);
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS + 200));
    assert.ok(Date.now() - fs.statSync(lockPath).mtimeMs < HEARTBEAT_MS + 500, 'touched by its holder');
    await held.shutdown();
  });
});
