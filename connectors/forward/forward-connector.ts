/**
 * The forward connector: what one pipeline exports goes on, unchanged, into every pipeline that lists the
 * connector under `receivers` (each gets its own fork of the batch, as pipelines sharing a receiver do).
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { Connector, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import { fanOutToPipelines } from '../../pipeline/service/graph.js';

export class ForwardConnector implements Connector {
  private readonly next: TracesConsumer;

  constructor(pipelines: ReadonlyMap<string, TracesConsumer>) {
    this.next = fanOutToPipelines([...pipelines.values()]);
  }

  async start(): Promise<void> {}

  async shutdown(): Promise<void> {}

  consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    return this.next.consume(batch, ctx);
  }
}
