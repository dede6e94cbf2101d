/**
 * One process per storage directory. Two daemons appending to the same queue files would interleave
 * records and deliver each other's batches twice or not at all, so the second one must not start.
 *
 * The lock is a file created exclusively (O_EXCL) holding the owner's pid and host name. A lock left by a
 * process that is gone (kill -9) is taken over: on the same host when that pid no longer runs, or when it
 * is our own pid (a container restarted with the same pid 1). A lock from another host is never taken
 * over, since its process cannot be checked from here. Within one process a directory can be locked once.
 */
import fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'tracewarden.lock';

interface LockOwner {
  pid: number;
  host: string;
}

/** Directories locked by this process, with the component holding each. */
const lockedHere = new Map<string, string>();

export class DirectoryLockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DirectoryLockError';
  }
}

export class DirectoryLock {
  private constructor(
    readonly directory: string,
    private readonly path: string,
  ) {}

  /**
   * Takes the directory's lock, waiting up to `timeoutMs` for a live owner to let it go; throws a
   * DirectoryLockError naming the owner otherwise.
   */
  static async acquire(directory: string, holder: string, timeoutMs: number): Promise<DirectoryLock> {
    const here = lockedHere.get(directory);
    if (here !== undefined) throw new DirectoryLockError(`directory ${directory} is already used by ${here} in this process`);
    const path = join(directory, LOCK_FILE);
    const me: LockOwner = { pid: process.pid, host: hostname() };
    const giveUpAt = Date.now() + timeoutMs;
    for (let delay = 25; ; delay = Math.min(delay * 2, 200)) {
      try {
        fs.writeFileSync(path, JSON.stringify(me) + '\n', { flag: 'wx', mode: 0o644 });
        lockedHere.set(directory, holder);
        return new DirectoryLock(directory, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = readOwner(path);
      if (owner === null || isStale(owner, me)) {
        // Gone: take it over (a crash left it behind).
        fs.rmSync(path, { force: true });
        continue;
      }
      const left = giveUpAt - Date.now();
      if (left <= 0) {
        throw new DirectoryLockError(
          `directory ${directory} is in use by another tracewarden (pid ${owner.pid} on ${owner.host}; lock file ${path}). ` +
            'Each daemon needs a directory of its own; if no daemon uses it, delete the lock file.',
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    }
  }

  release(): void {
    lockedHere.delete(this.directory);
    const owner = readOwner(this.path);
    if (owner !== null && owner.pid === process.pid && owner.host === hostname()) fs.rmSync(this.path, { force: true });
  }
}

/** The owner a lock file names; null when it names none (torn by a crash while being written). */
function readOwner(path: string): LockOwner | null {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    return Number.isInteger(o.pid) && typeof o.host === 'string' ? { pid: o.pid!, host: o.host } : null;
  } catch {
    return null;
  }
}

function isStale(owner: LockOwner, me: LockOwner): boolean {
  if (owner.host !== me.host) return false;
  if (owner.pid === me.pid) return true;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
