/**
 * Human-readable renderings of an ExportTraceServiceRequest in the style of the Collector's debug
 * exporter (its otlptext marshaler). Fully decodes with protobufjs: this is for eyes, not throughput.
 */
import { otlpType } from '../../pipeline/batch/otlp-schema.js';

interface Kv {
  key: string;
  value?: AnyValue;
}
interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: Kv[] };
  bytesValue?: Buffer;
}
interface Span {
  traceId?: Buffer;
  spanId?: Buffer;
  parentSpanId?: Buffer;
  traceState?: string;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: Kv[];
  droppedAttributesCount?: number;
  events?: { timeUnixNano?: string; name?: string; attributes?: Kv[]; droppedAttributesCount?: number }[];
  links?: { traceId?: Buffer; spanId?: Buffer; traceState?: string; attributes?: Kv[]; droppedAttributesCount?: number }[];
  status?: { code?: number; message?: string };
}
interface Request {
  resourceSpans?: {
    resource?: { attributes?: Kv[] };
    schemaUrl?: string;
    scopeSpans?: { scope?: { name?: string; version?: string; attributes?: Kv[] }; schemaUrl?: string; spans?: Span[] }[];
  }[];
}

export function decodeRequest(bytes: Uint8Array): Request {
  const T = otlpType('ExportTraceServiceRequest');
  return T.toObject(T.decode(bytes), { longs: String, bytes: Buffer, enums: Number, defaults: false }) as Request;
}

/**
 * Attributes that carry a credential when no identity processor has removed them: their values are never
 * printed, in any verbosity. Compared lower-case (HTTP header names are case-insensitive).
 */
const CREDENTIAL_KEYS: ReadonlySet<string> = new Set([
  'http.request.header.authorization',
  'http.request.header.proxy-authorization',
  'http.request.header.cookie',
  'http.request.header.x-pomerium-jwt-assertion',
  'webauthn.assertion',
]);

export const REDACTED = '<redacted>';

export function isCredentialKey(key: string): boolean {
  return CREDENTIAL_KEYS.has(key.toLowerCase());
}

const KINDS = ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'];
const STATUS = ['Unset', 'Ok', 'Error'];

const hex = (b: Buffer | undefined): string => (b === undefined ? '' : b.toString('hex'));

/** The value as the Collector prints it: Str(x), Int(1), Bool(true), Double(1.5), Slice([...]), Map({...}), Bytes(base64). */
export function valueString(v: AnyValue | undefined): string {
  if (v === undefined) return 'Empty()';
  if (v.stringValue !== undefined) return `Str(${v.stringValue})`;
  if (v.boolValue !== undefined) return `Bool(${v.boolValue})`;
  if (v.intValue !== undefined) return `Int(${v.intValue})`;
  if (v.doubleValue !== undefined) return `Double(${v.doubleValue})`;
  if (v.bytesValue !== undefined) return `Bytes(${v.bytesValue.toString('base64')})`;
  if (v.arrayValue !== undefined) return `Slice(${JSON.stringify(plain(v))})`;
  if (v.kvlistValue !== undefined) return `Map(${JSON.stringify(plain(v))})`;
  return 'Empty()';
}

function plain(v: AnyValue | undefined): unknown {
  if (v === undefined) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.bytesValue !== undefined) return v.bytesValue.toString('base64');
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(plain);
  if (v.kvlistValue !== undefined) {
    const o: Record<string, unknown> = {};
    for (const kv of v.kvlistValue.values ?? []) o[kv.key] = isCredentialKey(kv.key) ? REDACTED : plain(kv.value);
    return o;
  }
  return null;
}

/** Nanoseconds since the epoch as Go's time.Time.String() in UTC: "2023-11-14 22:13:20.1 +0000 UTC". */
export function goTime(nanos: string | undefined): string {
  const n = BigInt(nanos ?? '0');
  const ms = Number(n / 1_000_000n);
  const frac = (n % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  const d = new Date(ms - (ms % 1000));
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac === '' ? '' : '.' + frac} +0000 UTC`;
}

function attrLines(out: string[], attrs: Kv[] | undefined, indent: string): void {
  for (const kv of attrs ?? []) out.push(`${indent}-> ${kv.key}: ${isCredentialKey(kv.key) ? REDACTED : valueString(kv.value)}`);
}

function flatAttrs(attrs: Kv[] | undefined): string {
  return (attrs ?? []).map((kv) => `${kv.key}=${isCredentialKey(kv.key) ? REDACTED : JSON.stringify(plain(kv.value))}`).join(' ');
}

export function countSpans(req: Request): { resources: number; spans: number } {
  let spans = 0;
  for (const rs of req.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
  return { resources: req.resourceSpans?.length ?? 0, spans };
}

/** normal: a line per resource and scope, then one line per span: name, trace id, span id, attributes. */
export function formatNormal(req: Request): string {
  const out: string[] = [];
  (req.resourceSpans ?? []).forEach((rs, ri) => {
    out.push(`ResourceSpans #${ri}${rs.schemaUrl ? ' [' + rs.schemaUrl + ']' : ''} ${flatAttrs(rs.resource?.attributes)}`.trimEnd());
    (rs.scopeSpans ?? []).forEach((ss, si) => {
      const scope = ss.scope?.name ?? '';
      out.push(`ScopeSpans #${si} ${scope}${ss.scope?.version ? '@' + ss.scope.version : ''}`.trimEnd());
      for (const sp of ss.spans ?? []) out.push(`${sp.name ?? ''} ${hex(sp.traceId)} ${hex(sp.spanId)} ${flatAttrs(sp.attributes)}`.trimEnd());
    });
  });
  return out.join('\n') + '\n';
}

/** detailed: every resource, scope and span with attributes, events, links and status. */
export function formatDetailed(req: Request): string {
  const out: string[] = [];
  (req.resourceSpans ?? []).forEach((rs, ri) => {
    out.push(`ResourceSpans #${ri}`);
    out.push(`Resource SchemaURL: ${rs.schemaUrl ?? ''}`);
    if ((rs.resource?.attributes?.length ?? 0) > 0) {
      out.push('Resource attributes:');
      attrLines(out, rs.resource?.attributes, '     ');
    }
    (rs.scopeSpans ?? []).forEach((ss, si) => {
      out.push(`ScopeSpans #${si}`);
      out.push(`ScopeSpans SchemaURL: ${ss.schemaUrl ?? ''}`);
      out.push(`InstrumentationScope ${ss.scope?.name ?? ''} ${ss.scope?.version ?? ''}`.trimEnd());
      if ((ss.scope?.attributes?.length ?? 0) > 0) {
        out.push('InstrumentationScope attributes:');
        attrLines(out, ss.scope?.attributes, '     ');
      }
      (ss.spans ?? []).forEach((sp, pi) => {
        out.push(`Span #${pi}`);
        out.push(`    Trace ID       : ${hex(sp.traceId)}`);
        out.push(`    Parent ID      : ${hex(sp.parentSpanId)}`);
        out.push(`    ID             : ${hex(sp.spanId)}`);
        out.push(`    Name           : ${sp.name ?? ''}`);
        out.push(`    Kind           : ${KINDS[sp.kind ?? 0] ?? `Kind(${sp.kind})`}`);
        if (sp.traceState) out.push(`    TraceState     : ${sp.traceState}`);
        out.push(`    Start time     : ${goTime(sp.startTimeUnixNano)}`);
        out.push(`    End time       : ${goTime(sp.endTimeUnixNano)}`);
        out.push(`    Status code    : ${STATUS[sp.status?.code ?? 0] ?? `Code(${sp.status?.code})`}`);
        out.push(`    Status message : ${sp.status?.message ?? ''}`);
        if ((sp.attributes?.length ?? 0) > 0) {
          out.push('Attributes:');
          attrLines(out, sp.attributes, '     ');
        }
        if ((sp.events?.length ?? 0) > 0) {
          out.push('Events:');
          sp.events!.forEach((ev, ei) => {
            out.push(`SpanEvent #${ei}`);
            out.push(`     -> Name: ${ev.name ?? ''}`);
            out.push(`     -> Timestamp: ${goTime(ev.timeUnixNano)}`);
            out.push(`     -> DroppedAttributesCount: ${ev.droppedAttributesCount ?? 0}`);
            if ((ev.attributes?.length ?? 0) > 0) {
              out.push('     -> Attributes::');
              attrLines(out, ev.attributes, '          ');
            }
          });
        }
        if ((sp.links?.length ?? 0) > 0) {
          out.push('Links:');
          sp.links!.forEach((ln, li) => {
            out.push(`SpanLink #${li}`);
            out.push(`     -> Trace ID: ${hex(ln.traceId)}`);
            out.push(`     -> ID: ${hex(ln.spanId)}`);
            out.push(`     -> TraceState: ${ln.traceState ?? ''}`);
            out.push(`     -> DroppedAttributesCount: ${ln.droppedAttributesCount ?? 0}`);
            if ((ln.attributes?.length ?? 0) > 0) {
              out.push('     -> Attributes::');
              attrLines(out, ln.attributes, '          ');
            }
          });
        }
      });
    });
  });
  return out.join('\n') + '\n';
}
