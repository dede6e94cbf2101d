/**
 * Reading exported requests as a backend would: decoded by protobufjs (an independent codec), every
 * attribute list at every level, key-value lists flattened into dotted paths, and keys compared the way a
 * person reads them (an implementation written apart from the product's key folding).
 */
import { otlpType } from '../../pipeline/batch/otlp-schema.js';

export type Obj = any;

export function decodeRequest(bytes: Uint8Array): Obj {
  const T = otlpType('ExportTraceServiceRequest');
  return T.toObject(T.decode(bytes), { longs: String, bytes: String, defaults: false, arrays: true });
}

export interface AttributeList {
  where: 'resource' | 'scope' | 'span' | 'event' | 'link';
  attrs: Obj[];
  span?: Obj;
  resource?: Obj;
}

export function* attributeLists(req: Obj): Generator<AttributeList> {
  for (const rs of req.resourceSpans ?? []) {
    yield { where: 'resource', attrs: rs.resource?.attributes ?? [], resource: rs.resource };
    for (const ss of rs.scopeSpans ?? []) {
      yield { where: 'scope', attrs: ss.scope?.attributes ?? [] };
      for (const sp of ss.spans ?? []) {
        yield { where: 'span', attrs: sp.attributes ?? [], span: sp, resource: rs.resource };
        for (const ev of sp.events ?? []) yield { where: 'event', attrs: ev.attributes ?? [], span: sp };
        for (const ln of sp.links ?? []) yield { where: 'link', attrs: ln.attributes ?? [], span: sp };
      }
    }
  }
}

/** Every [dotted path, leaf value] of a list, key-value lists flattened (a backend that flattens shows these). */
export function flatten(attrs: readonly Obj[], prefix = ''): [string, Obj][] {
  const out: [string, Obj][] = [];
  for (const kv of attrs) {
    const path = prefix === '' ? String(kv.key ?? '') : `${prefix}.${String(kv.key ?? '')}`;
    const v = kv.value ?? {};
    if (v.kvlistValue !== undefined) out.push([path, v], ...flatten(v.kvlistValue.values ?? [], path));
    else out.push([path, v]);
  }
  return out;
}

const AROUND = /^[\s\u0000-\u001f\u007f-\u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]+|[\s\u0000-\u001f\u007f-\u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]+$/g;

/** A key as a reader sees it: blanks and invisible characters around it dropped, ASCII case ignored. */
export function readerKey(key: string): string {
  return key.replace(AROUND, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** A dotted path with each segment read as readerKey reads a key. */
export function readerPath(path: string): string {
  return path.split('.').map(readerKey).join('.');
}

/** The string value of an AnyValue, or the first string of an array; undefined otherwise. */
export function stringOf(v: Obj): string | undefined {
  if (typeof v?.stringValue === 'string') return v.stringValue;
  const first = v?.arrayValue?.values?.[0];
  return typeof first?.stringValue === 'string' ? first.stringValue : undefined;
}

/** Every attribute value a span shows under `key` (a list can repeat a key). */
export function spanValues(span: Obj, key: string): Obj[] {
  return (span.attributes ?? []).filter((kv: Obj) => kv.key === key).map((kv: Obj) => kv.value);
}
