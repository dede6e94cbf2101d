/**
 * What an operator reads in the log while an exporter cannot deliver: a warning at the first failure, with
 * the endpoint and the cause; a reminder at most every `intervalMs` while it lasts; one line when it
 * delivers again. One per exporter, shared by its workers, so ten workers failing at once say it once.
 */
import type { Logger } from '../telemetry/logger.js';

/** The status part of an outcome's message ("UNAVAILABLE", "HTTP 503", "ECONNREFUSED"), bounded. */
export function statusOf(message: string): string {
  const colon = message.indexOf(': ');
  const status = colon < 0 ? message : message.slice(0, colon);
  return status.length > 40 ? status.slice(0, 40) + '…' : status;
}

/**
 * The status with the system error under it when the message names one: "UNAVAILABLE (ECONNREFUSED)",
 * "HTTP 503", "ECONNRESET". Only the status and an errno-style code: never the peer's own words.
 */
export function causeOf(message: string): string {
  const status = statusOf(message);
  const errno = /\b(E[A-Z][A-Z0-9_]{2,})\b/.exec(message)?.[1];
  return errno === undefined || errno === status ? status : `${status} (${errno})`;
}

export class DeliveryTrouble {
  private since = 0;
  private lastWarned = 0;
  private failedAttempts = 0;

  constructor(
    private readonly logger: Logger,
    private readonly endpoint: string,
    private readonly intervalMs: number,
  ) {}

  /** Whether the exporter is failing now: from its first failed attempt to its next delivery. */
  get troubled(): boolean {
    return this.since !== 0;
  }

  /** An attempt failed; `attempt` is the batch's attempt count, `retrying` whether it will be tried again. */
  failed(message: string, attempt: number, retrying: boolean): void {
    const now = Date.now();
    const cause = causeOf(message);
    this.failedAttempts++;
    if (this.since === 0) {
      this.since = now;
      this.lastWarned = now;
      this.logger.warn('exporter cannot deliver', { endpoint: this.endpoint, cause, attempt, retrying });
      return;
    }
    if (now - this.lastWarned >= this.intervalMs) {
      this.lastWarned = now;
      this.logger.warn('exporter still cannot deliver', {
        endpoint: this.endpoint,
        cause,
        for_s: Math.round((now - this.since) / 1000),
        failed_attempts: this.failedAttempts,
      });
    }
  }

  delivered(): void {
    if (this.since === 0) return;
    this.logger.info('exporter delivers again', {
      endpoint: this.endpoint,
      after_s: Math.round((Date.now() - this.since) / 1000),
      failed_attempts: this.failedAttempts,
    });
    this.since = 0;
    this.failedAttempts = 0;
  }
}
