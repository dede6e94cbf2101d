/**
 * The consumers that join components: a receiver feeding several pipelines, and a pipeline feeding
 * several exporters. Chosen when the graph is built, so a pipeline with one exporter has no fan-out at all.
 */
import type { TraceBatch } from '../batch/batch.js';
import type { RequestContext, TracesConsumer } from './component.js';

/**
 * One receiver, several pipelines: each pipeline gets its own fork of the batch (same bytes and index,
 * its own edits). The request is accepted once every pipeline accepted it; the first refusal is returned
 * so the sender retries, as the Collector's fan-out does.
 */
export class PipelinesFanOut implements TracesConsumer {
  constructor(private readonly pipelines: readonly TracesConsumer[]) {}

  consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    const n = this.pipelines.length;
    const forks: TraceBatch[] = new Array(n);
    forks[0] = batch;
    try {
      // Every fork is made before any pipeline starts, so a failure here leaves nothing running.
      for (let i = 1; i < n; i++) forks[i] = batch.fork();
    } catch (err) {
      return Promise.reject(err);
    }
    const pending: Promise<void>[] = new Array(n);
    for (let i = 0; i < n; i++) pending[i] = consumeSafely(this.pipelines[i]!, forks[i]!, ctx);
    return settleAll(pending);
  }
}

/**
 * One pipeline, several exporters: the batch's edits are applied once (`seal`) and the same bytes go to
 * every exporter.
 */
export class ExportersFanOut implements TracesConsumer {
  constructor(private readonly exporters: readonly TracesConsumer[]) {}

  consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    let sealed: TraceBatch;
    try {
      sealed = batch.seal();
    } catch (err) {
      return Promise.reject(err);
    }
    const n = this.exporters.length;
    const pending: Promise<void>[] = new Array(n);
    for (let i = 0; i < n; i++) pending[i] = consumeSafely(this.exporters[i]!, sealed, ctx);
    return settleAll(pending);
  }
}

/**
 * A consumer's promise even when its consume throws synchronously: otherwise the throw would escape the
 * fan-out while the promises of the consumers already started went unawaited, and one of them rejecting
 * would be an unhandled rejection, which ends the process.
 */
function consumeSafely(consumer: TracesConsumer, batch: TraceBatch, ctx: RequestContext): Promise<void> {
  try {
    return consumer.consume(batch, ctx);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Waits for all; rejects with the first failure only after every consumer has settled. */
async function settleAll(pending: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(pending);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

export function fanOutToPipelines(pipelines: readonly TracesConsumer[]): TracesConsumer {
  return pipelines.length === 1 ? pipelines[0]! : new PipelinesFanOut(pipelines);
}

export function fanOutToExporters(exporters: readonly TracesConsumer[]): TracesConsumer {
  return exporters.length === 1 ? exporters[0]! : new ExportersFanOut(exporters);
}
