/**
 * `tracewarden validate` on one fixture per kind of config error, through the real CLI entry and registry:
 * every problem at once, each with file, line, column and YAML path, and the exit code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { main, type Io } from '../../cmd/cli.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/config/', import.meta.url));

async function validate(name: string, env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string[] }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), env };
  const code = await main(['validate', '--config', FIXTURES + name], io);
  return { code, out, err: err.split('\n').filter((l) => l !== '') };
}

/** Expected problem lines, prefixed with the fixture's path as the CLI prints it. */
function lines(name: string, problems: string[]): string[] {
  return [`invalid configuration: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, ...problems.map((p) => FIXTURES + name + ':' + p)];
}

const CASES: [string, string[]][] = [
  ['unknown-key.yaml', ['6:9: receivers.otlp.protocols.grpc.max_recv_msg_size: unknown key; expected one of endpoint, max_recv_msg_size_mib, max_concurrent_streams, keepalive, message_timeout, max_inflight_mib, max_inflight_mib_per_connection, tls, auth']],
  ['unknown-type.yaml', ['5:3: receivers.jaeger: the OpenTelemetry Collector receiver "jaeger" is not supported by tracewarden; supported receiver types: otlp']],
  [
    'wrong-type.yaml',
    [
      '5:9: receivers.otlp.protocols.http.max_request_body_size: expected an integer, got string "lots"',
      '8:5: processors.batch.send_batch_size: expected an integer, got a list',
      '11:5: exporters.debug.verbosity: expected one of basic, normal, detailed, got string "loud"',
    ],
  ],
  [
    'missing-reference.yaml',
    [
      '8:16: service.extensions.0: extension "health_check" is not configured under extensions',
      '12:20: service.pipelines.traces.processors.0: references processor "batch", which is not configured under processors',
      '13:26: service.pipelines.traces.exporters.1: references exporter "lightstep", which is not configured under exporters or connectors',
    ],
  ],
  [
    'bad-endpoint.yaml',
    ['5:9: receivers.otlp.protocols.grpc.endpoint: expected host:port, got "4317"', '7:9: receivers.otlp.protocols.http.endpoint: port 99999 is out of range'],
  ],
  ['yaml-syntax.yaml', ['5:1: YAML: Flow map in block collection must be sufficiently indented and end with a }']],
  [
    'bad-duration.yaml',
    [
      '7:5: processors.batch.timeout: expected a duration such as 5s, 200ms or 1m30s, got number 200',
      '9:5: processors.memory_limiter.check_interval: expected a duration such as 5s, 200ms or 1m30s, got string "1 second"',
    ],
  ],
  [
    'lightstep-token.yaml',
    ['6:3: exporters.lightstep: an access token is required: set access_token or access_token_file', '8:3: exporters.lightstep/both: set access_token or access_token_file, not both'],
  ],
  [
    'pipelines.yaml',
    [
      '10:7: service.pipelines.traces.receivers: expected at least 1 item',
      '11:26: service.pipelines.traces.exporters.1: "debug" is listed twice',
      '12:5: service.pipelines.logs: logs pipelines are not supported: tracewarden handles traces only',
      '18:7: service.pipelines.traces/extra.procesors: unknown key; expected one of receivers, processors, exporters',
    ],
  ],
  [
    'ottl.yaml',
    [
      '11:11: processors.filter.traces.span.1: invalid OTTL condition: the argument pattern of IsMatch: missing closing ] in "([a-z" at column 15 of "IsMatch(name, \\"([a-z\\")"',
      '16:13: processors.transform.trace_statements.0.statements.0: invalid OTTL statement: the argument start of Substring must be int, but this is string at column 38 of "set(attributes[\\"a\\"], Substring(name, \\"0\\", 3))"',
      '17:13: processors.transform.trace_statements.0.statements.1: invalid OTTL statement: unknown path nme in the span context (known: trace_id, trace_id.string, span_id, span_id.string, parent_span_id, parent_span_id.string, trace_state, name, kind, kind.string, kind.deprecated_string, start_time_unix_nano, end_time_unix_nano, start_time, end_time, dropped_attributes_count, dropped_events_count, dropped_links_count, flags, status.code, status.message, attributes) at column 5 of "set(nme, \\"x\\") where kind == SPAN_KIND_SERVER"',
    ],
  ],
];

for (const [name, problems] of CASES) {
  test(`validate reports every problem in ${name} with its line`, async () => {
    const r = await validate(name);
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.deepEqual(r.err, lines(name, problems));
  });
}

test('an existing Collector config for OTLP in and Lightstep out is valid, with warnings for keys that do nothing here (keepalive works)', async () => {
  const r = await validate('collector-lightstep.yaml', { LS_ACCESS_TOKEN: 'secret-token-value' });
  assert.equal(r.code, 0);
  assert.equal(r.out, 'configuration is valid: 1 pipeline\n');
  assert.deepEqual(r.err, [
    `${FIXTURES}collector-lightstep.yaml:16:9: warning: receivers.otlp.protocols.http.cors: accepted for OpenTelemetry Collector compatibility; browser exporters are not supported: no CORS headers are sent`,
  ]);
  assert.ok(!r.err.join('\n').includes('secret-token-value'));
});

test('an unset environment variable is a warning naming the variable, and its value is never printed', async () => {
  const r = await validate('collector-lightstep.yaml');
  assert.equal(r.code, 0);
  assert.ok(r.err.some((l) => l.endsWith('collector-lightstep.yaml:31:33: warning: environment variable LS_ACCESS_TOKEN is not set; it expands to an empty string')), r.err.join('\n'));
});

test('a processor that reads identity facts before the identity processor has run is warned about, one that reads them after is not', async () => {
  const r = await validate('identity-order.yaml');
  assert.equal(r.code, 0, r.err.join('\n'));
  assert.deepEqual(r.err, [
    `${FIXTURES}identity-order.yaml:22:47: warning: service.pipelines.traces.processors.0: filter/early reads "enduser.id" before identity has run: there it sees whatever the sender wrote, which identity replaces with verified facts; place filter/early after identity`,
  ]);
});

test('a missing config file is reported with the others, and the CLI exits non-zero', async () => {
  let err = '';
  const code = await main(['validate', '--config', '/nonexistent/tw.yaml', '--config', FIXTURES + 'unknown-type.yaml'], { out: () => {}, err: (t) => (err += t), env: {} });
  assert.equal(code, 1);
  assert.match(err, /\/nonexistent\/tw\.yaml: cannot read config file \(ENOENT\)/);
  assert.match(err, /receiver "jaeger" is not supported by tracewarden/);
});

test('the embedded default config is valid', async () => {
  let out = '';
  const code = await main(['validate'], { out: (t) => (out += t), err: () => {}, env: {} });
  assert.equal(code, 0);
  assert.equal(out, 'configuration is valid: 1 pipeline\n');
});

test('usage errors and help', async () => {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), env: {} };
  assert.equal(await main(['--help'], io), 0);
  assert.match(out, /tracewarden run \[--config FILE\]/);
  assert.equal(await main(['frobnicate'], io), 2);
  assert.match(err, /unknown command frobnicate/);
  assert.equal(await main(['validate', '--config'], io), 2);
  assert.match(err, /--config needs a file name/);
  out = '';
  assert.equal(await main(['version'], io), 0);
  assert.match(out, /^tracewarden \d+\.\d+\.\d+\n$/);
});
