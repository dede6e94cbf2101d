#!/usr/bin/env node
import { main } from './cli.js';

// The one place that exits the process. Bad input after start-up must never reach here as a crash:
// an exception that escapes every handler is logged and the daemon exits non-zero so a supervisor restarts it.
process.on('uncaughtException', (err) => {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'error', msg: 'uncaught exception', error: err.message, stack: err.stack })}\n`);
  process.exit(1);
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`tracewarden: ${err.message}\n`);
    process.exit(1);
  },
);
