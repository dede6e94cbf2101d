import assert from 'node:assert/strict';

/** Polls a condition that has no event of its own (a backend filling up, a log line), bounded. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`not reached within ${ms} ms: ${what}`);
}
