/**
 * How a refusal is answered on each transport, as the OTLP specification says, and the google.rpc.Status
 * messages that carry it (encoded by hand: three small messages do not justify a protobuf runtime).
 */
import type { PipelineError, PipelineErrorCode } from '../../pipeline/service/errors.js';
import { WT_VARINT, lenFieldSize, varintSize, writeLenHeader, writeVarint } from '../../pipeline/batch/wire.js';

export const GRPC_OK = 0;
export const GRPC_INVALID_ARGUMENT = 3;
export const GRPC_RESOURCE_EXHAUSTED = 8;
export const GRPC_UNIMPLEMENTED = 12;
export const GRPC_INTERNAL = 13;
export const GRPC_UNAVAILABLE = 14;
export const GRPC_UNAUTHENTICATED = 16;

/** The `outcome` label of tracewarden_receiver_requests_total. */
export type Outcome = 'ok' | 'invalid' | 'too_large' | 'unsupported_media_type' | 'unauthenticated' | 'refused' | 'not_found';
export const OUTCOMES: readonly Outcome[] = ['ok', 'invalid', 'too_large', 'unsupported_media_type', 'unauthenticated', 'refused', 'not_found'];

export const DEFAULT_RETRY_DELAY_MS = 1000;

export function grpcCodeOf(code: PipelineErrorCode): number {
  switch (code) {
    case 'INVALID_ARGUMENT':
      return GRPC_INVALID_ARGUMENT;
    case 'UNAUTHENTICATED':
      return GRPC_UNAUTHENTICATED;
    case 'PAYLOAD_TOO_LARGE':
      return GRPC_RESOURCE_EXHAUSTED;
    case 'MEMORY_LIMIT':
    case 'QUEUE_FULL':
    case 'UNAVAILABLE':
    case 'SHUTTING_DOWN':
      return GRPC_UNAVAILABLE;
  }
}

/** OTLP/HTTP: 429 when the collector is saturated, 503 when it (or what is behind it) is unavailable. */
export function httpStatusOf(code: PipelineErrorCode): number {
  switch (code) {
    case 'INVALID_ARGUMENT':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    case 'MEMORY_LIMIT':
    case 'QUEUE_FULL':
      return 429;
    case 'UNAVAILABLE':
    case 'SHUTTING_DOWN':
      return 503;
  }
}

export function retryDelayMs(err: PipelineError): number {
  return err.retryAfterMs > 0 ? err.retryAfterMs : DEFAULT_RETRY_DELAY_MS;
}

/** `Retry-After` in whole seconds, never 0: a sender told "retry after 0" would hammer a saturated daemon. */
export function retryAfterSeconds(err: PipelineError): string {
  return String(Math.max(1, Math.ceil(retryDelayMs(err) / 1000)));
}

const RETRY_INFO_TYPE_URL = Buffer.from('type.googleapis.com/google.rpc.RetryInfo');

function varintField(field: number, value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

function putVarintField(buf: Uint8Array, pos: number, field: number, value: number): number {
  if (value === 0) return pos;
  buf[pos++] = (field << 3) | WT_VARINT;
  return writeVarint(buf, pos, value);
}

/** google.rpc.RetryInfo { retry_delay: Duration } wrapped in a google.protobuf.Any. */
function encodeRetryInfoAny(delayMs: number): Uint8Array {
  const seconds = Math.floor(delayMs / 1000);
  const nanos = Math.round((delayMs - seconds * 1000) * 1e6);
  const durationLen = varintField(1, seconds) + varintField(2, nanos);
  const retryInfoLen = lenFieldSize(durationLen);
  const anyLen = lenFieldSize(RETRY_INFO_TYPE_URL.length) + lenFieldSize(retryInfoLen);
  const out = new Uint8Array(anyLen);
  let pos = writeLenHeader(out, 0, 1, RETRY_INFO_TYPE_URL.length);
  out.set(RETRY_INFO_TYPE_URL, pos);
  pos += RETRY_INFO_TYPE_URL.length;
  pos = writeLenHeader(out, pos, 2, retryInfoLen);
  pos = writeLenHeader(out, pos, 1, durationLen);
  pos = putVarintField(out, pos, 1, seconds);
  putVarintField(out, pos, 2, nanos);
  return out;
}

/** google.rpc.Status { code, message, details[] }, with a RetryInfo detail when `retryDelay` is given. */
export function encodeRpcStatus(code: number, message: string, retryDelay = 0): Uint8Array {
  const msg = Buffer.from(message, 'utf8');
  const detail = retryDelay > 0 ? encodeRetryInfoAny(retryDelay) : null;
  const len = varintField(1, code) + (msg.length > 0 ? lenFieldSize(msg.length) : 0) + (detail ? lenFieldSize(detail.length) : 0);
  const out = new Uint8Array(len);
  let pos = putVarintField(out, 0, 1, code);
  if (msg.length > 0) {
    pos = writeLenHeader(out, pos, 2, msg.length);
    out.set(msg, pos);
    pos += msg.length;
  }
  if (detail) {
    pos = writeLenHeader(out, pos, 3, detail.length);
    out.set(detail, pos);
  }
  return out;
}

/** The gRPC spec's percent-encoding for grpc-message: printable ASCII except '%' passes through. */
export function percentEncode(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) {
    out += b < 0x20 || b > 0x7e || b === 0x25 ? '%' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b);
  }
  return out;
}
