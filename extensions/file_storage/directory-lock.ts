/**
 * One process per storage directory. Two daemons appending to the same queue files would interleave
 * records and deliver each other's batches twice or not at all, so the second one must not start.
 *
 * The lock is a file made whole and then linked into place (link fails when it exists, so it is taken by
 * one process only and never seen half written), naming its owner: pid, host, boot and pid namespace, and a
 * random instance id. The owner touches it every 2 s. A lock is taken over when its owner is provably gone:
 * in our own pid namespace on this boot, when its pid no longer runs (kill -9); after a reboot; and
 * otherwise (another host, another container's pid namespace, where its pid means nothing here) only once
 * it has not been touched for 10 s. A takeover renames the old lock aside first, so two processes taking
 * over at once cannot both win. Within one process a directory can be locked once.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'tracewarden.lock';
export const HEARTBEAT_MS = 2000;
export const STALE_MS = 10_000;

export interface LockOwner {
  pid: number;
  host: string;
  boot: string;
  pidns: string;
  instance: string;
}

/** Directories locked by this process, with the component holding each. */
const lockedHere = new Map<string, string>();

function readText(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

function readLink(path: string): string {
  try {
    return fs.readlinkSync(path);
  } catch {
    return '';
  }
}

/** Who we are, as a lock file records it. */
export function currentOwner(): LockOwner {
  return {
    pid: process.pid,
    host: hostname(),
    boot: readText('/proc/sys/kernel/random/boot_id'),
    pidns: readLink('/proc/self/ns/pid'),
    instance: randomBytes(8).toString('hex'),
  };
}

export class DirectoryLockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DirectoryLockError';
  }
}

export class DirectoryLock {
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(
    readonly directory: string,
    private readonly path: string,
    private readonly owner: LockOwner,
  ) {
    this.heartbeat = setInterval(() => {
      const now = new Date();
      try {
        fs.utimesSync(this.path, now, now);
      } catch {
        // gone (removed by hand): nothing to refresh
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /**
   * Takes the directory's lock, waiting up to `timeoutMs` for its owner to let it go or be proven gone;
   * throws a DirectoryLockError naming the owner otherwise.
   */
  static async acquire(directory: string, holder: string, timeoutMs: number): Promise<DirectoryLock> {
    const here = lockedHere.get(directory);
    if (here !== undefined) throw new DirectoryLockError(`directory ${directory} is already used by ${here} in this process`);
    const path = join(directory, LOCK_FILE);
    const me = currentOwner();
    const giveUpAt = Date.now() + timeoutMs;
    for (let delay = 25; ; delay = Math.min(delay * 2, 200)) {
      if (tryCreate(path, me)) {
        lockedHere.set(directory, holder);
        return new DirectoryLock(directory, path, me);
      }
      const found = readOwner(path);
      if (found !== null && isStale(found.owner, found.mtimeMs, me)) {
        takeOver(path, found.owner, me);
        continue;
      }
      const left = giveUpAt - Date.now();
      if (left <= 0) {
        const who = found?.owner ? `pid ${found.owner.pid} on ${found.owner.host}` : 'an unreadable lock';
        throw new DirectoryLockError(
          `directory ${directory} is in use by another tracewarden (${who}; lock file ${path}). ` +
            'Each daemon needs a directory of its own; if no daemon uses it, delete the lock file.',
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    }
  }

  release(): void {
    clearInterval(this.heartbeat);
    lockedHere.delete(this.directory);
    if (readOwner(this.path)?.owner?.instance === this.owner.instance) fs.rmSync(this.path, { force: true });
  }
}

/** Writes the lock whole beside its place and links it in: false when a lock is already there. */
function tryCreate(path: string, me: LockOwner): boolean {
  const tmp = `${path}.${me.instance}`;
  fs.writeFileSync(tmp, JSON.stringify(me) + '\n', { mode: 0o644 });
  try {
    fs.linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** The lock file's owner (null when it names none) and when it was last touched; null when there is none. */
function readOwner(path: string): { owner: LockOwner | null; mtimeMs: number } | null {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = fs.statSync(path).mtimeMs;
    text = fs.readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    const ok = Number.isInteger(o.pid) && typeof o.host === 'string';
    return { owner: ok ? { pid: o.pid!, host: o.host!, boot: o.boot ?? '', pidns: o.pidns ?? '', instance: o.instance ?? '' } : null, mtimeMs };
  } catch {
    return { owner: null, mtimeMs };
  }
}

function isStale(owner: LockOwner | null, mtimeMs: number, me: LockOwner): boolean {
  const untouched = Date.now() - mtimeMs > STALE_MS;
  if (owner === null || owner.host !== me.host) return untouched;
  if (owner.boot !== '' && me.boot !== '' && owner.boot !== me.boot) return true; // rebooted since
  if (owner.pidns === '' || owner.pidns !== me.pidns) return untouched; // its pid means nothing here
  if (owner.pid === me.pid) return true; // our pid, and not held by this process: a previous life
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Moves a stale lock aside, checking that what was moved is the lock judged stale: another process may
 * have taken it over in between, and then its fresh lock is put back.
 */
function takeOver(path: string, stale: LockOwner | null, me: LockOwner): void {
  const aside = `${path}.stale.${me.instance}`;
  try {
    fs.renameSync(path, aside);
  } catch {
    return; // someone else moved it first
  }
  const moved = readOwner(aside)?.owner ?? null;
  if (moved !== null && stale !== null && moved.instance !== stale.instance) {
    try {
      fs.linkSync(aside, path);
    } catch {
      // a third process holds it now; the one put aside lost it anyway
    }
  }
  fs.rmSync(aside, { force: true });
}
