/**
 * Collector config snippets, one per component and option tracewarden takes from the Collector (and the
 * README's recipes), each validated unchanged through the real CLI entry: no error, and no warning but
 * the ones for Collector keys that have no effect here (Go runtime settings, for instance).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { main } from '../../cmd/cli.js';

const SNIPPETS = fileURLToPath(new URL('../../../test/fixtures/snippets/', import.meta.url));

for (const name of readdirSync(SNIPPETS).filter((f) => f.endsWith('.yaml'))) {
  test(`the snippet ${name} validates unchanged`, async () => {
    let out = '';
    let err = '';
    const code = await main(['validate', '--config', SNIPPETS + name], { out: (t) => (out += t), err: (t) => (err += t), env: { LS_ACCESS_TOKEN: 'token-for-validation' } });
    for (const line of err.split('\n').filter((l) => l !== '')) assert.match(line, /: warning: .*: accepted for OpenTelemetry Collector compatibility; /);
    assert.equal(code, 0);
    assert.match(out, /^configuration is valid: \d+ pipelines?\n$/);
  });
}
