import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { JwsKeySet } from '../jwt/jws.js';
import { KeySource, RETRY_JITTER, type KeySourceTiming } from './key-source.js';
import { DEFAULT_UNKNOWN_KID_COOLDOWN_MS, keysSchema } from './config.js';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import { keySourceTiming } from '../jwt/build.js';
import { urlLoader } from './locations.js';
import { KeyFetchError } from './fetch-json.js';
import { parseJwks } from '../jwt/issuer.js';
import { jwksOf, makeSigningKey, startJwksServer, type JsonWebKeySet, type JwksServer } from '../../test/helpers/jwks-server.js';

const LIMITS = { timeoutMs: 2_000, maxBytes: 64 * 1024, allowInsecureHttp: true };

const TIMING: KeySourceTiming = {
  refreshIntervalMs: 600_000,
  minRefreshIntervalMs: 1_000,
  maxRefreshIntervalMs: 3_600_000,
  unknownKidCooldownMs: 30_000,
  maxStaleMs: 120_000,
};

/** A clock the test moves by hand; starts at a realistic epoch value. */
function fakeClock() {
  const c = { t: 1_700_000_000_000, now: () => c.t };
  return c;
}

interface Recorded {
  outcomes: string[];
  counts: number[];
}

function recorder(): Recorded & { events: { fetched(o: string, n: number): void } } {
  const r: Recorded = { outcomes: [], counts: [] };
  return {
    ...r,
    events: {
      fetched(o: string, n: number) {
        r.outcomes.push(o);
        r.counts.push(n);
      },
    },
  };
}

async function withServer(fn: (srv: JwksServer, jwks: JsonWebKeySet) => Promise<void>): Promise<void> {
  const a = await makeSigningKey('ES256', 'a');
  const b = await makeSigningKey('ES256', 'b');
  const jwks = jwksOf(a, b);
  const srv = await startJwksServer({ keys: jwks });
  try {
    await fn(srv, jwks);
  } finally {
    await srv.stop();
  }
}

function httpSource(srv: JwksServer, clock: { now: () => number }, rec?: { events: { fetched(o: string, n: number): void } }, timing: Partial<KeySourceTiming> = {}) {
  return new KeySource<JwsKeySet>({
    name: srv.issuer,
    load: urlLoader(srv.jwksUri, LIMITS),
    parse: parseJwks,
    timing: { ...TIMING, ...timing },
    ...(rec ? { events: rec.events } : {}),
    now: clock.now,
  });
}

test('start() returns at once; the state is unavailable until the first load settles, then fresh', async () => {
  await withServer(async (srv) => {
    const rec = recorder();
    const src = httpSource(srv, fakeClock(), rec);
    assert.equal(src.start(), undefined);
    assert.equal(src.state(), 'unavailable');
    assert.equal(src.current(), null);
    await src.whenSettled();
    assert.equal(src.state(), 'fresh');
    assert.equal(src.current()?.size, 2, 'both published keys are usable');
    assert.equal(src.count, 2);
    assert.equal(src.error, '');
    assert.equal(src.name, srv.issuer);
    assert.deepEqual(rec.outcomes, ['ok']);
    assert.deepEqual(rec.counts, [2]);
    assert.equal(srv.requests('/jwks'), 1);
    src.stop();
  });
});

test('an issuer that hangs does not block start(); the load settles as unavailable with a timeout', async () => {
  await withServer(async (srv) => {
    srv.failNext('/jwks', 1, 'hang');
    const rec = recorder();
    const src = new KeySource<JwsKeySet>({
      name: srv.issuer,
      load: urlLoader(srv.jwksUri, { ...LIMITS, timeoutMs: 200 }),
      parse: parseJwks,
      timing: TIMING,
      events: rec.events,
      now: fakeClock().now,
    });
    src.start();
    assert.equal(src.state(), 'unavailable');
    await src.whenSettled();
    assert.equal(src.state(), 'unavailable');
    assert.equal(src.current(), null);
    assert.match(src.error, /no answer within 200 ms/);
    assert.ok(src.error.includes(srv.jwksUri), 'the error names the configured location');
    assert.deepEqual(rec.outcomes, ['timeout']);
    await src.refresh();
    assert.equal(src.state(), 'fresh');
    assert.deepEqual(rec.outcomes, ['timeout', 'ok']);
    src.stop();
  });
});

test('concurrent refresh() calls share one fetch', async () => {
  await withServer(async (srv) => {
    const src = httpSource(srv, fakeClock());
    const calls = Array.from({ length: 50 }, () => src.refresh());
    assert.ok(calls.every((p) => p === calls[0]), 'every caller gets the same in-flight load');
    await Promise.all(calls);
    assert.equal(srv.requests('/jwks'), 1);
    assert.equal(src.state(), 'fresh');
    src.stop();
  });
});

test('a storm of 1000 unknown-kid refreshes costs one fetch per cooldown', async () => {
  await withServer(async (srv) => {
    const clock = fakeClock();
    const src = httpSource(srv, clock);
    src.start();
    await src.whenSettled();
    const loaded = src.current();
    assert.equal(srv.requests('/jwks'), 1);

    clock.t += 1_000; // within the 30 s cooldown of the start-up load
    const early = await Promise.all(Array.from({ length: 1000 }, () => src.refreshForUnknownKid()));
    assert.ok(early.every((k) => k === loaded), 'within the cooldown the same keys come back: nothing new was loaded');
    assert.equal(srv.requests('/jwks'), 1, 'no fetch within the cooldown');
    assert.equal(src.current(), loaded);

    clock.t += TIMING.unknownKidCooldownMs;
    const storm = await Promise.all(Array.from({ length: 1000 }, () => src.refreshForUnknownKid()));
    assert.equal(srv.requests('/jwks'), 2, 'the storm shares exactly one fetch');
    assert.ok(storm[0] !== null && storm[0] !== loaded, 'a new key set was loaded');
    assert.ok(storm.every((k) => k === storm[0]), 'every caller gets the new keys');

    assert.equal(await src.refreshForUnknownKid(), storm[0]);
    clock.t += TIMING.unknownKidCooldownMs - 1;
    assert.equal(await src.refreshForUnknownKid(), storm[0]);
    assert.equal(srv.requests('/jwks'), 2);
    clock.t += 1;
    const later = await src.refreshForUnknownKid();
    assert.ok(later !== null && later !== storm[0]);
    assert.equal(srv.requests('/jwks'), 3, 'after the cooldown, one more');
    src.stop();
  });
});

test('failures keep the last good keys (stale) until max_stale after the last success, then unavailable; recovery is fresh', async () => {
  await withServer(async (srv) => {
    const clock = fakeClock();
    const rec = recorder();
    const src = httpSource(srv, clock, rec);
    src.start();
    await src.whenSettled();
    // From here the test drives every load itself: no retry timer may add an outcome of its own.
    src.stop();
    const good = src.current();
    const t0 = clock.t;

    await srv.down();
    clock.t = t0 + 10_000;
    await src.refresh();
    assert.equal(src.state(), 'stale');
    assert.equal(src.current(), good, 'the last good keys are still served');
    assert.equal(src.count, 2);
    assert.match(src.error, /ECONNREFUSED/);
    assert.ok(src.error.includes(srv.jwksUri));

    clock.t = t0 + 100_000;
    await src.refresh(); // a later failure does not extend the window
    clock.t = t0 + TIMING.maxStaleMs;
    assert.equal(src.state(), 'stale', 'exactly max_stale after the last success is still allowed');
    assert.equal(src.current(), good);
    clock.t = t0 + TIMING.maxStaleMs + 1;
    assert.equal(src.state(), 'unavailable');
    assert.equal(src.current(), null, 'beyond max_stale the keys must not be used');

    await srv.up();
    await src.refresh();
    assert.equal(src.state(), 'fresh');
    assert.notEqual(src.current(), null);
    assert.equal(src.error, '');
    const t1 = clock.t;

    // The window restarts from the new success.
    await srv.down();
    clock.t = t1 + TIMING.maxStaleMs;
    await src.refresh();
    assert.equal(src.state(), 'stale');
    clock.t = t1 + TIMING.maxStaleMs + 1;
    assert.equal(src.state(), 'unavailable');
    assert.deepEqual(rec.outcomes, ['ok', 'network', 'network', 'ok', 'network']);
    assert.deepEqual(rec.counts, [2, 2, 2, 2, 2], 'a failure reports the count of the keys still held');
    src.stop();
  });
});

test('an invalid JWKS document keeps the previous keys and reports why', async () => {
  await withServer(async (srv, jwks) => {
    const rec = recorder();
    const src = httpSource(srv, fakeClock(), rec);
    src.stop(); // every load is the test's own: no retry timer may add an outcome
    await src.refresh();
    const good = src.current();

    srv.setKeys({ nokeys: [] } as unknown as JsonWebKeySet);
    await src.refresh();
    assert.equal(src.current(), good);
    assert.equal(src.count, 2);
    assert.equal(src.state(), 'stale');
    assert.match(src.error, /no keys array/);

    srv.setKeys(jwks);
    srv.failNext('/jwks', 1, 'invalid-json');
    await src.refresh();
    assert.equal(src.current(), good);
    assert.match(src.error, /not valid JSON/);

    srv.failNext('/jwks', 1, 503);
    await src.refresh();
    assert.equal(src.current(), good);

    srv.failNext('/jwks', 1, { oversized: 100_000 });
    await src.refresh();
    assert.equal(src.current(), good);

    assert.deepEqual(rec.outcomes, ['ok', 'invalid_keys', 'invalid_json', 'http_status', 'too_large']);
    src.stop();
  });
});

test('a key set whose members are not objects is reported as invalid_keys like any other invalid key set', async () => {
  await withServer(async (srv) => {
    const rec = recorder();
    const src = httpSource(srv, fakeClock(), rec);
    src.stop(); // every load is the test's own
    await src.refresh();
    const good = src.current();
    srv.setKeys({ keys: [1, 'two'] } as unknown as JsonWebKeySet);
    await src.refresh();
    assert.equal(src.current(), good, 'the previous keys are kept');
    assert.equal(src.state(), 'stale');
    assert.equal(
      rec.outcomes[1],
      'invalid_keys',
      `BUG identity/keys/key-source.ts loadOnce(): a jose error from parse() (code ${rec.outcomes[1]}) leaks its own code as the outcome instead of 'invalid_keys', so the outcome label set is not closed`,
    );
    src.stop();
  });
});

/**
 * The schedule, observed exactly with mocked timers. The loader hands over a real JWKS document and the
 * max-age a fetch would have read from Cache-Control (the HTTP path of that is covered by fetch-json tests
 * and by the test below using a real server).
 */
async function scheduleDelays(maxAgeMs: number | null, timing: KeySourceTiming, fail = false): Promise<{ loads: () => number; src: KeySource<JwsKeySet> }> {
  const doc = jwksOf(await makeSigningKey('ES256', 'sched'));
  let loads = 0;
  const src = new KeySource<JwsKeySet>({
    name: 'schedule-test',
    load: async () => {
      loads++;
      if (fail) throw new KeyFetchError('network', 'issuer down');
      return { body: doc, maxAgeMs };
    },
    parse: parseJwks,
    timing,
  });
  return { loads: () => loads, src };
}

/** Lets the load that a fired timer started settle (it awaits only resolved promises). */
async function settle(src: KeySource<unknown>): Promise<void> {
  await src.whenSettled();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

test('the next scheduled refresh honours max-age, clamped to [min_refresh_interval, max_refresh_interval]', async (t) => {
  const timing: KeySourceTiming = { ...TIMING, refreshIntervalMs: 5_000, minRefreshIntervalMs: 1_000, maxRefreshIntervalMs: 10_000 };
  const cases: [string, number | null, number][] = [
    ['max-age within bounds', 3_000, 3_000],
    ['max-age 0 (no-store) raised to the minimum', 0, 1_000],
    ['max-age above the maximum lowered to it', 60_000, 10_000],
    ['no max-age: the configured interval', null, 5_000],
  ];
  for (const [name, maxAge, expected] of cases) {
    await t.test(name, async () => {
      const { loads, src } = await scheduleDelays(maxAge, timing);
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        src.start();
        await settle(src);
        assert.equal(loads(), 1);
        assert.equal(src.state(), 'fresh');
        mock.timers.tick(expected - 1);
        await settle(src);
        assert.equal(loads(), 1, `no refresh before ${expected} ms`);
        mock.timers.tick(1);
        await settle(src);
        assert.equal(loads(), 2, `a refresh at ${expected} ms`);
        mock.timers.tick(expected);
        await settle(src);
        assert.equal(loads(), 3, 'and again one interval later');
      } finally {
        src.stop();
        mock.timers.reset();
      }
    });
  }
});

/**
 * Key sources on mocked time (setTimeout and Date) whose loads the test controls: what the issuer
 * publishes, until when it refuses connections, and whether an answer is held back.
 */
const T0 = 1_700_000_000_000;

interface FakeIssuer {
  doc: JsonWebKeySet;
  loads: number;
  /** The mocked Date.now() at which each load started (for a timer-started load, the end of the tick that fired it). */
  loadTimes: number[];
  /** Loads fail (as a refused connection) while the mocked Date.now() is before this. */
  downUntil: number;
  /** While set, a load waits for it before answering. */
  gate: Promise<void> | null;
}

function fakeIssuer(doc: JsonWebKeySet): FakeIssuer {
  return { doc, loads: 0, loadTimes: [], downUntil: -Infinity, gate: null };
}

function controlledSource(issuer: FakeIssuer, timing: KeySourceTiming, random?: () => number): KeySource<JwsKeySet> {
  return new KeySource<JwsKeySet>({
    name: 'controlled',
    load: async () => {
      issuer.loads++;
      issuer.loadTimes.push(Date.now());
      if (issuer.gate) await issuer.gate;
      if (Date.now() < issuer.downUntil) throw new KeyFetchError('network', 'connect ECONNREFUSED');
      return { body: issuer.doc, maxAgeMs: null };
    },
    parse: parseJwks,
    timing,
    now: () => Date.now(),
    ...(random ? { random } : {}),
  });
}

async function onMockedTime(fn: () => Promise<void>): Promise<void> {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
  try {
    await fn();
  } finally {
    mock.timers.reset();
  }
}

/** Moves mocked time on and lets any load a timer started settle. */
async function advance(src: KeySource<unknown>, ms: number): Promise<void> {
  mock.timers.tick(ms);
  await settle(src);
}

/**
 * Moves mocked time on 1 ms at a time until `done` holds (at most `maxMs`), returning the time moved.
 * Node 20's mocked Date reads the end of a tick inside the timers it fires, so exact times need 1 ms ticks.
 */
async function stepUntil(src: KeySource<unknown>, done: () => boolean, maxMs: number): Promise<number> {
  let ms = 0;
  while (!done() && ms < maxMs) {
    await advance(src, 1);
    ms++;
  }
  return ms;
}

/** Asserts the next retries come exactly after these delays: none a millisecond sooner, one at each. */
async function expectRetries(src: KeySource<unknown>, loads: () => number, delays: readonly number[]): Promise<void> {
  let expected = loads();
  for (const d of delays) {
    await advance(src, d - 1);
    assert.equal(loads(), expected, `no retry before ${d} ms`);
    await advance(src, 1);
    assert.equal(loads(), ++expected, `a retry after ${d} ms`);
  }
}

const HOUR = 3_600_000;

test('after a failed load, retries start at 1 s and double up to min(refresh_interval, 60 s), whatever the unknown-kid cooldown', async (t) => {
  const doc = jwksOf(await makeSigningKey('ES256', 'retry'));
  const cases: [string, Partial<KeySourceTiming>, number[]][] = [
    ['cooldown 30 s (the old back-off base)', { refreshIntervalMs: HOUR, unknownKidCooldownMs: 30_000 }, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]],
    ['cooldown 10 min', { refreshIntervalMs: HOUR, unknownKidCooldownMs: 600_000 }, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]],
    ['cooldown 0', { refreshIntervalMs: HOUR, unknownKidCooldownMs: 0 }, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]],
    ['refresh_interval 10 s caps the back-off', { refreshIntervalMs: 10_000 }, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]],
    ['refresh_interval 300 ms: every retry at 300 ms', { refreshIntervalMs: 300 }, [300, 300, 300]],
    ['refresh_interval 10 ms: never under the 100 ms floor', { refreshIntervalMs: 10, minRefreshIntervalMs: 10 }, [100, 100, 100]],
  ];
  for (const [name, timing, delays] of cases) {
    await t.test(name, () =>
      onMockedTime(async () => {
        const issuer = fakeIssuer(doc);
        issuer.downUntil = Infinity;
        // random() = 0: no jitter, so the schedule is exact.
        const src = controlledSource(issuer, { ...TIMING, ...timing }, () => 0);
        try {
          src.start();
          await settle(src);
          assert.equal(issuer.loads, 1);
          assert.equal(src.state(), 'unavailable');
          await expectRetries(src, () => issuer.loads, delays);
          assert.equal(src.state(), 'unavailable');
        } finally {
          src.stop();
        }
      }),
    );
  }
});

test('retry delays carry jitter: each drawn from [0.8·d, d]', async (t) => {
  const doc = jwksOf(await makeSigningKey('ES256', 'jitter'));
  assert.equal(RETRY_JITTER, 0.2);
  await t.test('a fixed sequence of draws gives exactly d·(1 − 0.2·draw)', () =>
    onMockedTime(async () => {
      const issuer = fakeIssuer(doc);
      issuer.downUntil = Infinity;
      const draws = [0.5, 0.999, 0, 0.25];
      let i = 0;
      const src = controlledSource(issuer, { ...TIMING, refreshIntervalMs: HOUR }, () => draws[i++ % draws.length]!);
      try {
        src.start();
        await settle(src);
        await expectRetries(src, () => issuer.loads, [900, 1_600, 4_000, 7_600]);
      } finally {
        src.stop();
      }
    }),
  );
  await t.test('with Math.random every retry lands within [0.8·d, d] of the one before', () =>
    onMockedTime(async () => {
      const issuer = fakeIssuer(doc);
      issuer.downUntil = Infinity;
      const src = controlledSource(issuer, { ...TIMING, refreshIntervalMs: HOUR });
      try {
        src.start();
        await settle(src);
        const delays: number[] = [];
        for (const d of [1_000, 2_000, 4_000, 8_000, 16_000]) {
          const loads = issuer.loads;
          await advance(src, 0.8 * d - 1);
          assert.equal(issuer.loads, loads, `no retry before 0.8 × ${d} ms`);
          const waited = 0.8 * d - 1 + (await stepUntil(src, () => issuer.loads > loads, 0.2 * d + 1));
          assert.equal(issuer.loads, loads + 1, `a retry by ${d} ms`);
          assert.ok(waited >= 0.8 * d && waited <= d, `retry after ${waited} ms, expected within [${0.8 * d}, ${d}]`);
          delays.push(waited);
        }
        assert.ok(delays.some((got, i) => got !== 1_000 * 2 ** i), `jitter was applied: ${delays.join(', ')}`);
      } finally {
        src.stop();
      }
    }),
  );
});

test('a success resets the back-off: the next failure is retried after about 1 s again', () =>
  onMockedTime(async () => {
    const issuer = fakeIssuer(jwksOf(await makeSigningKey('ES256', 'reset')));
    issuer.downUntil = Infinity;
    const src = controlledSource(issuer, { ...TIMING, refreshIntervalMs: 20_000, minRefreshIntervalMs: 1_000 }, () => 0);
    try {
      src.start();
      await settle(src);
      await expectRetries(src, () => issuer.loads, [1_000, 2_000, 4_000]);
      issuer.downUntil = -Infinity;
      await expectRetries(src, () => issuer.loads, [8_000]);
      assert.equal(src.state(), 'fresh');
      issuer.downUntil = Infinity;
      // The schedule after a success is the refresh interval; that load fails, and the back-off starts over.
      await expectRetries(src, () => issuer.loads, [20_000, 1_000, 2_000]);
      assert.equal(src.state(), 'stale');
    } finally {
      src.stop();
    }
  }),
);

test('an issuer down at start and up 500 ms later is used within about a second of start (default timing), not after the cooldown', () =>
  onMockedTime(async () => {
    const timing = keySourceTiming(parseOrThrow(keysSchema, {}));
    assert.equal(timing.unknownKidCooldownMs, DEFAULT_UNKNOWN_KID_COOLDOWN_MS);
    const issuer = fakeIssuer(jwksOf(await makeSigningKey('ES256', 'late')));
    issuer.downUntil = T0 + 500;
    const src = controlledSource(issuer, timing); // Math.random jitter, as in production
    try {
      src.start();
      await settle(src);
      assert.equal(src.state(), 'unavailable');
      assert.equal(issuer.loads, 1);

      await advance(src, 100);
      // A token arrives: within the cooldown of the start-up load, it is answered at once (no keys).
      assert.equal(await answeredAtOnce(src.refreshForUnknownKid()), null);
      assert.equal(issuer.loads, 1, 'no fetch within the cooldown');
      assert.equal(src.trailingRefreshPending, true);

      await advance(src, 400); // the issuer is up from here
      assert.equal(src.state(), 'unavailable');
      const upAfter = 500 + (await stepUntil(src, () => src.state() === 'fresh', 4_500));
      assert.equal(src.state(), 'fresh');
      assert.equal(issuer.loads, 2);
      assert.ok(upAfter >= 800 && upAfter <= 1_000, `keys loaded by the first retry, ${upAfter} ms after start: within [800, 1000] ms`);
      assert.equal(src.trailingRefreshPending, false, 'the retry was the refresh the token was owed');
      await advance(src, 60_000);
      assert.equal(issuer.loads, 2, 'nothing more: no trailing refresh, no retry');
    } finally {
      src.stop();
    }
  }),
);


test('with unknown_kid_cooldown 0, a failing issuer is not retried in a tight loop', async () => {
  // The schema accepts unknown_kid_cooldown: 0 (rotation tests use it, with a warning); the failure back-off does not depend on it.
  const timing: KeySourceTiming = { ...TIMING, refreshIntervalMs: 60_000, minRefreshIntervalMs: 1_000, unknownKidCooldownMs: 0 };
  const { loads, src } = await scheduleDelays(null, timing, true);
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    src.start();
    await settle(src);
    for (let i = 0; i < 20; i++) {
      mock.timers.tick(10);
      await settle(src);
    }
    assert.ok(
      loads() <= 2,
      `BUG identity/keys/key-source.ts loadOnce() catch: retry delay clamp(cooldown * 2^n, cooldown, refresh) is 0 when unknown_kid_cooldown is 0, so a down issuer is fetched back to back (${loads()} loads in 200 ms); floor the retry delay (e.g. at min_refresh_interval)`,
    );
  } finally {
    src.stop();
    mock.timers.reset();
  }
});

test('stop() cancels the schedule', async () => {
  const { loads, src } = await scheduleDelays(null, { ...TIMING, refreshIntervalMs: 5_000 });
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    src.start();
    await settle(src);
    src.stop();
    mock.timers.tick(60_000);
    await settle(src);
    assert.equal(loads(), 1);
    assert.equal(src.state(), 'fresh', 'stopping keeps the keys');
  } finally {
    mock.timers.reset();
  }
});

test('a real Cache-Control max-age above max_refresh_interval is clamped: the refetch comes at the maximum', async () => {
  await withServer(async (srv) => {
    srv.setCacheControl('max-age=3600');
    let second!: () => void;
    const secondFetch = new Promise<void>((resolve) => (second = resolve));
    let fetched = 0;
    const src = new KeySource<JwsKeySet>({
      name: srv.issuer,
      load: urlLoader(srv.jwksUri, LIMITS),
      parse: parseJwks,
      timing: { ...TIMING, minRefreshIntervalMs: 10, maxRefreshIntervalMs: 50 },
      events: {
        fetched() {
          if (++fetched === 2) second();
        },
      },
    });
    src.start();
    const guard = setTimeout(second, 2_000);
    await secondFetch;
    clearTimeout(guard);
    src.stop();
    await src.whenSettled();
    assert.equal(fetched, 2, 'the one-hour max-age was cut to the 50 ms maximum');
    assert.equal(srv.requests('/jwks'), 2);
  });
});

test('refreshForUnknownKid gives null only when no keys may be used, and loads a never-loaded source at once', async () => {
  await withServer(async (srv) => {
    const clock = fakeClock();
    const src = httpSource(srv, clock);
    src.stop(); // no retry or trailing timer: every fetch counted here is one refreshForUnknownKid made
    await srv.down();
    assert.equal(await src.refreshForUnknownKid(), null, 'never loaded and the issuer is down');
    assert.equal(await src.refreshForUnknownKid(), null, 'within the cooldown: still nothing');
    await srv.up();
    assert.equal(await src.refreshForUnknownKid(), null, 'up again, but the cooldown has not passed');
    assert.equal(srv.requests('/jwks'), 0);
    clock.t += TIMING.unknownKidCooldownMs;
    assert.notEqual(await src.refreshForUnknownKid(), null);
    assert.equal(srv.requests('/jwks'), 1);
    src.stop();
  });
});

/** The promise's value if it is already settled or settles without time moving; 'waiting' if it waits. */
async function answeredAtOnce<V>(p: Promise<V>): Promise<V | 'waiting'> {
  return Promise.race([p, new Promise<'waiting'>((resolve) => setImmediate(() => resolve('waiting')))]);
}

function hasKid(keys: JwsKeySet | null, kid: string): boolean {
  return keys !== null && keys.candidates('ES256', kid).length > 0;
}

function storm(src: KeySource<JwsKeySet>, n: number): Promise<(JwsKeySet | null)[]> {
  return Promise.all(Array.from({ length: n }, () => src.refreshForUnknownKid()));
}

const COOLDOWN = DEFAULT_UNKNOWN_KID_COOLDOWN_MS;

test('unknown kids within the cooldown are answered at once; one trailing refresh at its end finds a key published mid-storm', async () => {
  const a = await makeSigningKey('ES256', 'a');
  const b = await makeSigningKey('ES256', 'b');
  await onMockedTime(async () => {
    const issuer = fakeIssuer(jwksOf(a));
    const src = controlledSource(issuer, { ...TIMING, unknownKidCooldownMs: COOLDOWN });
    try {
      src.start();
      await settle(src);
      const before = src.current();
      assert.ok(hasKid(before, 'a'));
      assert.equal(issuer.loads, 1);

      await advance(src, 100);
      assert.equal(await answeredAtOnce(src.refreshForUnknownKid()), before, 'answered without waiting for the cooldown');
      const first = await answeredAtOnce(storm(src, 1000));
      assert.ok(first !== 'waiting' && first.every((k) => k === before), 'the whole storm gets the current keys at once');
      assert.equal(issuer.loads, 1, 'no fetch within the cooldown');
      assert.equal(src.trailingRefreshPending, true);

      issuer.doc = jwksOf(a, b); // the issuer publishes a new key while the storm goes on
      for (let s = 1; s <= 4; s++) {
        await advance(src, 1_000);
        const answers = await answeredAtOnce(storm(src, 250));
        assert.ok(answers !== 'waiting' && answers.every((k) => k === before), `storm ${s}: answered at once with the keys held`);
        assert.equal(issuer.loads, 1, `storm ${s}: still the one start-up fetch`);
        assert.equal(hasKid(src.current(), 'b'), false);
      }
      await advance(src, COOLDOWN - 4_100 - 1);
      assert.equal(issuer.loads, 1, 'nothing before the cooldown ends');
      await advance(src, 1);
      assert.equal(issuer.loads, 2, 'exactly one trailing refresh, at the end of the cooldown');
      assert.equal(issuer.loadTimes[1], T0 + COOLDOWN);
      assert.ok(hasKid(src.current(), 'b'), 'it found the key published mid-storm, with no token having to ask again');
      assert.equal(src.trailingRefreshPending, false);
      await advance(src, 10 * COOLDOWN);
      assert.equal(issuer.loads, 2, 'no storm, no further fetch');
    } finally {
      src.stop();
    }
  });
});

test('a storm that goes on costs one fetch per cooldown, and a key published at any moment is loaded within one cooldown', async () => {
  const a = await makeSigningKey('ES256', 'a');
  const b = await makeSigningKey('ES256', 'b');
  await onMockedTime(async () => {
    const issuer = fakeIssuer(jwksOf(a));
    const src = controlledSource(issuer, { ...TIMING, unknownKidCooldownMs: COOLDOWN });
    try {
      src.start();
      await settle(src);
      const STEP = 250;
      const DURATION = 60_000;
      // Just after a trailing refresh: the worst moment to publish.
      const publishAt = T0 + 5 * COOLDOWN + STEP;
      let foundAt = -1;
      for (let t = STEP; t <= DURATION; t += STEP) {
        await advance(src, STEP);
        if (Date.now() === publishAt) issuer.doc = jwksOf(a, b);
        const answers = await answeredAtOnce(storm(src, 50));
        assert.notEqual(answers, 'waiting', `at ${t} ms the storm was made to wait`);
        if (foundAt < 0 && hasKid(src.current(), 'b')) foundAt = Date.now();
      }
      assert.ok(foundAt > 0, 'the new key was loaded');
      const latency = foundAt - publishAt;
      assert.ok(latency <= COOLDOWN, `published key usable after ${latency} ms (cooldown ${COOLDOWN} ms)`);
      const fetches = issuer.loads - 1;
      assert.ok(fetches <= DURATION / COOLDOWN, `${fetches} fetches for ${(DURATION / STEP) * 50} unknown kids in ${DURATION} ms`);
      assert.ok(fetches >= DURATION / COOLDOWN - 1, `the storm never starved the trailing refresh (${fetches} fetches)`);
      const gaps = issuer.loadTimes.slice(1).map((at, i) => at - issuer.loadTimes[i]!);
      assert.ok(gaps.every((g) => g >= COOLDOWN), `fetches at least a cooldown apart: ${gaps.join(', ')}`);
    } finally {
      src.stop();
    }
  });
});

test('callers arriving while a load is under way share it and are owed no trailing refresh', async () => {
  const a = await makeSigningKey('ES256', 'a');
  await onMockedTime(async () => {
    const issuer = fakeIssuer(jwksOf(a));
    let release!: () => void;
    issuer.gate = new Promise<void>((resolve) => (release = resolve));
    const src = controlledSource(issuer, { ...TIMING, unknownKidCooldownMs: COOLDOWN });
    try {
      src.start();
      const callers = storm(src, 100);
      assert.equal(await answeredAtOnce(callers), 'waiting', 'they wait for the load under way');
      assert.equal(issuer.loads, 1, 'one shared fetch');
      release();
      const got = await callers;
      assert.ok(got[0] !== null && got.every((k) => k === got[0]), 'every caller gets the loaded keys');
      assert.equal(src.trailingRefreshPending, false);
      await advance(src, 3 * COOLDOWN);
      assert.equal(issuer.loads, 1, 'no trailing refresh for callers that shared a load');
    } finally {
      src.stop();
    }
  });
});

test('a load that starts for any other reason is the trailing refresh; stop() cancels a pending one', async () => {
  const a = await makeSigningKey('ES256', 'a');
  await onMockedTime(async () => {
    const issuer = fakeIssuer(jwksOf(a));
    const src = controlledSource(issuer, { ...TIMING, unknownKidCooldownMs: COOLDOWN });
    try {
      src.start();
      await settle(src);
      await advance(src, 100);
      await src.refreshForUnknownKid();
      assert.equal(src.trailingRefreshPending, true);
      await advance(src, 1_900);
      await src.refresh(); // a scheduled or manual load, at 2 s
      assert.equal(issuer.loads, 2);
      assert.equal(src.trailingRefreshPending, false, 'the load replaced it');
      await advance(src, 2 * COOLDOWN);
      assert.equal(issuer.loads, 2, 'no second load for the same kids');

      await src.refreshForUnknownKid(); // a cooldown has passed: loads at once
      assert.equal(issuer.loads, 3);
      await advance(src, 1_000);
      await src.refreshForUnknownKid();
      assert.equal(src.trailingRefreshPending, true);
      src.stop();
      assert.equal(src.trailingRefreshPending, false);
      await advance(src, 2 * COOLDOWN);
      assert.equal(issuer.loads, 3, 'a stopped source loads nothing on its own');
    } finally {
      src.stop();
    }
  });
});

test('keys config: unknown_kid_cooldown defaults to 5 s; below 1 s it is accepted with a warning', () => {
  assert.equal(parseOrThrow(keysSchema, {}).unknown_kid_cooldown, 5_000);
  const parse = (v: unknown) => {
    const ctx = new ParseContext();
    const out = keysSchema.parse({ unknown_kid_cooldown: v }, ['keys'], ctx);
    return { value: out?.unknown_kid_cooldown, issues: ctx.issues };
  };
  for (const v of ['1s', '5s', '1m']) assert.deepEqual(parse(v).issues, [], v);
  assert.equal(parse('1s').value, 1_000);
  for (const [v, ms] of [['0s', 0], [0, 0], ['50ms', 50], ['999ms', 999]] as const) {
    const r = parse(v);
    assert.equal(r.value, ms, String(v));
    assert.equal(r.issues.length, 1, String(v));
    assert.equal(r.issues[0]!.warning, true, `${String(v)}: a warning, not an error`);
    assert.deepEqual(r.issues[0]!.path, ['keys', 'unknown_kid_cooldown']);
    assert.match(r.issues[0]!.message, /below 1s.*about once per batch/);
  }
  const bad = parse('soon');
  assert.equal(bad.value, undefined);
  assert.equal(bad.issues[0]!.warning, undefined);
  assert.match(bad.issues[0]!.message, /expected a duration/);
});
