/**
 * One cached key set from one configured place (an issuer's JWKS, a credentials JWKS, a local file):
 * - loaded in the background at start, never blocking start-up;
 * - refreshed on a schedule (the response's Cache-Control max-age, clamped to configured bounds);
 * - refreshed early when a token names an unknown `kid`, at most once per cooldown, so a storm of
 *   invented kids costs one fetch per cooldown;
 * - on failure, the last good keys keep being served for at most `maxStaleMs` after the last success.
 * Concurrent refresh requests share one fetch. Keys only ever come from the configured location.
 */

import { KeyFetchError } from './fetch-json.js';

export type KeyState = 'fresh' | 'stale' | 'unavailable';

/** No scheduled load comes sooner than this after the last, whatever the configuration says. */
const MIN_DELAY_MS = 100;

export interface KeySourceTiming {
  refreshIntervalMs: number;
  minRefreshIntervalMs: number;
  maxRefreshIntervalMs: number;
  unknownKidCooldownMs: number;
  maxStaleMs: number;
}

export interface LoadedKeys<T> {
  keys: T;
  count: number;
}

export interface KeySourceEvents {
  fetched(outcome: 'ok' | string, keyCount: number): void;
}

export interface KeySourceOptions<T> {
  /** For logs and metrics: the configured issuer or file, never anything from a token. */
  name: string;
  /** Reads the raw document (a fetch or a file read); `maxAgeMs` from Cache-Control when there is one. */
  load(): Promise<{ body: unknown; maxAgeMs: number | null }>;
  /** Turns the document into usable keys; throws with a clear message when it is not a valid key set. */
  parse(body: unknown): LoadedKeys<T>;
  timing: KeySourceTiming;
  events?: KeySourceEvents;
  now?: () => number;
}

export class KeySource<T> {
  private keys: T | null = null;
  private keyCount = 0;
  private lastSuccess = 0;
  private lastAttempt = -Infinity;
  private lastFailed = false;
  private lastError = '';
  private inflight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failures = 0;
  private readonly now: () => number;

  constructor(private readonly opts: KeySourceOptions<T>) {
    this.now = opts.now ?? Date.now;
  }

  get name(): string {
    return this.opts.name;
  }

  /** Starts the first load in the background. */
  start(): void {
    this.stopped = false;
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  state(): KeyState {
    if (this.keys === null) return 'unavailable';
    if (!this.lastFailed) return 'fresh';
    return this.now() - this.lastSuccess <= this.opts.timing.maxStaleMs ? 'stale' : 'unavailable';
  }

  /** The keys to verify with, or null when none may be used (never loaded, or stale beyond the limit). */
  current(): T | null {
    return this.state() === 'unavailable' ? null : this.keys;
  }

  get count(): number {
    return this.keyCount;
  }

  /** Why the last load failed, for readiness and logs (names the location and the cause, no key data). */
  get error(): string {
    return this.lastError;
  }

  /** Resolves once a load is settled: for start-up readiness and tests; never rejects. */
  whenSettled(): Promise<void> {
    return this.inflight ?? Promise.resolve();
  }

  /**
   * A token named a key we do not have. Refreshes now unless a load happened within the cooldown, then
   * resolves with the keys to retry with: the same object as before when nothing new was loaded, null
   * when no keys may be used at all.
   */
  async refreshForUnknownKid(): Promise<T | null> {
    if (this.inflight) await this.inflight;
    else if (this.now() - this.lastAttempt >= this.opts.timing.unknownKidCooldownMs) await this.refresh();
    return this.current();
  }

  /** Loads now (sharing a load already under way). Never rejects: failures are kept as state. */
  refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    this.lastAttempt = this.now();
    this.inflight = this.loadOnce().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async loadOnce(): Promise<void> {
    const t = this.opts.timing;
    let nextMs: number;
    try {
      const { body, maxAgeMs } = await this.opts.load();
      const loaded = this.opts.parse(body);
      this.keys = loaded.keys;
      this.keyCount = loaded.count;
      this.lastSuccess = this.now();
      this.lastFailed = false;
      this.lastError = '';
      this.failures = 0;
      nextMs = clamp(maxAgeMs ?? t.refreshIntervalMs, Math.max(t.minRefreshIntervalMs, MIN_DELAY_MS), t.maxRefreshIntervalMs);
      this.opts.events?.fetched('ok', loaded.count);
    } catch (err) {
      this.lastFailed = true;
      this.failures++;
      this.lastError = (err as Error).message;
      // Outcomes are metric label values: only the fetcher's closed set of codes, never a library's own.
      this.opts.events?.fetched(err instanceof KeyFetchError ? err.code : 'invalid_keys', this.keyCount);
      // Retry sooner than the schedule while failing, backing off from the cooldown; never in a tight loop,
      // whatever the configured cooldown.
      const floor = Math.max(t.unknownKidCooldownMs, MIN_DELAY_MS);
      nextMs = Math.max(floor, Math.min(floor * 2 ** Math.min(this.failures - 1, 10), t.refreshIntervalMs));
    }
    this.schedule(nextMs);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refresh();
    }, ms);
    this.timer.unref();
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
