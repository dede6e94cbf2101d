/**
 * One cached key set from one configured place (an issuer's JWKS, a credentials JWKS, a local file):
 * - loaded in the background at start, never blocking start-up;
 * - refreshed on a schedule (the response's Cache-Control max-age, clamped to configured bounds);
 * - after a failed load, retried on its own back-off, independent of the unknown-kid cooldown: about 1 s
 *   after the first failure, doubling per consecutive failure up to min(refresh interval, 60 s), each delay
 *   with jitter (drawn from [0.8·d, d]) and never under 100 ms; so an issuer that comes up a moment after
 *   the daemon is used within about a second, and a down one is never fetched in a tight loop;
 * - refreshed early when a token names an unknown `kid`, at most once per cooldown (measured from the
 *   start of the last load of any kind). A caller arriving within the cooldown is not made to wait: it
 *   gets the current keys at once, and exactly one trailing refresh is scheduled for the end of the
 *   cooldown (a load that starts sooner for any reason replaces it). So a storm of invented kids costs at
 *   most one fetch per cooldown, and yet a key published during the storm is loaded within about one
 *   cooldown plus a fetch, without waiting for a token to ask again after the cooldown;
 * - on failure, the last good keys keep being served for at most `maxStaleMs` after the last success.
 * Concurrent refresh requests share one fetch: a caller arriving while a load is under way waits for that
 * load (bounded by the loader's own timeout; callers bound their waiting themselves). Keys only ever come
 * from the configured location.
 */

import { KeyFetchError } from './fetch-json.js';

export type KeyState = 'fresh' | 'stale' | 'unavailable';

/** No scheduled load comes sooner than this after the last, whatever the configuration says. */
const MIN_DELAY_MS = 100;
/** The retry delay after a first failed load; it doubles with each further consecutive failure. */
export const RETRY_BASE_MS = 1_000;
/** The longest retry delay while failing (a shorter refresh interval lowers it). */
export const RETRY_MAX_MS = 60_000;
/** Each retry delay d is drawn from [d·(1 − RETRY_JITTER), d], so many daemons do not retry in step. */
export const RETRY_JITTER = 0.2;

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
  /** A number in [0, 1) for the retry jitter; Math.random unless a test fixes it. */
  random?: () => number;
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
  /** The one refresh owed to unknown kids that arrived within the cooldown; at most one at a time. */
  private trailing: NodeJS.Timeout | null = null;
  private stopped = false;
  private failures = 0;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly opts: KeySourceOptions<T>) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
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
    this.cancelTrailing();
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
   * A token named a key we do not have. Shares a load under way; else loads now when the last load started
   * at least a cooldown ago; else answers at once and makes sure one trailing refresh runs when the
   * cooldown ends (a key published meanwhile is then found without anyone asking again). Resolves with the
   * keys to retry with: the same object as before when nothing new was loaded, null when no keys may be
   * used at all.
   */
  async refreshForUnknownKid(): Promise<T | null> {
    if (this.inflight) await this.inflight;
    else {
      const cooldown = this.opts.timing.unknownKidCooldownMs;
      const wait = this.lastAttempt + cooldown - this.now();
      if (wait <= 0) await this.refresh();
      // Never more than a cooldown away, even if the wall clock stepped back since the last load.
      else this.scheduleTrailing(Math.min(wait, cooldown));
    }
    return this.current();
  }

  /** Whether a trailing refresh is pending: for tests and diagnostics. */
  get trailingRefreshPending(): boolean {
    return this.trailing !== null;
  }

  /** Loads now (sharing a load already under way). Never rejects: failures are kept as state. */
  refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    // This load starts after every unknown kid seen so far: it is the refresh they were owed.
    this.cancelTrailing();
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
      nextMs = this.retryDelay();
    }
    this.schedule(nextMs);
  }

  /**
   * The wait before retrying after `failures` consecutive failed loads: RETRY_BASE_MS doubling, capped at
   * min(refresh interval, RETRY_MAX_MS), with jitter, never under MIN_DELAY_MS. Independent of the
   * unknown-kid cooldown, so neither a long cooldown delays recovery nor a zero one makes a tight loop.
   */
  private retryDelay(): number {
    const cap = Math.min(this.opts.timing.refreshIntervalMs, RETRY_MAX_MS);
    const d = Math.min(RETRY_BASE_MS * 2 ** Math.min(this.failures - 1, 16), cap);
    return Math.max(MIN_DELAY_MS, Math.round(d * (1 - RETRY_JITTER * this.random())));
  }

  private scheduleTrailing(ms: number): void {
    if (this.stopped || this.trailing !== null) return;
    this.trailing = setTimeout(() => {
      this.trailing = null;
      void this.refresh();
    }, ms);
    this.trailing.unref();
  }

  private cancelTrailing(): void {
    if (this.trailing !== null) clearTimeout(this.trailing);
    this.trailing = null;
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
