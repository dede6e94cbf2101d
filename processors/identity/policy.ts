/**
 * Rules that require more for some spans: matched by service name, span name or attribute values, each
 * requiring a verified credential (by default), and optionally phishing resistance, a role, a method or
 * an issuer. Compiled once; matching compares bytes in the batch without building strings, except one
 * service name per resource.
 */
import { TraceBatch, encodeKey, VALUE_STRING } from '../../pipeline/batch.js';
import { bytesEqual } from '../../pipeline/wire.js';
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

  /** service.name of every resource in the batch (only when a rule needs it). */
  serviceNames(batch: TraceBatch): (string | null)[] {
    const out: (string | null)[] = new Array(batch.resourceCount);
    for (let r = 0; r < out.length; r++) out[r] = batch.findResourceAttribute(r, SERVICE_NAME) ? batch.foundString() : null;
    return out;
  }

  /**
   * The name of the first rule this span matches and does not satisfy, or null. `decision` is null when
   * the span carried no credential.
   */
  violated(batch: TraceBatch, span: number, decision: Decision | null, serviceName: string | null): string | null {
    for (const rule of this.rules) {
      if (!this.matches(rule, batch, span, serviceName)) continue;
      if (!satisfies(rule, decision)) return rule.name;
    }
    return null;
  }

  private matches(rule: CompiledRule, batch: TraceBatch, span: number, serviceName: string | null): boolean {
    if (rule.serviceNames !== null && (serviceName === null || !rule.serviceNames.has(serviceName))) return false;
    if (rule.spanNames !== null) {
      let any = false;
      for (const n of rule.spanNames) if (batch.spanNameEquals(span, n)) any = true;
      if (!any) return false;
    }
    for (const a of rule.attributes) {
      if (!batch.findSpanAttribute(span, a.key) || !batch.foundFirstArrayString()) return false;
      const f = batch.found;
      if (f.kind !== VALUE_STRING || !bytesEqual(batch.bytes, f.valueStart, f.valueEnd, a.value)) return false;
    }
    return true;
  }
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
