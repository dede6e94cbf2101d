/**
 * The file exporter: JSON lines, length-prefixed protobuf, zstd, append, and rotation with backups named
 * and pruned as the Collector's; each record read back with an independent decoder (protobufjs; OTLP/JSON
 * through the receiver's JSON reader).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import { decompress } from '../../pipeline/compression/compression.js';
import { otlpJsonToProtobuf } from '../../pipeline/batch/otlp-json.js';
import { parseOrThrow, ParseContext } from '../../pipeline/config/schema.js';
import { processorSettings } from '../../test/helpers/processor-recorder.js';
import { buildRequest, decodeSpans } from '../../test/helpers/otlp.js';
import { fileConfigSchema } from './config.js';
import { FileExporter, backupTimestamp } from './file-exporter.js';

function batch(name: string, pad = 0): TraceBatch {
  return new TraceBatch(buildRequest([{ scopes: [{ spans: [{ name, attributes: pad > 0 ? { pad: 'x'.repeat(pad) } : {} }] }] }]));
}

async function exporter(config: Record<string, unknown>) {
  const e = new FileExporter(processorSettings('file'), parseOrThrow(fileConfigSchema, config));
  await e.start();
  return e;
}

function framed(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < buf.length; ) {
    const n = buf.readUInt32BE(p);
    out.push(buf.subarray(p + 4, p + 4 + n));
    p += 4 + n;
  }
  return out;
}

test('json: one OTLP/JSON request per line; proto and zstd: length-prefixed records', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-file-'));
  try {
    const j = await exporter({ path: join(dir, 'traces.json') });
    await j.consume(batch('a'));
    await j.consume(batch('b'));
    await j.shutdown();
    const lines = readFileSync(join(dir, 'traces.json'), 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => decodeSpans(otlpJsonToProtobuf(l))[0]!.name),
      ['a', 'b'],
    );
    const p = await exporter({ path: join(dir, 'traces.pb'), format: 'proto' });
    await p.consume(batch('c'));
    await p.shutdown();
    assert.deepEqual(
      framed(readFileSync(join(dir, 'traces.pb'))).map((r) => decodeSpans(r)[0]!.name),
      ['c'],
    );
    const z = await exporter({ path: join(dir, 'traces.zst'), compression: 'zstd' });
    await z.consume(batch('d'));
    await z.shutdown();
    const [rec] = framed(readFileSync(join(dir, 'traces.zst')));
    assert.equal(decodeSpans(otlpJsonToProtobuf(await decompress(rec!, 'zstd', 1 << 20)))[0]!.name, 'd');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('append keeps what the file held; without it the file starts empty', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-file-'));
  try {
    const path = join(dir, 'traces.json');
    writeFileSync(path, '{"resourceSpans":[]}\n');
    const a = await exporter({ path, append: true });
    await a.consume(batch('x'));
    await a.shutdown();
    assert.equal(readFileSync(path, 'utf8').trim().split('\n').length, 2);
    const w = await exporter({ path });
    await w.consume(batch('y'));
    await w.shutdown();
    assert.equal(readFileSync(path, 'utf8').trim().split('\n').length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rotation: over max_megabytes the file is renamed with a timestamp before its extension; max_backups prunes the oldest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-file-'));
  try {
    const path = join(dir, 'data.json');
    const e = await exporter({ path, rotation: { max_megabytes: 1, max_backups: 2 } });
    // ~400 KB a record: two fit in 1 MiB, so 10 records make five files, of which the last two backups stay.
    for (let i = 0; i < 10; i++) await e.consume(batch(`r${i}`, 400_000));
    await e.shutdown();
    const files = readdirSync(dir).sort();
    const backups = files.filter((f) => f !== 'data.json');
    assert.equal(backups.length, 2, files.join(', '));
    for (const b of backups) assert.match(b, /^data-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.json$/);
    const names = (f: string) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => decodeSpans(otlpJsonToProtobuf(l))[0]!.name);
    assert.deepEqual([...backups.flatMap(names), ...names('data.json')], ['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the backup timestamp layout and config rules', () => {
  assert.equal(backupTimestamp(new Date(Date.UTC(2022, 8, 14, 5, 2, 14, 173)), false), '2022-09-14T05-02-14.173');
  const ctx = new ParseContext();
  fileConfigSchema.parse({ path: 'x', append: true, compression: 'zstd', group_by: { enabled: true } }, ['exporters', 'file'], ctx);
  const messages = ctx.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.ok(messages.some((m) => /exporters\.file\.group_by: group_by .* is not supported yet/.test(m)), messages.join('\n'));
});
