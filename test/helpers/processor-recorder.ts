/**
 * A real next consumer for processor tests: records every batch it accepts (bytes, span count, context),
 * can refuse with a given error, and can hold its answer until the test opens a gate (a slow downstream).
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { Telemetry } from '../../pipeline/telemetry/telemetry.js';

export interface Received {
  bytes: Uint8Array;
  spanCount: number;
  ctx: RequestContext;
}

export class RecordingConsumer implements TracesConsumer {
  readonly received: Received[] = [];
  /** When set, consume rejects with it (after recording the attempt in `attempts`). */
  failWith: Error | null = null;
  attempts = 0;
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  private waiters: { count: number; resolve: () => void }[] = [];

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    this.attempts++;
    const gate = this.gate;
    if (gate !== null) await gate;
    if (this.failWith !== null) {
      this.notify();
      throw this.failWith;
    }
    this.received.push({ bytes: batch.encode(), spanCount: batch.liveSpanCount, ctx });
    this.notify();
  }

  get spanTotal(): number {
    let n = 0;
    for (const r of this.received) n += r.spanCount;
    return n;
  }

  /** Resolves once `count` batches have been answered (accepted or refused). */
  answered(count: number): Promise<void> {
    if (this.answeredCount() >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Holds every answer until `release()`. */
  hold(): void {
    if (this.gate === null) this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    const open = this.openGate;
    this.gate = null;
    this.openGate = null;
    open?.();
  }

  private failures = 0;
  private answeredCount(): number {
    return this.received.length + this.failures;
  }

  private notify(): void {
    if (this.failWith !== null) this.failures++;
    const done = this.answeredCount();
    this.waiters = this.waiters.filter((w) => {
      if (w.count > done) return true;
      w.resolve();
      return false;
    });
  }
}

export interface TestSettings extends ComponentSettings {
  sink: MemorySink;
}

export function processorSettings(id: string): TestSettings {
  const sink = new MemorySink();
  return { id, logger: new Logger(sink, 'debug'), telemetry: new Telemetry({ processMetrics: false }), sink };
}

/** count and sum of a histogram series, for asserting sizes of what was sent. */
export async function histogramStats(t: Telemetry, name: string, labels: Record<string, string>): Promise<{ count: number; sum: number }> {
  const m = t.registry.getSingleMetric(name);
  if (!m) return { count: 0, sum: 0 };
  const data = await m.get();
  let count = 0;
  let sum = 0;
  for (const v of data.values) {
    const l = v.labels as Record<string, unknown>;
    if (!Object.entries(labels).every(([k, want]) => String(l[k]) === want)) continue;
    const metricName = (v as { metricName?: string }).metricName ?? '';
    if (metricName.endsWith('_count')) count += v.value;
    else if (metricName.endsWith('_sum')) sum += v.value;
  }
  return { count, sum };
}
