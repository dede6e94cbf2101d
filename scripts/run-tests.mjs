// Runs the compiled tests (dist/**/*.test.js) with tap, the project's test runner, and closes with a summary
// that CI and people can read at a glance.
//
//   node scripts/run-tests.mjs                      every test file (what `npm test` runs after tsc)
//   node scripts/run-tests.mjs e2e/identity batch   only the files whose path contains one of the words
//   node scripts/run-tests.mjs --disable-coverage   an argument starting with '-' goes to tap as it is
//                                                   (--bail, --jobs=1, -R terse, --timeout=300, ...)
//   node scripts/run-tests.mjs batch --node-arg=--test-name-pattern=fuzz
//                                                   only the tests whose name matches (node:test's own
//                                                   filter; the others show as skipped)
//
// tap's settings (2 jobs, 120 s per test file, coverage that is reported and never enforced) are in the "tap"
// key of package.json. The test files use node:test, which prints TAP when its output is not a terminal; tap
// runs each file as a child process and reads that TAP, so every test, subtest and skip is a result of its
// own. Coverage is tap's (V8 coverage mapped through the source maps onto the .ts files); this script prints
// it by folder, and `npx tap report text` prints it by file after a run.
//
// The files in UNINSTRUMENTED measure a daemon against budgets calibrated on a bare `node` process: memory
// (identity-memory) and event-loop latency (hostile-json: /health while the loop converts a 12 MB JSON body).
// tap instruments every process under a test file: it loads @tapjs/processinfo into the test process and,
// through NODE_OPTIONS, into every node process that one starts, where it turns source maps on, looks up the
// source map of each module loaded and, with coverage on, takes V8 coverage. That moves those numbers:
// identity-memory's daemon (a child process) starts about 40 MiB larger, and its RSS growth, budgeted at
// 160 MiB, rose from +102…131 MiB to +142…160 MiB, once +195 MiB beside another test file; hostile-json's
// /health latency, budgeted at a 250 ms median, measured 261–319 ms under coverage. So those files run
// as plain `node FILE` processes, their TAP handed to tap through a named pipe (tap reads a FIFO as raw TAP),
// alone (tap's --serial), under the same 120 s limit; they add no coverage.
//
// The closing lines, always last:
//   SKIPPED: N tests (file › test; ...)            only when something was skipped, one entry per test
//                                                  (the lines above it give each one's reason)
//   N passed, N failed, N skipped                  counted over every leaf result: a test with subtests
//                                                  counts through its subtests, a skipped suite counts once
// The exit code is non-zero whenever a test, a test file (crash, timeout) or tap itself failed.
import { closeSync, existsSync, mkdirSync, open, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const UNINSTRUMENTED = ['dist/test/e2e/identity-memory.test.js', 'dist/test/e2e/hostile-json.test.js'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const tapConfig = JSON.parse(readFileSync('package.json', 'utf8')).tap ?? {};

// Node 20 has no globs, and pointing a runner at a folder would also run the helpers under test/, so the list
// of test files is made here, from the folders tsconfig compiles (read from its include list, so a new
// top-level folder cannot be compiled and silently left untested).
const roots = JSON.parse(readFileSync('tsconfig.json', 'utf8'))
  .include.map((pattern) => pattern.split('/')[0])
  .map((d) => join('dist', d));
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
files.sort();

const args = process.argv.slice(2);
const tapArgs = [];
const filter = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (!a.startsWith('-')) filter.push(a);
  else {
    tapArgs.push(a);
    // the tap options whose value may follow as the next argument
    if (['-R', '--reporter', '-j', '--jobs', '-t', '--timeout', '-g', '--grep', '--coverage-report', '--node-arg', '--test-env', '--test-arg'].includes(a) && i + 1 < args.length) tapArgs.push(args[++i]);
  }
}
const chosen = filter.length ? files.filter((f) => filter.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
  console.error(filter.length ? `no test file under dist/ matches ${filter.join(' or ')}` : 'no test files found under dist/: run tsc first');
  process.exit(1);
}
const option = (short, long) => {
  let v = null;
  for (let i = 0; i < tapArgs.length; i++) {
    const a = tapArgs[i];
    if (a === short || a === long) v = tapArgs[i + 1] ?? null;
    else if (a.startsWith(`${long}=`)) v = a.slice(long.length + 1);
    else if (a.startsWith(short) && a.length > short.length) v = a.slice(short.length);
  }
  return v;
};

// A reporter for people at a terminal, raw TAP (as node's runner printed before) everywhere else.
let reporter = option('-R', '--reporter');
const extra = [];
if (reporter === null) {
  reporter = process.stdout.isTTY ? 'base' : 'tap';
  extra.push(`--reporter=${reporter}`);
}
// With the tap reporter the TAP is read from tap's stdout on its way through; with any other, tap also writes
// it to a file (its --output-file does not work together with the tap reporter).
const pipeTap = reporter === 'tap';
const resultsFile = join('.tap', 'tracewarden-results.tap');
const coverageSummary = join('.tap', 'report', 'coverage-summary.json');
const bareDir = join('.tap', 'uninstrumented');
rmSync(resultsFile, { force: true });
rmSync(coverageSummary, { force: true });
rmSync(bareDir, { recursive: true, force: true });
if (!pipeTap) extra.push(`--output-file=${resultsFile}`);
extra.push('--coverage-report=json-summary');

// The uninstrumented files: a FIFO each, named like the file under .tap/uninstrumented/; the test process is
// started only when tap opens the FIFO to read it, so tap's job scheduling (serial: alone) holds for it too.
const timeoutSeconds = Number(option('-t', '--timeout') ?? tapConfig.timeout ?? 120);
const nodeArgs = tapArgs.flatMap((a, i) => (a.startsWith('--node-arg=') ? [a.slice('--node-arg='.length)] : a === '--node-arg' && i + 1 < tapArgs.length ? [tapArgs[i + 1]] : []));
const bare = new Map(); // fifo path -> { file, child, problem }
let finished = false;
for (const file of chosen.filter((f) => UNINSTRUMENTED.includes(f.split(sep).join('/')))) {
  const fifo = join(bareDir, file);
  mkdirSync(dirname(fifo), { recursive: true });
  execFileSync('mkfifo', [fifo]);
  const entry = { file, child: null, problem: null };
  bare.set(fifo, entry);
  open(fifo, 'w', (err, fd) => {
    if (err || finished) {
      if (fd !== undefined) closeSync(fd);
      if (err && !finished) entry.problem = `could not open ${fifo}: ${err.message}`;
      return;
    }
    // in a process group of its own, so that a timeout also ends the daemons it started
    const child = spawn(process.execPath, [...nodeArgs, file], { stdio: ['ignore', fd, 'inherit'], detached: true });
    closeSync(fd);
    entry.child = child;
    const timer = timeoutSeconds > 0 ? setTimeout(() => {
      entry.problem = `timed out after ${timeoutSeconds} s`;
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), 5000).unref();
    }, timeoutSeconds * 1000) : null;
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      entry.child = null;
      if (entry.problem === null && (code !== 0 || signal !== null)) entry.problem = signal !== null ? `ended by ${signal}` : `exited with code ${code}`;
    });
  });
}
if (bare.size) extra.push(`--serial=${bareDir}`);
const targets = chosen.map((f) => {
  const fifo = join(bareDir, f);
  return bare.has(fifo) ? fifo : f;
});

const tapBin = join(dirname(createRequire(import.meta.url).resolve('tap/package.json')), 'dist', 'esm', 'run.mjs');
const child = spawn(process.execPath, [tapBin, ...extra, ...tapArgs, ...targets], { stdio: ['inherit', pipeTap ? 'pipe' : 'inherit', 'inherit'] });
const chunks = [];
if (pipeTap) {
  child.stdout.on('data', (c) => {
    chunks.push(c);
    process.stdout.write(c);
  });
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    child.kill(sig);
    for (const e of bare.values()) if (e.child) killGroup(e.child, sig);
  });
}
const [code, signal] = await new Promise((res) => child.on('close', (c, s) => res([c, s])));
finished = true;
for (const e of bare.values()) if (e.child) killGroup(e.child, 'SIGKILL');

const tapText = pipeTap ? Buffer.concat(chunks).toString('utf8') : existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8') : '';
const r = parseTap(tapText);
for (const [fifo, e] of bare) {
  if (e.problem !== null && !r.failedFiles.has(fifo.split(sep).join('/'))) {
    r.failed++;
    r.failures.push(`${shortFile(e.file)} (run without tap's instrumentation: ${e.problem})`);
  }
}
if (signal !== null || (code !== 0 && r.failures.length === 0)) {
  r.failed++;
  r.failures.push(signal !== null ? `tap was stopped by ${signal}` : `tap exited with code ${code} (see its output above)`);
}
if (r.passed + r.failed + r.skipped + r.todo === 0) {
  r.failed++;
  r.failures.push('no test results were read from tap');
}

const out = ['', ...coverageByFolder(), ''];
if (r.failures.length) {
  out.push(`FAILED: ${r.failures.length} ${r.failures.length === 1 ? 'test' : 'tests'}`);
  for (const f of r.failures) out.push(`  ✗ ${f}`);
}
if (r.todos.length) out.push(`TODO: ${r.todos.length} ${r.todos.length === 1 ? 'test' : 'tests'} not held to their result (${r.todos.join('; ')})`);
if (r.skipped) {
  out.push('Skipped:');
  for (const s of r.skips) out.push(`  - ${s.name}${s.reason ? ` (${s.reason})` : ''}`);
  out.push(`SKIPPED: ${r.skipped} ${r.skipped === 1 ? 'test' : 'tests'} (${r.skips.map((s) => s.name).join('; ')})`);
}
out.push(`${r.passed + r.todo} passed, ${r.failed} failed, ${r.skipped} skipped`);
process.stdout.write(out.join('\n') + '\n');
// exit now: an uninstrumented file that tap never opened (after --bail, say) still waits in open()
process.exit(r.failed > 0 ? code || 1 : 0);

/**
 * Counts the results in tap's TAP stream: one per leaf (a result with no subtest results under it), so a test
 * with subtests counts through its subtests, a skipped node:test suite (whose tests are never declared) counts
 * once, and a test file that produced no results counts as its own result. A result with subtests that failed
 * although none of its subtests did (a test file that crashed or timed out, a failing hook) counts as one
 * failure. YAML diagnostic blocks are stepped over whole.
 */
function parseTap(text) {
  const res = { passed: 0, failed: 0, skipped: 0, todo: 0, skips: [], failures: [], todos: [], failedFiles: new Set() };
  const lines = text.split(/\r?\n/);
  const names = []; // names[d]: the subtest being reported at depth d (from '# Subtest:')
  const below = []; // below[d]: results and failures seen deeper than d since the last result at depth <= d
  for (let i = 0; i < lines.length; i++) {
    const m = /^( *)(?:# Subtest: (.*)|(not ok|ok)\b(?: \d+)?(?: -)?(?: (.*))?|Bail out!(.*))$/.exec(lines[i]);
    if (m === null || m[1].length % 4 !== 0) continue;
    const d = m[1].length / 4;
    if (m[2] !== undefined) {
      names[d] = unescape(m[2]);
      names.length = d + 1;
      continue;
    }
    if (m[5] !== undefined) {
      res.failed++;
      res.failures.push(`bail out:${m[5]}`);
      continue;
    }
    // the YAML block under a result
    const pad = m[1] + '  ';
    const yaml = [];
    if (lines[i + 1] === pad + '---') {
      let j = i + 2;
      while (j < lines.length && lines[j] !== pad + '...') yaml.push(lines[j++]);
      i = j;
    }
    const ok = m[3] === 'ok';
    let { name, directive } = splitDirective(m[4] ?? '');
    // a test file that tap stopped at its timeout is reported as 'timeout!', with the file under 'expired:'
    const expired = yaml.map((l) => /^\s*expired: (.*)$/.exec(l)?.[1]).find((v) => v !== undefined);
    if (d === 0 && expired !== undefined) {
      name = expired;
      directive = '';
    }
    const kind = /^skip\b/i.test(directive) ? 'skip' : /^todo\b/i.test(directive) ? 'todo' : null;
    const reason = kind ? directive.replace(/^\S+\s*/, '') : '';
    const under = below[d] ?? { n: 0, failed: 0 };
    below.length = d;
    const full = [...names.slice(0, d), name || names[d] || '(unnamed)'].map((n, k) => (k === 0 ? shortFile(n) : n)).join(' › ');
    let failed = false;
    if (under.n === 0) {
      if (kind === 'skip') {
        res.skipped++;
        res.skips.push({ name: full, reason });
      } else if (kind === 'todo') {
        res.todo++;
        res.todos.push(full);
      } else if (!ok) failed = true;
      else if (d > 0) res.passed++; // (a test file with no tests in it is no passed test)
    } else if (!ok && kind === null && under.failed === 0) failed = true;
    if (failed) {
      res.failed++;
      res.failedFiles.add(d === 0 ? name : names[0]);
      res.failures.push(why(yaml) ? `${full} (${why(yaml)})` : full);
    }
    for (let k = 0; k < d; k++) {
      below[k] ??= { n: 0, failed: 0 };
      below[k].n++;
      if (failed) below[k].failed++;
    }
  }
  return res;
}

/** The error message (its first line), exit code, signal or timeout from a result's YAML block. */
function why(yaml) {
  const parts = [];
  for (let i = 0; i < yaml.length; i++) {
    const m = /^\s*(error|exitCode|signal|expired|timeout): (.*)$/.exec(yaml[i]);
    if (m === null || m[2] === 'null' || parts.some((p) => p.startsWith(`${m[1]}:`))) continue;
    let v = m[2];
    if (/^[|>][-+]?$/.test(v)) v = (yaml.slice(i + 1).find((l) => l.trim() !== '') ?? '').trim();
    parts.push(m[1] === 'expired' ? 'timed out' : `${m[1]}: ${v.length > 200 ? `${v.slice(0, 200)}…` : v}`);
  }
  return parts.join(', ');
}

function killGroup(child, sig) {
  try {
    process.kill(-child.pid, sig);
  } catch {
    // already gone
  }
}

/** Splits "name # SKIP reason" at the first unescaped " # " (node escapes '#' in names as '\#'). */
function splitDirective(s) {
  const m = /^((?:[^#\\]|\\.)*?)(?:\s+#\s*(.*))?$/.exec(s);
  return { name: unescape((m?.[1] ?? s).trim()), directive: (m?.[2] ?? '').trim() };
}

function unescape(s) {
  return s.replace(/\\([#\\])/g, '$1');
}

function shortFile(n) {
  return n.replace(/^\.tap\/uninstrumented\//, '').replace(/^dist\//, '').replace(/\.test\.js$/, '');
}

/** This run's json-summary coverage report, added up by folder of the covered .ts files. */
function coverageByFolder() {
  if (!existsSync(coverageSummary)) return ['Coverage: none was collected in this run.'];
  const summary = JSON.parse(readFileSync(coverageSummary, 'utf8'));
  const keys = ['lines', 'branches', 'functions'];
  const zero = () => Object.fromEntries(keys.map((k) => [k, { covered: 0, total: 0 }]));
  const folders = new Map();
  const total = zero();
  let mapped = true;
  for (const [file, s] of Object.entries(summary)) {
    if (file === 'total') continue;
    const rel = relative(root, file).split(sep).join('/');
    if (rel.startsWith('..') || /^(dist\/)?(test|bench)\//.test(rel) || rel.includes('node_modules/')) continue;
    if (rel.startsWith('dist/')) mapped = false;
    const folder = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '.';
    const f = folders.get(folder) ?? zero();
    for (const k of keys) {
      f[k].covered += s[k].covered;
      f[k].total += s[k].total;
      total[k].covered += s[k].covered;
      total[k].total += s[k].total;
    }
    folders.set(folder, f);
  }
  const cell = (c) => `${(c.total === 0 ? '-' : ((100 * c.covered) / c.total).toFixed(1) + '%').padStart(6)} ${`${c.covered}/${c.total}`.padStart(11)}`;
  const width = Math.max(10, ...[...folders.keys()].map((f) => f.length)) + 2;
  const rows = [...folders.entries()].sort(([a], [b]) => a.localeCompare(b));
  return [
    `Coverage by folder (${mapped ? 'TypeScript sources, through the source maps' : 'compiled JavaScript in dist/'}; files loaded by at least one test; reported, never enforced):`,
    `${'folder'.padEnd(width)}${keys.map((k) => k.padStart(20)).join('')}`,
    ...rows.map(([f, c]) => `${f.padEnd(width)}${keys.map((k) => `  ${cell(c[k])}`).join('')}`),
    `${'all'.padEnd(width)}${keys.map((k) => `  ${cell(total[k])}`).join('')}`,
  ];
}
