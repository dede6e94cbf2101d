/**
 * The shape most processors share: count the spans in and out (the Collector's
 * otelcol_processor_incoming/outgoing_items), seal what earlier stages edited so that reads see the batch
 * as it would be exported, edit, and pass the batch on unless no span is left.
 */
import type { Counter } from 'prom-client';
import type { TraceBatch } from '../batch/batch.js';
import { zeroed } from '../telemetry/telemetry.js';
import type { ComponentSettings, Host, Processor, RequestContext, TracesConsumer } from './component.js';

export abstract class EditingProcessor implements Processor {
  private readonly incoming: Counter.Internal;
  private readonly outgoing: Counter.Internal;

  constructor(
    settings: ComponentSettings,
    private readonly next: TracesConsumer,
  ) {
    const t = settings.telemetry;
    this.incoming = zeroed(t.processorIncoming.labels(settings.id, 'traces'));
    this.outgoing = zeroed(t.processorOutgoing.labels(settings.id, 'traces'));
  }

  /** Whether the configuration changes anything; when it does not, batches pass as they came. */
  protected abstract get active(): boolean;

  /**
   * Edits a sealed batch (no pending edits: its bytes are what the earlier stages produced) and returns
   * the batch to pass on, with its own edits pending.
   */
  protected abstract process(batch: TraceBatch): TraceBatch;

  async start(_host: Host): Promise<void> {}

  async shutdown(_deadline: number): Promise<void> {}

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    this.incoming.inc(batch.liveSpanCount);
    const out = this.active ? this.process(batch.seal()) : batch;
    const live = out.liveSpanCount;
    if (live === 0) return;
    await this.next.consume(out, ctx);
    this.outgoing.inc(live);
  }
}
