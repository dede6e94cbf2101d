/**
 * Test helpers that build and read OTLP trace requests with protobufjs (an independent codec from the
 * wire scanner under test).
 */
import { randomBytes } from 'node:crypto';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';

export type AttrValue = string | number | boolean | string[];

export interface SpanSpec {
  name?: string;
  traceId?: Buffer;
  spanId?: Buffer;
  attributes?: Record<string, AttrValue>;
}

export interface ResourceSpec {
  attributes?: Record<string, AttrValue>;
  scopes: { name?: string; spans: SpanSpec[] }[];
}

export function anyValue(v: AttrValue): Record<string, unknown> {
  if (Array.isArray(v)) return { arrayValue: { values: v.map((s) => ({ stringValue: s })) } };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Number.isInteger(v)) return { intValue: v };
  return { doubleValue: v };
}

function kvs(attrs: Record<string, AttrValue> | undefined): Record<string, unknown>[] {
  return Object.entries(attrs ?? {}).map(([key, v]) => ({ key, value: anyValue(v) }));
}

/** Encodes a request from a compact description. Ids are random unless given. */
export function buildRequest(resources: ResourceSpec[]): Uint8Array {
  const T = otlpType('ExportTraceServiceRequest');
  const msg = T.fromObject({
    resourceSpans: resources.map((r) => ({
      resource: { attributes: kvs(r.attributes) },
      scopeSpans: r.scopes.map((s) => ({
        scope: { name: s.name ?? 'test-scope', version: '1.0.0' },
        spans: s.spans.map((sp) => ({
          traceId: sp.traceId ?? randomBytes(16),
          spanId: sp.spanId ?? randomBytes(8),
          name: sp.name ?? 'span',
          kind: 2,
          startTimeUnixNano: '1700000000000000000',
          endTimeUnixNano: '1700000000100000000',
          attributes: kvs(sp.attributes),
          status: { code: 1 },
        })),
      })),
    })),
  });
  return T.encode(msg).finish();
}

/** A request with `spans` spans spread over one resource and one scope, each with `attrs` attributes. */
export function syntheticRequest(spans: number, attrs = 10, extra: (i: number) => Record<string, AttrValue> = () => ({})): Uint8Array {
  const list: SpanSpec[] = [];
  for (let i = 0; i < spans; i++) {
    const attributes: Record<string, AttrValue> = {};
    for (let a = 0; a < attrs; a++) attributes[`attr.${a}`] = a % 3 === 0 ? `value-${i}-${a}` : a % 3 === 1 ? i * a : a % 2 === 0;
    Object.assign(attributes, extra(i));
    list.push({ name: `op-${i % 17}`, attributes });
  }
  return buildRequest([{ attributes: { 'service.name': 'checkout', 'host.name': 'node-1' }, scopes: [{ spans: list }] }]);
}

export interface DecodedSpan {
  traceId: string;
  spanId: string;
  name: string;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
}

function plainValue(v: Record<string, unknown> | undefined): unknown {
  if (!v) return undefined;
  if ('stringValue' in v) return v['stringValue'];
  if ('boolValue' in v) return v['boolValue'];
  if ('intValue' in v) return Number(v['intValue']);
  if ('doubleValue' in v) return v['doubleValue'];
  if ('arrayValue' in v) return ((v['arrayValue'] as { values?: Record<string, unknown>[] }).values ?? []).map(plainValue);
  if ('kvlistValue' in v) return attrsOf((v['kvlistValue'] as { values?: unknown[] }).values);
  if ('bytesValue' in v) return v['bytesValue'];
  return undefined;
}

function attrsOf(list: unknown[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of (list ?? []) as { key: string; value?: Record<string, unknown> }[]) out[kv.key] = plainValue(kv.value);
  return out;
}

/** Decodes a request into a flat list of spans with their resource attributes. */
export function decodeSpans(bytes: Uint8Array): DecodedSpan[] {
  const T = otlpType('ExportTraceServiceRequest');
  const obj = T.toObject(T.decode(bytes), { longs: String, bytes: Buffer, defaults: false, oneofs: false }) as {
    resourceSpans?: { resource?: { attributes?: unknown[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
  };
  const out: DecodedSpan[] = [];
  for (const rs of obj.resourceSpans ?? []) {
    const resource = attrsOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const sp of ss.spans ?? []) {
        out.push({
          traceId: sp['traceId'] ? Buffer.from(sp['traceId'] as Uint8Array).toString('hex') : '',
          spanId: sp['spanId'] ? Buffer.from(sp['spanId'] as Uint8Array).toString('hex') : '',
          name: (sp['name'] as string) ?? '',
          attributes: attrsOf(sp['attributes'] as unknown[]),
          resource,
        });
      }
    }
  }
  return out;
}
