/**
 * The pprof extension on a real port: each profile is in the format V8's tools open (checked by its
 * shape), one profile at a time, bad requests refused, and save_to_file writes a CPU profile at shutdown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { processorSettings } from '../../test/helpers/processor-recorder.js';
import { pprofSchema } from './config.js';
import { PprofExtension } from './pprof-extension.js';


async function started(config: unknown = { endpoint: '127.0.0.1:0' }) {
  const ext = new PprofExtension(processorSettings('pprof'), parseOrThrow(pprofSchema, config));
  await ext.start();
  return ext;
}

test('CPU profile, sampling heap profile and heap snapshot, each as V8 writes them', async () => {
  const ext = await started();
  try {
    const base = `http://127.0.0.1:${ext.port}/debug/pprof`;
    const cpuPromise = fetch(`${base}/profile?seconds=0.3`);
    // While one profile is taken, another is refused.
    const busy = await fetch(`${base}/heap?seconds=0.1`);
    assert.equal(busy.status, 409);
    const cpu = await cpuPromise;
    assert.equal(cpu.status, 200);
    assert.match(cpu.headers.get('content-disposition') ?? '', /tracewarden\.cpuprofile/);
    const profile = (await cpu.json()) as { nodes: unknown[]; startTime: number; endTime: number; samples: number[] };
    assert.ok(profile.nodes.length > 0 && Array.isArray(profile.samples) && profile.endTime > profile.startTime);
    const heap = (await (await fetch(`${base}/heap?seconds=0.1`)).json()) as { head: { callFrame: unknown; children: unknown[] } };
    assert.ok(heap.head.callFrame !== undefined && Array.isArray(heap.head.children));
    const snap = (await (await fetch(`${base}/heapsnapshot`)).json()) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
    assert.ok(snap.snapshot.meta.node_fields.includes('name') && snap.nodes.length > 0);
    assert.equal((await fetch(`${base}/profile?seconds=0`)).status, 400);
    assert.equal((await fetch(`${base}/profile?seconds=abc`)).status, 400);
    assert.equal((await fetch(`${base}/goroutine`)).status, 404);
    assert.match(await (await fetch(`${base}/`)).text(), /\/debug\/pprof\/profile\?seconds=30/);
  } finally {
    await ext.shutdown();
  }
});

test('save_to_file: a CPU profile from start to shutdown', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-pprof-'));
  try {
    const file = join(dir, 'cpu.cpuprofile');
    const ext = await started({ endpoint: '127.0.0.1:0', save_to_file: file });
    let x = 0;
    for (let i = 0; i < 1e6; i++) x += Math.sqrt(i);
    assert.ok(x > 0);
    await ext.shutdown();
    const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: unknown[]; samples: unknown[] };
    assert.ok(profile.nodes.length > 0 && profile.samples.length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
