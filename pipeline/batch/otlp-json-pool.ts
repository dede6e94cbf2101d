/**
 * OTLP/JSON conversion off the event loop: small bodies inline, larger ones on a small pool of worker
 * threads with bounded heaps (this module is also the workers' entry point).
 */
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { INTERNAL_ERROR, PipelineError, asPipelineError, type PipelineErrorCode } from '../service/errors.js';
import { otlpJsonToProtobuf } from './otlp-json.js';

// ---------------------------------------------------------------------------------------------------------
// Off the event loop: a pool of worker threads for bodies larger than INLINE_MAX_BYTES.

/**
 * Bodies up to this size are converted inline: at about 30 ns a byte, 64 KiB costs about 2 ms, not worth
 * the copy and the round trip to a worker.
 */
export const INLINE_MAX_BYTES = 64 * 1024;
/**
 * Heap one worker may use; a request that needs more is refused (413) and only its worker restarts. A
 * 20 MiB body (the default max_request_body_size) of the smallest JSON values needs a few hundred MiB.
 */
const WORKER_HEAP_MB = 1024;
const WORKER_TAG = 'tracewarden/otlp-json';
const POOL_SIZE = Math.min(4, Math.max(2, availableParallelism() - 1));

interface Job {
  body: Uint8Array;
  resolve: (bytes: Uint8Array) => void;
  reject: (err: PipelineError) => void;
}

type Reply = { ok: true; bytes: Uint8Array } | { ok: false; code: PipelineErrorCode; message: string };

class PoolWorker {
  job: Job | null = null;
  readonly worker: Worker;
  dead = false;

  constructor(private readonly pool: ConverterPool) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: WORKER_TAG, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    this.worker.unref();
    this.worker.on('message', (r: Reply) => this.settle(r));
    this.worker.on('error', (err) => this.die(err));
    this.worker.on('exit', () => this.die(null));
  }

  run(job: Job): void {
    this.job = job;
    this.worker.ref();
    // A private copy is transferred: the caller's buffer may be a view into memory it still uses.
    const copy = new Uint8Array(job.body.byteLength);
    copy.set(job.body);
    this.worker.postMessage(copy, [copy.buffer]);
  }

  private settle(r: Reply): void {
    const job = this.job;
    this.job = null;
    this.worker.unref();
    if (job !== null) {
      if (r.ok) job.resolve(r.bytes);
      else job.reject(new PipelineError(r.code, r.message));
    }
    this.pool.idle(this);
  }

  private die(err: Error | null): void {
    if (this.dead) return;
    this.dead = true;
    const job = this.job;
    this.job = null;
    if (job !== null) {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      job.reject(
        code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new PipelineError('PAYLOAD_TOO_LARGE', 'the JSON request needs more memory to convert than one request may use')
          : asPipelineError(err ?? new Error(INTERNAL_ERROR)),
      );
    }
    this.pool.died(this);
    void this.worker.terminate();
  }
}

class ConverterPool {
  private readonly workers: PoolWorker[] = [];
  private readonly idleWorkers: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private head = 0;

  submit(job: Job): void {
    const w = this.idleWorkers.pop() ?? (this.workers.length < POOL_SIZE ? this.spawn() : null);
    if (w !== null) w.run(job);
    else this.queue.push(job);
  }

  private spawn(): PoolWorker {
    const w = new PoolWorker(this);
    this.workers.push(w);
    return w;
  }

  idle(w: PoolWorker): void {
    if (w.dead) return;
    const next = this.next();
    if (next !== undefined) w.run(next);
    else this.idleWorkers.push(w);
  }

  died(w: PoolWorker): void {
    const i = this.workers.indexOf(w);
    if (i >= 0) this.workers.splice(i, 1);
    const j = this.idleWorkers.indexOf(w);
    if (j >= 0) this.idleWorkers.splice(j, 1);
    const next = this.next();
    if (next !== undefined) this.spawn().run(next);
  }

  private next(): Job | undefined {
    if (this.head >= this.queue.length) return undefined;
    const job = this.queue[this.head]!;
    this.queue[this.head++] = undefined as unknown as Job;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return job;
  }
}

let pool: ConverterPool | null = null;

/**
 * otlpJsonToProtobuf without blocking the event loop for long: bodies over INLINE_MAX_BYTES are converted
 * on a worker thread. Same results and the same errors (INVALID_ARGUMENT with the JSON path); a body whose
 * conversion needs more than the worker's heap is PAYLOAD_TOO_LARGE.
 */
export function otlpJsonToProtobufAsync(body: Uint8Array): Promise<Uint8Array> {
  if (body.byteLength <= INLINE_MAX_BYTES) {
    try {
      return Promise.resolve(otlpJsonToProtobuf(body));
    } catch (err) {
      return Promise.reject(asPipelineError(err));
    }
  }
  pool ??= new ConverterPool();
  const p = pool;
  return new Promise((resolve, reject) => p.submit({ body, resolve, reject }));
}

// The worker side: the same module, loaded in a worker thread started by PoolWorker.
if (!isMainThread && workerData === WORKER_TAG && parentPort !== null) {
  const port = parentPort;
  port.on('message', (body: Uint8Array) => {
    let reply: Reply;
    let transfer: ArrayBuffer[] = [];
    try {
      const out = otlpJsonToProtobuf(body);
      reply = { ok: true, bytes: out };
      transfer = [out.buffer as ArrayBuffer];
    } catch (err) {
      const e = asPipelineError(err);
      reply = { ok: false, code: e.code, message: e.message };
    }
    port.postMessage(reply, transfer);
  });
}
