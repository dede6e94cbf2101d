import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { OtlpGrpcTestServer } from '../../test/helpers/exporter-grpc-server.js';
import { exporterSettings, exporterTestHost as host } from '../../test/helpers/exporter-settings.js';
import { decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import { factory } from './index.js';

const require = createRequire(import.meta.url);
const fzstd = require('fzstd') as { decompress(b: Uint8Array): Uint8Array };
const snappy = require('snappy') as typeof import('snappy');

async function unframeSnappy(data: Buffer): Promise<Buffer> {
  const d = new snappy.Decompressor();
  const first = d.update(data);
  return Buffer.concat([first, await d.finish()]);
}

const ctx: RequestContext = { receiver: 'r', transport: 'grpc', peer: '', auth: null };
const TOKEN = 'ls-secret-token-3f9a1c7e5b';

describe('lightstep exporter', () => {
  let server: OtlpGrpcTestServer;
  let dir: string;
  before(async () => {
    server = await OtlpGrpcTestServer.start();
    dir = await mkdtemp(join(tmpdir(), 'tw-lightstep-'));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends the token read from access_token_file as lightstep-access-token, and never shows it', async () => {
    const file = join(dir, 'token');
    await writeFile(file, `  ${TOKEN}\n`);
    server.requests.length = 0;
    server.replyWith({ code: 14, message: 'try again' }, {}, { code: 3, message: 'rejected' });
    const settings = exporterSettings('lightstep');
    const config = parseOrThrow(factory.schema, {
      endpoint: server.endpoint,
      tls: { insecure: true },
      access_token_file: file,
      retry_on_failure: { initial_interval: '5ms' },
    });
    const exp = factory.create(settings, config);
    await exp.start(host);
    const bytes = syntheticRequest(5, 2);
    await exp.consume(new TraceBatch(bytes), ctx);
    await server.waitForRequests(2);
    await exp.consume(new TraceBatch(syntheticRequest(1, 1)), ctx);
    await server.waitForRequests(3);
    await exp.shutdown(Date.now() + 2000);

    for (const r of server.requests) assert.equal(r.headers['lightstep-access-token'], TOKEN);
    assert.equal(decodeSpans(server.requests[0]!.bytes).length, 5);
    assert.ok(server.requests[1]!.bytes.equals(Buffer.from(bytes)), 'the retry carries the same bytes');
    // Failures, retries and start-up were all logged (debug level), none with the token.
    assert.match(settings.sink.text, /will retry/);
    assert.match(settings.sink.text, /export failed; spans dropped/);
    assert.ok(!settings.sink.text.includes(TOKEN), 'token absent from logs');
    assert.ok(!(await settings.telemetry.registry.metrics()).includes(TOKEN), 'token absent from metrics');
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 5);
    assert.equal(await settings.dropped('permanent'), 1);
  });

  it('accepts an inline access_token', async () => {
    server.requests.length = 0;
    const settings = exporterSettings('lightstep/inline');
    const exp = factory.create(settings, parseOrThrow(factory.schema, { endpoint: server.endpoint, tls: { insecure: true }, access_token: TOKEN, headers: { 'x-extra': '1' } }));
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(server.requests[0]!.headers['lightstep-access-token'], TOKEN);
    assert.equal(server.requests[0]!.headers['x-extra'], '1');
    assert.ok(!settings.sink.text.includes(TOKEN));
  });

  it('fails to start on a missing or empty token file, naming the file and not its content', async () => {
    const missing = join(dir, 'nope');
    const exp1 = factory.create(exporterSettings('lightstep'), parseOrThrow(factory.schema, { access_token_file: missing }));
    await assert.rejects(exp1.start(host), (e: Error) => e.message.includes(missing) && /ENOENT/.test(e.message));
    const empty = join(dir, 'empty');
    await writeFile(empty, '  \n');
    const exp2 = factory.create(exporterSettings('lightstep'), parseOrThrow(factory.schema, { access_token_file: empty }));
    await assert.rejects(exp2.start(host), new RegExp(`access_token_file ${empty} is empty`));
    const twoLines = join(dir, 'two');
    await writeFile(twoLines, `${TOKEN}\nsecond-secret`);
    const exp3 = factory.create(exporterSettings('lightstep'), parseOrThrow(factory.schema, { access_token_file: twoLines }));
    await assert.rejects(exp3.start(host), (e: Error) => e.message.includes(twoLines) && !e.message.includes(TOKEN) && !e.message.includes('second-secret'));
    const tab = join(dir, 'tab');
    await writeFile(tab, `${TOKEN}\tx`);
    const exp4 = factory.create(exporterSettings('lightstep'), parseOrThrow(factory.schema, { access_token_file: tab }));
    await assert.rejects(exp4.start(host), (e: Error) => /lightstep-access-token: the value has characters not allowed/.test(e.message) && !e.message.includes(TOKEN));
  });

  it('compresses with zstd or snappy as the otlp exporter does, the token still sent and never shown', async () => {
    // A bare HTTP/2 server: the shared test server reads gzip only.
    const calls: { headers: http2.IncomingHttpHeaders; message: Buffer }[] = [];
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        calls.push({ headers, message: body.subarray(5) });
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { endStream: true });
      });
    });
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    const endpoint = `127.0.0.1:${(h2.address() as AddressInfo).port}`;
    try {
      for (const compression of ['zstd', 'snappy']) {
        const settings = exporterSettings(`lightstep/${compression}`);
        const exp = factory.create(settings, parseOrThrow(factory.schema, { endpoint, tls: { insecure: true }, access_token: TOKEN, compression }));
        await exp.start(host);
        const bytes = syntheticRequest(7, 2);
        await exp.consume(new TraceBatch(bytes), ctx);
        await exp.shutdown(Date.now() + 2000);
        const call = calls.at(-1)!;
        assert.equal(call.headers['lightstep-access-token'], TOKEN);
        assert.equal(call.headers['grpc-encoding'], compression);
        const plain = compression === 'zstd' ? Buffer.from(fzstd.decompress(call.message)) : await unframeSnappy(call.message);
        assert.ok(plain.equals(Buffer.from(bytes)), compression);
        assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 7);
        assert.ok(!settings.sink.text.includes(TOKEN));
      }
    } finally {
      h2.close();
    }
  });

  it('defaults to Lightstep over TLS and needs exactly one token source', () => {
    const c = parseOrThrow(factory.schema, { access_token: 'x' });
    assert.equal(c.endpoint, 'ingest.lightstep.com:443');
    assert.equal(c.tls.insecure, false);
    assert.equal(c.compression, 'gzip');
    assert.throws(() => parseOrThrow(factory.schema, {}), /an access token is required/);
    assert.throws(
      () => parseOrThrow(factory.schema, { access_token: TOKEN, access_token_file: '/t' }),
      (e: Error) => /set access_token or access_token_file, not both/.test(e.message) && !e.message.includes(TOKEN),
    );
    assert.throws(() => parseOrThrow(factory.schema, { access_token: 'x', headers: { 'Lightstep-Access-Token': 'y' } }), /use access_token or access_token_file/);
  });
});
