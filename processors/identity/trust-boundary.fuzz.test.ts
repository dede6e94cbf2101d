/**
 * A differential test of the trust boundary over generated requests: random trees holding forged identity
 * (every key variant, every attribute level, nested lists), planted secrets (valid and forged JWTs, API
 * keys, cookies, OAuth codes, passkey assertions) in every place, a rule keyed on service.name; then
 * rewritten on the wire (fields reordered, unknown fields added, non-minimal varints, singular fields
 * split or repeated, bytes mutated). Each goes through the receiver's validating scan and the identity
 * processor; protobufjs decodes what came out, and:
 * - nothing the scan accepted fails to decode in protobufjs;
 * - no planted secret appears anywhere in the output bytes;
 * - no protected key appears in any attribute list except as the processor wrote it on spans;
 * - identity.verified=true appears only on spans that carried a valid token, with that token's subject;
 * - every span under a resource protobufjs sees as service.name=payments is verified (the rule held).
 * Bounded by count and time; the seed is printed so a failure can be replayed (FUZZ_SEED=...).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { jwksOf, makeSigningKey, signJwt, startJwksServer, validClaims, type JwksServer, type SigningKey } from '../../test/helpers/jwks-server.js';
import { attributeLists, decodeRequest, flatten, readerPath, stringOf, type Obj } from '../../test/helpers/otlp-walk.js';
import { identitySchema } from './config.js';
import { IdentityProcessor } from './identity-processor.js';
import { prng } from '../../test/helpers/prng.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'fuzz', auth: null };
const AUTH = 'http.request.header.authorization';
const COUNT = Number(process.env['FUZZ_COUNT'] ?? 2500);
const BUDGET_MS = Number(process.env['FUZZ_MS'] ?? 8000);
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);


const PROTECTED = ['identity.verified', 'identity.failure', 'identity.issuer', 'identity.method', 'identity.auth_methods', 'identity.phishing_resistant', 'identity.credential.fingerprint', 'enduser.pseudo.id', 'identity.webauthn.user_verified', 'identity.webauthn.counter_regression', 'enduser.id', 'user.roles', AUTH, 'http.request.header.x-pomerium-jwt-assertion', 'telemetry.sender.id'];
/** What the processor writes on a span (canonical keys, once each). */
const WRITTEN = new Set(['identity.verified', 'identity.failure', 'identity.issuer', 'identity.method', 'identity.auth_methods', 'identity.phishing_resistant', 'identity.credential.fingerprint', 'enduser.id', 'user.roles']);

let server: JwksServer;
let key: SigningKey;
let valid: string[];
let forged: string[];

before(async () => {
  key = await makeSigningKey('ES256', 'fz-1');
  server = await startJwksServer({ keys: jwksOf(key) });
  valid = await Promise.all([1, 2, 3].map((i) => signJwt(validClaims(server.issuer, 'checkout', { sub: 'alice', n: i }), key)));
  const other = await makeSigningKey('ES256', 'fz-1');
  forged = [
    ...(await Promise.all([1, 2, 3, 4].map((i) => signJwt(validClaims(server.issuer, 'checkout', { sub: 'mallory', n: i }), other)))),
    ...(await Promise.all([1, 2].map((i) => signJwt(validClaims(server.issuer, 'elsewhere', { sub: 'mallory', n: i }), key)))),
    `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify({ iss: server.issuer, sub: 'mallory', aud: 'checkout' })).toString('base64url')}.`,
  ];
});
after(() => server.stop());

class Gen {
  readonly secrets: string[] = [];
  constructor(readonly rnd: () => number) {}
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }
  secret(prefix: string): string {
    const s = `${prefix}${this.bytes(12).toString('hex')}`;
    this.secrets.push(s);
    return s;
  }
  /** A key as a forger would vary it: case, blanks, controls and invisible characters around it. */
  variant(k: string): string {
    let out = this.chance(0.5) ? k : k.replace(/[a-z]/g, (c) => (this.chance(0.5) ? c.toUpperCase() : c));
    const around = [' ', '\t', '\u0000', '\u200b', '\u00a0', '\ufeff', '\u2028', '\u007f', '\u00ad'];
    if (this.chance(0.4)) out = this.pick(around) + out;
    if (this.chance(0.4)) out += this.pick(around);
    return out;
  }
  token(): string {
    if (this.chance(0.4)) return this.pick(valid);
    const t = this.pick(forged);
    return t;
  }
  sv(s: string): Obj {
    return { stringValue: s };
  }
  value(depth: number, prefixKey?: string): Obj {
    const r = this.int(10);
    if (r < 4) return this.sv(this.text());
    if (r === 4) return { intValue: this.int(1000) };
    if (r === 5) return { boolValue: this.chance(0.5) };
    if (r === 6 && depth < 3) return { arrayValue: { values: Array.from({ length: this.int(3) }, () => this.value(depth + 1)) } };
    if (r === 7 && depth < 3) return { kvlistValue: { values: Array.from({ length: 1 + this.int(3) }, () => this.attribute(depth + 1, prefixKey)) } };
    return this.sv(`plain-${this.int(100)}`);
  }
  /** Free text, sometimes carrying a secret. */
  text(): string {
    switch (this.int(8)) {
      case 0:
        return `failed with ${this.token()}`;
      case 1:
        return this.token();
      case 2:
        return `Bearer ${this.token()}`;
      default:
        return this.pick(['GET /api', 'they keyed money', 'ok', 'https://x.example/a?b=c', `id-${this.int(1e6)}`]);
    }
  }
  attribute(depth: number, prefixKey?: string): Obj {
    switch (this.int(12)) {
      case 0:
        return { key: this.variant(this.pick(PROTECTED)), value: this.chance(0.5) ? { boolValue: true } : this.sv('mallory') };
      case 1: {
        // A protected prefix holding a protected remainder, nested.
        const k = this.pick(PROTECTED);
        const cut = k.indexOf('.');
        return { key: this.variant(k.slice(0, cut)), value: { kvlistValue: { values: [{ key: this.variant(k.slice(cut + 1)), value: this.sv('mallory') }] } } };
      }
      case 2:
        return { key: this.variant(this.pick(['http.request.header.authorization', 'authorization', 'http.request.header.proxy-authorization', 'Authorization'])), value: this.chance(0.5) ? this.sv(`Bearer ${this.token()}`) : { arrayValue: { values: [this.sv(`Bearer ${this.token()}`)] } } };
      case 3:
        return { key: this.variant(this.pick(['http.request.header.cookie', 'cookie', 'http.response.header.set-cookie', 'x-api-key', 'http.request.header.x-api-key'])), value: this.sv(this.secret('s3cr3t')) };
      case 4:
        return { key: this.pick(['url.query', 'url.full', 'http.url', 'http.target']), value: this.sv(`https://app.example/cb?${this.pick(['code', 'access_token', 'id_token', 'token', 'Code'])}=${this.secret('c0de')}&state=x${this.chance(0.5) ? `&id_token=${this.token()}` : ''}`) };
      case 5:
        return { key: 'headers', value: { kvlistValue: { values: [{ key: this.variant('Authorization'), value: this.sv(`Bearer ${this.token()}`) }] } } };
      case 6:
        return { key: 'app.passkey', value: this.sv(JSON.stringify({ id: 'AA', response: { clientDataJSON: Buffer.from(`{"type":"webauthn.get","challenge":"${this.secret('ch')}"}`).toString('base64url'), authenticatorData: 'SZYN', signature: this.secret('sig') } })) };
      default:
        return { key: prefixKey !== undefined && this.chance(0.3) ? 'id' : `app.attr${this.int(20)}`, value: this.value(depth, prefixKey) };
    }
  }
  attributes(n: number): Obj[] {
    return Array.from({ length: n }, () => this.attribute(0));
  }
  request(): Obj {
    let sid = 0;
    const resourceSpans = Array.from({ length: 1 + this.int(2) }, () => {
      const service = this.pick(['checkout', 'payments', 'payments', 'search']);
      const resAttrs = [{ key: 'service.name', value: this.sv(service) }, ...this.attributes(this.int(3))];
      if (this.chance(0.2)) resAttrs.push({ key: 'service.name', value: this.sv(this.pick(['payments', 'checkout'])) });
      return {
        resource: { attributes: resAttrs },
        scopeSpans: Array.from({ length: 1 + this.int(2) }, () => ({
          scope: { name: this.chance(0.2) ? this.text() : 'lib', version: '1', attributes: this.attributes(this.int(3)) },
          spans: Array.from({ length: 1 + this.int(4) }, () => {
            const name = `span-${sid++}`;
            const attrs = [{ key: 'fuzz.span', value: this.sv(name) }, ...this.attributes(this.int(5))];
            if (this.chance(0.6)) {
              const tok = this.token();
              attrs.splice(1 + this.int(attrs.length), 0, { key: AUTH, value: this.sv(`Bearer ${tok}`) });
            }
            return {
              traceId: this.bytes(16),
              spanId: this.bytes(8),
              name: this.chance(0.2) ? `${name} ${this.text()}` : name,
              attributes: attrs,
              events: Array.from({ length: this.int(2) }, () => ({ name: this.chance(0.3) ? this.text() : 'ev', timeUnixNano: '1', attributes: this.attributes(this.int(3)) })),
              links: Array.from({ length: this.int(2) }, () => ({ traceId: this.bytes(16), spanId: this.bytes(8), attributes: this.attributes(this.int(3)) })),
              status: this.chance(0.5) ? { code: 2, message: this.text() } : undefined,
            };
          }),
        })),
      };
    });
    for (const t of [...valid, ...forged]) this.secrets.push(t, t.split('.')[2] ?? '');
    return { resourceSpans };
  }
}

// ---- wire-level rewriting: a generic field tree with the trace schema's nesting ----

interface Field {
  num: number;
  wt: number;
  raw: Uint8Array; // the value bytes (varint/fixed) or the content (LEN)
  children: Field[] | null;
}
const NESTED: Record<string, Record<number, string>> = {
  Req: { 1: 'RS' },
  RS: { 1: 'Res', 2: 'SS' },
  Res: { 1: 'KV' },
  SS: { 1: 'Scope', 2: 'Span' },
  Scope: { 3: 'KV' },
  Span: { 9: 'KV', 11: 'Event', 13: 'Link', 15: 'Status' },
  Event: { 3: 'KV' },
  Link: { 4: 'KV' },
  Status: {},
  KV: { 2: 'Any' },
  Any: { 5: 'Arr', 6: 'KVL' },
  Arr: { 1: 'Any' },
  KVL: { 1: 'KV' },
};
/** Singular embedded messages a decoder would merge if sent twice. */
const SINGULAR_MESSAGES: Record<string, number[]> = { RS: [1], SS: [1], Span: [15], KV: [2], Any: [5, 6] };
/** Singular scalars (last one wins in a decoder). */
const SINGULAR_SCALARS: Record<string, number[]> = { Span: [1, 2, 5, 6], KV: [1], Scope: [1, 2], Event: [2], Status: [2, 3] };

function readVarint(b: Uint8Array, p: number): [number, number] {
  let v = 0;
  let s = 0;
  for (;;) {
    const c = b[p++]!;
    v += (c & 0x7f) * 2 ** s;
    s += 7;
    if (c < 0x80) return [v, p];
  }
}
function parse(b: Uint8Array, type: string): Field[] {
  const out: Field[] = [];
  let p = 0;
  while (p < b.length) {
    const [tag, q] = readVarint(b, p);
    p = q;
    const num = Math.floor(tag / 8);
    const wt = tag & 7;
    let raw: Uint8Array;
    if (wt === 0) {
      const s = p;
      while (b[p]! >= 0x80) p++;
      p++;
      raw = b.subarray(s, p);
    } else if (wt === 1) {
      raw = b.subarray(p, p + 8);
      p += 8;
    } else if (wt === 5) {
      raw = b.subarray(p, p + 4);
      p += 4;
    } else {
      const [n, r] = readVarint(b, p);
      raw = b.subarray(r, r + n);
      p = r + n;
    }
    const child = NESTED[type]?.[num];
    out.push({ num, wt, raw, children: wt === 2 && child !== undefined ? parse(raw, child) : null });
  }
  return out;
}
function varint(n: number, pad = 0): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  // Non-minimal: continuation bytes of zero, still a valid encoding of the same number (at most 5 bytes).
  for (let i = 0; i < pad && out.length < 5; i++) {
    out[out.length - 1]! |= 0x80;
    out.push(0);
  }
  return out;
}
function serialize(fields: Field[], g: Gen | null): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const content = f.children !== null ? serialize(f.children, g) : Buffer.from(f.raw);
    parts.push(Buffer.from(varint(f.num * 8 + f.wt)));
    if (f.wt === 2) parts.push(Buffer.from(varint(content.length, g !== null && g.chance(0.02) ? 1 + g.int(2) : 0)));
    parts.push(content);
  }
  return Buffer.concat(parts);
}
type Mutation = 'reorder' | 'unknown' | 'split' | 'repeat' | 'bytes' | 'none';
function mutate(g: Gen, fields: Field[], type: string, m: Mutation): void {
  for (const f of fields) if (f.children !== null) mutate(g, f.children, NESTED[type]![f.num]!, m);
  if (m === 'reorder' && g.chance(0.3)) fields.sort(() => g.rnd() - 0.5);
  if (m === 'unknown' && g.chance(0.2)) {
    const wt = g.pick([0, 1, 2, 5]);
    fields.splice(g.int(fields.length + 1), 0, { num: 100 + g.int(900), wt, raw: wt === 0 ? Uint8Array.of(0x96, 0x01) : wt === 1 ? new Uint8Array(8) : wt === 5 ? new Uint8Array(4) : Buffer.from('unknown'), children: null });
  }
  if (m === 'split' && g.chance(0.3)) {
    for (const num of SINGULAR_MESSAGES[type] ?? []) {
      const i = fields.findIndex((f) => f.num === num && f.children !== null && f.children.length > 1);
      if (i < 0) continue;
      const f = fields[i]!;
      const cut = 1 + g.int(f.children!.length - 1);
      fields.splice(i, 1, { ...f, children: f.children!.slice(0, cut) }, { ...f, children: f.children!.slice(cut) });
      return;
    }
  }
  if (m === 'repeat' && g.chance(0.3)) {
    for (const num of SINGULAR_SCALARS[type] ?? []) {
      const i = fields.findIndex((f) => f.num === num && f.children === null);
      if (i >= 0) {
        fields.splice(g.int(fields.length + 1), 0, { ...fields[i]!, raw: fields[i]!.wt === 2 ? Buffer.from(`forged ${g.pick(PROTECTED)}`) : fields[i]!.raw });
        return;
      }
    }
  }
}

/**
 * Whether the output holds one of the request's secrets. After random byte changes, only whole tokens
 * standing at a boundary count (a JWT glued to other base64url text is not one, and a changed byte may
 * have turned a parameter name or a header key into something else, whose value is then just text).
 */
function leaked(secrets: readonly string[], output: string, m: Mutation): string | null {
  if (m !== 'bytes') return secrets.find((s) => s.length >= 16 && output.includes(s)) ?? null;
  for (const tok of [...valid, ...forged]) {
    for (let at = output.indexOf(tok); at >= 0; at = output.indexOf(tok, at + 1)) if (at === 0 || !/[A-Za-z0-9_-]/.test(output[at - 1]!)) return tok;
  }
  return null;
}

test('differential: whatever the scan accepts, the backend’s decode holds no forged identity, no secret, and the rules held', async (t) => {
  const config = parseOrThrow(identitySchema, {
    issuers: [{ issuer: server.issuer, audiences: ['checkout'], allow_insecure_http: true }],
    on_invalid: 'drop',
    on_missing: 'pass',
    sender: { attributes: { 'telemetry.sender.id': 'sub' } },
    rules: [{ name: 'payments', match: { service_name: ['payments'] }, require: {} }],
  });
  const next = new RecordingConsumer();
  const proc = new IdentityProcessor(processorSettings('identity'), config, next);
  await proc.start();
  await proc.keysSettled();
  t.after(() => proc.shutdown());
  const T = otlpType('ExportTraceServiceRequest');
  const g = new Gen(prng(SEED));
  t.diagnostic(`seed ${SEED} (FUZZ_SEED=${SEED} replays it)`);
  const tally = { accepted: 0, refused: 0, spansOut: 0, verifiedOut: 0, byMutation: {} as Record<string, [number, number]> };
  const started = performance.now();
  let i = 0;
  for (; i < COUNT && performance.now() - started < BUDGET_MS; i++) {
    g.secrets.length = 0;
    const req = g.request();
    const m: Mutation = g.pick(['none', 'reorder', 'unknown', 'split', 'repeat', 'bytes', 'reorder', 'unknown']);
    const tree = parse(T.encode(T.fromObject(req)).finish(), 'Req');
    mutate(g, tree, 'Req', m);
    let bytes = serialize(tree, g);
    if (m === 'bytes') {
      bytes = Buffer.from(bytes);
      for (let k = 0; k < 1 + g.int(3); k++) bytes[g.int(bytes.length)] = g.int(256);
    }
    const counts = (tally.byMutation[m] ??= [0, 0]);
    const batch = new TraceBatch(bytes);
    try {
      batch.index(proc.inspection());
    } catch (err) {
      assert.ok(err instanceof PipelineError && err.code === 'INVALID_ARGUMENT', `only INVALID_ARGUMENT: ${String(err)}`);
      tally.refused++;
      counts[1]++;
      continue;
    }
    tally.accepted++;
    counts[0]++;
    // What the scan accepts, an independent decoder reads; spans that carried a valid token, by their ids.
    const validSpans = new Set<string>();
    for (const list of attributeLists(T.toObject(T.decode(bytes), { longs: String, bytes: String, arrays: true }))) {
      if (list.where !== 'span') continue;
      const credentialed = list.attrs.some((a: Obj) => readerPath(String(a.key ?? '')) === AUTH && valid.some((v) => stringOf(a.value)?.includes(v) === true));
      if (credentialed) validSpans.add(`${list.span.traceId}/${list.span.spanId}`);
    }
    const before = next.received.length;
    await proc.consume(batch, CTX);
    if (next.received.length === before) continue;
    const outBytes = next.received[before]!.bytes;
    const text = Buffer.from(outBytes).toString('latin1');
    const secret = leaked(g.secrets, text, m);
    if (secret !== null) {
      if (process.env['FUZZ_DEBUG']) console.log(JSON.stringify(decodeRequest(outBytes), null, 1));
      assert.fail(`case ${i} (${m}): a secret reached the output: ${secret.slice(0, 10)}…`);
    }
    const out = decodeRequest(outBytes);
    for (const list of attributeLists(out)) {
      const paths = flatten(list.attrs).map(([p]) => p);
      for (const p of paths) {
        const r = readerPath(p);
        if (!PROTECTED.includes(r)) continue;
        assert.ok(list.where === 'span' && WRITTEN.has(p), `case ${i} (${m}): protected ${JSON.stringify(p)} in ${list.where} attributes`);
      }
      if (list.where !== 'span') continue;
      tally.spansOut++;
      const span = list.span;
      for (const k of WRITTEN) assert.ok(paths.filter((p) => p === k).length <= 1, `case ${i}: ${k} written once`);
      const name = `${span.traceId}/${span.spanId}`;
      const verified = span.attributes.find((a: Obj) => a.key === 'identity.verified')?.value?.boolValue === true;
      if (verified) {
        tally.verifiedOut++;
        if (!validSpans.has(name) && process.env['FUZZ_DEBUG']) console.log(JSON.stringify(T.toObject(T.decode(bytes), { longs: String, bytes: String, arrays: true }), null, 1));
        assert.ok(validSpans.has(name), `case ${i} (${m}): span ${name} verified without a valid token`);
        assert.equal(stringOf(span.attributes.find((a: Obj) => a.key === 'enduser.id')?.value), 'alice');
      }
      const services = (list.resource?.attributes ?? []).filter((a: Obj) => a.key === 'service.name').map((a: Obj) => stringOf(a.value));
      if (services.includes('payments')) assert.ok(verified, `case ${i} (${m}): an unverified span under service payments got through`);
    }
  }
  t.diagnostic(`${i} requests in ${(performance.now() - started).toFixed(0)} ms: ${tally.accepted} accepted, ${tally.refused} refused; ${tally.spansOut} spans out, ${tally.verifiedOut} verified; by mutation ${JSON.stringify(tally.byMutation)}`);
  assert.ok(tally.accepted > i / 3, 'most requests are accepted: the properties were checked on real outputs');
  assert.ok(tally.verifiedOut > 0, 'some spans were verified');
  assert.ok((tally.byMutation['split']?.[1] ?? 0) > 0 && (tally.byMutation['repeat']?.[1] ?? 0) > 0, 'split and repeated singular fields were refused');
  assert.equal(tally.byMutation['reorder']?.[1] ?? 0, 0, 'reordered fields are valid');
  assert.equal(tally.byMutation['unknown']?.[1] ?? 0, 0, 'unknown fields are valid');
});
