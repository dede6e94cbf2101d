/**
 * One structured line per distinct credential decision (made when a credential is first verified, not per
 * span), rate-limited with a token bucket; lines held back are counted and reported in the next line.
 * A line carries fingerprints, never the credential or the subject.
 */
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { fingerprint, type Decision } from './decision.js';

export class AuditLog {
  private tokens: number;
  private last: number;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = perSecond;
    this.last = now();
  }

  decision(d: Decision): void {
    const t = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < 1) {
      this.suppressed++;
      return;
    }
    this.tokens -= 1;
    const fields: Record<string, unknown> = {
      audit: 'identity',
      result: d.ok ? 'verified' : d.reason,
      method: d.method,
      issuer: d.issuer,
      credential_fingerprint: d.fingerprint,
    };
    if (d.subjectKey !== '') fields['subject_fingerprint'] = fingerprint(d.subjectKey);
    if (this.suppressed > 0) {
      fields['suppressed_since_last'] = this.suppressed;
      this.suppressed = 0;
    }
    this.logger.info('identity decision', fields);
  }
}
