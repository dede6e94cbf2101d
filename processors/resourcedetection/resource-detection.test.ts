/**
 * The resourcedetection processor: env (OTEL_RESOURCE_ATTRIBUTES, percent-decoded, the first detector
 * winning a key), system (host name and OS type by default), override on and off, a failing detector that
 * costs only its own attributes; output decoded with protobufjs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { parseOrThrow, ParseContext } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { attrs, decodeRequest, fixtureRequest } from '../../test/helpers/ottl-fixture.js';
import { resourceDetectionConfigSchema } from './config.js';
import { ResourceDetectionProcessor } from './resource-detection.js';
import { parseResourceAttributes } from './detectors.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

async function run(config: unknown, env: Record<string, string>) {
  const settings = processorSettings('resourcedetection');
  const next = new RecordingConsumer();
  const p = new ResourceDetectionProcessor(settings, parseOrThrow(resourceDetectionConfigSchema, config), next, env);
  await p.start();
  await p.consume(new TraceBatch(fixtureRequest([{ attributes: { 'service.name': 'checkout', 'host.name': 'from-sdk' }, scopes: [{ spans: [{}] }] }, { scopes: [{ spans: [{}] }] }])), CTX);
  return { resources: decodeRequest(next.received[0]!.bytes).resourceSpans.map((r) => attrs(r.resource?.attributes as never)), logs: settings.sink.text };
}

test('env: OTEL_RESOURCE_ATTRIBUTES, percent-decoded, written on every resource (also one without a Resource)', async () => {
  const { resources } = await run({ detectors: ['env'] }, { OTEL_RESOURCE_ATTRIBUTES: 'k8s.pod.name=web-7,k8s.namespace.name=shop,deployment.environment.name=prod%20eu' });
  for (const r of resources) {
    assert.equal(r['k8s.pod.name'], 'web-7');
    assert.equal(r['k8s.namespace.name'], 'shop');
    assert.equal(r['deployment.environment.name'], 'prod eu');
  }
  assert.equal(resources[0]!['service.name'], 'checkout');
});

test('system: host.name and os.type by default; override replaces, override false fills gaps; the first detector wins a key', async () => {
  const on = await run({ detectors: ['env', 'system'], system: { hostname_sources: ['os'] } }, { OTEL_RESOURCE_ATTRIBUTES: 'host.name=from-env' });
  assert.equal(on.resources[0]!['host.name'], 'from-env');
  assert.equal(on.resources[0]!['os.type'], os.platform());
  const sys = await run({ detectors: ['system'], system: { hostname_sources: ['os'], resource_attributes: { 'host.arch': { enabled: true }, 'os.type': { enabled: false } } } }, {});
  assert.equal(sys.resources[0]!['host.name'], os.hostname());
  assert.equal(sys.resources[0]!['host.arch'], os.arch() === 'x64' ? 'amd64' : os.arch());
  assert.ok(!('os.type' in sys.resources[0]!));
  const keep = await run({ detectors: ['system'], override: false, system: { hostname_sources: ['os'] } }, {});
  assert.equal(keep.resources[0]!['host.name'], 'from-sdk');
  assert.equal(keep.resources[1]!['host.name'], os.hostname());
});

test('a malformed OTEL_RESOURCE_ATTRIBUTES costs only the env detector, and its value is not logged', async () => {
  const { resources, logs } = await run({ detectors: ['env', 'system'], system: { hostname_sources: ['os'] } }, { OTEL_RESOURCE_ATTRIBUTES: 'secret-token-abc' });
  assert.equal(resources[1]!['host.name'], os.hostname());
  assert.match(logs, /resource detector failed/);
  assert.ok(!logs.includes('secret-token-abc'));
  assert.throws(() => parseResourceAttributes('a=%zz'), /the value of a is not valid percent-encoding/);
});

test('config: unsupported detectors are named; unknown and undetected attributes refused', () => {
  for (const [config, message] of [
    [{ detectors: ['ec2'] }, /the ec2 detector is not supported by tracewarden; supported: env, system/],
    [{ detectors: ['nope'] }, /unknown detector "nope"/],
    [{ detectors: ['system'], system: { resource_attributes: { 'host.colour': { enabled: true } } } }, /unknown attribute host.colour/],
    [{ detectors: ['system'], system: { resource_attributes: { 'host.cpu.family': { enabled: true } } } }, /host.cpu.family is not detected by tracewarden yet/],
  ] as const) {
    const ctx = new ParseContext();
    resourceDetectionConfigSchema.parse(config, ['processors', 'resourcedetection'], ctx);
    assert.match(ctx.issues[0]!.message, message);
  }
});
