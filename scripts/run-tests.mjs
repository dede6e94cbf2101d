// Runs every compiled test file with node's test runner. Node 20's --test has no globs, and pointing it
// at a folder would also run the helpers under test/, so the list is made here.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = ['pipeline', 'identity', 'receivers', 'processors', 'exporters', 'extensions', 'cmd', 'test', 'bench'].map((d) => join('dist', d));
const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js')) files.push(p);
  }
}
roots.forEach(walk);
const filter = process.argv.slice(2);
const chosen = filter.length ? files.filter((f) => filter.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=120000', ...chosen], { stdio: 'inherit' });
process.exit(r.status ?? 1);
