/**
 * Writes every batch to stdout for people to read: a summary line (basic), a line per span (normal),
 * or everything (detailed), like the Collector's debug exporter. Credential-bearing attributes (see
 * format.ts) print as <redacted>.
 */
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, Exporter, RequestContext } from '../../pipeline/service/component.js';
import type { Logger } from '../../pipeline/telemetry/logger.js';
import type { DebugConfig } from './config.js';
import { countSpans, decodeRequest, formatDetailed, formatNormal } from './format.js';

export interface TextSink {
  write(text: string): unknown;
}

export class DebugExporter implements Exporter {
  private readonly logger: Logger;
  private readonly mSent;
  private readonly mFailed;
  private readonly mDropped;
  private readonly id: string;

  constructor(
    settings: ComponentSettings,
    private readonly config: DebugConfig,
    private readonly out: TextSink = process.stdout,
  ) {
    this.id = settings.id;
    this.logger = settings.logger;
    this.mSent = zeroed(settings.telemetry.exporterSent.labels(settings.id));
    this.mFailed = zeroed(settings.telemetry.exporterSendFailed.labels(settings.id));
    this.mDropped = settings.telemetry.dropped(settings.id, 'send_failed');
  }

  async start(): Promise<void> {}
  async shutdown(): Promise<void> {}

  async consume(batch: TraceBatch, _ctx?: RequestContext): Promise<void> {
    const sealed = batch.seal();
    const spans = sealed.liveSpanCount;
    if (spans === 0) return;
    try {
      const req = decodeRequest(sealed.encode());
      const n = countSpans(req);
      let text = `${new Date().toISOString()}\tinfo\tTraces\t{"otelcol.component.id": ${JSON.stringify(this.id)}, "otelcol.component.kind": "exporter", "otelcol.signal": "traces", "resource spans": ${n.resources}, "spans": ${n.spans}}\n`;
      if (this.config.verbosity === 'normal') text += formatNormal(req);
      else if (this.config.verbosity === 'detailed') text += formatDetailed(req);
      this.out.write(text);
      this.mSent.inc(spans);
    } catch (err) {
      this.mFailed.inc(spans);
      this.mDropped.inc(spans);
      // The name only: a decoder's message may quote the data.
      this.logger.warn('debug exporter could not write a batch', { spans, error: err instanceof Error ? err.name : typeof err });
    }
  }
}
