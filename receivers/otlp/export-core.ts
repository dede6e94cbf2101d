/**
 * What both transports do with a request once its bytes are in hand: authenticate the sender, validate the
 * batch, hand it to the next stage, and count the outcome. Transports only frame, read and answer.
 */
import type { Counter } from 'prom-client';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { Inspection } from '../../pipeline/batch/inspection.js';
import type { Authenticator, RequestContext, SenderAuth, TracesConsumer } from '../../pipeline/service/component.js';
import { PipelineError, asPipelineError } from '../../pipeline/service/errors.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import { zeroed, type Telemetry } from '../../pipeline/telemetry/telemetry.js';
import { OUTCOMES, type Outcome } from './status.js';

type Child = Counter.Internal;

/** One transport's metric children, bound once at build time. */
export class TransportMetrics {
  readonly accepted: Child;
  readonly refused: Child;
  private readonly outcomes = new Map<Outcome, Child>();

  constructor(telemetry: Telemetry, id: string, transport: 'grpc' | 'http') {
    this.accepted = zeroed(telemetry.receiverAccepted.labels(id, transport));
    this.refused = zeroed(telemetry.receiverRefused.labels(id, transport));
    for (const o of OUTCOMES) this.outcomes.set(o, telemetry.receiverRequests.labels(id, transport, o));
  }

  count(outcome: Outcome): void {
    this.outcomes.get(outcome)!.inc();
  }

  /** The outcome of a request refused before it reached the pipeline. */
  countError(err: PipelineError): void {
    switch (err.code) {
      case 'INVALID_ARGUMENT':
        return this.count('invalid');
      case 'PAYLOAD_TOO_LARGE':
        return this.count('too_large');
      case 'UNAUTHENTICATED':
        return this.count('unauthenticated');
      default:
        return this.count('refused');
    }
  }
}

export class ExportCore {
  constructor(
    private readonly next: TracesConsumer,
    private readonly logger: Logger,
    /** What the processors downstream need the validating scan to look for. */
    private readonly inspection: Inspection | null = null,
  ) {}

  /**
   * Authenticates from lower-case headers. A PipelineError from the authenticator passes through (an
   * UNAVAILABLE key source is retryable); anything else becomes UNAUTHENTICATED with a fixed message,
   * since a foreign error's message might quote the credential.
   */
  async authenticate(authenticator: Authenticator, headers: Readonly<Record<string, string | string[] | undefined>>): Promise<SenderAuth> {
    try {
      return await authenticator.authenticate(headers);
    } catch (err) {
      if (err instanceof PipelineError) throw err;
      throw new PipelineError('UNAUTHENTICATED', 'authentication failed');
    }
  }

  /**
   * Validates and forwards one ExportTraceServiceRequest. Resolves to null on success or to the error to
   * answer with; counts the request's outcome and its spans either way.
   */
  async ingest(bytes: Uint8Array, ctx: RequestContext, m: TransportMetrics): Promise<PipelineError | null> {
    const batch = new TraceBatch(bytes);
    try {
      batch.index(this.inspection);
    } catch (err) {
      const e = this.refusal(err, ctx);
      m.countError(e);
      this.logRejected(ctx, e);
      return e;
    }
    const spans = batch.spanCount;
    try {
      await this.next.consume(batch, ctx);
    } catch (err) {
      const e = this.refusal(err, ctx);
      m.refused.inc(spans);
      m.count('refused');
      if (this.logger.enabled('debug')) this.logger.debug('pipeline refused a request', { transport: ctx.transport, peer: ctx.peer, code: e.code, spans });
      return e;
    }
    m.accepted.inc(spans);
    m.count('ok');
    return null;
  }

  /**
   * What a sender is answered for a failure: a PipelineError as it is (its message is written for
   * senders); anything else is a bug somewhere in the pipeline, answered with the fixed 'internal error'
   * and logged at error level by its name only, since its message may quote the data or a peer.
   */
  refusal(err: unknown, ctx: RequestContext): PipelineError {
    if (err instanceof PipelineError) return err;
    this.logger.error('unexpected failure while handling a request', {
      transport: ctx.transport,
      peer: ctx.peer,
      error: err instanceof Error ? err.name : typeof err,
    });
    return asPipelineError(err);
  }

  /** Only the code: messages about bad input may quote it. */
  logRejected(ctx: RequestContext, err: PipelineError): void {
    if (this.logger.enabled('debug')) this.logger.debug('rejected a request', { transport: ctx.transport, peer: ctx.peer, code: err.code });
  }
}
