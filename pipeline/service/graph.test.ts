import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { syntheticRequest } from '../../test/helpers/otlp.js';
import { TraceBatch } from '../batch/batch.js';
import type { RequestContext, TracesConsumer } from './component.js';
import { PipelineError } from './errors.js';
import { ExportersFanOut, PipelinesFanOut, fanOutToExporters, fanOutToPipelines } from './graph.js';

const ctx: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: '127.0.0.1:1', auth: null };

/** Records every call; answers by accepting, rejecting, throwing synchronously, or after a gate opens. */
class Stage implements TracesConsumer {
  readonly batches: TraceBatch[] = [];
  settled = false;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  constructor(private readonly mode: 'accept' | 'reject' | 'throw' | 'hold') {
    if (mode === 'hold') this.gate = new Promise((resolve) => (this.open = resolve));
  }

  // Deliberately not `async`: a synchronous throw must not escape the fan-out.
  consume(batch: TraceBatch, _ctx: RequestContext): Promise<void> {
    this.batches.push(batch);
    if (this.mode === 'throw') throw new PipelineError('INVALID_ARGUMENT', 'thrown synchronously');
    if (this.mode === 'reject') return Promise.reject(new PipelineError('QUEUE_FULL', 'rejected', 100)).finally(() => (this.settled = true));
    if (this.mode === 'hold') return this.gate!.then(() => void (this.settled = true));
    this.settled = true;
    return Promise.resolve();
  }

  release(): void {
    this.open?.();
  }
}

/** Calls consume and reports a synchronous throw instead of letting it escape. */
function call(fanOut: TracesConsumer, batch: TraceBatch): Promise<void> {
  let p: Promise<void>;
  try {
    p = fanOut.consume(batch, ctx);
  } catch (err) {
    assert.fail(`consume threw synchronously: ${String(err)}`);
  }
  assert.ok(p instanceof Promise, 'consume returns a promise');
  return p;
}

async function settlesAfter(p: Promise<void>, ...held: Stage[]): Promise<unknown> {
  let done = false;
  let outcome: unknown = 'resolved';
  const watched = p.then(
    () => (done = true),
    (err: unknown) => {
      done = true;
      outcome = err;
    },
  );
  for (let i = 0; i < 5; i++) await nextTurn();
  assert.equal(done, false, 'the fan-out waits for every consumer before settling');
  for (const h of held) h.release();
  await watched;
  return outcome;
}

describe('fan-out', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    // Unhandled rejections are reported after the microtask queue drains; give them a turn to surface.
    await nextTurn();
    await nextTurn();
    process.off('unhandledRejection', onUnhandled);
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  });

  it('pipelines: a rejecting and a synchronously throwing pipeline give a rejected promise after every pipeline settled', async () => {
    const stages = [new Stage('reject'), new Stage('throw'), new Stage('hold'), new Stage('accept')];
    const batch = new TraceBatch(syntheticRequest(3));
    batch.index();
    const err = await settlesAfter(call(new PipelinesFanOut(stages), batch), stages[2]!);
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'QUEUE_FULL', 'the first failure, in pipeline order');
    for (const s of stages) assert.equal(s.batches.length, 1, 'every pipeline got the batch');
    assert.equal(stages[2]!.settled, true);
    assert.equal(stages[3]!.settled, true);
    assert.equal(stages[0]!.batches[0], batch, 'the first pipeline gets the batch itself');
    for (const s of stages.slice(1)) {
      assert.notEqual(s.batches[0], batch, 'the others get forks');
      assert.equal(s.batches[0]!.bytes, batch.bytes);
    }
  });

  it('pipelines: a synchronous throw from the first pipeline still waits for the others', async () => {
    const stages = [new Stage('throw'), new Stage('hold')];
    const batch = new TraceBatch(syntheticRequest(2));
    const err = await settlesAfter(call(new PipelinesFanOut(stages), batch), stages[1]!);
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(stages[1]!.settled, true);
  });

  it('pipelines: malformed bytes are refused before any pipeline starts', async () => {
    const stages = [new Stage('accept'), new Stage('accept')];
    await assert.rejects(call(new PipelinesFanOut(stages), new TraceBatch(Uint8Array.of(0x0a, 0x7f, 0x01))), (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_ARGUMENT');
    assert.equal(stages[0]!.batches.length + stages[1]!.batches.length, 0);
  });

  it('exporters: a throwing and a rejecting exporter give a rejected promise after every exporter settled', async () => {
    const stages = [new Stage('hold'), new Stage('throw'), new Stage('reject'), new Stage('accept')];
    const batch = new TraceBatch(syntheticRequest(4));
    batch.dropSpan(0);
    const err = await settlesAfter(call(new ExportersFanOut(stages), batch), stages[0]!);
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'INVALID_ARGUMENT', 'the first failure, in exporter order');
    const sealed = stages[0]!.batches[0]!;
    assert.equal(sealed.liveSpanCount, 3, 'edits applied once');
    for (const s of stages) assert.equal(s.batches[0], sealed, 'every exporter gets the same sealed batch');
    assert.equal(stages[0]!.settled, true);
    assert.equal(stages[3]!.settled, true);
  });

  it('exporters: a batch that cannot be sealed gives a rejected promise and reaches no exporter', async () => {
    class Unsealable extends TraceBatch {
      override seal(): TraceBatch {
        throw new PipelineError('INVALID_ARGUMENT', 'cannot encode');
      }
    }
    const stages = [new Stage('accept'), new Stage('accept')];
    await assert.rejects(call(new ExportersFanOut(stages), new Unsealable(syntheticRequest(1))), (e: unknown) => e instanceof PipelineError && e.message === 'cannot encode');
    assert.equal(stages[0]!.batches.length + stages[1]!.batches.length, 0);
  });

  it('all succeed: resolves; one consumer needs no fan-out', async () => {
    const stages = [new Stage('accept'), new Stage('accept')];
    await call(new ExportersFanOut(stages), new TraceBatch(syntheticRequest(1)));
    await call(new PipelinesFanOut(stages), new TraceBatch(syntheticRequest(1)));
    assert.equal(stages[0]!.batches.length, 2);
    assert.equal(fanOutToPipelines([stages[0]!]), stages[0]);
    assert.equal(fanOutToExporters([stages[1]!]), stages[1]);
  });
});
