/**
 * Encodes google.rpc.Status with an optional google.rpc.RetryInfo detail, the way an OTLP peer sends it
 * (gRPC `grpc-status-details-bin` trailer, OTLP/HTTP error body). Written independently of the
 * exporters' parser so that tests check one against the other.
 */

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';
const utf8 = new TextEncoder();

function varint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function lenField(out: number[], field: number, bytes: ArrayLike<number>): void {
  out.push((field << 3) | 2);
  varint(out, bytes.length);
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i]!);
}

/** `retryDelayMs` < 0 (or omitted) leaves RetryInfo out. */
export function encodeRpcStatus(code: number, message: string, retryDelayMs = -1): Uint8Array {
  const out: number[] = [];
  if (code !== 0) {
    out.push(1 << 3);
    varint(out, code);
  }
  if (message !== '') lenField(out, 2, utf8.encode(message));
  if (retryDelayMs >= 0) {
    const secs = Math.floor(retryDelayMs / 1000);
    const nanos = Math.round((retryDelayMs - secs * 1000) * 1e6);
    const duration: number[] = [];
    if (secs > 0) {
      duration.push(1 << 3);
      varint(duration, secs);
    }
    if (nanos > 0) {
      duration.push(2 << 3);
      varint(duration, nanos);
    }
    const retryInfo: number[] = [];
    lenField(retryInfo, 1, duration);
    const any: number[] = [];
    lenField(any, 1, utf8.encode(RETRY_INFO_TYPE));
    lenField(any, 2, retryInfo);
    lenField(out, 3, any);
  }
  return Uint8Array.from(out);
}

/** ExportTraceServiceResponse { partial_success { rejected_spans, error_message } }. */
export function encodePartialSuccess(rejectedSpans: number, errorMessage: string): Uint8Array {
  const inner: number[] = [1 << 3];
  varint(inner, rejectedSpans);
  if (errorMessage !== '') lenField(inner, 2, utf8.encode(errorMessage));
  const out: number[] = [];
  lenField(out, 1, inner);
  return Uint8Array.from(out);
}
