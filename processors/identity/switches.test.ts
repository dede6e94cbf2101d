/**
 * Configuration switches of the identity processor that a mutation pass found untested: the scrub
 * switches one by one (what each turns off, and what stays on), and the pseudonymization key's sources
 * and minimum length at start-up. Output searched as a backend would receive it (the exported bytes).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { jwksOf, makeSigningKey, startJwksServer, type JwksServer } from '../../test/helpers/jwks-server.js';
import { buildRequest } from '../../test/helpers/otlp.js';
import { identitySchema } from './config.js';
import { IdentityProcessor } from './identity-processor.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';
const COOKIE = 'session=s3cr3t-cookie-value';

let server: JwksServer;
before(async () => {
  server = await startJwksServer({ keys: jwksOf(await makeSigningKey('ES256', 'k')) });
});
after(() => server.stop());

function processor(overrides: Record<string, unknown>) {
  const config = parseOrThrow(identitySchema, { issuers: [{ issuer: server.issuer, audiences: ['checkout'], allow_insecure_http: true }], ...overrides });
  const next = new RecordingConsumer();
  return { proc: new IdentityProcessor(processorSettings('identity'), config, next), next };
}

async function exported(overrides: Record<string, unknown>): Promise<string> {
  const { proc, next } = processor(overrides);
  await proc.start();
  await proc.keysSettled();
  try {
    const req = buildRequest([
      {
        scopes: [
          {
            spans: [{ attributes: { 'http.request.header.cookie': [COOKIE], 'url.full': 'https://shop.example/cb?code=abc123code&x=1', note: `sent ${TOKEN} along` } }],
          },
        ],
      },
    ]);
    const batch = new TraceBatch(req);
    batch.index(proc.inspection());
    await proc.consume(batch, CTX);
    return Buffer.from(next.received[0]!.bytes).toString('latin1');
  } finally {
    await proc.shutdown();
  }
}

test('scrub switches: enabled false leaves headers, URLs and tokens; tokens false leaves only tokens in text', async () => {
  const on = await exported({});
  for (const secret of [COOKIE, 'abc123code', TOKEN.slice(0, 20)]) assert.ok(!on.includes(secret), `default: ${secret} removed`);
  const off = await exported({ scrub: { enabled: false } });
  for (const secret of [COOKIE, 'abc123code', TOKEN]) assert.ok(off.includes(secret), `scrub off: ${secret} left`);
  const noTokens = await exported({ scrub: { tokens: false } });
  assert.ok(!noTokens.includes(COOKIE) && !noTokens.includes('abc123code'), 'headers and URL parameters still scrubbed');
  assert.ok(noTokens.includes(TOKEN), 'a token in free text is left when tokens is false');
});

test('the pseudonymization key: inline or from a file, at least 16 bytes, an unreadable file named without its content', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-pseudo-'));
  try {
    const file = join(dir, 'key');
    writeFileSync(file, 'k'.repeat(16) + '\n');
    for (const p of [{ key: 'k'.repeat(16) }, { key_file: file }]) {
      const { proc } = processor({ pseudonymize: p });
      await proc.start();
      await proc.shutdown();
    }
    const short = processor({ pseudonymize: { key: 'k'.repeat(15) } });
    await assert.rejects(short.proc.start(), /the pseudonymization key must be at least 16 bytes/);
    writeFileSync(file, 'short-key-value\n');
    const shortFile = processor({ pseudonymize: { key_file: file } });
    await assert.rejects(shortFile.proc.start(), (e: Error) => /at least 16 bytes/.test(e.message) && !e.message.includes('short-key-value'));
    const missing = processor({ pseudonymize: { key_file: join(dir, 'absent') } });
    await assert.rejects(missing.proc.start(), (e: Error) => e.message === `identity: cannot read pseudonymize.key_file ${join(dir, 'absent')}: ENOENT`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
