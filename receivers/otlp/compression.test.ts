/**
 * The otlp receiver takes zstd and snappy bodies as the Collector's servers do: over HTTP
 * `Content-Encoding: zstd`, `snappy` (block, or the framing format recognised by its stream identifier),
 * `x-snappy-framed`, `zlib` and `lz4`; over gRPC `grpc-encoding: zstd` and `snappy` (the framing format,
 * as configgrpc's codec). Bodies are made by encoders other than the receiver's decoders where one exists
 * (snappyjs, the snappy package's framed Compressor, lz4js, zstd frames written by hand), and by libzstd
 * for real compressed zstd. The size limit applies to the decompressed body; a bomb or a corrupt stream is refused
 * with its status and costs only its request: the next request is served.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { compress } from '../../pipeline/compression/compression.js';
import { syntheticRequest } from '../../test/helpers/otlp.js';
import { decodeRpcStatus } from '../../test/helpers/receiver-sdk.js';
import { grpcFrame, grpcRaw, httpRequest, startReceiver, type RunningReceiver } from '../../test/helpers/receiver-harness.js';

const require = createRequire(import.meta.url);
const snappyjs = require('snappyjs') as { compress(b: Uint8Array): Uint8Array };
const snappy = require('snappy') as typeof import('snappy');
const lz4js = require('lz4js') as { compress(b: Uint8Array): Uint8Array };

const LIMIT = 1024 * 1024;
const PROTO = { 'content-type': 'application/x-protobuf' };

async function framedByReference(data: Uint8Array): Promise<Buffer> {
  const c = new snappy.Compressor();
  return Buffer.concat([c.update(data), await c.finish()]);
}

/** A zstd frame of raw blocks, written by hand (RFC 8878): no libzstd involved. */
function rawZstdFrame(data: Uint8Array): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3])];
  const max = 128 * 1024;
  for (let off = 0; off < data.length || off === 0; off += max) {
    const chunk = data.subarray(off, off + max);
    const last = off + max >= data.length ? 1 : 0;
    const h = (chunk.length << 3) | last;
    parts.push(Buffer.from([h & 0xff, (h >>> 8) & 0xff, h >>> 16]), Buffer.from(chunk));
    if (data.length === 0) break;
  }
  return Buffer.concat(parts);
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** A zstd frame of RLE blocks: 4 bytes for each 128 KiB of output. */
function rleZstdBomb(outputBytes: number): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3])];
  const blocks = Math.ceil(outputBytes / (128 * 1024));
  for (let i = 0; i < blocks; i++) {
    const h = ((128 * 1024) << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0);
    parts.push(Buffer.from([h & 0xff, (h >>> 8) & 0xff, h >>> 16, 0x41]));
  }
  return Buffer.concat(parts);
}

describe('otlp receiver: zstd and snappy bodies', () => {
  let r: RunningReceiver;
  before(async () => {
    r = await startReceiver({ grpc: { max_recv_msg_size_mib: 1 }, http: { max_request_body_size: LIMIT } });
  });
  after(async () => {
    await r.stop();
  });

  async function assertStillServing(): Promise<void> {
    const before = r.consumer.batches.length;
    const h = await httpRequest(r.httpPort, { headers: PROTO, body: syntheticRequest(2) });
    assert.equal(h.status, 200);
    const g = await grpcRaw(r.grpcPort, grpcFrame(syntheticRequest(2)));
    assert.equal(g.grpcStatus, 0);
    assert.equal(r.consumer.batches.length, before + 2);
  }

  test('HTTP: every encoding the Collector takes is decompressed to the very bytes sent', async () => {
    const body = Buffer.from(syntheticRequest(40, 6));
    const cases: [string, Buffer][] = [
      ['zstd', await compress(body, 'zstd', 3)],
      ['zstd', rawZstdFrame(body)],
      ['snappy', Buffer.from(snappyjs.compress(body))],
      ['snappy', await framedByReference(body)],
      ['x-snappy-framed', await framedByReference(body)],
      ['zlib', await compress(body, 'zlib', -1)],
      ['lz4', Buffer.from(lz4js.compress(body))],
      ['ZSTD', await compress(body, 'zstd', 1)],
    ];
    for (const [encoding, compressed] of cases) {
      const res = await httpRequest(r.httpPort, { headers: { ...PROTO, 'content-encoding': encoding }, body: compressed });
      assert.equal(res.status, 200, `${encoding}: ${res.body.toString()}`);
      assert.ok(Buffer.from(r.consumer.batches.at(-1)!.bytes).equals(body), encoding);
    }
    // OTLP/JSON compressed with zstd is converted after decompression.
    const json = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'zstd-json' }] }] }] });
    const res = await httpRequest(r.httpPort, { headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' }, body: await compress(Buffer.from(json), 'zstd', 3) });
    assert.equal(res.status, 200);
    assert.equal(r.consumer.batches.at(-1)!.spanCount, 1);
  });

  test('gRPC: zstd and snappy messages are decompressed, and the server says what it accepts', async () => {
    const body = Buffer.from(syntheticRequest(30, 4));
    const cases: [string, Buffer][] = [
      ['zstd', await compress(body, 'zstd', 3)],
      ['zstd', rawZstdFrame(body)],
      ['snappy', await framedByReference(body)],
      // Lenient where the Collector is strict: a snappy block is recognised too.
      ['snappy', Buffer.from(snappyjs.compress(body))],
    ];
    for (const [encoding, compressed] of cases) {
      const res = await grpcRaw(r.grpcPort, grpcFrame(compressed, true), { headers: { 'grpc-encoding': encoding } });
      assert.equal(res.grpcStatus, 0, `${encoding}: ${res.grpcMessage}`);
      assert.equal(res.headers['grpc-accept-encoding'], 'identity,gzip,deflate,zstd,snappy');
      assert.ok(Buffer.from(r.consumer.batches.at(-1)!.bytes).equals(body), encoding);
    }
    const unknown = await grpcRaw(r.grpcPort, grpcFrame(body, true), { headers: { 'grpc-encoding': 'x-snappy-framed' } });
    assert.equal(unknown.grpcStatus, 12);
    assert.match(unknown.grpcMessage, /this server accepts identity,gzip,deflate,zstd,snappy/);
  });

  test('bombs and corrupt streams get a clear refusal and cost only their request', async () => {
    const valid = Buffer.from(syntheticRequest(10));
    const zstdZeros = await compress(Buffer.alloc(64 * 1024 * 1024), 'zstd', 3);
    const framedZeros = await compress(Buffer.alloc(8 * 1024 * 1024), 'x-snappy-framed', 0);
    const snappyZeros = Buffer.from(snappyjs.compress(Buffer.alloc(8 * 1024 * 1024)));
    // Just over the limit once decompressed: refused by the exact check after decoding.
    const justOver = await compress(Buffer.concat([valid, Buffer.alloc(LIMIT - valid.length + 1)]), 'zstd', 3);
    const corruptFramed = Buffer.from(await framedByReference(valid));
    corruptFramed[14]! ^= 0xff;
    const cases: { name: string; encoding: string; body: Buffer; http: number; grpc: number; message: RegExp }[] = [
      { name: 'zstd bomb (compressed blocks)', encoding: 'zstd', body: zstdZeros, http: 413, grpc: 8, message: /decompresses to more than the limit of 1048576 bytes \(zstd\)/ },
      { name: 'zstd bomb (RLE blocks)', encoding: 'zstd', body: rleZstdBomb(256 * 1024 * 1024), http: 413, grpc: 8, message: /decompresses to more than the limit/ },
      { name: 'zstd just over the limit', encoding: 'zstd', body: justOver, http: 413, grpc: 8, message: /decompresses to more than the limit/ },
      { name: 'snappy framed bomb', encoding: 'snappy', body: framedZeros, http: 413, grpc: 8, message: /decompresses to more than the limit of 1048576 bytes \(snappy\)/ },
      { name: 'snappy block bomb', encoding: 'snappy', body: snappyZeros, http: 413, grpc: 8, message: /decompresses to more than the limit/ },
      { name: 'corrupt zstd', encoding: 'zstd', body: Buffer.from('(\xb5/\xfd garbage that is not zstd', 'latin1'), http: 400, grpc: 3, message: /^request body is not valid zstd data/ },
      { name: 'truncated zstd', encoding: 'zstd', body: (await compress(valid, 'zstd', 3)).subarray(0, 20), http: 400, grpc: 3, message: /^request body is not valid zstd data: truncated/ },
      { name: 'snappy checksum mismatch', encoding: 'snappy', body: corruptFramed, http: 400, grpc: 3, message: /^request body is not valid snappy data: checksum mismatch/ },
      { name: 'corrupt snappy block', encoding: 'snappy', body: Buffer.from([0x40, 0xff, 0xff, 0xff]), http: 400, grpc: 3, message: /^request body is not valid snappy data/ },
    ];
    for (const c of cases) {
      r.consumer.batches.length = 0;
      const h = await httpRequest(r.httpPort, { headers: { ...PROTO, 'content-encoding': c.encoding }, body: c.body });
      assert.equal(h.status, c.http, `${c.name} (HTTP): ${h.body.toString()}`);
      const st = decodeRpcStatus(h.body);
      assert.equal(st.code, c.grpc, c.name);
      assert.match(st.message, c.message, c.name);
      const g = await grpcRaw(r.grpcPort, grpcFrame(c.body, true), { headers: { 'grpc-encoding': c.encoding } });
      assert.equal(g.grpcStatus, c.grpc, `${c.name} (gRPC): ${g.grpcMessage}`);
      assert.match(g.grpcMessage, c.message, c.name);
      assert.equal(r.consumer.batches.length, 0, `${c.name}: nothing consumed`);
      await assertStillServing();
    }
    // lz4 (HTTP only): a bomb of 4 MiB runs, and a corrupt frame.
    const run = Buffer.from([0x1f, 0x41, 0x01, 0x00, ...Array<number>(16_000).fill(255), 0x00, 0x10, 0x41]);
    const lz4Bomb = Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73]), ...Array.from({ length: 8 }, () => Buffer.concat([u32le(run.length), run])), u32le(0)]);
    for (const [body, status, message] of [
      [lz4Bomb, 413, /decompresses to more than the limit of 1048576 bytes \(lz4\)/],
      [Buffer.from(lz4js.compress(valid)).subarray(0, 20), 400, /^request body is not valid lz4 data: truncated/],
    ] as const) {
      const h = await httpRequest(r.httpPort, { headers: { ...PROTO, 'content-encoding': 'lz4' }, body });
      assert.equal(h.status, status, h.body.toString());
      assert.match(decodeRpcStatus(h.body).message, message);
      await assertStillServing();
    }
    // Counted as the receiver counts every refusal.
    assert.ok((await r.telemetry.value('tracewarden_receiver_requests_total', { transport: 'http', outcome: 'too_large' })) >= 5);
    assert.ok((await r.telemetry.value('tracewarden_receiver_requests_total', { transport: 'grpc', outcome: 'invalid' })) >= 4);
  });

  test('an encoding the receiver does not take is refused, naming those it does', async () => {
    const res = await httpRequest(r.httpPort, { headers: { ...PROTO, 'content-encoding': 'br' }, body: Buffer.from('x') });
    assert.equal(res.status, 400);
    assert.match(decodeRpcStatus(res.body).message, /use one of gzip, deflate, zlib, zstd, snappy, x-snappy-framed, lz4, identity/);
    // lz4 is HTTP's only: configgrpc registers gzip, zstd and snappy.
    const g = await grpcRaw(r.grpcPort, grpcFrame(Buffer.from(lz4js.compress(syntheticRequest(1))), true), { headers: { 'grpc-encoding': 'lz4' } });
    assert.equal(g.grpcStatus, 12);
  });
});
