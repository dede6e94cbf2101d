/**
 * The otlp exporter with `compression: zstd` and `snappy`, which go out through H2GrpcClient (node:http2)
 * since grpc-js cannot send them. A bare HTTP/2 server records each call as it arrived (headers, the
 * compressed flag, the raw message) and the message is decoded by an implementation other than the
 * exporter's: fzstd (pure JavaScript) for zstd, the snappy package's framed Decompressor for snappy (the
 * framing format, as configgrpc's snappy codec). The same calls also reach tracewarden's own receiver, and
 * the statuses, retries, deadlines and TLS behave as with grpc-js.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import { compress } from '../../pipeline/compression/compression.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { encodePartialSuccess, encodeRpcStatus } from '../../test/helpers/exporter-rpc-status.js';
import { exporterSettings, exporterTestHost as host } from '../../test/helpers/exporter-settings.js';
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from '../../test/helpers/exporter-tls.js';
import { decodeSpans, syntheticRequest } from '../../test/helpers/otlp.js';
import { startReceiver } from '../../test/helpers/receiver-harness.js';
import { grpcTimeout } from './h2-client.js';
import { factory } from './index.js';

const require = createRequire(import.meta.url);
const fzstd = require('fzstd') as { decompress(b: Uint8Array): Uint8Array };
const snappy = require('snappy') as typeof import('snappy');

const ctx: RequestContext = { receiver: 'r', transport: 'grpc', peer: '', auth: null };
const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

interface Call {
  headers: http2.IncomingHttpHeaders;
  compressed: boolean;
  /** The message as it arrived (compressed when `compressed`). */
  raw: Buffer;
  at: number;
}

interface Reply {
  code?: number;
  message?: string;
  retryDelayMs?: number;
  response?: Uint8Array;
  /** Compress the response message with zstd, as grpc-go answers a zstd request. */
  zstdResponse?: boolean;
  /** Answer with this HTTP status and no grpc-status. */
  httpStatus?: number;
  /** Never answer. */
  hang?: boolean;
}

/** A bare HTTP/2 gRPC server that records calls as they arrive and answers as scripted. */
class RawGrpcServer {
  readonly calls: Call[] = [];
  readonly replies: Reply[] = [];
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly server: http2.Http2Server | http2.Http2SecureServer,
    readonly port: number,
  ) {}

  static async start(opts: { tls?: boolean; port?: number } = {}): Promise<RawGrpcServer> {
    const server = opts.tls ? http2.createSecureServer({ key: TEST_SERVER_KEY_PEM, cert: TEST_SERVER_CERT_PEM }) : http2.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const s = new RawGrpcServer(server, (server.address() as AddressInfo).port);
    server.on('session', (session) => {
      s.sessions.add(session);
      session.on('close', () => s.sessions.delete(session));
    });
    server.on('stream', (stream, headers) => s.onStream(stream, headers));
    return s;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  async waitForCalls(n: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (this.calls.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} calls, got ${this.calls.length}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const len = body.length >= 5 ? body.readUInt32BE(1) : 0;
      if (body.length < 5 + len) return;
      this.calls.push({ headers, compressed: body[0] === 1, raw: body.subarray(5, 5 + len), at: Date.now() });
      for (const w of this.waiters.splice(0)) w();
      void this.answer(stream, this.replies.shift() ?? {});
    });
  }

  private async answer(stream: http2.ServerHttp2Stream, reply: Reply): Promise<void> {
    if (reply.hang || stream.destroyed) return;
    if (reply.httpStatus !== undefined) {
      stream.respond({ ':status': reply.httpStatus, 'content-type': 'text/plain' }, { endStream: true });
      return;
    }
    const code = reply.code ?? 0;
    if (code !== 0) {
      const h: http2.OutgoingHttpHeaders = { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(reply.message ?? 'scripted') };
      if (reply.retryDelayMs !== undefined) h['grpc-status-details-bin'] = Buffer.from(encodeRpcStatus(code, reply.message ?? '', reply.retryDelayMs)).toString('base64');
      stream.respond(h, { endStream: true });
      return;
    }
    let payload: Buffer = Buffer.from(reply.response ?? new Uint8Array(0));
    if (reply.zstdResponse) payload = await compress(payload, 'zstd', 3);
    const frame = Buffer.alloc(5 + payload.length);
    frame[0] = reply.zstdResponse ? 1 : 0;
    frame.writeUInt32BE(payload.length, 1);
    payload.copy(frame, 5);
    const h: http2.OutgoingHttpHeaders = { ':status': 200, 'content-type': 'application/grpc' };
    if (reply.zstdResponse) h['grpc-encoding'] = 'zstd';
    stream.respond(h, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  }
}

function exporter(endpoint: string, compression: string, extra: Record<string, unknown> = {}) {
  const settings = exporterSettings(`otlp/${compression}`);
  const config = parseOrThrow(factory.schema, { endpoint, compression, tls: { insecure: true }, retry_on_failure: { initial_interval: '5ms', max_interval: '20ms' }, ...extra });
  return { exp: factory.create(settings, config), settings };
}

function unframeSnappy(data: Buffer): Promise<Buffer> {
  const d = new snappy.Decompressor();
  const first = d.update(data);
  return d.finish().then((tail) => Buffer.concat([first, tail]));
}

describe('otlp exporter: zstd and snappy over node:http2', () => {
  let server: RawGrpcServer;
  before(async () => {
    server = await RawGrpcServer.start();
  });
  after(() => server.close());

  it('sends zstd as the Collector does, decoded by fzstd to the batch bytes', async () => {
    server.calls.length = 0;
    const { exp, settings } = exporter(server.endpoint, 'zstd', { headers: { 'X-Tenant': 'acme' }, timeout: '7s' });
    await exp.start(host);
    const bytes = syntheticRequest(60, 8);
    await exp.consume(new TraceBatch(bytes), ctx);
    await server.waitForCalls(1);
    await exp.shutdown(Date.now() + 2000);
    const call = server.calls[0]!;
    assert.equal(call.compressed, true);
    assert.equal(call.headers['grpc-encoding'], 'zstd');
    assert.equal(call.headers['content-type'], 'application/grpc');
    assert.equal(call.headers['te'], 'trailers');
    assert.equal(call.headers[':path'], EXPORT);
    assert.equal(call.headers[':authority'], server.endpoint);
    assert.equal(call.headers['x-tenant'], 'acme');
    assert.match(String(call.headers['grpc-accept-encoding']), /zstd/);
    const timeout = Number(String(call.headers['grpc-timeout']).slice(0, -1));
    assert.ok(String(call.headers['grpc-timeout']).endsWith('m') && timeout > 5000 && timeout <= 7000, String(call.headers['grpc-timeout']));
    assert.ok(call.raw.length < bytes.length / 3, 'compressed');
    assert.ok(Buffer.from(fzstd.decompress(call.raw)).equals(Buffer.from(bytes)), 'fzstd reads the exact batch bytes');
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 60);
    assert.match(settings.sink.text, /"compression":"zstd"/);
  });

  it('sends snappy in the framing format, decoded by the snappy package to the batch bytes', async () => {
    server.calls.length = 0;
    const { exp, settings } = exporter(server.endpoint, 'snappy');
    await exp.start(host);
    // Over 64 KiB: several chunks.
    const bytes = syntheticRequest(1500, 10);
    assert.ok(bytes.length > 3 * 65536);
    await exp.consume(new TraceBatch(bytes), ctx);
    await server.waitForCalls(1);
    await exp.shutdown(Date.now() + 2000);
    const call = server.calls[0]!;
    assert.equal(call.compressed, true);
    assert.equal(call.headers['grpc-encoding'], 'snappy');
    assert.equal(call.raw.subarray(0, 10).toString('latin1'), '\xff\x06\x00\x00sNaPpY');
    assert.ok((await unframeSnappy(call.raw)).equals(Buffer.from(bytes)));
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 1500);
  });

  it('maps statuses as with grpc-js: retryable ones retried (RetryInfo honoured), others permanent', async () => {
    server.calls.length = 0;
    server.replies.push({ code: 14, message: 'overloaded', retryDelayMs: 120 }, { httpStatus: 503 }, {});
    const { exp, settings } = exporter(server.endpoint, 'zstd');
    await exp.start(host);
    const bytes = syntheticRequest(4, 1);
    await exp.consume(new TraceBatch(bytes), ctx);
    await server.waitForCalls(3);
    assert.ok(server.calls[1]!.at - server.calls[0]!.at >= 120, 'RetryInfo delay honoured');
    for (const c of server.calls) assert.ok(Buffer.from(fzstd.decompress(c.raw)).equals(Buffer.from(bytes)), 'every retry carries the batch');

    server.replies.push({ code: 3, message: 'malformed spans' }, { code: 8, message: 'quota' }, { code: 16, message: 'who are you' });
    for (let i = 0; i < 3; i++) await exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
    await server.waitForCalls(6);
    // A grpc-go server answers a zstd call in zstd: the partial success inside is read.
    server.replies.push({ response: encodePartialSuccess(2, 'spans too old'), zstdResponse: true });
    await exp.consume(new TraceBatch(syntheticRequest(5, 1)), ctx);
    await server.waitForCalls(7);
    await exp.shutdown(Date.now() + 2000);
    assert.equal(server.calls.length, 7, 'permanent errors are not retried');
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 4 + 3);
    assert.equal(await settings.dropped('permanent'), 6);
    assert.equal(await settings.dropped('partial_success'), 2);
    assert.match(settings.sink.text, /INVALID_ARGUMENT: malformed spans/);
    assert.match(settings.sink.text, /UNAUTHENTICATED: who are you/);
    assert.match(settings.sink.text, /spans too old/);
  });

  it('cancels a call at its deadline, and retries while the peer is unreachable until it is back', async () => {
    server.calls.length = 0;
    server.replies.push({ hang: true }, {});
    const { exp, settings } = exporter(server.endpoint, 'zstd', { timeout: '150ms' });
    await exp.start(host);
    await exp.consume(new TraceBatch(syntheticRequest(3, 1)), ctx);
    await server.waitForCalls(2);
    await exp.shutdown(Date.now() + 2000);
    assert.match(settings.sink.text, /DEADLINE_EXCEEDED/);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 3);

    const late = await RawGrpcServer.start();
    const port = late.port;
    await late.close();
    const e2 = exporter(`127.0.0.1:${port}`, 'snappy', { retry_on_failure: { initial_interval: '20ms', max_interval: '50ms' } });
    await e2.exp.start(host);
    await e2.exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
    for (let i = 0; i < 300 && !e2.settings.sink.text.includes('will retry'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(e2.settings.sink.text, /UNAVAILABLE/);
    const back = await RawGrpcServer.start({ port });
    try {
      await back.waitForCalls(1);
      await e2.exp.shutdown(Date.now() + 3000);
      assert.equal(await e2.settings.metric('otelcol_exporter_sent_spans_total'), 2);
    } finally {
      await back.close();
    }
  });

  it('speaks TLS with a configured CA (and https:// chooses TLS)', async () => {
    const tlsServer = await RawGrpcServer.start({ tls: true });
    const dir = await mkdtemp(join(tmpdir(), 'tw-otlp-zstd-tls-'));
    try {
      const caFile = join(dir, 'ca.pem');
      await writeFile(caFile, TEST_CA_PEM);
      for (const endpoint of [`localhost:${tlsServer.port}`, `https://localhost:${tlsServer.port}`]) {
        const settings = exporterSettings('otlp/tls');
        const exp = factory.create(settings, parseOrThrow(factory.schema, { endpoint, compression: 'zstd', tls: { ca_file: caFile, insecure: endpoint.startsWith('https') } }));
        await exp.start(host);
        await exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
        await exp.shutdown(Date.now() + 3000);
        assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 2, endpoint);
      }
      assert.equal(tlsServer.calls.length, 2);
      // Without the CA the server is not trusted: the call fails (retryable) and nothing is sent.
      const settings = exporterSettings('otlp/untrusted');
      const exp = factory.create(settings, parseOrThrow(factory.schema, { endpoint: `localhost:${tlsServer.port}`, compression: 'zstd', retry_on_failure: { enabled: false } }));
      await exp.start(host);
      await exp.consume(new TraceBatch(syntheticRequest(1, 1)), ctx);
      await exp.shutdown(Date.now() + 3000);
      assert.equal(tlsServer.calls.length, 2);
      assert.equal(await settings.metric('otelcol_exporter_send_failed_spans_total'), 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await tlsServer.close();
    }
  });

  it("reaches tracewarden's own receiver, which decodes both", async () => {
    const r = await startReceiver({ grpc: {} });
    try {
      for (const compression of ['zstd', 'snappy']) {
        const { exp, settings } = exporter(`127.0.0.1:${r.grpcPort}`, compression);
        await exp.start(host);
        const bytes = syntheticRequest(120, 6);
        await exp.consume(new TraceBatch(bytes), ctx);
        await exp.shutdown(Date.now() + 3000);
        assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 120, compression);
        assert.ok(Buffer.from(r.consumer.batches.at(-1)!.bytes).equals(Buffer.from(bytes)), compression);
        assert.equal(decodeSpans(r.consumer.batches.at(-1)!.bytes).length, 120);
      }
    } finally {
      await r.stop();
    }
  });

  it('a grpc-js server, which has no zstd, refuses the call as UNIMPLEMENTED (permanent, as in the Collector)', async () => {
    const grpc = await import('@grpc/grpc-js');
    const srv = new grpc.Server();
    const pass = (b: Buffer): Buffer => b;
    srv.addService(
      { Export: { path: EXPORT, requestStream: false, responseStream: false, requestSerialize: pass, requestDeserialize: pass, responseSerialize: pass, responseDeserialize: pass } },
      { Export: (_call: unknown, cb: (err: null, res: Buffer) => void) => cb(null, Buffer.alloc(0)) },
    );
    const port = await new Promise<number>((resolve, reject) => srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    try {
      const { exp, settings } = exporter(`127.0.0.1:${port}`, 'zstd');
      await exp.start(host);
      await exp.consume(new TraceBatch(syntheticRequest(2, 1)), ctx);
      await exp.shutdown(Date.now() + 3000);
      assert.equal(await settings.dropped('permanent'), 2);
      assert.match(settings.sink.text, /UNIMPLEMENTED|INTERNAL/);
    } finally {
      await new Promise<void>((resolve) => srv.tryShutdown(() => resolve()));
    }
  });

  it('grpc-timeout fits the protocol: at most 8 digits', () => {
    assert.equal(grpcTimeout(5000), '5000m');
    assert.equal(grpcTimeout(0.2), '1m');
    assert.equal(grpcTimeout(99_999_999), '99999999m');
    assert.equal(grpcTimeout(100_000_000), '100000S');
  });

  it('accepts zstd and snappy in config, refuses the HTTP-only encodings and headers HTTP/2 forbids', async () => {
    for (const c of ['zstd', 'snappy', 'gzip', 'none']) assert.equal(parseOrThrow(factory.schema, { endpoint: 'x:1', compression: c }).compression, c);
    for (const c of ['x-snappy-framed', 'zlib', 'deflate', 'lz4']) assert.throws(() => parseOrThrow(factory.schema, { endpoint: 'x:1', compression: c }), /compression: expected one of gzip, zstd, snappy, none/);
    const { exp } = exporter('127.0.0.1:1', 'zstd', { headers: { Connection: 'close' } });
    await assert.rejects(exp.start(host), /header connection cannot be sent over HTTP\/2/);
  });
});
