// Mutation testing of the security-critical code: `npm run mutate` (not part of `npm test` or CI; a first full
// run takes about 1.5 hours on two cores, later ones reuse its results). Stryker copies the project into
// .stryker-tmp/, writes every mutant into the TypeScript sources at once (each switched on by its id at run
// time), compiles them with tsc and runs the compiled unit tests of the same folders: for each mutant only
// the test files that reached it, stopping at the first failure. A mutant no test kills is reported as Survived, with its file, line and change.
//
//   npm run mutate                                   everything below, reusing the last run's results for
//                                                    mutants whose code and tests did not change
//   npm run mutate -- --mutate identity/jwt/jws.ts   one file (any glob of the list below)
//   npm run mutate -- --force                        everything again, ignoring the last run
//
// The fuzz tests run with a fixed seed and fewer cases (FUZZ_* in the npm script), so every mutant meets the
// same inputs and the run stays bounded.
//
// Reports: the summary table on the terminal, reports/mutation/mutation.html for browsing the survivors, and
// reports/mutation/incremental.json (what the next run reuses).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: [
    'identity/**/*.ts',
    'processors/identity/**/*.ts',
    'extensions/oidc/**/*.ts',
    'pipeline/batch/scanner.ts',
    '!**/*.test.ts',
  ],
  testRunner: 'tap',
  tap: {
    // The unit tests of the mutated folders and of the batch model (the scanner's tests); the end-to-end
    // tests start daemons and take tens of seconds each, too slow to run per mutant.
    testFiles: [
      'dist/identity/**/*.test.js',
      'dist/processors/identity/**/*.test.js',
      'dist/extensions/oidc/**/*.test.js',
      'dist/pipeline/batch/**/*.test.js',
    ],
  },
  buildCommand: 'npx tsc -p tsconfig.json',
  coverageAnalysis: 'perTest',
  // A mutant in module-level code (a constant table, a compiled pattern) is reached while the module loads,
  // so every test file would have to run for it: left out (reported as Ignored), which makes the run hours
  // shorter.
  ignoreStatic: true,
  concurrency: 2,
  // key-source and oidc tests wait on real timers (cooldowns, retries); a mutant that makes them loop is
  // timed out, which Stryker counts as detected
  timeoutMS: 20000,
  incremental: true,
  incrementalFile: 'reports/mutation/incremental.json',
  ignorePatterns: ['dist', '.tap', 'reports', '.bench-out', 'bench/results'],
  reporters: ['clear-text', 'progress', 'html'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
