/**
 * Body codecs: every codec round-trips, what this module writes is read by an independent implementation
 * (fzstd for zstd, snappyjs for snappy blocks, the snappy package's own framed Decompressor for the framing
 * format, node:zlib for gzip and deflate), what independent encoders write is read here (hand-made zstd
 * frames, the snappy package's framed Compressor), and the limit holds on the decompressed size: bombs are
 * refused as too_large before their output is produced, malformed data as corrupt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { deflateSync, gzipSync, inflateSync, gunzipSync } from 'node:zlib';
import { syntheticRequest } from '../../test/helpers/otlp.js';
import { CodecError, compress, decompress, type DecompressionCodec } from './compression.js';
import { crc32c, maskedCrc32c } from './crc32c.js';
import { xxh32 } from './lz4-frames.js';
import { SNAPPY_STREAM_IDENTIFIER } from './snappy-framing.js';
import { zstdDecompressedBound } from './zstd-frames.js';

const require = createRequire(import.meta.url);
const fzstd = require('fzstd') as { decompress(b: Uint8Array): Uint8Array };
const snappyjs = require('snappyjs') as { compress(b: Uint8Array): Uint8Array; uncompress(b: Uint8Array): Uint8Array };
const snappy = require('snappy') as typeof import('snappy');
const lz4js = require('lz4js') as { compress(b: Uint8Array): Uint8Array };
const lz4jsHash = require('lz4js/xxh32.js') as { hash(seed: number, b: Uint8Array, offset: number, length: number): number };

const MIB = 1024 * 1024;
const REQUEST = Buffer.from(syntheticRequest(300, 8));

async function refused(body: Uint8Array, codec: DecompressionCodec, limit: number, kind: 'corrupt' | 'too_large', pattern?: RegExp): Promise<void> {
  await assert.rejects(decompress(body, codec, limit), (err: unknown) => {
    assert.ok(err instanceof CodecError, `expected a CodecError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
}

// --- hand-made zstd frames (RFC 8878): raw and RLE blocks need no entropy coder, so these are an encoder
// independent of libzstd.

interface Block {
  type: 'raw' | 'rle' | 'compressed';
  data: Buffer;
  /** RLE: how many times data[0] repeats. */
  repeat?: number;
}

function zstdFrame(blocks: Block[], opts: { windowLog?: number; contentSize?: number; singleSegment?: boolean; dictId?: number } = {}): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd])];
  const single = opts.singleSegment === true;
  const fcs = opts.contentSize;
  // Frame_Content_Size as 4 bytes (flag 2) when given, or 1 byte (flag 0) for a single segment.
  const fcsFlag = fcs === undefined ? 0 : single && fcs < 256 ? 0 : 2;
  const didFlag = opts.dictId === undefined ? 0 : 3;
  parts.push(Buffer.from([(fcsFlag << 6) | (single ? 0x20 : 0) | didFlag]));
  if (!single) parts.push(Buffer.from([((opts.windowLog ?? 17) - 10) << 3]));
  if (opts.dictId !== undefined) {
    const d = Buffer.alloc(4);
    d.writeUInt32LE(opts.dictId);
    parts.push(d);
  }
  if (fcs !== undefined) {
    if (fcsFlag === 0) parts.push(Buffer.from([fcs]));
    else {
      const f = Buffer.alloc(4);
      f.writeUInt32LE(fcs);
      parts.push(f);
    }
  }
  blocks.forEach((b, i) => {
    const last = i === blocks.length - 1 ? 1 : 0;
    const type = b.type === 'raw' ? 0 : b.type === 'rle' ? 1 : 2;
    const size = b.type === 'rle' ? b.repeat! : b.data.length;
    const h = (size << 3) | (type << 1) | last;
    parts.push(Buffer.from([h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff]), b.type === 'rle' ? b.data.subarray(0, 1) : b.data);
  });
  return Buffer.concat(parts);
}

function rawFrame(data: Buffer, windowLog = 17): Buffer {
  const blocks: Block[] = [];
  const max = Math.min(2 ** windowLog, 128 * 1024);
  for (let off = 0; off < data.length; off += max) blocks.push({ type: 'raw', data: data.subarray(off, off + max) });
  if (blocks.length === 0) blocks.push({ type: 'raw', data: Buffer.alloc(0) });
  return zstdFrame(blocks, { windowLog });
}

function skippableFrame(payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(0x184d2a53, 0);
  h.writeUInt32LE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

test('CRC-32C matches the published check values, and the framing mask as golang/snappy computes it', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  const ascending = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  assert.equal(crc32c(ascending), 0x46dd794e);
  // Every length 0..40 and offset: slice-by-8 and the byte loop agree with a bitwise reference.
  const data = Buffer.from(Array.from({ length: 50 }, (_, i) => (i * 37 + 11) & 0xff));
  const ref = (b: Uint8Array): number => {
    let c = 0xffffffff;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  for (let start = 0; start < 5; start++) for (let end = start; end <= 45; end++) assert.equal(crc32c(data, start, end), ref(data.subarray(start, end)));
  const c = crc32c(Buffer.from('sNaPpY'));
  assert.equal(maskedCrc32c(Buffer.from('sNaPpY')), ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
});

test('every codec round-trips an OTLP request, and the limit is inclusive', async () => {
  for (const codec of ['gzip', 'deflate', 'zlib', 'zstd', 'snappy', 'x-snappy-framed'] as const) {
    const z = await compress(REQUEST, codec, codec === 'zstd' ? 3 : -1);
    assert.ok(z.length < REQUEST.length, `${codec} compresses`);
    const readAs: DecompressionCodec = codec === 'zlib' ? 'deflate' : codec;
    assert.ok((await decompress(z, readAs, REQUEST.length)).equals(REQUEST), codec);
    await refused(z, readAs, REQUEST.length - 1, 'too_large');
  }
  // zstd's bound is exact for raw blocks.
  const frame = rawFrame(REQUEST);
  assert.ok((await decompress(frame, 'zstd', REQUEST.length)).equals(REQUEST));
  await refused(frame, 'zstd', REQUEST.length - 1, 'too_large');
});

test('what is written here is read by independent implementations', async () => {
  for (const level of [1, 3, 7, 11, 19]) {
    const z = await compress(REQUEST, 'zstd', level);
    assert.ok(Buffer.from(fzstd.decompress(z)).equals(REQUEST), `zstd level ${level} read by fzstd`);
  }
  assert.ok(Buffer.from(snappyjs.uncompress(await compress(REQUEST, 'snappy', 0))).equals(REQUEST), 'snappy block read by snappyjs');
  const framed = await compress(REQUEST, 'x-snappy-framed', 0);
  assert.ok(framed.subarray(0, 10).equals(SNAPPY_STREAM_IDENTIFIER));
  const d = new snappy.Decompressor();
  const out = Buffer.concat([d.update(framed), await d.finish()]);
  assert.ok(out.equals(REQUEST), 'framing format read by the snappy package (Rust snap) framed decoder');
  // Incompressible input goes out as uncompressed chunks, which the reference reads too.
  const random = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (Math.imul(i, 2654435761) >>> 13) & 0xff));
  const rf = await compress(random, 'x-snappy-framed', 0);
  const d2 = new snappy.Decompressor();
  assert.ok(Buffer.concat([d2.update(rf), await d2.finish()]).equals(random));
  assert.ok(gunzipSync(await compress(REQUEST, 'gzip', 9)).equals(REQUEST));
  assert.ok(gunzipSync(await compress(REQUEST, 'gzip', -2)).equals(REQUEST), 'Huffman only');
  assert.ok(inflateSync(await compress(REQUEST, 'zlib', -1)).equals(REQUEST));
});

test('what independent implementations write is read here', async () => {
  // zstd frames made by hand: raw blocks, RLE blocks, several frames and a skippable frame between them.
  const text = Buffer.from('hello, zstd; '.repeat(20_000));
  assert.ok((await decompress(rawFrame(text), 'zstd', MIB)).equals(text));
  const rle = zstdFrame([{ type: 'rle', data: Buffer.from('x'), repeat: 100_000 }, { type: 'raw', data: Buffer.from('!') }], { windowLog: 17 });
  assert.equal(zstdDecompressedBound(rle, MIB, MIB, 8 * MIB), 100_001);
  assert.ok((await decompress(rle, 'zstd', MIB)).equals(Buffer.concat([Buffer.alloc(100_000, 'x'), Buffer.from('!')])));
  const multi = Buffer.concat([rawFrame(Buffer.from('one ')), skippableFrame(Buffer.from('ignored')), rawFrame(Buffer.from('two'))]);
  assert.equal((await decompress(multi, 'zstd', MIB)).toString(), 'one two');
  const single = zstdFrame([{ type: 'raw', data: Buffer.from('abc') }], { singleSegment: true, contentSize: 3 });
  assert.equal((await decompress(single, 'zstd', 3)).toString(), 'abc');
  // snappy: blocks by snappyjs, the framing format by the snappy package's framed Compressor.
  assert.ok((await decompress(Buffer.from(snappyjs.compress(REQUEST)), 'snappy', MIB)).equals(REQUEST));
  const c = new snappy.Compressor();
  const framed = Buffer.concat([c.update(REQUEST), await c.finish()]);
  assert.ok((await decompress(framed, 'snappy', MIB)).equals(REQUEST), '`snappy` reads the framing format too');
  assert.ok((await decompress(framed, 'x-snappy-framed', MIB)).equals(REQUEST));
  assert.ok((await decompress(gzipSync(REQUEST), 'gzip', MIB)).equals(REQUEST));
  assert.ok((await decompress(deflateSync(REQUEST), 'deflate', MIB)).equals(REQUEST));
});

test('bombs are refused as too_large before their output exists', async () => {
  const limit = 4 * MIB;
  // zstd, compressed blocks: 64 MiB of zeros in a few kilobytes; the block headers alone bound it past the limit.
  const zeros = await compress(Buffer.alloc(64 * MIB), 'zstd', 3);
  assert.ok(zeros.length < 16 * 1024, `the bomb is ${zeros.length} bytes`);
  await refused(zeros, 'zstd', limit, 'too_large', /may decompress to more than the limit of 4194304 bytes/);
  // zstd, RLE blocks: 4 bytes for each 128 KiB.
  const blocks: Block[] = Array.from({ length: 1000 }, () => ({ type: 'rle', data: Buffer.from([0]), repeat: 128 * 1024 }));
  await refused(zstdFrame(blocks), 'zstd', limit, 'too_large');
  // zstd: a declared content size over the limit, and a window far larger than anything needs.
  await refused(zstdFrame([{ type: 'raw', data: Buffer.from('x') }], { contentSize: 1 << 30 }), 'zstd', limit, 'too_large', /declares 1073741824 bytes/);
  await refused(zstdFrame([{ type: 'raw', data: Buffer.from('x') }], { windowLog: 30 }), 'zstd', limit, 'too_large', /window of 1073741824 bytes/);
  // A large window is fine when the frame says its content is small.
  assert.equal((await decompress(zstdFrame([{ type: 'raw', data: Buffer.from('x') }], { windowLog: 30, contentSize: 1 }), 'zstd', limit)).toString(), 'x');
  // snappy block: the varint says 64 MiB.
  await refused(await compress(Buffer.alloc(64 * MIB), 'snappy', 0), 'snappy', limit, 'too_large', /declares 67108864 bytes/);
  // snappy framed: each chunk is small, the total is not.
  await refused(await compress(Buffer.alloc(8 * MIB), 'x-snappy-framed', 0), 'snappy', limit, 'too_large');
  // gzip: zlib stops at the limit.
  await refused(gzipSync(Buffer.alloc(64 * MIB)), 'gzip', limit, 'too_large');
});

test('malformed data is refused as corrupt', async () => {
  const z = await compress(REQUEST, 'zstd', 3);
  await refused(Buffer.alloc(0), 'zstd', MIB, 'corrupt');
  await refused(Buffer.from('not zstd at all'), 'zstd', MIB, 'corrupt', /bad magic number/);
  await refused(z.subarray(0, z.length - 10), 'zstd', MIB, 'corrupt', /truncated/);
  await refused(Buffer.concat([z, Buffer.from([1, 2, 3])]), 'zstd', MIB, 'corrupt');
  await refused(zstdFrame([{ type: 'raw', data: Buffer.from('x') }], { dictId: 7 }), 'zstd', MIB, 'corrupt', /dictionary/);
  // Framing that walks cleanly around a compressed block of garbage: the decoder refuses it.
  await refused(zstdFrame([{ type: 'compressed', data: Buffer.from([0xff, 0xfe, 0xfd, 0xfc, 0x01, 0x02, 0x03]) }]), 'zstd', MIB, 'corrupt');
  // A block larger than its frame's window (an RLE block of 2 KiB in a 1 KiB window).
  await refused(zstdFrame([{ type: 'rle', data: Buffer.from('a'), repeat: 2048 }], { windowLog: 10 }), 'zstd', MIB, 'corrupt', /larger than the frame allows/);

  const block = await compress(REQUEST, 'snappy', 0);
  await refused(block.subarray(0, block.length - 5), 'snappy', MIB, 'corrupt');
  await refused(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 'snappy', 1e12, 'corrupt', /32 bits/);
  const framed = await compress(REQUEST, 'x-snappy-framed', 0);
  await refused(framed.subarray(10), 'x-snappy-framed', MIB, 'corrupt', /stream identifier/);
  const badCrc = Buffer.from(framed);
  badCrc[14]! ^= 1; // the first chunk's checksum
  await refused(badCrc, 'snappy', MIB, 'corrupt', /checksum mismatch/);
  await refused(Buffer.concat([SNAPPY_STREAM_IDENTIFIER, Buffer.from([0x02, 0, 0, 0])]), 'snappy', MIB, 'corrupt', /unskippable/);
  await refused(framed.subarray(0, framed.length - 3), 'snappy', MIB, 'corrupt', /truncated/);
  // Padding and reserved skippable chunks are skipped.
  const padded = Buffer.concat([framed.subarray(0, 10), Buffer.from([0xfe, 2, 0, 0, 0, 0, 0x90, 1, 0, 0, 7]), framed.subarray(10)]);
  assert.ok((await decompress(padded, 'snappy', MIB)).equals(REQUEST));

  await refused(Buffer.from('not gzip'), 'gzip', MIB, 'corrupt');
  await refused(Buffer.from('not zlib'), 'deflate', MIB, 'corrupt');
});

// --- lz4 (frame format), decompression only.

/** An lz4 frame written by hand: uncompressed blocks or given compressed ones, with the checksums asked for. */
function lz4Frame(blocks: { data: Buffer; compressed?: boolean }[], opts: { blockMaxId?: number; contentSize?: number; contentChecksumOf?: Buffer; blockChecksums?: boolean; independent?: boolean } = {}): Buffer {
  const flg = 0x40 | (opts.independent === false ? 0 : 0x20) | (opts.blockChecksums ? 0x10 : 0) | (opts.contentSize !== undefined ? 0x08 : 0) | (opts.contentChecksumOf ? 0x04 : 0);
  const desc = [flg, (opts.blockMaxId ?? 4) << 4];
  if (opts.contentSize !== undefined) {
    const c = Buffer.alloc(8);
    c.writeBigUInt64LE(BigInt(opts.contentSize));
    desc.push(...c);
  }
  const d = Buffer.from(desc);
  const parts: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18]), d, Buffer.from([(xxh32(d) >>> 8) & 0xff])];
  for (const b of blocks) {
    const h = Buffer.alloc(4);
    h.writeUInt32LE(((b.compressed ? 0 : 0x80000000) | b.data.length) >>> 0);
    parts.push(h, b.data);
    if (opts.blockChecksums) {
      const c = Buffer.alloc(4);
      c.writeUInt32LE(xxh32(b.data));
      parts.push(c);
    }
  }
  parts.push(Buffer.alloc(4));
  if (opts.contentChecksumOf) {
    const c = Buffer.alloc(4);
    c.writeUInt32LE(xxh32(opts.contentChecksumOf));
    parts.push(c);
  }
  return Buffer.concat(parts);
}

test('XXH32 matches the published values and an independent implementation', () => {
  assert.equal(xxh32(Buffer.alloc(0)), 0x02cc5d05);
  assert.equal(xxh32(Buffer.from('a')), 0x550d7456);
  assert.equal(xxh32(Buffer.from('abc')), 0x32d153ff);
  assert.equal(xxh32(Buffer.from('Nobody inspects the spammish repetition')), 0xe2293b2f);
  for (let n = 0; n < 80; n++) {
    const b = Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + n) & 0xff));
    assert.equal(xxh32(b), lz4jsHash.hash(0, b, 0, n) >>> 0, `length ${n}`);
  }
});

test('lz4 frames as lz4js writes them (linked 4 MiB blocks) and as written by hand are read', async () => {
  const big = Buffer.concat([REQUEST, REQUEST, Buffer.from(REQUEST).reverse()]);
  assert.ok((await decompress(Buffer.from(lz4js.compress(big)), 'lz4', MIB)).equals(big));
  const text = Buffer.from('lz4 '.repeat(50_000));
  assert.ok((await decompress(Buffer.from(lz4js.compress(text)), 'lz4', MIB)).equals(text));
  // Uncompressed blocks with every checksum, a declared size, a skippable frame and a second frame.
  const a = Buffer.from('first frame; ');
  const b = Buffer.from('second');
  const two = Buffer.concat([lz4Frame([{ data: a }], { contentSize: a.length, contentChecksumOf: a, blockChecksums: true }), skippableFrame(Buffer.from('skip')), lz4Frame([{ data: b }])]);
  assert.equal((await decompress(two, 'lz4', MIB)).toString(), 'first frame; second');
  // A compressed block by hand: 4 literals "abcd", then a match of offset 4 and length 4 + 12, then "!".
  const block = Buffer.from([0x4c, 0x61, 0x62, 0x63, 0x64, 0x04, 0x00, 0x10, 0x21]);
  assert.equal((await decompress(lz4Frame([{ data: block, compressed: true }]), 'lz4', MIB)).toString(), 'abcd'.repeat(5) + '!');
});

test('lz4: the limit holds on the output, and malformed frames are refused', async () => {
  // A bomb: every 4 MiB block is a single run (a literal and a long match), a few bytes each.
  const run = (n: number): Buffer => {
    const ext: number[] = [];
    // One literal, a match of n - 2 (offset 1: a run), one literal.
    let rest = n - 2 - 4 - 15;
    while (rest >= 255) {
      ext.push(255);
      rest -= 255;
    }
    ext.push(rest);
    return Buffer.from([0x1f, 0x41, 0x01, 0x00, ...ext, 0x10, 0x41]);
  };
  const bomb = lz4Frame(Array.from({ length: 16 }, () => ({ data: run(4 * MIB), compressed: true })), { blockMaxId: 7 });
  assert.ok(bomb.length < 300 * 1024);
  await refused(bomb, 'lz4', 4 * MIB, 'too_large', /decompresses to more than the limit of 4194304 bytes/);
  assert.equal((await decompress(lz4Frame([{ data: run(MIB), compressed: true }], { blockMaxId: 7 }), 'lz4', 4 * MIB)).length, MIB);
  await refused(lz4Frame([{ data: Buffer.from('x') }], { contentSize: 2 ** 40 }), 'lz4', MIB, 'too_large', /declares 1099511627776 bytes/);
  await refused(lz4Frame([{ data: run(70_000), compressed: true }], { blockMaxId: 4 }), 'lz4', MIB, 'corrupt', /more than the frame allows/);

  const good = lz4Frame([{ data: Buffer.from('hello') }], { contentChecksumOf: Buffer.from('hello'), blockChecksums: true });
  const flip = (at: number): Buffer => {
    const b = Buffer.from(good);
    b[at]! ^= 1;
    return b;
  };
  await refused(flip(0), 'lz4', MIB, 'corrupt', /bad magic/);
  await refused(flip(6), 'lz4', MIB, 'corrupt', /descriptor checksum/);
  await refused(flip(11), 'lz4', MIB, 'corrupt', /block checksum/);
  await refused(flip(good.length - 1), 'lz4', MIB, 'corrupt', /content checksum/);
  await refused(good.subarray(0, good.length - 6), 'lz4', MIB, 'corrupt', /truncated/);
  await refused(lz4Frame([{ data: Buffer.from('ab') }], { contentSize: 3 }), 'lz4', MIB, 'corrupt', /content size/);
  await refused(lz4Frame([{ data: Buffer.from([0x10, 0x61, 0x09, 0x00]), compressed: true }]), 'lz4', MIB, 'corrupt', /offset/);
  await refused(lz4Frame([{ data: Buffer.from([0xf0]), compressed: true }]), 'lz4', MIB, 'corrupt', /truncated literal length/);
  // Independent blocks may not reach back into the previous block.
  const second = Buffer.from([0x00, 0x01, 0x00, 0x10, 0x61]);
  await refused(lz4Frame([{ data: Buffer.from('abcd') }, { data: second, compressed: true }], { independent: true }), 'lz4', MIB, 'corrupt', /offset/);
  assert.equal((await decompress(lz4Frame([{ data: Buffer.from('abcd') }, { data: second, compressed: true }], { independent: false }), 'lz4', MIB)).toString(), 'abcd' + 'd'.repeat(4) + 'a');
});
