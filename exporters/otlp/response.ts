/**
 * Reading what an OTLP peer answers, by hand with the wire reader: the ExportTraceServiceResponse's
 * partial success, and google.rpc.Status (its message and RetryInfo). Peers are not trusted: a malformed
 * answer yields "nothing found", never an exception.
 */
import { WireReader, WT_LEN, WT_VARINT } from '../../pipeline/batch/wire.js';

export interface PartialSuccess {
  rejectedSpans: number;
  message: string;
}

const reader = new WireReader();
const utf8 = new TextDecoder();

/** ExportTraceServiceResponse.partial_success (1) → rejected_spans (1), error_message (2); null if none. */
export function parsePartialSuccess(body: Uint8Array): PartialSuccess | null {
  if (body.length === 0) return null;
  try {
    const r = reader;
    r.reset(body, 0);
    let found: PartialSuccess | null = null;
    while (r.pos < body.length) {
      const tag = r.uint32(body.length);
      if (tag === ((1 << 3) | WT_LEN)) {
        const end = r.lengthDelimitedEnd(body.length);
        found = { rejectedSpans: 0, message: '' };
        while (r.pos < end) {
          const t = r.uint32(end);
          if (t === ((1 << 3) | WT_VARINT)) found.rejectedSpans = readVarint64(r, end);
          else if (t === ((2 << 3) | WT_LEN)) {
            const stop = r.lengthDelimitedEnd(end);
            found.message = utf8.decode(body.subarray(r.pos, stop));
            r.pos = stop;
          } else r.skip(t & 7, end);
        }
      } else r.skip(tag & 7, body.length);
    }
    return found !== null && (found.rejectedSpans > 0 || found.message !== '') ? found : null;
  } catch {
    return null;
  }
}

/** A non-negative varint of up to 64 bits as a number (exact to 2^53). */
function readVarint64(r: WireReader, end: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (r.pos >= end) throw new Error('truncated');
    const b = r.buf[r.pos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new Error('varint too long');
}

export interface RpcStatus {
  code: number;
  message: string;
  /** From a google.rpc.RetryInfo detail; -1 when absent. */
  retryDelayMs: number;
}

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

/**
 * google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3 }, as carried in the
 * gRPC `grpc-status-details-bin` trailer or an OTLP/HTTP error body.
 */
export function parseRpcStatus(buf: Uint8Array): RpcStatus | null {
  try {
    const r = new WireReader();
    r.reset(buf, 0);
    const out: RpcStatus = { code: 0, message: '', retryDelayMs: -1 };
    const end = buf.length;
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === ((1 << 3) | WT_VARINT)) out.code = readVarint64(r, end);
      else if (tag === ((2 << 3) | WT_LEN)) {
        const stop = r.lengthDelimitedEnd(end);
        out.message = utf8.decode(buf.subarray(r.pos, stop));
        r.pos = stop;
      } else if (tag === ((3 << 3) | WT_LEN)) {
        const stop = r.lengthDelimitedEnd(end);
        const delay = retryInfoFromAny(r, stop);
        if (delay >= 0) out.retryDelayMs = delay;
        r.pos = stop;
      } else r.skip(tag & 7, end);
    }
    return out;
  } catch {
    return null;
  }
}

/** Any { string type_url = 1; bytes value = 2 }: the RetryInfo delay in ms, or -1. */
function retryInfoFromAny(r: WireReader, end: number): number {
  let isRetryInfo = false;
  let vStart = -1;
  let vEnd = -1;
  while (r.pos < end) {
    const tag = r.uint32(end);
    if (tag === ((1 << 3) | WT_LEN)) {
      const stop = r.lengthDelimitedEnd(end);
      isRetryInfo = utf8.decode(r.buf.subarray(r.pos, stop)) === RETRY_INFO_TYPE;
      r.pos = stop;
    } else if (tag === ((2 << 3) | WT_LEN)) {
      vEnd = r.lengthDelimitedEnd(end);
      vStart = r.pos;
      r.pos = vEnd;
    } else r.skip(tag & 7, end);
  }
  if (!isRetryInfo || vStart < 0) return -1;
  // RetryInfo { Duration retry_delay = 1 }; Duration { int64 seconds = 1; int32 nanos = 2 }.
  r.pos = vStart;
  let ms = 0;
  while (r.pos < vEnd) {
    const tag = r.uint32(vEnd);
    if (tag === ((1 << 3) | WT_LEN)) {
      const stop = r.lengthDelimitedEnd(vEnd);
      while (r.pos < stop) {
        const t = r.uint32(stop);
        if (t === ((1 << 3) | WT_VARINT)) ms += readVarint64(r, stop) * 1000;
        else if (t === ((2 << 3) | WT_VARINT)) ms += readVarint64(r, stop) / 1e6;
        else r.skip(t & 7, stop);
      }
    } else r.skip(tag & 7, vEnd);
  }
  return Math.ceil(ms);
}
