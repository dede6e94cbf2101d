/**
 * The trust boundary through the running daemon, as an attacker would probe it from outside: requests built
 * field by field (every attribute level, key-value lists, events, links) sent over OTLP/gRPC and as
 * OTLP/JSON over HTTP, to a daemon built from YAML whose one pipeline (identity, batch) fans out to a real
 * OTLP/gRPC backend and to the debug exporter. What the backend receives is read as a backend reads it
 * (protobufjs, every list, key-value lists flattened, keys compared as a person reads them); what the debug
 * exporter prints is its real stdout output. Neither may carry forged identity, nor any credential; neither
 * may the daemon's logs or /metrics. A request whose ResourceSpans.resource occurs twice is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { decodeRequest as decodeForDebug, formatDetailed } from '../../exporters/debug/format.js';
import { otlpRoot, otlpType } from '../../pipeline/batch/otlp-schema.js';
import { ATTR } from '../../processors/identity/attributes.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { captureDebugOutput, debugAttributes, type DebugCapture } from '../helpers/debug-output.js';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { assertNoTokensLeaked, identityProcessor, waitForSpans } from '../helpers/identity-e2e.js';
import { jwksOf, makeSigningKey, signJwt, startJwksServer, validClaims, type JwksServer, type SigningKey } from '../helpers/jwks-server.js';
import { attributeLists, decodeRequest, flatten, readerKey, readerPath, spanValues, stringOf, type Obj } from '../helpers/otlp-walk.js';
import { grpcFrame, grpcRaw, httpRequest } from '../helpers/receiver-harness.js';
import { decodeRpcStatus } from '../helpers/receiver-sdk.js';
import { varint } from '../helpers/protobuf-bytes.js';

const AUTH = 'http.request.header.authorization';
const WAIT_MS = 10_000;

/** Every key the identity processor owns (writes, or reads as evidence), spelled canonically. */
const PROTECTED = [
  ...new Set([
    'identity.verified',
    'identity.failure',
    'identity.issuer',
    'identity.method',
    'identity.auth_methods',
    'identity.phishing_resistant',
    'identity.credential.fingerprint',
    'identity.webauthn.user_verified',
    'identity.webauthn.counter_regression',
    'enduser.id',
    'enduser.pseudo.id',
    'user.roles',
    'telemetry.sender.id',
    AUTH,
    'http.request.header.x-pomerium-jwt-assertion',
    ...Object.values(ATTR),
  ]),
];
/** What the processor itself may write on a span that carried evidence (canonical keys only). */
const WRITTEN_ON_SPANS = new Set(['identity.verified', 'identity.failure', 'identity.issuer', 'identity.method', 'identity.auth_methods', 'identity.phishing_resistant', 'identity.credential.fingerprint', 'enduser.id', 'user.roles']);

let jwks: JwksServer;
let key: SigningKey;
let backend: OtlpGrpcTestServer;
let daemon: RunningDaemon;
let debug: DebugCapture;

before(async () => {
  key = await makeSigningKey('ES256', 'tb-1');
  jwks = await startJwksServer({ keys: jwksOf(key) });
  backend = await OtlpGrpcTestServer.start();
  // Installed before the daemon starts: the debug exporter writes to the real process.stdout.
  debug = captureDebugOutput();
  daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  identity:
    issuers:
      - issuer: ${jwks.issuer}
        audiences: [checkout]
        allow_insecure_http: true
    on_invalid: tag
    sender: { attributes: { telemetry.sender.id: sub } }
  batch: { timeout: 10ms }
exporters:
  otlp:
    endpoint: ${backend.endpoint}
    tls: { insecure: true }
    retry_on_failure: { initial_interval: 10ms, max_interval: 50ms }
  debug: { verbosity: detailed }
service:
  telemetry: { metrics: { address: 127.0.0.1:0 } }
  pipelines:
    traces: { receivers: [otlp], processors: [identity, batch], exporters: [otlp, debug] }
`);
  await identityProcessor(daemon).keysSettled();
});

after(async () => {
  await daemon?.stop();
  debug?.restore();
  await backend?.close();
  await jwks?.stop();
});

// ---------------------------------------------------------------------------------------------------------
// Building and sending requests

const sv = (s: string) => ({ stringValue: s });
const bool = (b: boolean) => ({ boolValue: b });
const kv = (k: string, value: Obj) => ({ key: k, value });
const kvlist = (...values: Obj[]) => ({ kvlistValue: { values } });
const strings = (...s: string[]) => ({ arrayValue: { values: s.map(sv) } });
const fp = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

interface SpanSpec {
  name: string;
  spanAttrs: Obj[];
  /** Attributes for the span's one event and one link. */
  attrs: Obj[];
  eventName?: string;
  statusMessage?: string;
}

interface ResourceSpec {
  attrs: Obj[];
  spans: SpanSpec[];
}

/** A request with the given resource and scope attributes; each span gets one event and one link. */
function request(resources: ResourceSpec[]): { req: Obj; spanIds: string[] } {
  const spanIds: string[] = [];
  const req = {
    resourceSpans: resources.map((r) => ({
      resource: { attributes: [kv('service.name', sv('checkout')), ...r.attrs] },
      scopeSpans: [
        {
          scope: { name: 'trust-boundary', version: '1.0.0', attributes: [kv('scope.keep', sv('yes')), ...r.attrs] },
          spans: r.spans.map((s) => {
            const spanId = randomBytes(8);
            spanIds.push(spanId.toString('hex'));
            return {
              traceId: randomBytes(16),
              spanId,
              name: s.name,
              kind: 2,
              startTimeUnixNano: '1700000000000000000',
              endTimeUnixNano: '1700000000100000000',
              // The span's id again, as text: the debug output is searched for it (its id lines are not
              // always hex, see debugMark).
              attributes: [kv('span.keep', sv('yes')), kv('tb.id', sv(spanId.toString('hex'))), ...s.spanAttrs],
              events: [{ timeUnixNano: '1700000000050000000', name: s.eventName ?? 'event', attributes: [kv('event.keep', sv('yes')), ...s.attrs] }],
              links: [{ traceId: randomBytes(16), spanId: randomBytes(8), attributes: [kv('link.keep', sv('yes')), ...s.attrs] }],
              status: { code: 2, message: s.statusMessage ?? 'failed' },
            };
          }),
        },
      ],
    })),
  };
  return { req, spanIds };
}

function encode(req: Obj): Uint8Array {
  const T = otlpType('ExportTraceServiceRequest');
  return T.encode(T.fromObject(req)).finish();
}

/**
 * OTLP/JSON of a request: protobufjs's JSON form (lowerCamelCase, 64-bit integers as strings, bytes as
 * base64), with trace and span ids as hex as the OTLP specification requires.
 */
function otlpJson(req: Obj): string {
  const T = otlpType('ExportTraceServiceRequest');
  const o = T.toObject(T.fromObject(req), { longs: String, bytes: String, enums: Number, defaults: false, arrays: true });
  const hex = (b64: string | undefined) => (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('hex'));
  for (const rs of o.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const sp of ss.spans ?? []) {
        sp.traceId = hex(sp.traceId);
        sp.spanId = hex(sp.spanId);
        if (sp.parentSpanId !== undefined) sp.parentSpanId = hex(sp.parentSpanId);
        for (const ln of sp.links ?? []) {
          ln.traceId = hex(ln.traceId);
          ln.spanId = hex(ln.spanId);
        }
      }
    }
  }
  return JSON.stringify(o);
}

async function sendGrpc(req: Obj): Promise<void> {
  const r = await grpcRaw(daemon.grpcPort(), grpcFrame(encode(req)));
  assert.equal(r.grpcStatus, 0, `gRPC export accepted: ${r.grpcMessage}`);
}

async function sendJson(req: Obj): Promise<void> {
  const body = otlpJson(req);
  const r = await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/json' }, body: Buffer.from(body) });
  assert.equal(r.status, 200, `OTLP/JSON export accepted: ${r.body.toString()}`);
  assert.equal(r.body.toString(), '{}');
}

// ---------------------------------------------------------------------------------------------------------
// Reading what came out

/** Every span the backend received, decoded by protobufjs, with the request it came in. */
function backendSpans(): { span: Obj; req: Obj }[] {
  const out: { span: Obj; req: Obj }[] = [];
  for (const r of backend.requests) {
    const req = decodeRequest(r.bytes);
    for (const rs of req.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) out.push({ span, req });
  }
  return out;
}

const idOf = (span: Obj) => Buffer.from(span.spanId, 'base64').toString('hex');

/** Waits until the backend and the debug exporter both have every span id; bounded, event-driven. */
async function delivered(spanIds: readonly string[]): Promise<void> {
  const atBackend = () => new Set(backendSpans().map(({ span }) => idOf(span)));
  const deadline = Date.now() + WAIT_MS;
  while (!spanIds.every((id) => atBackend().has(id))) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out: spans ${spanIds.filter((id) => !atBackend().has(id)).join(', ')} did not reach the backend`);
    await waitForSpans(backend, backendSpans().length + 1, left).catch(() => undefined);
  }
  await debug.waitFor((text) => spanIds.every((id) => text.includes(debugMark(id))), WAIT_MS, `spans ${spanIds.join(', ')}`);
}

/**
 * How the debug output shows a span of ours: by its `tb.id` attribute. Its `ID :` line would do, but the
 * exporter prints ids as comma-separated decimal bytes instead of hex when the batch's bytes are a plain
 * Uint8Array rather than a Buffer (as after the batch processor merged requests).
 */
const debugMark = (id: string) => `     -> tb.id: Str(${id})\n`;

/** The backend's requests that hold any of these spans, decoded. */
function requestsWith(spanIds: readonly string[]): Obj[] {
  const ids = new Set(spanIds);
  return backend.requests.map((r) => decodeRequest(r.bytes)).filter((req: Obj) => {
    for (const rs of req.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const sp of ss.spans ?? []) if (ids.has(idOf(sp))) return true;
    return false;
  });
}

/** The debug exporter's batches (one write each) that hold any of these spans. */
function debugBatchesWith(spanIds: readonly string[]): string[] {
  const batches = debug.text().split(/(?=^\d{4}-\d\d-\d\dT[^\n]*\tinfo\tTraces\t)/m);
  return batches.filter((b) => spanIds.some((id) => b.includes(debugMark(id))));
}

function spanById(spanIds: readonly string[], i: number): Obj {
  const found = backendSpans().filter(({ span }) => idOf(span) === spanIds[i]);
  assert.equal(found.length, 1, `span ${spanIds[i]} arrived exactly once`);
  return found[0]!.span;
}

const isProtected = (path: string) => PROTECTED.includes(readerPath(path));

/**
 * No protected key anywhere in these requests, read as a person reads keys, except the canonical keys the
 * processor writes on spans, each once. Returns how many attribute lists were looked at, per level.
 */
function assertNoForgedKeys(reqs: readonly Obj[]): Record<string, number> {
  const lists: Record<string, number> = { resource: 0, scope: 0, span: 0, event: 0, link: 0 };
  for (const req of reqs) {
    for (const list of attributeLists(req)) {
      lists[list.where]!++;
      const seen = new Map<string, number>();
      for (const [path] of flatten(list.attrs)) {
        if (!isProtected(path)) continue;
        const own = list.where === 'span' && WRITTEN_ON_SPANS.has(path);
        assert.ok(own, `protected key ${JSON.stringify(path)} reached the backend in ${list.where} attributes${list.span ? ` of span ${list.span.name}` : ''}`);
        seen.set(path, (seen.get(path) ?? 0) + 1);
      }
      for (const [path, n] of seen) assert.equal(n, 1, `${path} appears once on span ${list.span?.name}`);
    }
  }
  return lists;
}

/** The same over the debug exporter's detailed output. */
function assertNoForgedKeysPrinted(text: string): number {
  const attrs = debugAttributes(text);
  for (const a of attrs) {
    if (!isProtected(a.path)) continue;
    const own = a.level === 'span' && a.top && WRITTEN_ON_SPANS.has(a.path);
    assert.ok(own, `the debug exporter printed protected key ${JSON.stringify(a.path)} in ${a.level} attributes: ${a.value}`);
  }
  return attrs.length;
}

// ---------------------------------------------------------------------------------------------------------
// 1. Forged identity

/** Key variants a reader takes for a protected key; booleans for "verified" facts, the marker elsewhere. */
const VARIANTS = [
  'identity.verified',
  'Identity.Verified',
  'IDENTITY.VERIFIED',
  'enduser.id ',
  ' enduser.id',
  'enduser.id\u0000',
  'ENDUSER.ID\t',
  'enduser.id\u200b',
  'enduser.id\u2028',
  '\u00a0user.roles',
  '\ufeffidentity.issuer',
  'telemetry.sender.id',
  'Telemetry.Sender.ID',
  'identity.credential.fingerprint',
  'identity.method',
  'identity.failure',
  'identity.phishing_resistant',
  'identity.auth_methods',
  'enduser.pseudo.id',
  'identity.webauthn.user_verified',
];
const MARK = 'mallory';

function forgedAttrs(): Obj[] {
  return [
    ...VARIANTS.map((k) => kv(k, /verified|phishing/i.test(k) ? bool(true) : sv(`${MARK}-${readerKey(k)}`))),
    kv('identity', kvlist(kv('verified', bool(true)), kv('issuer', sv(`${MARK}-issuer`)))),
    kv('enduser', kvlist(kv('id', sv(MARK)))),
    kv('Enduser ', kvlist(kv('ID\u200b', sv(MARK)))),
    kv('identity', kvlist(kv('webauthn', kvlist(kv('user_verified', bool(true)))))),
    kv('telemetry', kvlist(kv('sender', kvlist(kv('id', sv(MARK)))))),
    // Not protected: a key-value list under a protected prefix holding only other keys stays.
    kv('identity', kvlist(kv('note', sv('kept')))),
  ];
}

test('forged identity at every level and in every key variant, over gRPC and OTLP/JSON, reaches neither the backend nor the debug output', async () => {
  const valid = await signJwt(validClaims(jwks.issuer, 'checkout', { sub: 'alice', roles: ['admin'], jti: randomBytes(8).toString('hex') }), key);
  const refused = await signJwt(validClaims(jwks.issuer, 'elsewhere', { sub: 'alice', jti: randomBytes(8).toString('hex') }), key);
  const names = ['forged-none', 'forged-valid', 'forged-refused'];
  const build = () =>
    request([
      {
        attrs: forgedAttrs(),
        spans: [
          { name: names[0]!, spanAttrs: forgedAttrs(), attrs: forgedAttrs() },
          { name: names[1]!, spanAttrs: [...forgedAttrs(), kv(AUTH, strings(`Bearer ${valid}`)), ...forgedAttrs()], attrs: forgedAttrs() },
          { name: names[2]!, spanAttrs: [kv(AUTH, strings(`Bearer ${refused}`)), ...forgedAttrs()], attrs: forgedAttrs() },
        ],
      },
    ]);
  const viaGrpc = build();
  const viaJson = build();

  // The checks below are not vacuous: on the request as sent, both readers find every forged key at every
  // level (the debug one on the same rendering the exporter prints).
  const sent = decodeRequest(encode(viaGrpc.req));
  assert.throws(() => assertNoForgedKeys([sent]), /protected key/);
  const sentText = formatDetailed(decodeForDebug(encode(viaGrpc.req)));
  assert.throws(() => assertNoForgedKeysPrinted(sentText), /printed protected key/);
  for (const level of ['resource', 'scope', 'span', 'event', 'link'] as const) {
    const inBackendView = new Set([...attributeLists(sent)].filter((l) => l.where === level).flatMap((l) => flatten(l.attrs).map(([p]) => p).filter(isProtected).map(readerPath)));
    const inDebugView = new Set(debugAttributes(sentText).filter((a) => a.level === level && isProtected(a.path)).map((a) => readerPath(a.path)));
    for (const k of [...VARIANTS.map(readerKey), 'identity.verified', 'enduser.id', 'identity.webauthn.user_verified', 'telemetry.sender.id']) {
      assert.ok(inBackendView.has(k), `the backend reader sees forged ${k} in ${level} attributes as sent`);
      assert.ok(inDebugView.has(k), `the debug reader sees forged ${k} in ${level} attributes as sent`);
    }
  }

  await sendGrpc(viaGrpc.req);
  await sendJson(viaJson.req);
  const ids = [...viaGrpc.spanIds, ...viaJson.spanIds];
  await delivered(ids);

  // The backend, read as a backend reads it.
  const reqs = requestsWith(ids);
  const lists = assertNoForgedKeys(reqs);
  for (const level of ['resource', 'scope', 'span', 'event', 'link']) assert.ok(lists[level]! >= 2, `${level} attribute lists were checked (${lists[level]})`);
  const exported = Buffer.concat(backend.requests.map((r) => r.bytes)).toString('latin1');
  assert.ok(!exported.includes(MARK), 'no forged value reached the backend');
  for (const req of reqs) {
    for (const list of attributeLists(req)) {
      const paths = flatten(list.attrs).map(([p]) => p);
      assert.ok(paths.includes('identity.note'), `an unprotected key under a protected prefix is kept (${list.where})`);
      assert.ok(paths.some((p) => p.endsWith('.keep') || p === 'service.name'), `the ${list.where} list's own attributes are kept`);
    }
  }
  for (const [via, spanIds] of [['gRPC', viaGrpc.spanIds], ['JSON', viaJson.spanIds]] as const) {
    const [none, good, bad] = [0, 1, 2].map((i) => spanById(spanIds, i));
    const one = (span: Obj, k: string) => {
      const values = spanValues(span, k);
      assert.ok(values.length <= 1, `${k} once on ${span.name}`);
      return values[0];
    };
    assert.equal(one(none, 'identity.verified'), undefined, `${via}: a span without a credential says nothing about identity`);
    assert.equal(one(none, 'enduser.id'), undefined, `${via}: no forged user on a span without a credential`);
    assert.deepEqual(one(good, 'identity.verified'), bool(true), `${via}: the validly signed span is verified`);
    assert.equal(stringOf(one(good, 'enduser.id')), 'alice', `${via}: the user is the token's subject`);
    assert.deepEqual(one(good, 'user.roles'), strings('admin'), `${via}: the roles are the token's`);
    assert.equal(stringOf(one(good, 'identity.issuer')), jwks.issuer, `${via}: the issuer is the configured one`);
    assert.equal(stringOf(one(good, 'identity.credential.fingerprint')), fp(valid), `${via}: the fingerprint is the token's`);
    assert.deepEqual(one(bad, 'identity.verified'), bool(false), `${via}: the refused token's span says verified=false`);
    assert.equal(stringOf(one(bad, 'identity.failure')), 'audience_mismatch', `${via}: and why`);
    assert.equal(one(bad, 'enduser.id'), undefined, `${via}: no user from a refused token`);
  }
  // Only spans that carried a valid token say identity.verified=true, anywhere in the backend's data.
  const verifiedTrue = backendSpans().filter(({ span }) => spanValues(span, 'identity.verified').some((v: Obj) => v.boolValue === true));
  for (const { span } of verifiedTrue) assert.ok(span.name !== names[0] && span.name !== names[2], `${span.name} says verified=true`);

  // The debug exporter's real output.
  const printed = debugBatchesWith(ids).join('');
  assert.ok(printed.length > 0);
  assert.ok(!printed.includes(MARK), 'no forged value in the debug output');
  const attrCount = assertNoForgedKeysPrinted(printed);
  // Six spans, each with five lists holding at least their own attribute and identity.note.
  assert.ok(attrCount >= 6 * 5 * 2, `the debug output's attributes were read (${attrCount})`);
  const levels = new Set(debugAttributes(printed).map((a) => a.level));
  assert.deepEqual([...levels].sort(), ['event', 'link', 'resource', 'scope', 'span'], 'attributes at every level were printed and read');
  const trueLines = printed.split('\n').filter((l) => l === '     -> identity.verified: Bool(true)');
  assert.equal(trueLines.length, 2, 'the debug output shows verified=true exactly for the two validly signed spans');

  await assertNoTokensLeaked([valid, refused], daemon, backend);
  for (const t of [valid, refused]) {
    assert.ok(!debug.text().includes(t), 'no token in the debug output');
    assert.ok(!debug.text().includes(t.split('.')[2]!), 'no token signature in the debug output');
  }
});

// ---------------------------------------------------------------------------------------------------------
// 2. Credentials in every place

/** Credential placements for one token, for every attribute list (the span's own gets the evidence too). */
function credentialAttrs(tok: string): Obj[] {
  return [
    kv('http.request.header.Authorization', strings(`Bearer ${tok}`)),
    kv('http.request.header.proxy-authorization', strings(`Bearer ${tok}`)),
    kv('http.request.header.cookie', sv(`session=${tok}`)),
    kv('authorization', sv(`Bearer ${tok}`)),
    kv('headers', kvlist(kv('Authorization', sv(`Bearer ${tok}`)))),
    kv('url.query', sv(`page=2&access_token=${tok}&limit=5`)),
    kv('url.full', sv(`https://app.example/cb?code=${tok}&state=xyz`)),
    kv('exception.message', sv(`token ${tok} was rejected`)),
  ];
}

/** Where each placement must show the token's fingerprint (the attribute a reader sees: path → value). */
function expectedRedactions(tok: string): [string, string][] {
  const f = fp(tok);
  return [
    ['http.request.header.proxy-authorization', `Bearer redacted:${f}`],
    // A cookie header has no auth scheme: the whole value is the credential.
    ['http.request.header.cookie', `redacted:${fp(`session=${tok}`)}`],
    ['authorization', `Bearer redacted:${f}`],
    ['headers.Authorization', `Bearer redacted:${f}`],
    ['url.query', `page=2&access_token=redacted:${f}&limit=5`],
    ['url.full', `https://app.example/cb?code=redacted:${f}&state=xyz`],
    ['exception.message', `token redacted:${f} was rejected`],
  ];
}

test('credentials in every place, over gRPC and OTLP/JSON, leave the daemon only as fingerprints: not to the backend, the debug output, the logs or /metrics', async () => {
  const mint = (aud: string, sub: string) => signJwt(validClaims(jwks.issuer, aud, { sub, jti: randomBytes(8).toString('hex') }), key);
  const tokens = { grpcValid: await mint('checkout', 'alice'), grpcRefused: await mint('elsewhere', 'bob'), jsonValid: await mint('checkout', 'carol'), jsonRefused: await mint('elsewhere', 'dave') };
  const spec = (tok: string, name: string): ResourceSpec => ({
    attrs: credentialAttrs(tok),
    spans: [
      {
        name: `GET /login ${tok}`,
        // The evidence on the span, then every other placement (the differently cased header is the evidence key too).
        spanAttrs: [kv(AUTH, strings(`Bearer ${tok}`)), ...credentialAttrs(tok).filter((a) => a.key !== 'http.request.header.Authorization'), kv('case', sv(name))],
        attrs: credentialAttrs(tok),
        eventName: `got ${tok}`,
        statusMessage: `bad ${tok}`,
      },
    ],
  });
  const viaGrpc = request([spec(tokens.grpcValid, 'grpc-valid'), spec(tokens.grpcRefused, 'grpc-refused')]);
  const viaJson = request([spec(tokens.jsonValid, 'json-valid'), spec(tokens.jsonRefused, 'json-refused')]);
  await sendGrpc(viaGrpc.req);
  await sendJson(viaJson.req);
  const ids = [...viaGrpc.spanIds, ...viaJson.spanIds];
  await delivered(ids);

  const all = Object.values(tokens);
  // Nothing of any token, in any form, left the daemon: backend bytes, logs, /metrics (the helper), and
  // the debug exporter's output.
  await assertNoTokensLeaked(all, daemon, backend);
  const printed = debug.text();
  for (const t of all) {
    const [header, payload, sig] = t.split('.') as [string, string, string];
    for (const [part, n] of [['token', t], ['signature', sig], ['payload', payload], ['header.payload', `${header}.${payload}`]] as const) {
      assert.ok(!printed.includes(n), `the token's ${part} is in the debug output`);
      assert.ok(!Buffer.concat(backend.requests.map((r) => r.bytes)).toString('latin1').includes(n), `the token's ${part} reached the backend`);
    }
  }

  const cases = [
    { spanIds: viaGrpc.spanIds, index: 0, tok: tokens.grpcValid, sub: 'alice', ok: true },
    { spanIds: viaGrpc.spanIds, index: 1, tok: tokens.grpcRefused, sub: 'bob', ok: false },
    { spanIds: viaJson.spanIds, index: 0, tok: tokens.jsonValid, sub: 'carol', ok: true },
    { spanIds: viaJson.spanIds, index: 1, tok: tokens.jsonRefused, sub: 'dave', ok: false },
  ];
  const reqs = requestsWith(ids);
  assertNoForgedKeys(reqs);
  for (const c of cases) {
    const f = fp(c.tok);
    const span = spanById(c.spanIds, c.index);
    const what = stringOf(spanValues(span, 'case')[0]);
    assert.equal(span.name, `GET /login redacted:${f}`, `${what}: span name`);
    assert.equal(span.status.message, `bad redacted:${f}`, `${what}: status message`);
    assert.equal(span.events[0].name, `got redacted:${f}`, `${what}: event name`);
    assert.equal(spanValues(span, AUTH).length, 0, `${what}: the evidence is removed`);
    if (c.ok) {
      assert.deepEqual(spanValues(span, 'identity.verified'), [bool(true)], `${what}: verified`);
      assert.deepEqual(spanValues(span, 'enduser.id').map(stringOf), [c.sub], `${what}: the token's subject`);
      assert.deepEqual(spanValues(span, 'identity.credential.fingerprint').map(stringOf), [f], `${what}: the fingerprint is sha256(token), 16 hex`);
    } else {
      assert.deepEqual(spanValues(span, 'identity.verified'), [bool(false)], `${what}: not verified`);
      assert.deepEqual(spanValues(span, 'identity.failure').map(stringOf), ['audience_mismatch'], `${what}: refused for its audience`);
      assert.equal(spanValues(span, 'enduser.id').length, 0, `${what}: no user`);
    }
  }

  // Every level of every request: each placement carries the fingerprint of the token its resource got.
  let checked = 0;
  for (const req of reqs) {
    for (const rs of req.resourceSpans) {
      const sp = rs.scopeSpans[0].spans[0];
      const tok = cases.find((c) => c.spanIds[c.index] === idOf(sp))!.tok;
      const lists: [string, Obj[]][] = [
        ['resource', rs.resource.attributes],
        ['scope', rs.scopeSpans[0].scope.attributes],
        ['span', sp.attributes],
        ['event', sp.events[0].attributes],
        ['link', sp.links[0].attributes],
      ];
      for (const [where, attrs] of lists) {
        const flat = flatten(attrs);
        const paths = flat.map(([p]) => readerPath(p));
        assert.ok(!paths.includes(AUTH), `${where}: http.request.header.Authorization (a protected key in any casing) is removed`);
        for (const [path, want] of expectedRedactions(tok)) {
          const got = flat.filter(([p]) => p === path).map(([, v]) => stringOf(v));
          assert.deepEqual(got, [want], `${where} ${path}`);
          checked++;
        }
        for (const [p, v] of flat) {
          const s = stringOf(v);
          if (s === undefined) continue;
          for (const m of s.matchAll(/redacted:([0-9a-f]*)/g)) assert.match(m[1]!, /^[0-9a-f]{16}$/, `${where} ${p}: redacted:<16 hex>`);
        }
      }
    }
  }
  assert.equal(checked, 4 * 5 * expectedRedactions('x').length, 'every placement at every level of every resource was checked');

  // The debug output shows the same redactions (values the exporter itself would not mask).
  const out = debugBatchesWith(ids).join('');
  for (const c of cases) {
    const f = fp(c.tok);
    assert.ok(out.includes(`    Name           : GET /login redacted:${f}\n`), 'the debug output has the redacted span name');
    assert.ok(out.includes(`    Status message : bad redacted:${f}\n`), 'and status message');
    assert.ok(out.includes(`     -> Name: got redacted:${f}\n`), 'and event name');
    for (const indent of ['     ', '          ']) {
      assert.ok(out.includes(`${indent}-> url.query: Str(page=2&access_token=redacted:${f}&limit=5)\n`), `url.query printed redacted at indent ${indent.length}`);
      assert.ok(out.includes(`${indent}-> authorization: Str(Bearer redacted:${f})\n`), `authorization printed redacted at indent ${indent.length}`);
      assert.ok(out.includes(`${indent}-> headers: Map({"Authorization":"Bearer redacted:${f}"})\n`), `a nested header printed redacted at indent ${indent.length}`);
    }
  }
  assertNoForgedKeysPrinted(out);

  // The processor counted what it scrubbed (metrics carry counts, never values).
  const t = daemon.service.telemetry;
  for (const kind of ['header', 'url_parameter', 'token']) assert.ok((await t.value('tracewarden_identity_scrubbed_total', { kind })) > 0, `scrubbed ${kind}`);
});

// ---------------------------------------------------------------------------------------------------------
// 3. One view of the bytes: a repeated ResourceSpans.resource is refused

const lenField = (field: number, content: Uint8Array) => Buffer.concat([varint((field << 3) | 2), varint(content.length), content]);

function encodeAs(type: string, obj: Obj): Uint8Array {
  const T = otlpRoot().lookupType(`opentelemetry.proto.${type}`);
  return T.encode(T.fromObject(obj)).finish();
}

/**
 * An ExportTraceServiceRequest with one ResourceSpans whose `resource` field occurs twice: a decoder that
 * merges (Go's, C++'s) sees the attributes of both, one that keeps the last (protobufjs) or reads only the
 * first (a streaming scanner) sees one of them. The forged resource comes first or second.
 */
function twoResources(forgedFirst: boolean, tok: string, name: string): Buffer {
  const forged = encodeAs('Resource', { attributes: [kv('service.name', sv('checkout')), kv('identity.verified', bool(true)), kv('enduser.id', sv(MARK)), kv('http.request.header.authorization', sv(`Bearer ${tok}`))] });
  const benign = encodeAs('Resource', { attributes: [kv('service.name', sv('checkout'))] });
  const scopeSpans = encodeAs('ScopeSpans', {
    scope: { name: 'dup' },
    spans: [{ traceId: randomBytes(16), spanId: randomBytes(8), name, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000', attributes: [kv('identity.verified', bool(true))] }],
  });
  const resources = forgedFirst ? [forged, benign] : [benign, forged];
  const rs = Buffer.concat([lenField(1, resources[0]!), lenField(1, resources[1]!), lenField(2, scopeSpans)]);
  return lenField(1, rs);
}

test('a ResourceSpans whose resource occurs twice is refused over gRPC (INVALID_ARGUMENT) and HTTP (400), naming the field; the daemon keeps serving', async () => {
  const tok = await signJwt(validClaims(jwks.issuer, 'checkout', { sub: 'mallory', jti: randomBytes(8).toString('hex') }), key);
  const answers: string[] = [];
  const requestsBefore = backend.requests.length;
  for (const forgedFirst of [true, false]) {
    const bytes = twoResources(forgedFirst, tok, 'dup-resource');
    // The bytes are what they claim: protobufjs keeps the last resource, so it sees the forged one when second.
    const decoded = decodeRequest(bytes);
    assert.equal(decoded.resourceSpans.length, 1);
    const seesForged = flatten(decoded.resourceSpans[0].resource.attributes).some(([p]) => p === 'identity.verified');
    assert.equal(seesForged, !forgedFirst, 'protobufjs reads the last occurrence');

    const g = await grpcRaw(daemon.grpcPort(), grpcFrame(bytes));
    assert.equal(g.grpcStatus, 3, `gRPC: INVALID_ARGUMENT (got ${g.grpcStatus} ${g.grpcMessage})`);
    assert.match(g.grpcMessage, /ResourceSpans\.resource/, 'the gRPC message names the field');
    answers.push(g.grpcMessage);

    const h = await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/x-protobuf' }, body: bytes });
    assert.equal(h.status, 400, `HTTP: 400 (got ${h.status})`);
    const st = decodeRpcStatus(h.body);
    assert.equal(st.code, 3, 'HTTP: the status body says INVALID_ARGUMENT');
    assert.match(st.message, /ResourceSpans\.resource/, 'the HTTP message names the field');
    answers.push(st.message);
  }

  // The daemon keeps serving: a following valid request, over each transport, arrives at the backend.
  const next = request([{ attrs: [], spans: [{ name: 'after-dup-grpc', spanAttrs: [], attrs: [] }] }]);
  const nextJson = request([{ attrs: [], spans: [{ name: 'after-dup-json', spanAttrs: [], attrs: [] }] }]);
  await sendGrpc(next.req);
  await sendJson(nextJson.req);
  await delivered([...next.spanIds, ...nextJson.spanIds]);

  const later = backend.requests.slice(requestsBefore).flatMap((r) => {
    const req = decodeRequest(r.bytes);
    return (req.resourceSpans ?? []).flatMap((rs: Obj) => (rs.scopeSpans ?? []).flatMap((ss: Obj) => ss.spans ?? []));
  });
  assert.ok(!later.some((s: Obj) => s.name === 'dup-resource'), 'nothing of the refused requests reached the backend');
  assert.ok(!debug.text().includes('dup-resource'), 'nor the debug output');
  assert.ok(!Buffer.concat(backend.requests.map((r) => r.bytes)).toString('latin1').includes(MARK));
  await assertNoTokensLeaked([tok], daemon, backend, answers);
});

// ---------------------------------------------------------------------------------------------------------
// Leaks this suite found, fixed: tokens glued to the text before them, and JWS headers that do not open
// with `{` (which no longer verify).

/** Sends one span over gRPC with these attributes at every level (and this name), waits for it. */
async function sendEverywhere(name: string, attrs: Obj[], evidence: Obj[] = []): Promise<{ spanIds: string[]; span: Obj; printed: string }> {
  const r = request([{ attrs, spans: [{ name, spanAttrs: [...evidence, ...attrs], attrs }] }]);
  await sendGrpc(r.req);
  await delivered(r.spanIds);
  return { spanIds: r.spanIds, span: spanById(r.spanIds, 0), printed: debugBatchesWith(r.spanIds).join('') };
}

/** Fails naming every place (backend attribute paths, span fields, debug output) where the token is. */
function assertTokenNowhere(tok: string, spanIds: readonly string[], printed: string): void {
  const places: string[] = [];
  for (const req of requestsWith(spanIds)) {
    for (const list of attributeLists(req)) {
      for (const [p, v] of flatten(list.attrs)) {
        const text = JSON.stringify(v);
        if (p.includes(tok) || text.includes(tok)) places.push(`backend ${list.where} ${p.includes(tok) ? '(key)' : p}`);
      }
    }
    for (const rs of req.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const sp of ss.spans ?? []) {
          if (String(sp.name).includes(tok)) places.push('backend span name');
          if (String(sp.status?.message ?? '').includes(tok)) places.push('backend status message');
        }
  }
  for (const line of printed.split('\n')) if (line.includes(tok)) places.push(`debug output: ${line.replace(tok, '<token>').trim().slice(0, 100)}`);
  const bytes = Buffer.concat(backend.requests.map((r) => r.bytes)).toString('latin1');
  assert.ok(places.length === 0 && !bytes.includes(tok) && !printed.includes(tok), `the token leaked to:\n  ${places.join('\n  ')}`);
  const sig = tok.split('.')[2]!;
  assert.ok(!bytes.includes(sig) && !printed.includes(sig), 'the token’s signature reached the backend or the debug output');
}

test(
  'a JWT glued to the character before it (percent-encoded "Bearer%20", inside an encoded redirect URL, after a prefix) is still scrubbed',
  async () => {
    const tok = await signJwt(validClaims(jwks.issuer, 'checkout', { sub: 'alice', jti: randomBytes(8).toString('hex') }), key);
    const { spanIds, printed } = await sendEverywhere(`GET /cb/x-${tok}`, [
      kv('url.query', sv(`auth=Bearer%20${tok}&x=1`)),
      kv('url.full', sv(`https://idp.example/logout?redirect=https%3A%2F%2Fapp.example%2Fcb%3Fid_token%3D${tok}`)),
      kv('exception.message', sv(`rejected jwt_${tok}`)),
    ]);
    assertTokenNowhere(tok, spanIds, printed);
  },
);

/** A compact JWS over these claims whose protected header JSON is given verbatim (jose always writes `{"`). */
async function jwsWithHeader(headerJson: string, claims: Record<string, unknown>): Promise<string> {
  const input = `${Buffer.from(headerJson).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey, Buffer.from(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

test('a JWS whose protected header does not open with `{` is refused, so every accepted credential has the shape the scrubber knows', async () => {
  const tok = await jwsWithHeader(` {"alg":"ES256","kid":"${key.kid}","typ":"JWT"}`, validClaims(jwks.issuer, 'checkout', { sub: 'alice', jti: randomBytes(8).toString('hex') }));
  const { span } = await sendEverywhere('odd-header', [], [kv(AUTH, strings(`Bearer ${tok}`))]);
  assert.equal(spanValues(span, AUTH).length, 0, 'the evidence is removed');
  assert.equal(spanValues(span, 'identity.verified')[0]?.boolValue, false);
  assert.equal(stringOf(spanValues(span, 'identity.failure')[0]), 'malformed');
  assert.equal(spanValues(span, 'enduser.id').length, 0);
});
