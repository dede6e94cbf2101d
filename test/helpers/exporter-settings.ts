/** ComponentSettings for exporter tests: a fresh telemetry registry and a logger writing to memory. */
import type { ComponentSettings, Host } from '../../pipeline/service/component.js';
import { Logger, MemorySink } from '../../pipeline/telemetry/logger.js';
import { Telemetry } from '../../pipeline/telemetry/telemetry.js';

export interface ExporterTestSettings extends ComponentSettings {
  sink: MemorySink;
  /** tracewarden_dropped_spans_total for this component and reason. */
  dropped(reason: string): Promise<number>;
  /** A metric's value for the series labelled `exporter=<id>`. */
  metric(name: string): Promise<number>;
}

export function exporterSettings(id: string): ExporterTestSettings {
  const sink = new MemorySink();
  const telemetry = new Telemetry({ processMetrics: false });
  return {
    id,
    sink,
    telemetry,
    logger: new Logger(sink, 'debug').child({ component: id }),
    dropped: (reason) => telemetry.value('tracewarden_dropped_spans_total', { component: id, reason }),
    metric: (name) => telemetry.value(name, { exporter: id }),
  };
}

/** A Host with no extensions, for starting an exporter on its own. */
export const exporterTestHost: Host = {
  getExtension: () => undefined,
  readiness: () => ({ ready: true, notReady: [] }),
};
