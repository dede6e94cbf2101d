/**
 * Spans made by the real OpenTelemetry SDK, for feeding the official exporters into the otlp receiver,
 * and a google.rpc.Status decoder (built with protobufjs, independent of the receiver's hand encoder).
 */
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import protobuf from 'protobufjs';

/** `n` ended spans named `op-<i>` with attributes `i` (int) and `checkout.step` (string). */
export async function sdkSpans(n: number, service = 'checkout'): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('receiver-test', '1.0.0');
  for (let i = 0; i < n; i++) {
    const span = tracer.startSpan(`op-${i}`, { attributes: { i, 'checkout.step': `step-${i}` } });
    span.end();
  }
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

interface Exporting {
  export(spans: ReadableSpan[], done: (r: { code: number; error?: Error }) => void): void;
  shutdown(): Promise<void>;
}

/** Exports once and resolves with the result code (0 = success) and error, if any. */
export function exportOnce(exporter: Exporting, spans: ReadableSpan[]): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

const root = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
            Duration: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 } } },
            RetryInfo: { fields: { retry_delay: { type: 'google.protobuf.Duration', id: 1 } } },
          },
        },
      },
    },
  },
});

export interface DecodedStatus {
  code: number;
  message: string;
  details: { typeUrl: string; value: Buffer }[];
}

export function decodeRpcStatus(bytes: Uint8Array): DecodedStatus {
  const T = root.lookupType('google.rpc.Status');
  const o = T.toObject(T.decode(bytes), { longs: Number, bytes: Buffer, defaults: true }) as {
    code: number;
    message: string;
    details: { type_url: string; value: Buffer }[];
  };
  return { code: o.code, message: o.message, details: o.details.map((d) => ({ typeUrl: d.type_url, value: d.value })) };
}

/** RetryInfo.retry_delay in milliseconds. */
export function decodeRetryDelayMs(value: Uint8Array): number {
  const T = root.lookupType('google.rpc.RetryInfo');
  const o = T.toObject(T.decode(value), { longs: Number, defaults: true }) as { retry_delay: { seconds: number; nanos: number } };
  return o.retry_delay.seconds * 1000 + o.retry_delay.nanos / 1e6;
}
