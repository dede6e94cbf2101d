/**
 * Credentials where no schema field puts them, which a mutation pass found untested: a JWT in a field
 * number a newer OTLP schema might define (on a resource, scope, span, event, link, status or key-value),
 * a JWT written as an attribute key, a credential header whose value is bytes. Requests are written by hand
 * (no encoder writes unknown fields); the output is searched as bytes, so nothing a newer decoder might
 * show can hold the token.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { jwksOf, makeSigningKey, startJwksServer, type JwksServer } from '../../test/helpers/jwks-server.js';
import { varint } from '../../test/helpers/protobuf-bytes.js';
import { identitySchema } from './config.js';
import { IdentityProcessor } from './identity-processor.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };
// A credential-shaped string (a JWS header, payload and signature); never verified here.
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';
const PLAIN = 'no credential in this text at all, only words';

let server: JwksServer;
before(async () => {
  server = await startJwksServer({ keys: jwksOf(await makeSigningKey('ES256', 'k')) });
});
after(() => server.stop());

async function run(bytes: Uint8Array, overrides: Record<string, unknown> = {}): Promise<Buffer> {
  const config = parseOrThrow(identitySchema, { issuers: [{ issuer: server.issuer, audiences: ['checkout'], allow_insecure_http: true }], ...overrides });
  const next = new RecordingConsumer();
  const proc = new IdentityProcessor(processorSettings('identity'), config, next);
  await proc.start();
  await proc.keysSettled();
  try {
    const batch = new TraceBatch(bytes);
    batch.index(proc.inspection());
    await proc.consume(batch, CTX);
    return Buffer.from(next.received[0]!.bytes);
  } finally {
    await proc.shutdown();
  }
}

// ---- hand-written protobuf ----
const field = (n: number, body: Uint8Array | string): Buffer => {
  const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
  return Buffer.concat([varint((n << 3) | 2), varint(b.length), b]);
};
const msg = (...parts: Buffer[]) => Buffer.concat(parts);
const anyString = (s: string) => field(1, s);
const keyValue = (key: string, value: Buffer, ...extra: Buffer[]) => msg(field(1, key), field(2, value), ...extra);

interface Extras {
  resource?: Buffer[];
  scope?: Buffer[];
  span?: Buffer[];
  event?: Buffer[];
  link?: Buffer[];
  status?: Buffer[];
  spanAttrs?: Buffer[];
}

/** A request with one resource, scope and span (an event, a link, a status), plus extra raw fields. */
function request(x: Extras = {}): Buffer {
  const resource = msg(field(1, keyValue('service.name', anyString('checkout'))), ...(x.resource ?? []));
  const scope = msg(field(1, 'lib'), field(2, '1.0'), ...(x.scope ?? []));
  const event = msg(field(2, 'event'), ...(x.event ?? []));
  const link = msg(field(1, Buffer.alloc(16, 1)), field(2, Buffer.alloc(8, 2)), ...(x.link ?? []));
  const status = msg(field(2, 'failed'), ...(x.status ?? []));
  const span = msg(
    field(1, Buffer.alloc(16, 3)),
    field(2, Buffer.alloc(8, 4)),
    field(5, 'span'),
    field(9, keyValue('span.keep', anyString('yes'))),
    ...(x.spanAttrs ?? []).map((kv) => field(9, kv)),
    field(11, event),
    field(13, link),
    field(15, status),
    ...(x.span ?? []),
  );
  return field(1, msg(field(1, resource), field(2, msg(field(1, scope), field(2, span)))));
}

test('a token in a field no schema defines is removed, wherever it is; the rest of the message stays', async () => {
  const places: [keyof Extras, number][] = [
    ['resource', 9],
    ['scope', 9],
    ['span', 30],
    ['event', 9],
    ['link', 9],
    ['status', 9],
  ];
  for (const [place, n] of places) {
    const out = await run(request({ [place]: [field(n, `prefix ${TOKEN} suffix`)] }));
    assert.equal(out.indexOf(TOKEN.slice(0, 20)), -1, `${place}: the token is gone`);
    assert.notEqual(out.indexOf('span.keep'), -1, `${place}: the span is still there`);
    assert.notEqual(out.indexOf('failed'), -1, `${place}: its status message is still there`);
  }
  // In a key-value (beside its key and value): the attribute is kept, the unknown field goes.
  const kvOut = await run(request({ spanAttrs: [keyValue('note', anyString('kept value'), field(5, TOKEN))] }));
  assert.equal(kvOut.indexOf(TOKEN.slice(0, 20)), -1);
  assert.notEqual(kvOut.indexOf('kept value'), -1);
});

test('an unknown field without a credential is left byte for byte, and so is a token when scrubbing is off', async () => {
  const plain = request({ span: [field(30, PLAIN)], resource: [field(9, PLAIN)], event: [field(9, PLAIN)], spanAttrs: [keyValue('note', anyString('v'), field(5, PLAIN))] });
  assert.deepEqual(await run(plain), plain, 'nothing to change: the very bytes');
  const withToken = request({ span: [field(30, TOKEN)] });
  const off = await run(withToken, { scrub: { tokens: false } });
  assert.notEqual(off.indexOf(TOKEN), -1, 'scrub.credentials false: unknown fields are not looked into');
});

test('a JWT written as an attribute key is fingerprinted; a long key that is not one stays', async () => {
  const out = await run(request({ spanAttrs: [keyValue(TOKEN, anyString('v'))] }));
  assert.equal(out.indexOf(TOKEN.slice(0, 20)), -1);
  const longKey = 'k'.repeat(80);
  const kept = await run(request({ spanAttrs: [keyValue(longKey, anyString('v'))] }));
  assert.notEqual(kept.indexOf(longKey), -1);
});

test('a credential header whose value is bytes is replaced by its fingerprint', async () => {
  const bytesValue = field(7, Buffer.from(`Bearer ${TOKEN}`));
  const out = await run(request({ spanAttrs: [keyValue('http.request.header.cookie', bytesValue)] }));
  assert.equal(out.indexOf(TOKEN.slice(0, 20)), -1);
  assert.notEqual(out.indexOf('http.request.header.cookie'), -1, 'the attribute stays, with a fingerprint');
  assert.notEqual(out.indexOf('redacted:'), -1);
});
