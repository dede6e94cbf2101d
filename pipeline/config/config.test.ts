import { test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Registry, type AnyFactory } from '../service/component.js';
import { formatProblem, loadConfig, type ConfigSource } from './config.js';
import { expandEnv } from './env.js';
import { parseDuration, s } from './schema.js';
import { sendingQueueSchema } from '../exporterhelper/config.js';

// Schema-only factories: the loader never creates components, so create() is unreachable here.
const unreachable = () => {
  throw new Error('not created by the loader');
};
const registry = new Registry([
  { type: 'otlp', kind: 'receiver', schema: s.object({ endpoint: s.string().default('localhost:4317'), limit: s.int({ min: 1 }).default(4) }), create: unreachable },
  { type: 'batch', kind: 'processor', schema: s.object({ timeout: s.duration().default(200) }, { metadata_keys: 'no effect' }), create: unreachable },
  { type: 'debug', kind: 'exporter', schema: s.object({ verbosity: s.enum('basic', 'detailed').default('basic') }), create: unreachable },
  { type: 'health_check', kind: 'extension', schema: s.object({}), create: unreachable },
  { type: 'file_storage', kind: 'extension', schema: s.object({ directory: s.string().default('/tmp') }), create: unreachable },
  { type: 'otlpq', kind: 'exporter', schema: s.object({ sending_queue: sendingQueueSchema }), create: unreachable },
  { type: 'forward', kind: 'connector', schema: s.object({}), create: unreachable },
  {
    type: 'router',
    kind: 'connector',
    schema: s.object({ to: s.array(s.string()).default([]) }),
    create: unreachable,
    checkPipelines: (c: { to: string[] }, feeds: readonly string[]) => c.to.filter((id) => !feeds.includes(id)).map((id) => ({ path: ['to', c.to.indexOf(id)], message: `${id} is not fed` })),
  },
] as AnyFactory[]);

const VALID = `receivers:
  otlp:
  otlp/second:
    endpoint: 0.0.0.0:14317
processors:
  batch:
    timeout: 1s
exporters:
  debug:
  debug/detail: { verbosity: detailed }
service:
  pipelines:
    traces:
      receivers: [otlp, otlp/second]
      processors: [batch]
      exporters: [debug, debug/detail]
    traces/audit:
      receivers: [otlp]
      exporters: [debug/detail]
`;

function load(text: string, env: Record<string, string> = {}, extra: ConfigSource[] = []) {
  return loadConfig([{ name: 'main.yaml', text }, ...extra], registry, env);
}

function errors(text: string, env: Record<string, string> = {}): string[] {
  return load(text, env)
    .problems.filter((p) => !p.warning)
    .map(formatProblem);
}

test('a valid config resolves components, defaults, pipelines, shared receivers and fan-out', () => {
  const { config, problems } = load(VALID);
  assert.deepEqual(problems, []);
  assert.ok(config);
  assert.deepEqual([...config.receivers.keys()], ['otlp', 'otlp/second']);
  assert.deepEqual(config.receivers.get('otlp')!.config, { endpoint: 'localhost:4317', limit: 4 });
  assert.deepEqual(config.processors.get('batch')!.config, { timeout: 1000 });
  assert.deepEqual(config.service.pipelines, [
    { id: 'traces', receivers: ['otlp', 'otlp/second'], processors: ['batch'], exporters: ['debug', 'debug/detail'] },
    { id: 'traces/audit', receivers: ['otlp'], processors: [], exporters: ['debug/detail'] },
  ]);
  assert.equal(config.service.metricsAddress, 'localhost:8888');
});

test('every problem is reported at once, each with its line and path', () => {
  const text = `receivers:
  otlp:
    endpoint: 12
    limit: zero
    colour: blue
  zipkin:
processors:
  batch:
    timeout: soon
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp, jaeger]
      exporters: [debug, debug/missing]
    metrics:
      receivers: [otlp]
      exporters: [debug]
`;
  assert.deepEqual(errors(text), [
    'main.yaml:4:5: receivers.otlp.limit: expected an integer, got string "zero"',
    'main.yaml:5:5: receivers.otlp.colour: unknown key; expected one of endpoint, limit',
    'main.yaml:6:3: receivers.zipkin: the OpenTelemetry Collector receiver "zipkin" is not supported by tracewarden; supported receiver types: otlp',
    'main.yaml:9:5: processors.batch.timeout: expected a duration such as 5s, 200ms or 1m30s, got string "soon"',
    'main.yaml:15:25: service.pipelines.traces.receivers.1: references receiver "jaeger", which is not configured under receivers or connectors',
    'main.yaml:16:26: service.pipelines.traces.exporters.1: references exporter "debug/missing", which is not configured under exporters or connectors',
    'main.yaml:17:5: service.pipelines.metrics: metrics pipelines are not supported: tracewarden handles traces only',
  ]);
});

test('environment expansion: typed whole values, defaults, literal $$, unset variables warn', () => {
  const text = `receivers:
  otlp:
    endpoint: \${env:HOST}:\${env:PORT:-4317}
    limit: \${env:LIMIT}
exporters:
  debug:
    verbosity: \${env:VERBOSITY:-basic}
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [debug] }
`;
  const { config, problems } = load(text, { HOST: '127.0.0.1', LIMIT: '16' });
  assert.deepEqual(problems, []);
  assert.deepEqual(config!.receivers.get('otlp')!.config, { endpoint: '127.0.0.1:4317', limit: 16 });
  assert.equal((config!.exporters.get('debug')!.config as { verbosity: string }).verbosity, 'basic');

  assert.deepEqual(expandEnv('a$$b', {}).value, 'a$b');
  const unset = expandEnv('${env:NOPE}', {});
  assert.equal(unset.value, '');
  assert.deepEqual(unset.problems, [{ message: 'environment variable NOPE is not set; it expands to an empty string', warning: true }]);
});

test("the Collector's reference syntax: ${NAME} (env is the default scheme), ${env:NAME:-default}, $$, ${file:path}; an unknown scheme is an error naming it", () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-config-file-'));
  try {
    writeFileSync(join(dir, 'token'), 'ls-token-value\n');
    writeFileSync(join(dir, 'limit'), '32\n');
    const text = `receivers:
  otlp:
    endpoint: \${HOST}:\${PORT:-4317}
    limit: \${file:${join(dir, 'limit')}}
exporters:
  debug:
    verbosity: \${VERBOSITY}
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [debug] }
`;
    const { config, problems } = load(text, { HOST: '10.0.0.1', VERBOSITY: 'detailed' });
    assert.deepEqual(problems, []);
    assert.deepEqual(config!.receivers.get('otlp')!.config, { endpoint: '10.0.0.1:4317', limit: 32 });
    assert.equal((config!.exporters.get('debug')!.config as { verbosity: string }).verbosity, 'detailed');

    assert.equal(expandEnv('Bearer ${file:' + join(dir, 'token') + '}', {}).value, 'Bearer ls-token-value');
    assert.equal(expandEnv('${LS_ACCESS_TOKEN}', { LS_ACCESS_TOKEN: 'abc' }).value, 'abc');
    assert.equal(expandEnv('$${env:X} costs $$5', { X: 'no' }).value, '${env:X} costs $5');
    assert.deepEqual(expandEnv('${file:/nonexistent/tw}', {}).problems, [{ message: 'cannot read ${file:/nonexistent/tw} (ENOENT)', warning: false }]);
    assert.match(expandEnv('${https://example.com/x}', {}).problems[0]!.message, /^unsupported scheme "https" in \$\{https:\/\/example.com\/x\}: the schemes are env/);
    assert.match(expandEnv('${vault:secret/x}', {}).problems[0]!.message, /unsupported scheme "vault"/);
    assert.match(expandEnv('${1BAD}', {}).problems[0]!.message, /^invalid reference \$\{1BAD\}/);
    // the error points at the value, with its line
    const bad = errors(text.replace('\${VERBOSITY}', '\${s3:bucket/key}'), { HOST: 'h' });
    assert.deepEqual(bad, ['main.yaml:7:16: unsupported scheme "s3" in ${s3:bucket/key}: the schemes are env (${env:NAME}, ${NAME}) and file (${file:path})']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a quoted reference stays a string', () => {
  const text = `receivers:\n  otlp:\n    limit: "\${env:LIMIT}"\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: { receivers: [otlp], exporters: [debug] }\n`;
  assert.deepEqual(errors(text, { LIMIT: '16' }), ['main.yaml:3:5: receivers.otlp.limit: expected an integer, got string "16"']);
});

test('several files merge in order, later winning, and problems point at the file that set the value', () => {
  const override = `receivers:\n  otlp:\n    limit: -1\n`;
  const { problems } = load(VALID, {}, [{ name: 'override.yaml', text: override }]);
  assert.deepEqual(problems.map(formatProblem), ['override.yaml:3:5: receivers.otlp.limit: must be at least 1, got -1']);
  const ok = load(VALID, {}, [{ name: 'override.yaml', text: `receivers:\n  otlp:\n    limit: 9\n` }]);
  assert.equal((ok.config!.receivers.get('otlp')!.config as { limit: number }).limit, 9);
  assert.equal((ok.config!.receivers.get('otlp')!.config as { endpoint: string }).endpoint, 'localhost:4317');
});

test('YAML syntax errors and duplicate keys are reported with their line', () => {
  const unclosed = errors('receivers:\n  otlp: {\n');
  assert.ok(unclosed.length >= 1);
  assert.match(unclosed[0]!, /^main\.yaml:[23]:\d+: YAML: /);
  assert.match(errors('receivers:\n  otlp:\n  otlp:\n')[0]!, /^main\.yaml:[23]:\d+: YAML: Map keys must be unique/);
});

test('structure errors: missing service, empty pipelines, bad IDs, duplicates, unknown sections', () => {
  assert.deepEqual(errors('receivers:\n  otlp:\n'), ['main.yaml:1:1: service: required: a service section with at least one pipeline']);
  assert.deepEqual(errors('service:\n  pipelines: {}\n'), ['main.yaml:2:3: service.pipelines: required: at least one pipeline, e.g. traces: { receivers: [otlp], exporters: [debug] }']);
  assert.deepEqual(
    errors(`receivers:\n  "otlp/":\nexporters:\n  debug:\nconnectors:\n  forward: {}\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [batch, batch]\n      exporters: []\n`),
    [
      'main.yaml:2:3: receivers.otlp/: invalid component ID; expected "type" or "type/name"',
      'main.yaml:10:19: service.pipelines.traces.receivers.0: references receiver "otlp", which is not configured under receivers or connectors',
      'main.yaml:11:20: service.pipelines.traces.processors.0: references processor "batch", which is not configured under processors',
      'main.yaml:11:27: service.pipelines.traces.processors.1: "batch" is listed twice',
      'main.yaml:11:27: service.pipelines.traces.processors.1: references processor "batch", which is not configured under processors',
      'main.yaml:12:7: service.pipelines.traces.exporters: expected at least 1 item',
    ],
  );
});

test('connectors: an exporter of one pipeline and a receiver of another; unused ends, cycles and their own pipeline references are errors', () => {
  const head = 'receivers:\n  otlp:\nexporters:\n  debug:\nconnectors:\n  forward:\n  router: { to: [traces/b, traces/nope] }\n';
  const ok = load(head + 'service:\n  pipelines:\n    traces/a: { receivers: [otlp], exporters: [forward, router] }\n    traces/b: { receivers: [forward, router], exporters: [debug] }\n');
  assert.deepEqual(ok.problems.filter((p) => !p.warning).map(formatProblem), ['main.yaml:7:28: connectors.router.to.1: traces/nope is not fed']);
  assert.deepEqual(
    errors(head.replace(', traces/nope', '') + 'service:\n  pipelines:\n    traces/a: { receivers: [otlp], exporters: [forward] }\n    traces/b: { receivers: [router], exporters: [debug] }\n'),
    [
      'main.yaml:10:48: service.pipelines.traces/a.exporters.0: connector "forward" is used as an exporter, but no pipeline lists it under receivers',
      'main.yaml:11:29: service.pipelines.traces/b.receivers.0: connector "router" is used as a receiver, but no pipeline lists it under exporters',
    ],
  );
  assert.deepEqual(
    errors(head.replace('traces/b, traces/nope', 'traces/a') + 'service:\n  pipelines:\n    traces/a: { receivers: [otlp, router], exporters: [forward] }\n    traces/b: { receivers: [forward], exporters: [router, debug] }\n'),
    ['main.yaml:9:3: service.pipelines: pipelines form a cycle through connectors: traces/a → forward → traces/b → router → traces/a'],
  );
  // An empty connectors section is fine.
  assert.deepEqual(errors('connectors:\nreceivers:\n  otlp:\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: { receivers: [otlp], exporters: [debug] }\n'), []);
});

test('Collector keys with no effect are accepted with a warning, not an error', () => {
  const text = `processors:\n  batch:\n    metadata_keys: [tenant]\nreceivers:\n  otlp:\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: { receivers: [otlp], processors: [batch], exporters: [debug] }\n`;
  const { config, problems } = load(text);
  assert.ok(config);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.warning, true);
  assert.equal(formatProblem(problems[0]!), 'main.yaml:3:5: warning: processors.batch.metadata_keys: accepted for OpenTelemetry Collector compatibility; no effect');
});

test('telemetry: address, Prometheus pull reader, level none', () => {
  const base = `receivers:\n  otlp:\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: { receivers: [otlp], exporters: [debug] }\n`;
  const addr = load(base + `  telemetry:\n    metrics:\n      address: 0.0.0.0:9999\n    logs:\n      level: debug\n`).config!;
  assert.equal(addr.service.metricsAddress, '0.0.0.0:9999');
  assert.equal(addr.service.logLevel, 'debug');
  const pull = load(base + `  telemetry:\n    metrics:\n      readers:\n        - pull:\n            exporter:\n              prometheus:\n                host: 0.0.0.0\n                port: 8889\n`).config!;
  assert.equal(pull.service.metricsAddress, '0.0.0.0:8889');
  const none = load(base + `  telemetry:\n    metrics:\n      level: none\n`).config!;
  assert.equal(none.service.metricsAddress, null);
});

test('durations use Go syntax', () => {
  assert.equal(parseDuration('200ms'), 200);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('5'), null);
  assert.equal(parseDuration('5 s'), null);
});

test('a whole ${env:...} value keeps its exact text for string fields and its type for others', () => {
  const text = `receivers:
  otlp:
    endpoint: \${env:TOKEN}
    limit: \${env:LIMIT}
exporters:
  debug:
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [debug] }
`;
  // A numeric-looking secret must not become 8.675309867530986e+27, nor a hex string a number.
  for (const token of ['8675309867530986753098675309', '0x1f2e3d4c5b6a', 'true', '007']) {
    const { config, problems } = load(text, { TOKEN: token, LIMIT: '16' });
    assert.deepEqual(problems, []);
    assert.deepEqual(config!.receivers.get('otlp')!.config, { endpoint: token, limit: 16 });
  }
  assert.deepEqual(errors(text, { TOKEN: 'x', LIMIT: 'many' }), ['main.yaml:4:5: receivers.otlp.limit: expected an integer, got string "many"']);
});

test('a persistent queue names a storage extension that is configured and listed in service.extensions; shutdown_timeout is a duration', () => {
  const text = (storage: string, listed: string) => `receivers:
  otlp:
exporters:
  otlpq: { sending_queue: { storage: ${storage} } }
extensions:
  file_storage:
  health_check:
service:
  extensions: [${listed}]
  shutdown_timeout: 2500ms
  pipelines:
    traces: { receivers: [otlp], exporters: [otlpq] }
`;
  const ok = load(text('file_storage', 'file_storage'));
  assert.equal(ok.config?.service.shutdownTimeoutMs, 2500);
  const problems = (t: string) => load(t).problems.filter((p) => !p.warning).map(formatProblem);
  assert.deepEqual(problems(text('file_storage/missing', 'file_storage')), [
    'main.yaml:4:29: exporters.otlpq.sending_queue.storage: extension "file_storage/missing" is not configured under extensions',
  ]);
  assert.deepEqual(problems(text('file_storage', 'health_check')), [
    'main.yaml:4:29: exporters.otlpq.sending_queue.storage: extension "file_storage" must also be listed in service.extensions',
  ]);
  assert.equal(load(VALID).config?.service.shutdownTimeoutMs, 15_000);
  assert.match(problems(VALID.replace('service:\n', 'service:\n  shutdown_timeout: soon\n')).join('\n'), /service.shutdown_timeout: /);
});
