/**
 * The identity processor: proves who each span acts for. Per batch, in four passes:
 * 1. per span, one pass over its attributes strips the evidence and every attribute this processor
 *    writes (so none can be forged upstream), noting where the evidence was; each credential is looked up
 *    by its bytes in the decision cache;
 * 2. credentials not in the cache are verified, each once however many spans carry it, waiting for keys
 *    at most `max_key_wait`;
 * 3. per span, the rules are checked and the decision applied: pre-encoded attributes appended, or the
 *    span dropped, as configured;
 * 4. the resources, scopes and spans the validating scan marked (a protected key in another attribute
 *    list or nested, a credential outside the evidence) are rewritten by the sanitizer.
 * The raw credential is removed from every span whatever the outcome. Protected keys are matched folded
 * (case, surrounding blanks and invisible characters ignored), as a person reading the backend would.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Counter } from 'prom-client';
import { KeyMatcher, TraceBatch, encodeKey, VALUE_STRING } from '../../pipeline/batch/batch.js';
import { Inspection } from '../../pipeline/batch/inspection.js';
import { Sanitizer } from '../../identity/scrub/sanitizer.js';
import type { ComponentSettings, Processor, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import type { Issuer } from '../../identity/jwt/issuer.js';
import { buildIssuer } from '../../identity/jwt/build.js';
import type { KeySource } from '../../identity/keys/key-source.js';
import { JwtVerifier } from '../../identity/jwt/verifier.js';
import { failureCacheTtl, type FailureReason } from '../../identity/reasons.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import { AuditLog } from './audit.js';
import type { IdentityConfig } from './config.js';
import { CredentialCache } from './credential-cache.js';
import { DecisionBuilder, encodeClaim, protectedKeys, readClaim, type Decision } from './decision.js';
import { IdentityMetrics, resultIndex } from './metrics.js';
import { Policy } from './policy.js';
import { WebAuthnEvidence } from './webauthn-evidence.js';

const SPACE = 0x20;

/** A WebAuthn assertion not yet decided for its span. */
interface PendingAssertion {
  span: number;
  text: string;
  traceId: Buffer | null;
  spanId: Buffer | null;
  /** trace id + span id, hex: what a decision is bound to. */
  key: string;
}

export class IdentityProcessor implements Processor {
  private readonly issuers: Issuer[];
  private readonly verifier: JwtVerifier;
  private readonly cache: CredentialCache;
  private builder: DecisionBuilder;
  private readonly policy: Policy;
  private readonly metrics: IdentityMetrics;
  private readonly audit: AuditLog | null;
  /**
   * Evidence keys first (in priority order), then every protected key: one strip pass removes them all,
   * from span attributes and from resource attributes.
   */
  private readonly stripKeys: KeyMatcher;
  private readonly stripKeyNames: string[];
  private readonly evidenceCount: number;
  private readonly schemes: (Uint8Array | null)[];
  private readonly firstAt: Int32Array;
  private readonly inflight = new Map<string, Promise<Decision>>();
  private readonly senderKeys: Uint8Array[];
  private readonly senderClaims: [Uint8Array, string][];
  private readonly dropped: Map<string, Counter.Internal>;
  private readonly incoming: Counter.Internal;
  private readonly outgoing: Counter.Internal;
  private readonly malformed: Decision;
  private readonly missingTag: Uint8Array;
  private readonly policyFailures: Map<string, Decision>;
  private readonly webauthn: WebAuthnEvidence | null;
  /** Index of the WebAuthn attribute in stripKeys, or -1. */
  private readonly webauthnIndex: number;
  private readonly insp: Inspection;
  private readonly sanitizer: Sanitizer;
  /** For spans whose credential was not decided within max_key_wait. */
  private readonly undecided: Decision;

  constructor(
    private readonly settings: ComponentSettings,
    private readonly config: IdentityConfig,
    private readonly next: TracesConsumer,
  ) {
    const { id, telemetry } = settings;
    this.metrics = new IdentityMetrics(telemetry, id);
    const m = this.metrics;
    this.issuers = config.issuers.map((c) =>
      buildIssuer(c, config.keys, (issuer) => ({
        fetched: (outcome, count) => {
          m.keyFetches.labels(issuer, outcome).inc();
          m.keysLoaded.labels(issuer).set(count);
          if (outcome !== 'ok') settings.logger.warn('identity keys could not be loaded', { issuer, outcome });
        },
      })),
    );
    this.verifier = new JwtVerifier(this.issuers, config.max_token_bytes);
    this.cache = new CredentialCache(config.cache.max_entries, config.cache.max_bytes);
    this.builder = new DecisionBuilder({ claims: config.claims, pseudonymKey: null });
    this.policy = new Policy(config.rules);
    this.audit = config.audit.enabled ? new AuditLog(settings.logger, config.audit.max_per_second) : null;

    const evidence = config.jwt_attributes.map((e) => e.key);
    this.evidenceCount = evidence.length;
    this.schemes = config.jwt_attributes.map((e) => (e.scheme === undefined ? null : encodeKey(e.scheme.toLowerCase())));
    const wa = config.webauthn;
    this.webauthnIndex = wa === undefined ? -1 : evidence.length;
    if (wa !== undefined) evidence.push(wa.attribute);
    const guarded = protectedKeys([...Object.keys(config.claims), ...Object.keys(config.sender.attributes)]).filter((k) => !evidence.includes(k));
    this.stripKeyNames = [...evidence, ...guarded];
    this.stripKeys = KeyMatcher.of(this.stripKeyNames, true);
    const sc = config.scrub;
    this.insp = new Inspection({
      protect: this.stripKeyNames,
      sensitiveNames: sc.enabled ? sc.header_names : [],
      urlKeys: sc.enabled ? sc.url_attributes : [],
      secretParams: sc.enabled ? sc.query_parameters : [],
      tokens: sc.enabled && sc.tokens,
    });
    this.sanitizer = new Sanitizer(this.insp, this.metrics.scrubTally);
    this.webauthn =
      wa === undefined
        ? null
        : new WebAuthnEvidence(
            wa,
            config.keys,
            () => this.builder,
            config.cache.max_entries,
            config.cache.max_bytes,
            { success: config.cache.max_ttl, failure: config.cache.failure_ttl },
            {
              fetched: (outcome, count) => {
                const label = `webauthn:${wa.rp_id}`;
                m.keyFetches.labels(label, outcome).inc();
                m.keysLoaded.labels(label).set(count);
                if (outcome !== 'ok') settings.logger.warn('credential keys could not be loaded', { rp_id: wa.rp_id, outcome });
              },
            },
            settings.logger,
          );
    this.firstAt = new Int32Array(this.stripKeys.size);
    this.senderKeys = Object.keys(config.sender.attributes).map(encodeKey);
    this.senderClaims = Object.entries(config.sender.attributes).map(([k, claim]) => [encodeKey(k), claim]);

    this.malformed = this.builder.failure('malformed', 'jwt', 'none', null, Number.POSITIVE_INFINITY);
    this.undecided = this.builder.failure('keys_unavailable', null, 'none', null, 0);
    this.missingTag = this.builder.failureFields('missing', null);
    this.policyFailures = new Map();
    this.dropped = new Map();
    this.incoming = zeroed(telemetry.processorIncoming.labels(id, 'traces'));
    this.outgoing = zeroed(telemetry.processorOutgoing.labels(id, 'traces'));
  }

  /** The evidence and every protected key (stripped from every span), and the credential shapes scrubbed. */
  inspection(): Inspection {
    return this.insp;
  }

  async start(): Promise<void> {
    const p = this.config.pseudonymize;
    if (p !== undefined) {
      let key: Buffer;
      if (p.key_file !== undefined) {
        try {
          key = Buffer.from((await readFile(p.key_file, 'utf8')).trim());
        } catch (err) {
          throw new Error(`${this.settings.id}: cannot read pseudonymize.key_file ${p.key_file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
        }
      } else key = Buffer.from(p.key ?? '');
      if (key.length < 16) throw new Error(`${this.settings.id}: the pseudonymization key must be at least 16 bytes`);
      this.builder = new DecisionBuilder({ claims: this.config.claims, pseudonymKey: key });
    }
    // Key sets load in the background: an unreachable issuer never blocks start-up.
    for (const k of this.keySources()) k.start();
  }

  private keySources(): KeySource<unknown>[] {
    const all: KeySource<unknown>[] = this.issuers.map((i) => i.keys as KeySource<unknown>);
    if (this.webauthn !== null) all.push(this.webauthn.keys as KeySource<unknown>);
    return all;
  }

  isReady(): boolean {
    return this.keySources().every((k) => k.state() !== 'unavailable');
  }

  /** Resolves when every key set's first load has settled (succeeded or failed): for tests and tools. */
  async keysSettled(): Promise<void> {
    await Promise.all(this.keySources().map((k) => k.whenSettled()));
  }

  async shutdown(): Promise<void> {
    for (const k of this.keySources()) k.stop();
  }

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    // Reads see the bytes as received: a batch an earlier processor edited is sealed first, so what is
    // inspected is what goes on (rare: processors that edit usually come after this one).
    if (batch.hasEdits) batch = batch.seal();
    batch.inspect(this.insp);
    const n = batch.spanCount;
    this.incoming.inc(n);
    const now = Date.now();
    const buf = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    const decisions: (Decision | null)[] = new Array(n).fill(null);
    let pendingTokens: (string | null)[] | null = null;
    let distinct: Set<string> | null = null;
    let assertions: PendingAssertion[] | null = null;
    let hits = 0;

    for (let p = 0; p < n; p++) {
      batch.stripSpanAttributes(p, this.stripKeys, this.firstAt);
      // A passkey assertion, when present, is the evidence: it proves more than a session token.
      if (this.webauthnIndex >= 0 && this.firstAt[this.webauthnIndex]! >= 0) {
        // Span and where its assertion was: firstAt is reused by the next span.
        const d = this.assertionOf(batch, buf, p, this.firstAt[this.webauthnIndex]!, now);
        if ('ok' in d) decisions[p] = d;
        else (assertions ??= []).push(d);
        continue;
      }
      let e = 0;
      while (e < this.evidenceCount && this.firstAt[e] === -1) e++;
      if (e === this.evidenceCount) continue;
      if (!batch.readAttributeAt(this.firstAt[e]!) || !batch.foundFirstArrayString() || batch.found.kind !== VALUE_STRING) {
        decisions[p] = this.malformed;
        continue;
      }
      let start = batch.found.valueStart;
      let end = batch.found.valueEnd;
      const scheme = this.schemes[e]!;
      if (scheme !== null) {
        start = afterScheme(buf, start, end, scheme);
        if (start < 0) {
          decisions[p] = this.malformed;
          continue;
        }
      }
      while (end > start && buf[end - 1] === SPACE) end--;
      // Oversized: refused before a string is made or anything cached (the cache counts entries, not bytes).
      if (end === start || end - start > this.config.max_token_bytes) {
        decisions[p] = this.malformed;
        continue;
      }
      const recent = this.cache.recent(buf, start, end, now);
      if (recent !== null) {
        decisions[p] = recent;
        hits++;
        continue;
      }
      const token = buf.toString('latin1', start, end);
      const cached = this.cache.get(token, now);
      if (cached !== null) {
        this.cache.remember(Buffer.from(token, 'latin1'), cached);
        decisions[p] = cached;
        hits++;
        continue;
      }
      if (pendingTokens === null) {
        pendingTokens = new Array(n).fill(null);
        distinct = new Set();
      }
      pendingTokens[p] = token;
      distinct!.add(token);
    }
    this.metrics.cacheHits.inc(hits);

    let unavailable: Decision | null = null;
    if (distinct !== null || assertions !== null) {
      const tokens = distinct === null ? [] : [...distinct];
      this.metrics.cacheMisses.inc(tokens.length + (assertions?.length ?? 0));
      const results = await this.decideWithin(tokens, assertions, now);
      const byToken = new Map<string, Decision>();
      for (let i = 0; i < tokens.length; i++) byToken.set(tokens[i]!, results[i]!);
      for (let p = 0; p < n; p++) {
        const t = pendingTokens?.[p];
        if (t !== null && t !== undefined) decisions[p] = byToken.get(t)!;
      }
      if (assertions !== null) for (let i = 0; i < assertions.length; i++) decisions[assertions[i]!.span] = results[tokens.length + i]!;
      unavailable = results.find((d) => d.reason === 'keys_unavailable') ?? null;
    }
    if (unavailable !== null && this.config.on_keys_unavailable === 'refuse') {
      // Nothing is accepted: the sender keeps the spans and retries once the keys can be loaded.
      throw new PipelineError('UNAVAILABLE', `identity keys are unavailable for ${unavailable === this.undecided ? 'a configured issuer (not loaded within max_key_wait)' : unavailable.issuer}`, Math.max(1000, this.config.max_key_wait));
    }

    this.apply(batch, decisions);
    this.sanitizer.sanitize(batch);
    // Identity attributes a sender wrote on its resources would show beside the spans in most backends.
    for (let r = 0; r < batch.resourceCount; r++) batch.stripResourceAttributes(r, this.stripKeys);
    this.setSenderAttributes(batch, ctx);
    this.metrics.flush();
    this.metrics.cacheBytes.set(this.cache.bytes + (this.webauthn?.cacheBytes ?? 0));
    const live = batch.liveSpanCount;
    if (live === 0) return;
    await this.next.consume(batch, ctx);
    this.outgoing.inc(live);
  }

  private apply(batch: TraceBatch, decisions: (Decision | null)[]): void {
    const cfg = this.config;
    const tally = this.metrics.tally;
    const serviceNames = this.policy.usesServiceName ? this.policy.serviceNames(batch) : null;
    for (let p = 0; p < decisions.length; p++) {
      let d = decisions[p]!;
      if (!this.policy.empty) {
        const service = serviceNames === null ? null : serviceNames[batch.spanResource(p)]!;
        if (this.policy.violated(batch, p, d, service) !== null) d = this.policyFailure(d);
      }
      if (d === null) {
        tally[resultIndex('missing')]!++;
        if (cfg.on_missing === 'tag') batch.appendSpanAttributesEncoded(p, this.missingTag);
        else if (cfg.on_missing === 'drop') this.drop(batch, p, 'missing');
      } else if (d.ok) {
        tally[0]!++;
        batch.appendSpanAttributesEncoded(p, d.fields);
      } else {
        tally[resultIndex(d.reason!)]!++;
        // Keys that cannot be loaded say nothing about the credential: on_keys_unavailable decides
        // (refusing happened above), not on_invalid.
        if (cfg.on_invalid === 'drop' && d.reason !== 'keys_unavailable') this.drop(batch, p, d.reason!);
        else batch.appendSpanAttributesEncoded(p, d.fields);
      }
    }
  }

  private drop(batch: TraceBatch, span: number, reason: FailureReason): void {
    batch.dropSpan(span);
    let c = this.dropped.get(reason);
    if (c === undefined) {
      c = this.settings.telemetry.dropped(this.settings.id, `identity_${reason}`);
      this.dropped.set(reason, c);
    }
    c.inc();
  }

  private policyFailure(d: Decision | null): Decision {
    const method = d?.method ?? null;
    const key = method ?? '';
    let f = this.policyFailures.get(key);
    if (f === undefined) {
      f = this.builder.failure('policy', method, 'none', null, Number.POSITIVE_INFINITY);
      this.policyFailures.set(key, f);
    }
    return f;
  }

  /**
   * The WebAuthn assertion the strip pass found on span `p`: its decision when it is malformed or already
   * decided for this span (no await on the common path), else what `verifyAssertion` needs.
   */
  private assertionOf(batch: TraceBatch, buf: Buffer, p: number, fieldStart: number, now: number): Decision | PendingAssertion {
    const wa = this.webauthn!;
    if (!batch.readAttributeAt(fieldStart) || !batch.foundFirstArrayString() || batch.found.kind !== VALUE_STRING) {
      return this.builder.failure('malformed', 'webauthn', wa.label, null, Number.POSITIVE_INFINITY);
    }
    const text = buf.toString('utf8', batch.found.valueStart, batch.found.valueEnd);
    const t = batch.traceIdOffset(p);
    const sp = batch.spanIdOffset(p);
    const traceId = t < 0 ? null : buf.subarray(t, t + 16);
    const spanId = sp < 0 ? null : buf.subarray(sp, sp + 8);
    const key = `${traceId === null ? '-' : traceId.toString('hex')}${spanId === null ? '-' : spanId.toString('hex')}`;
    const cached = wa.cached(text, key, now);
    if (cached === null) return { span: p, text, traceId, spanId, key };
    this.metrics.cacheHits.inc();
    return cached;
  }

  /**
   * Decisions for credentials not in the cache: each token verified once (sharing a verification under
   * way), assertions one after another (the replay guard must see them in order). Waits at most
   * max_key_wait: what is undecided by then is `undecided` (keys unavailable, not cached) while its
   * verification goes on and caches its result for the next batch. Results: tokens, then assertions.
   */
  private async decideWithin(tokens: readonly string[], assertions: readonly PendingAssertion[] | null, now: number): Promise<Decision[]> {
    const results: (Decision | undefined)[] = new Array(tokens.length + (assertions?.length ?? 0));
    const work: Promise<unknown>[] = tokens.map((t, i) =>
      this.decide(t).then(
        (d) => (results[i] = d),
        (err: unknown) => this.settings.logger.error('identity verification failed unexpectedly', { error: (err as Error).name }),
      ),
    );
    if (assertions !== null) {
      work.push(
        (async () => {
          for (let i = 0; i < assertions.length; i++) results[tokens.length + i] = await this.verifyAssertion(assertions[i]!, now);
        })().catch((err: unknown) => this.settings.logger.error('identity verification failed unexpectedly', { error: (err as Error).name })),
      );
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(work), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.config.max_key_wait)))]);
    clearTimeout(timer);
    for (let i = 0; i < results.length; i++) results[i] ??= this.undecided;
    return results as Decision[];
  }

  private async verifyAssertion(a: PendingAssertion, now: number): Promise<Decision> {
    const t0 = performance.now();
    const d = await this.webauthn!.verify(a.text, a.traceId, a.spanId, a.key, now);
    this.metrics.verification(d.issuer, d.ok ? 'verified' : d.reason!, (performance.now() - t0) / 1000, 'webauthn');
    this.audit?.decision(d);
    return d;
  }

  /** Verifies one credential (sharing a verification already under way) and caches the decision. */
  private decide(token: string): Promise<Decision> {
    let p = this.inflight.get(token);
    if (p === undefined) {
      p = this.verify(token).finally(() => this.inflight.delete(token));
      this.inflight.set(token, p);
    }
    return p;
  }

  private async verify(token: string): Promise<Decision> {
    const t0 = performance.now();
    const r = await this.verifier.verify(token, Date.now());
    const now = Date.now();
    const cfg = this.config.cache;
    let d: Decision;
    if (r.ok) {
      d = this.builder.jwtSuccess(token, r.issuer.issuer, r.claims, Math.min(r.expiresAtMs, now + cfg.max_ttl));
    } else {
      d = this.builder.failure(r.reason, 'jwt', r.issuer?.issuer ?? 'none', token, now + failureCacheTtl(r.reason, cfg.failure_ttl));
    }
    this.metrics.verification(d.issuer, d.ok ? 'verified' : d.reason!, (performance.now() - t0) / 1000, 'jwt');
    if (d.validUntilMs > now) this.cache.set(token, Buffer.from(token, 'latin1'), d);
    this.audit?.decision(d);
    return d;
  }

  /** The sender's identity (from the receiver's authenticator) on every resource; never from the data. */
  private setSenderAttributes(batch: TraceBatch, ctx: RequestContext): void {
    if (this.senderKeys.length === 0) return;
    const auth = ctx.auth;
    if (auth === null) return;
    // The strip pass removed any the sender wrote (its keys are protected).
    for (let r = 0; r < batch.resourceCount; r++) {
      for (const [key, claim] of this.senderClaims) {
        const v = claim === 'sub' ? auth.subject : claim === 'iss' ? auth.issuer : readClaim(auth.claims, claim);
        const enc = encodeClaim(v);
        if (enc !== null) batch.setResourceAttribute(r, key, enc);
      }
    }
  }
}

/** Start of the token after a case-insensitive auth scheme and its spaces, or -1 when the scheme is absent. */
function afterScheme(buf: Buffer, start: number, end: number, schemeLower: Uint8Array): number {
  const n = schemeLower.length;
  if (end - start <= n) return -1;
  for (let i = 0; i < n; i++) {
    const c = buf[start + i]!;
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== schemeLower[i]) return -1;
  }
  let p = start + n;
  if (buf[p] !== SPACE) return -1;
  while (p < end && buf[p] === SPACE) p++;
  return p;
}
