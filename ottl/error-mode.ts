/**
 * What a component does when a statement or condition fails on a span (the Collector's error_mode):
 * `propagate` fails the batch, `ignore` logs and goes on, `silent` goes on without logging. Every error is
 * counted in `tracewarden_ottl_errors_total{component}`; with `ignore` the log is at most one line per
 * 10 s per component (the first error, then how many followed), so a bad statement on a busy pipeline
 * cannot flood the log.
 */
import type { ComponentSettings } from '../pipeline/service/component.js';
import { invalidArgument } from '../pipeline/service/errors.js';
import type { Logger } from '../pipeline/telemetry/logger.js';
import { zeroed } from '../pipeline/telemetry/telemetry.js';
import type { ErrorMode } from './config.js';

const LOG_EVERY_MS = 10_000;

export class ErrorModeHandler {
  private readonly errors: { inc(n?: number): void };
  private readonly logger: Logger;
  private lastLog = -Infinity;
  private suppressed = 0;

  constructor(
    settings: ComponentSettings,
    readonly mode: ErrorMode,
  ) {
    this.logger = settings.logger;
    this.errors = zeroed(settings.telemetry.counter('tracewarden_ottl_errors_total', 'OTTL statements and conditions that failed on a span, by component (see error_mode).', ['component']).labels(settings.id));
  }

  /**
   * Handles an error of `what` (the statement or condition text). Returns normally for ignore and silent;
   * throws a permanent INVALID_ARGUMENT for propagate (retrying the same data cannot succeed).
   */
  failed(err: unknown, what: string): void {
    this.errors.inc();
    const reason = err instanceof Error ? err.message : String(err);
    if (this.mode === 'propagate') throw invalidArgument(`OTTL failed: ${reason} (in ${JSON.stringify(what)})`);
    if (this.mode === 'silent') return;
    const now = Date.now();
    if (now - this.lastLog < LOG_EVERY_MS) {
      this.suppressed++;
      return;
    }
    this.logger.warn('OTTL failed on a span; going on (error_mode: ignore)', { statement: what, error: reason, ...(this.suppressed > 0 ? { similar_errors_not_logged: this.suppressed } : {}) });
    this.lastLog = now;
    this.suppressed = 0;
  }
}
