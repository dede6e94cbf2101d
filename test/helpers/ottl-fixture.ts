/**
 * A request with the span fields OTTL reads (kind, status, times, parent, trace state, events, nested
 * attribute values), encoded with protobufjs, and a way to evaluate OTTL against it and decode the result.
 */
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import { CTX_SPAN, Target, compileCondition, compileStatement, type ContextLevel } from '../../ottl/index.js';

const T = otlpType('ExportTraceServiceRequest');

type Plain = Record<string, unknown>;

export function av(v: unknown): Plain {
  if (v === null) return {};
  if (Array.isArray(v)) return { arrayValue: { values: v.map(av) } };
  if (v instanceof Uint8Array) return { bytesValue: v };
  switch (typeof v) {
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'bigint':
      return { intValue: v.toString() };
    case 'number':
      return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
    default:
      return { kvlistValue: { values: kv(v as Record<string, unknown>) } };
  }
}

export function kv(attrs: Record<string, unknown>): Plain[] {
  return Object.entries(attrs).map(([key, v]) => ({ key, value: av(v) }));
}

export interface FixtureSpan {
  name?: string;
  kind?: number;
  attributes?: Record<string, unknown>;
  status?: { code?: number; message?: string };
  parentSpanId?: Buffer;
  traceState?: string;
  events?: { name: string; timeUnixNano?: string; attributes?: Record<string, unknown> }[];
  start?: string;
  end?: string;
  spanId?: Buffer;
  traceId?: Buffer;
}

export interface FixtureResource {
  attributes?: Record<string, unknown>;
  scopes: { name?: string; version?: string; attributes?: Record<string, unknown>; spans: FixtureSpan[] }[];
}

export function fixtureRequest(resources: FixtureResource[]): Uint8Array {
  let n = 0;
  return T.encode(
    T.fromObject({
      resourceSpans: resources.map((r) => ({
        resource: { attributes: kv(r.attributes ?? {}) },
        scopeSpans: r.scopes.map((s) => ({
          scope: { name: s.name ?? 'lib', version: s.version ?? '1.0', attributes: kv(s.attributes ?? {}) },
          spans: s.spans.map((sp) => {
            n++;
            return {
              traceId: sp.traceId ?? Buffer.alloc(16, 0xab),
              spanId: sp.spanId ?? Buffer.from([0, 0, 0, 0, 0, 0, 0, n]),
              parentSpanId: sp.parentSpanId,
              traceState: sp.traceState,
              name: sp.name ?? 'span',
              kind: sp.kind ?? 2,
              startTimeUnixNano: sp.start ?? '1700000000000000000',
              endTimeUnixNano: sp.end ?? '1700000000250000000',
              attributes: kv(sp.attributes ?? {}),
              events: (sp.events ?? []).map((e) => ({ name: e.name, timeUnixNano: e.timeUnixNano ?? '1700000000100000000', attributes: kv(e.attributes ?? {}) })),
              status: sp.status,
            };
          }),
        })),
      })),
    }),
  ).finish();
}

export function oneSpan(span: FixtureSpan, resource: Record<string, unknown> = { 'service.name': 'checkout' }): TraceBatch {
  return new TraceBatch(fixtureRequest([{ attributes: resource, scopes: [{ spans: [span] }] }]));
}

/** Evaluates a condition on span 0 of the batch. */
export function evalCondition(batch: TraceBatch, condition: string, context: ContextLevel = CTX_SPAN): boolean {
  const t = new Target();
  t.reset(batch, context);
  t.atSpan(0);
  if (context > CTX_SPAN) {
    t.firstEvent();
    t.nextEvent();
  }
  return compileCondition(condition, context).test(t);
}

/** Runs statements on span 0 and returns the exported request decoded. */
export function runOnSpan(batch: TraceBatch, statements: string[]): DecodedRequest {
  const t = new Target();
  t.reset(batch, CTX_SPAN);
  t.atSpan(0);
  for (const s of statements) compileStatement(s, CTX_SPAN).run(t);
  t.flushSpan();
  t.flushResource();
  return decodeRequest(batch.encode());
}

export interface DecodedRequest {
  resourceSpans: { resource?: { attributes?: Plain[] }; scopeSpans: { spans: Plain[] }[] }[];
}

export function decodeRequest(bytes: Uint8Array): DecodedRequest {
  return T.toObject(T.decode(bytes), { longs: String, bytes: Buffer, defaults: false, arrays: true }) as DecodedRequest;
}

/** An attribute list (protobufjs objects) as a plain record. */
export function attrs(list: Plain[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of list ?? []) out[item.key as string] = plain(item.value as Plain);
  return out;
}

function plain(v: Plain | undefined): unknown {
  if (v === undefined) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return BigInt(v.intValue as string);
  if ('doubleValue' in v) return v.doubleValue;
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return ((v.arrayValue as Plain).values as Plain[] | undefined ?? []).map(plain);
  if ('kvlistValue' in v) return attrs((v.kvlistValue as Plain).values as Plain[]);
  return null;
}
