/**
 * Rules that require more for some spans: matched by service name, span name or attribute values, each
 * requiring a verified credential (by default), and optionally phishing resistance, a role, a method or
 * an issuer. Compiled once; matching compares bytes in the batch without building strings, except one
 * service name per resource.
 */
import { TraceBatch, encodeKey, VALUE_STRING } from '../../pipeline/batch/batch.js';
import { bytesEqual } from '../../pipeline/batch/wire.js';
import type { RuleConfig } from './config.js';
import type { Decision } from './decision.js';

interface CompiledRule {
  name: string;
  serviceNames: ReadonlySet<string> | null;
  spanNames: readonly Uint8Array[] | null;
  attributes: readonly { key: Uint8Array; value: Uint8Array }[];
  require: RuleConfig['require'];
}

const SERVICE_NAME = encodeKey('service.name');

export class Policy {
  private readonly rules: CompiledRule[];
  readonly usesServiceName: boolean;

  constructor(rules: readonly RuleConfig[]) {
    this.rules = rules.map((r) => ({
      name: r.name,
      serviceNames: r.match.service_name ? new Set(r.match.service_name) : null,
      spanNames: r.match.span_name ? r.match.span_name.map(encodeKey) : null,
      attributes: Object.entries(r.match.attributes ?? {}).map(([k, v]) => ({ key: encodeKey(k), value: encodeKey(v) })),
      require: r.require,
    }));
    this.usesServiceName = this.rules.some((r) => r.serviceNames !== null);
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /**
   * Every service.name of every resource in the batch (only when a rule needs it). A list may repeat a key,
   * and backends differ in which one they show, so a rule matches when any of them does.
   */
  serviceNames(batch: TraceBatch): (string[] | null)[] {
    const out: (string[] | null)[] = new Array(batch.resourceCount);
    for (let r = 0; r < out.length; r++) {
      let names: string[] | null = null;
      for (let more = batch.findResourceAttribute(r, SERVICE_NAME); more; more = batch.findNextResourceAttribute(r, SERVICE_NAME)) {
        const s = batch.foundString();
        if (s !== null) (names ??= []).push(s);
      }
      out[r] = names;
    }
    return out;
  }

  /**
   * The name of the first rule this span matches and does not satisfy, or null. `decision` is null when
   * the span carried no credential.
   */
  violated(batch: TraceBatch, span: number, decision: Decision | null, serviceNames: readonly string[] | null): string | null {
    for (const rule of this.rules) {
      if (!this.matches(rule, batch, span, serviceNames)) continue;
      if (!satisfies(rule, decision)) return rule.name;
    }
    return null;
  }

  private matches(rule: CompiledRule, batch: TraceBatch, span: number, serviceNames: readonly string[] | null): boolean {
    if (rule.serviceNames !== null && (serviceNames === null || !serviceNames.some((n) => rule.serviceNames!.has(n)))) return false;
    if (rule.spanNames !== null) {
      let any = false;
      for (const n of rule.spanNames) if (batch.spanNameEquals(span, n)) any = true;
      if (!any) return false;
    }
    for (const a of rule.attributes) if (!anyOccurrenceEquals(batch, span, a.key, a.value)) return false;
    return true;
  }
}

/** Whether any attribute of the span with this key has this string value (or an array starting with it). */
function anyOccurrenceEquals(batch: TraceBatch, span: number, key: Uint8Array, value: Uint8Array): boolean {
  for (let more = batch.findSpanAttribute(span, key); more; more = batch.findNextSpanAttribute(span, key)) {
    if (batch.foundFirstArrayString()) {
      const f = batch.found;
      if (f.kind === VALUE_STRING && bytesEqual(batch.bytes, f.valueStart, f.valueEnd, value)) return true;
    }
  }
  return false;
}

function satisfies(rule: CompiledRule, d: Decision | null): boolean {
  const req = rule.require;
  const verified = d !== null && d.ok;
  if (!verified) return !req.verified && !req.phishing_resistant && req.roles_any.length === 0 && req.methods.length === 0 && req.issuers.length === 0;
  if (req.phishing_resistant && !d.phishingResistant) return false;
  if (req.roles_any.length > 0 && !req.roles_any.some((r) => d.roles.has(r))) return false;
  if (req.methods.length > 0 && (d.method === null || !req.methods.includes(d.method))) return false;
  if (req.issuers.length > 0 && !req.issuers.includes(d.issuer)) return false;
  return true;
}
