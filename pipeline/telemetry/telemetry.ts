/**
 * Self-telemetry: one prom-client registry per running service (so tests can run several in one
 * process), with the OpenTelemetry Collector's metric names for what both have, so existing dashboards
 * work. Components bind their label values once at build time (`.labels(...)`) and only `inc` per batch.
 * No label ever carries a user, token or span value.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PipelineErrorCode } from '../service/errors.js';

/**
 * Why spans left the pipeline other than by export: the closed set of tracewarden_dropped_spans_total's
 * `reason` label. An exporter's: the backend failed past its retries (send_failed), refused the data
 * (permanent) or part of it (partial_success), shutdown ran out of time (shutdown), a persistent queue's
 * record was damaged (queue_corrupt). A processor's: the refusal downstream that it could not hand back
 * (the lower-cased error code, e.g. queue_full) or its own failure (internal_error). The identity
 * processor's: `identity_` and the verification failure (identity/reasons.ts).
 */
export type DropReason =
  | 'send_failed'
  | 'permanent'
  | 'partial_success'
  | 'shutdown'
  | 'queue_corrupt'
  /** Removed on purpose by a filter processor's conditions. */
  | 'filtered'
  /** Matched no route of a routing connector that has no default pipelines. */
  | 'unrouted'
  /** Not kept by a sampling processor. */
  | 'sampled_out'
  | Lowercase<PipelineErrorCode>
  | 'internal_error'
  | `identity_${string}`;

/**
 * A bound counter child that exists from start-up at 0, so Prometheus has the series before the first
 * span and `rate()` and absence alerts work from the first scrape.
 */
export function zeroed<T extends { inc(value?: number): void }>(child: T): T {
  child.inc(0);
  return child;
}

export class Telemetry {
  readonly registry = new Registry();

  // Receivers.
  readonly receiverAccepted: Counter<'receiver' | 'transport'>;
  readonly receiverRefused: Counter<'receiver' | 'transport'>;
  readonly receiverRequests: Counter<'receiver' | 'transport' | 'outcome'>;
  // Processors.
  readonly processorIncoming: Counter<'processor' | 'otel_signal'>;
  readonly processorOutgoing: Counter<'processor' | 'otel_signal'>;
  // Exporters.
  readonly exporterSent: Counter<'exporter'>;
  readonly exporterSendFailed: Counter<'exporter'>;
  readonly exporterEnqueueFailed: Counter<'exporter'>;
  readonly exporterQueueSize: Gauge<'exporter'>;
  readonly exporterQueueCapacity: Gauge<'exporter'>;
  readonly exporterRetries: Counter<'exporter'>;
  readonly queueCorruptRecords: Counter<'exporter'>;
  // Every span that does not go on, by the component that stopped it and why.
  private readonly droppedSpans: Counter<'component' | 'reason'>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.receiverAccepted = new Counter({
      name: 'otelcol_receiver_accepted_spans_total',
      help: 'Spans successfully pushed into the pipeline.',
      labelNames: ['receiver', 'transport'],
      registers,
    });
    this.receiverRefused = new Counter({
      name: 'otelcol_receiver_refused_spans_total',
      help: 'Spans that could not be pushed into the pipeline.',
      labelNames: ['receiver', 'transport'],
      registers,
    });
    this.receiverRequests = new Counter({
      name: 'tracewarden_receiver_requests_total',
      help: 'Export requests by outcome (ok, invalid, too_large, unsupported_media_type, unauthenticated, refused, not_found).',
      labelNames: ['receiver', 'transport', 'outcome'],
      registers,
    });
    this.processorIncoming = new Counter({
      name: 'otelcol_processor_incoming_items_total',
      help: 'Items passed to the processor.',
      labelNames: ['processor', 'otel_signal'],
      registers,
    });
    this.processorOutgoing = new Counter({
      name: 'otelcol_processor_outgoing_items_total',
      help: 'Items emitted by the processor.',
      labelNames: ['processor', 'otel_signal'],
      registers,
    });
    this.exporterSent = new Counter({
      name: 'otelcol_exporter_sent_spans_total',
      help: 'Spans successfully sent to the destination.',
      labelNames: ['exporter'],
      registers,
    });
    this.exporterSendFailed = new Counter({
      name: 'otelcol_exporter_send_failed_spans_total',
      help: 'Spans the exporter failed to send to the destination.',
      labelNames: ['exporter'],
      registers,
    });
    this.exporterEnqueueFailed = new Counter({
      name: 'otelcol_exporter_enqueue_failed_spans_total',
      help: 'Spans that could not be added to the sending queue.',
      labelNames: ['exporter'],
      registers,
    });
    this.exporterQueueSize = new Gauge({
      name: 'otelcol_exporter_queue_size',
      help: 'Batches the exporter holds: waiting in the sending queue and being delivered (retries included).',
      labelNames: ['exporter'],
      registers,
    });
    this.exporterQueueCapacity = new Gauge({
      name: 'otelcol_exporter_queue_capacity',
      help: 'Fixed capacity of the sending queue, in batches.',
      labelNames: ['exporter'],
      registers,
    });
    this.exporterRetries = new Counter({
      name: 'tracewarden_exporter_retries_total',
      help: 'Failed send attempts that were retried after a backoff.',
      labelNames: ['exporter'],
      registers,
    });
    this.queueCorruptRecords = new Counter({
      name: 'tracewarden_queue_corrupt_records_total',
      help: 'Damaged records found in a persistent sending queue (at start or when read back) and skipped.',
      labelNames: ['exporter'],
      registers,
    });
    this.droppedSpans = new Counter({
      name: 'tracewarden_dropped_spans_total',
      help: 'Spans that did not go on, by the component that stopped them and the reason.',
      labelNames: ['component', 'reason'],
      registers,
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The dropped-spans counter for one component and reason, bound once by the component. */
  dropped(component: string, reason: DropReason): { inc(value?: number): void } {
    return this.droppedSpans.labels(component, reason);
  }

  /** A component's own counter, registered once per registry under this name. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter<L>;
    return new Counter({ name, help, labelNames: labelNames as L[], registers: [this.registry] });
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Gauge<L>;
    return new Gauge({ name, help, labelNames: labelNames as L[], registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram<L>;
    return new Histogram({ name, help, labelNames: labelNames as L[], buckets, registers: [this.registry] });
  }

  /** The current value of a counter or gauge for these labels (0 when never set): for tests and health. */
  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = this.registry.getSingleMetric(name);
    if (!m) return 0;
    const data = await m.get();
    let sum = 0;
    for (const v of data.values) {
      if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) sum += v.value;
    }
    return sum;
  }
}
