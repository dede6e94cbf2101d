import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TraceBatch } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { exporterSettings } from '../../test/helpers/exporter-settings.js';
import { DebugExporter } from './debug-exporter.js';
import { goTime } from './format.js';
import { factory } from './index.js';

const ctx: RequestContext = { receiver: 'r', transport: 'grpc', peer: '', auth: null };
const TRACE = Buffer.from('5b8aa5a2d2c872e8321cf37308d69df2', 'hex');

function knownRequest(): Uint8Array {
  const T = otlpType('ExportTraceServiceRequest');
  return T.encode(
    T.fromObject({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }] },
          schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
          scopeSpans: [
            {
              scope: { name: 'shop', version: '2.1.0' },
              spans: [
                {
                  traceId: TRACE,
                  spanId: Buffer.from('051581bf3cb55c13', 'hex'),
                  name: 'GET /cart',
                  kind: 2,
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000123400000',
                  attributes: [
                    { key: 'http.status_code', value: { intValue: 200 } },
                    { key: 'cached', value: { boolValue: false } },
                    { key: 'ratio', value: { doubleValue: 0.5 } },
                    { key: 'tags', value: { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } } },
                  ],
                  events: [{ timeUnixNano: '1700000000050000000', name: 'cache miss', attributes: [{ key: 'key', value: { stringValue: 'cart:42' } }] }],
                  links: [{ traceId: TRACE, spanId: Buffer.from('1111111111111111', 'hex'), traceState: 'ot=th:0' }],
                  status: { code: 2, message: 'boom' },
                },
                {
                  traceId: TRACE,
                  spanId: Buffer.from('2222222222222222', 'hex'),
                  parentSpanId: Buffer.from('051581bf3cb55c13', 'hex'),
                  name: 'SELECT',
                  kind: 3,
                  startTimeUnixNano: '1700000000010000000',
                  endTimeUnixNano: '1700000000020000000',
                },
              ],
            },
          ],
        },
      ],
    }),
  ).finish();
}

function run(verbosity: string) {
  const settings = exporterSettings(`debug/${verbosity}`);
  const out: string[] = [];
  const exp = new DebugExporter(settings, parseOrThrow(factory.schema, { verbosity }), { write: (s: string) => out.push(s) });
  return { exp, out, settings };
}

const SUMMARY = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\tinfo\tTraces\t\{"otelcol\.component\.id": "debug\/\w+", "otelcol\.component\.kind": "exporter", "otelcol\.signal": "traces", "resource spans": 1, "spans": 2\}$/;

describe('debug exporter', () => {
  it('basic: one summary line per batch, and counts the spans sent', async () => {
    const { exp, out, settings } = run('basic');
    await exp.start();
    await exp.consume(new TraceBatch(knownRequest()), ctx);
    await exp.shutdown();
    assert.equal(out.length, 1);
    const lines = out[0]!.split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, SUMMARY);
    assert.equal(lines[1], '');
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 2);
  });

  it('normal: a line per span with name, trace id and span id', async () => {
    const { exp, out } = run('normal');
    await exp.consume(new TraceBatch(knownRequest()), ctx);
    const lines = out[0]!.split('\n').slice(1);
    assert.deepEqual(lines, [
      'ResourceSpans #0 [https://opentelemetry.io/schemas/1.21.0] service.name="checkout"',
      'ScopeSpans #0 shop@2.1.0',
      'GET /cart 5b8aa5a2d2c872e8321cf37308d69df2 051581bf3cb55c13 http.status_code=200 cached=false ratio=0.5 tags=["a","b"]',
      'SELECT 5b8aa5a2d2c872e8321cf37308d69df2 2222222222222222',
      '',
    ]);
  });

  it("detailed: everything, in the Collector's layout", async () => {
    const { exp, out } = run('detailed');
    await exp.consume(new TraceBatch(knownRequest()), ctx);
    const [summary, ...rest] = out[0]!.split('\n');
    assert.match(summary!, SUMMARY);
    assert.equal(
      rest.join('\n'),
      `ResourceSpans #0
Resource SchemaURL: https://opentelemetry.io/schemas/1.21.0
Resource attributes:
     -> service.name: Str(checkout)
ScopeSpans #0
ScopeSpans SchemaURL: 
InstrumentationScope shop 2.1.0
Span #0
    Trace ID       : 5b8aa5a2d2c872e8321cf37308d69df2
    Parent ID      : 
    ID             : 051581bf3cb55c13
    Name           : GET /cart
    Kind           : Server
    Start time     : 2023-11-14 22:13:20 +0000 UTC
    End time       : 2023-11-14 22:13:20.1234 +0000 UTC
    Status code    : Error
    Status message : boom
Attributes:
     -> http.status_code: Int(200)
     -> cached: Bool(false)
     -> ratio: Double(0.5)
     -> tags: Slice(["a","b"])
Events:
SpanEvent #0
     -> Name: cache miss
     -> Timestamp: 2023-11-14 22:13:20.05 +0000 UTC
     -> DroppedAttributesCount: 0
     -> Attributes::
          -> key: Str(cart:42)
Links:
SpanLink #0
     -> Trace ID: 5b8aa5a2d2c872e8321cf37308d69df2
     -> ID: 1111111111111111
     -> TraceState: ot=th:0
     -> DroppedAttributesCount: 0
Span #1
    Trace ID       : 5b8aa5a2d2c872e8321cf37308d69df2
    Parent ID      : 051581bf3cb55c13
    ID             : 2222222222222222
    Name           : SELECT
    Kind           : Client
    Start time     : 2023-11-14 22:13:20.01 +0000 UTC
    End time       : 2023-11-14 22:13:20.02 +0000 UTC
    Status code    : Unset
    Status message : 
`,
    );
  });

  it('shows a batch after its edits and skips one with nothing left', async () => {
    const { exp, out, settings } = run('normal');
    const b = new TraceBatch(knownRequest());
    b.dropSpan(0);
    await exp.consume(b, ctx);
    assert.match(out[0]!, /"spans": 1\}/);
    assert.ok(!out[0]!.includes('GET /cart'));
    const empty = new TraceBatch(knownRequest());
    empty.dropSpan(0);
    empty.dropSpan(1);
    await exp.consume(empty, ctx);
    assert.equal(out.length, 1);
    assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 1);
  });

  it('formats nanosecond timestamps like Go', () => {
    assert.equal(goTime('1700000000000000001'), '2023-11-14 22:13:20.000000001 +0000 UTC');
    assert.equal(goTime(undefined), '1970-01-01 00:00:00 +0000 UTC');
  });

  it("config: basic by default; the Collector's sampling keys are accepted with a warning", () => {
    assert.deepEqual(parseOrThrow(factory.schema, {}), { verbosity: 'basic' });
    assert.deepEqual(parseOrThrow(factory.schema, { verbosity: 'detailed', sampling_initial: 5, sampling_thereafter: 200 }), { verbosity: 'detailed' });
    assert.throws(() => parseOrThrow(factory.schema, { verbosity: 'loud' }), /verbosity: expected one of basic, normal, detailed/);
  });

  it('never prints the value of a credential-bearing attribute, in any verbosity', async () => {
    const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.tok-SECRET-value';
    const str = (v: string) => ({ stringValue: v });
    const T = otlpType('ExportTraceServiceRequest');
    const bytes = T.encode(
      T.fromObject({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: str('checkout') }, { key: 'webauthn.assertion', value: str(`a-${TOKEN}`) }] },
            scopeSpans: [
              {
                scope: { name: 'shop', attributes: [{ key: 'HTTP.Request.Header.Cookie', value: str(`session=${TOKEN}`) }] },
                spans: [
                  {
                    traceId: TRACE,
                    spanId: Buffer.from('051581bf3cb55c13', 'hex'),
                    name: 'GET /cart',
                    attributes: [
                      { key: 'http.request.header.authorization', value: { arrayValue: { values: [str(`Bearer ${TOKEN}`)] } } },
                      { key: 'HTTP.REQUEST.HEADER.PROXY-AUTHORIZATION', value: str(`Basic ${TOKEN}`) },
                      { key: 'http.request.header.x-pomerium-jwt-assertion', value: str(TOKEN) },
                      { key: 'http.request.header', value: { kvlistValue: { values: [{ key: 'http.request.header.authorization', value: str(TOKEN) }, { key: 'accept', value: str('text/html') }] } } },
                      { key: 'http.route', value: str('/cart') },
                    ],
                    events: [{ name: 'login', attributes: [{ key: 'webauthn.assertion', value: str(TOKEN) }] }],
                    links: [{ traceId: TRACE, spanId: Buffer.from('1111111111111111', 'hex'), attributes: [{ key: 'http.request.header.cookie', value: str(TOKEN) }] }],
                  },
                ],
              },
            ],
          },
        ],
      }),
    ).finish();
    for (const verbosity of ['basic', 'normal', 'detailed']) {
      const { exp, out, settings } = run(verbosity);
      await exp.consume(new TraceBatch(bytes), ctx);
      const text = out.join('');
      assert.equal(out.length, 1, verbosity);
      assert.ok(!text.includes('tok-SECRET'), `${verbosity}: the token is printed:\n${text}`);
      assert.ok(!settings.sink.text.includes('tok-SECRET'), `${verbosity}: the token is logged`);
      assert.equal(await settings.metric('otelcol_exporter_sent_spans_total'), 1);
      if (verbosity === 'normal') {
        assert.match(text, /http\.request\.header\.authorization=<redacted> HTTP\.REQUEST\.HEADER\.PROXY-AUTHORIZATION=<redacted> /);
        assert.match(text, /webauthn\.assertion=<redacted>/);
        assert.match(text, /http\.route="\/cart"/);
        assert.match(text, /"http\.request\.header\.authorization":"<redacted>","accept":"text\/html"/);
      }
      if (verbosity === 'detailed') {
        const redacted = text.split('\n').filter((l) => l.endsWith(': <redacted>')).map((l) => l.trim());
        assert.deepEqual(redacted, [
          '-> webauthn.assertion: <redacted>',
          '-> HTTP.Request.Header.Cookie: <redacted>',
          '-> http.request.header.authorization: <redacted>',
          '-> HTTP.REQUEST.HEADER.PROXY-AUTHORIZATION: <redacted>',
          '-> http.request.header.x-pomerium-jwt-assertion: <redacted>',
          '-> webauthn.assertion: <redacted>',
          '-> http.request.header.cookie: <redacted>',
        ]);
        assert.match(text, /-> http\.route: Str\(\/cart\)/);
        assert.match(text, /-> service\.name: Str\(checkout\)/);
      }
    }
  });
});
