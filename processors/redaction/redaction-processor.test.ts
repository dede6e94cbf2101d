/**
 * The redaction processor against the Collector's own test cases (processor/redactionprocessor,
 * processor_test.go): requests are built and the exported bytes decoded with protobufjs, an independent
 * codec from the wire walk under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { TraceBatch, encodeKey, encodeString } from '../../pipeline/batch/batch.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { PipelineError } from '../../pipeline/service/errors.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { parseOrThrow } from '../../pipeline/config/schema.js';
import { RecordingConsumer, processorSettings } from '../../test/helpers/processor-recorder.js';
import { redactionConfigSchema } from './config.js';
import { RedactionProcessor } from './redaction-processor.js';

const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

// ---- building requests (protobufjs) ----

type Val = string | bigint | number | boolean | Buffer | Val[] | { kv: [string, Val][] };
type Attrs = [string, Val][];

function anyValue(v: Val): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'bigint') return { intValue: v.toString() };
  if (typeof v === 'number') return { doubleValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Buffer.isBuffer(v)) return { bytesValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  return { kvlistValue: { values: v.kv.map(([key, x]) => ({ key, value: anyValue(x) })) } };
}

const kvs = (attrs: Attrs = []) => attrs.map(([key, v]) => ({ key, value: anyValue(v) }));

interface SpanDef {
  name?: string;
  attrs?: Attrs;
  events?: { name: string; attrs: Attrs }[];
}
interface ResourceDef {
  attrs?: Attrs;
  scopes: { attrs?: Attrs; spans: SpanDef[] }[];
}

function request(resources: ResourceDef[]): Uint8Array {
  const T = otlpType('ExportTraceServiceRequest');
  return T.encode(
    T.fromObject({
      resourceSpans: resources.map((r) => ({
        resource: { attributes: kvs(r.attrs) },
        scopeSpans: r.scopes.map((s) => ({
          scope: { name: 'lib', version: '1.0.0', attributes: kvs(s.attrs) },
          spans: s.spans.map((sp) => ({
            traceId: randomBytes(16),
            spanId: randomBytes(8),
            name: sp.name ?? 'span',
            kind: 2,
            startTimeUnixNano: '1700000000000000000',
            endTimeUnixNano: '1700000000100000000',
            attributes: kvs(sp.attrs),
            events: (sp.events ?? []).map((e) => ({ timeUnixNano: '1700000000050000000', name: e.name, attributes: kvs(e.attrs) })),
          })),
        })),
      })),
    }),
  ).finish();
}

// ---- reading what was exported (protobufjs) ----

function plain(v: Record<string, unknown> | undefined): Val | null {
  if (!v) return null;
  if ('stringValue' in v) return v['stringValue'] as string;
  if ('intValue' in v) return BigInt(v['intValue'] as string);
  if ('doubleValue' in v) return v['doubleValue'] as number;
  if ('boolValue' in v) return v['boolValue'] as boolean;
  if ('bytesValue' in v) return Buffer.from(v['bytesValue'] as Uint8Array);
  if ('arrayValue' in v) return ((v['arrayValue'] as { values?: Record<string, unknown>[] }).values ?? []).map((x) => plain(x)!);
  if ('kvlistValue' in v) return { kv: pairs((v['kvlistValue'] as { values?: unknown[] }).values) };
  return null;
}

function pairs(list: unknown[] | undefined): Attrs {
  return ((list ?? []) as { key?: string; value?: Record<string, unknown> }[]).map((kv) => [kv.key ?? '', plain(kv.value)!]);
}

/** Attributes as a sorted list of [key, value]: order carries no meaning in OTLP, duplicates stay visible. */
function sorted(list: unknown[] | undefined): Attrs {
  return pairs(list).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

interface Out {
  resources: Attrs[];
  scopes: Attrs[];
  spans: { name: string; attrs: Attrs; events: { name: string; time: string; attrs: Attrs }[] }[];
}

function decode(bytes: Uint8Array): Out {
  const T = otlpType('ExportTraceServiceRequest');
  const obj = T.toObject(T.decode(bytes), { longs: String, bytes: Buffer, defaults: false, oneofs: false }) as {
    resourceSpans?: {
      resource?: { attributes?: unknown[] };
      scopeSpans?: { scope?: { attributes?: unknown[] }; spans?: { name?: string; attributes?: unknown[]; events?: { name?: string; timeUnixNano?: string; attributes?: unknown[] }[] }[] }[];
    }[];
  };
  const out: Out = { resources: [], scopes: [], spans: [] };
  for (const rs of obj.resourceSpans ?? []) {
    out.resources.push(sorted(rs.resource?.attributes));
    for (const ss of rs.scopeSpans ?? []) {
      out.scopes.push(sorted(ss.scope?.attributes));
      for (const sp of ss.spans ?? []) {
        out.spans.push({ name: sp.name ?? '', attrs: sorted(sp.attributes), events: (sp.events ?? []).map((e) => ({ name: e.name ?? '', time: e.timeUnixNano ?? '', attrs: sorted(e.attributes) })) });
      }
    }
  }
  return out;
}

function setup(config: Record<string, unknown>, id = 'redaction') {
  const settings = processorSettings(id);
  const next = new RecordingConsumer();
  const proc = new RedactionProcessor(settings, parseOrThrow(redactionConfigSchema, config), next);
  return { proc, next, settings };
}

/** Runs attributes through the processor as resource attributes and as span attributes; returns both. */
async function run(config: Record<string, unknown>, attrs: Attrs): Promise<{ resource: Attrs; span: Attrs }> {
  const { proc, next } = setup(config);
  await proc.consume(new TraceBatch(request([{ attrs, scopes: [{ spans: [{ attrs }] }] }])), CTX);
  assert.equal(next.received.length, 1);
  const out = decode(next.received[0]!.bytes);
  return { resource: out.resources[0]!, span: out.spans[0]!.attrs };
}

function sortAttrs(a: Attrs): Attrs {
  return [...a].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

/** Asserts the same expected attributes on the resource and on the span. */
function both(got: { resource: Attrs; span: Attrs }, want: Attrs): void {
  assert.deepEqual(got.resource, sortAttrs(want), 'resource attributes');
  assert.deepEqual(got.span, sortAttrs(want), 'span attributes');
}

// ---- the Collector's cases ----

test('keys not on allowed_keys are removed; ignored keys pass untouched (TestRedactUnknownAttributes)', async () => {
  const got = await run({ allowed_keys: ['group', 'id', 'name'], ignored_keys: ['safe_attribute'] }, [
    ['group', 'temporary'],
    ['id', 5n],
    ['name', 'placeholder'],
    ['safe_attribute', '4111111111111112'],
    ['credit_card', '4111111111111111'],
  ]);
  both(got, [
    ['group', 'temporary'],
    ['id', 5n],
    ['name', 'placeholder'],
    ['safe_attribute', '4111111111111112'],
  ]);
});

test('an empty allowed_keys fails closed: every attribute is removed, resource ones too', async () => {
  const got = await run({}, [
    ['service.name', 'checkout'],
    ['id', 5n],
  ]);
  both(got, []);
});

test('allow_all_keys keeps every key (TestAllowAllKeys)', async () => {
  const attrs: Attrs = [
    ['group', 'temporary'],
    ['id', 5n],
    ['name', 'placeholder'],
  ];
  both(await run({ allowed_keys: ['group', 'id'], allow_all_keys: true }, attrs), attrs);
});

test('allow_all_keys still masks blocked values; an allowed value is left alone (TestAllowAllKeysMaskValues)', async () => {
  const got = await run({ allowed_keys: ['group', 'id', 'name'], blocked_values: ['4[0-9]{12}(?:[0-9]{3})?'], allowed_values: ['.+@mycompany.com'], allow_all_keys: true }, [
    ['group', 'temporary'],
    ['id', 5n],
    ['name', 'placeholder'],
    ['credit_card', 'placeholder 4111111111111111'],
    ['email', 'user@mycompany.com'],
  ]);
  both(got, [
    ['group', 'temporary'],
    ['id', 5n],
    ['name', 'placeholder'],
    ['credit_card', 'placeholder ****'],
    ['email', 'user@mycompany.com'],
  ]);
});

const DEBUG_INPUT: Attrs = [
  ['id', 5n],
  ['group.id', 'some.valid.id'],
  ['member (id)', 'some other valid id'],
  ['name', 'placeholder 4111111111111111'],
  ['safe_attribute', 'harmless 4111111111111112'],
  ['safeRE_attribute_id', 'safe id'],
  ['safeRE_attribute_source', 'safe source'],
  ['credit_card', '4111111111111111'],
  ['token_some', 'tokenize'],
  ['api_key_some', 'apinize'],
  ['email', 'user@mycompany.com'],
];
const DEBUG_CONFIG = {
  allowed_keys: ['id', 'group', 'name', 'group.id', 'member (id)', 'token_some', 'api_key_some', 'email'],
  blocked_values: ['4[0-9]{12}(?:[0-9]{3})?'],
  ignored_keys: ['safe_attribute'],
  ignored_key_patterns: ['safeRE_attribute.*'],
  blocked_key_patterns: ['.*(token|api_key).*'],
  allowed_values: ['.+@mycompany.com'],
  summary: 'debug',
};
const UNTOUCHED: Attrs = [
  ['id', 5n],
  ['group.id', 'some.valid.id'],
  ['member (id)', 'some other valid id'],
  ['safe_attribute', 'harmless 4111111111111112'],
  ['safeRE_attribute_id', 'safe id'],
  ['safeRE_attribute_source', 'safe source'],
  ['email', 'user@mycompany.com'],
];

test('summary debug: keys and counts of what was redacted, masked, allowed and ignored (TestRedactSummaryDebug)', async () => {
  const got = await run(DEBUG_CONFIG, DEBUG_INPUT);
  both(got, [
    ...UNTOUCHED,
    ['name', 'placeholder ****'],
    ['token_some', '****'],
    ['api_key_some', '****'],
    ['redaction.redacted.keys', 'credit_card'],
    ['redaction.redacted.count', 1n],
    ['redaction.masked.keys', 'api_key_some,name,token_some'],
    ['redaction.masked.count', 3n],
    ['redaction.allowed.keys', 'email'],
    ['redaction.allowed.count', 1n],
    ['redaction.ignored.count', 3n],
  ]);
});

test('hash_function md5 writes the digest of what is masked (TestRedactSummaryDebugHashMD5)', async () => {
  const got = await run({ ...DEBUG_CONFIG, blocked_key_patterns: ['.*token.*', '.*api_key.*'], allowed_values: [], hash_function: 'md5' }, DEBUG_INPUT);
  both(got, [
    ...UNTOUCHED,
    ['name', 'placeholder 5910f4ea0062a0e29afd3dccc741e3ce'],
    ['api_key_some', '93a699237950bde9eb9d25c7ead025f3'],
    ['token_some', '77e9ef3680c5518785ef0121d3884c3d'],
    ['redaction.redacted.keys', 'credit_card'],
    ['redaction.redacted.count', 1n],
    ['redaction.masked.keys', 'api_key_some,name,token_some'],
    ['redaction.masked.count', 3n],
    ['redaction.ignored.count', 3n],
  ]);
});

test('hash_function sha1, sha3 (SHA3-256) and the HMACs digest the matched text', async () => {
  const key = 'k'.repeat(64);
  const cases: [string, (t: string) => string][] = [
    ['sha1', (t) => createHash('sha1').update(t).digest('hex')],
    ['SHA3', (t) => createHash('sha3-256').update(t).digest('hex')],
    ['hmac-sha256', (t) => createHmac('sha256', key).update(t).digest('hex')],
    ['hmac-sha512', (t) => createHmac('sha512', key).update(t).digest('hex')],
  ];
  for (const [fn, digest] of cases) {
    const hmac = fn.startsWith('hmac') ? { hmac_key: key } : {};
    const got = await run({ allow_all_keys: true, blocked_values: ['4[0-9]{15}'], hash_function: fn, ...hmac }, [['card', 'pay 4111111111111111 now']]);
    both(got, [['card', `pay ${digest('4111111111111111')} now`]]);
  }
});

test('summary info: counts only (TestRedactSummaryInfo)', async () => {
  const got = await run(
    {
      allowed_keys: ['id', 'name', 'group', 'email'],
      blocked_values: ['4[0-9]{12}(?:[0-9]{3})?'],
      ignored_keys: ['safe_attribute'],
      ignored_key_patterns: ['safeRE_attribute.*'],
      allowed_values: ['.+@mycompany.com'],
      summary: 'info',
    },
    [
      ['id', 5n],
      ['safe_attribute', 'harmless but suspicious 4111111111111141'],
      ['safeRE_attribute_id', 'safe id'],
      ['safeRE_attribute_source', 'safe source'],
      ['name', 'placeholder 4111111111111111'],
      ['credit_card', '4111111111111111'],
      ['email', 'user@mycompany.com'],
    ],
  );
  both(got, [
    ['id', 5n],
    ['safe_attribute', 'harmless but suspicious 4111111111111141'],
    ['safeRE_attribute_id', 'safe id'],
    ['safeRE_attribute_source', 'safe source'],
    ['name', 'placeholder ****'],
    ['email', 'user@mycompany.com'],
    ['redaction.redacted.count', 1n],
    ['redaction.masked.count', 1n],
    ['redaction.allowed.count', 1n],
    ['redaction.ignored.count', 3n],
  ]);
});

test('summary silent, and the default, write no summary (TestRedactSummarySilent, TestRedactSummaryDefault)', async () => {
  const attrs: Attrs = [
    ['id', 5n],
    ['name', 'placeholder 4111111111111111'],
    ['credit_card', '4111111111111111'],
  ];
  for (const summary of [{ summary: 'silent' }, {}]) {
    const got = await run({ allowed_keys: ['id', 'name', 'group'], blocked_values: ['4[0-9]{12}(?:[0-9]{3})?'], ...summary }, attrs);
    both(got, [
      ['id', 5n],
      ['name', 'placeholder ****'],
    ]);
  }
});

test('several blocked values apply in turn; masked keys are sorted (TestMultipleBlockValues)', async () => {
  const got = await run({ allowed_keys: ['id', 'name', 'mystery'], blocked_values: ['4[0-9]{12}(?:[0-9]{3})?', '(5[1-5][0-9]{3})'], summary: 'debug' }, [
    ['id', 5n],
    ['mystery', 'mystery 52000'],
    ['name', 'placeholder 4111111111111111 52000'],
    ['credit_card', '4111111111111111'],
  ]);
  both(got, [
    ['id', 5n],
    ['mystery', 'mystery ****'],
    ['name', 'placeholder **** ****'],
    ['redaction.redacted.keys', 'credit_card'],
    ['redaction.redacted.count', 1n],
    ['redaction.masked.keys', 'mystery,name'],
    ['redaction.masked.count', 2n],
  ]);
});

test('a summary already on the data is added to, not replaced (TestProcessAttrsAppliedTwice)', async () => {
  const got = await run({ allowed_keys: ['id', 'credit_card', 'mystery'], blocked_values: ['4[0-9]{12}(?:[0-9]{3})?'], summary: 'debug' }, [
    ['id', 5n],
    ['redundant', 1.2],
    ['mystery', 'mystery ****'],
    ['credit_card', '4111111111111111'],
    ['redaction.redacted.keys', 'dropped_attr1,dropped_attr2'],
    ['redaction.redacted.count', 2n],
    ['redaction.masked.keys', 'mystery'],
    ['redaction.masked.count', 1n],
  ]);
  both(got, [
    ['id', 5n],
    ['mystery', 'mystery ****'],
    ['credit_card', '****'],
    ['redaction.redacted.keys', 'dropped_attr1,dropped_attr2,redundant'],
    ['redaction.redacted.count', 3n],
    ['redaction.masked.keys', 'credit_card,mystery'],
    ['redaction.masked.count', 2n],
  ]);
});

test('two redaction processors in a row accumulate one summary', async () => {
  const first = setup({ allow_all_keys: true, blocked_values: ['secret-[0-9]+'], summary: 'debug' }, 'redaction/first');
  const second = setup({ allowed_keys: ['note', 'password'], blocked_key_patterns: ['pass'], summary: 'debug' }, 'redaction/second');
  const batch = new TraceBatch(request([{ scopes: [{ spans: [{ attrs: [['note', 'is secret-42'], ['password', 'hunter2'], ['extra', 'x']] }] }] }]));
  await first.proc.consume(batch, CTX);
  await second.proc.consume(TraceBatch.encoded(first.next.received[0]!.bytes, 1), CTX);
  assert.deepEqual(decode(second.next.received[0]!.bytes).spans[0]!.attrs, [
    ['note', 'is ****'],
    ['password', '****'],
    ['redaction.masked.count', 2n],
    ['redaction.masked.keys', 'note,password'],
    ['redaction.redacted.count', 1n],
    ['redaction.redacted.keys', 'extra'],
  ]);
});

test('redact_all_types false leaves non-strings alone (TestRedactAllTypesFalse); true masks their string form (TestRedactAllTypesTrue)', async () => {
  const attrs: Attrs = [
    ['id', 5n],
    ['credit_card', 'placeholder 4111111111111111'],
    ['credit_card_int', 4111111111111111n],
  ];
  const base = { allowed_keys: ['group', 'id', 'name'], allow_all_keys: true, blocked_values: ['4[0-9]{12}(?:[0-9]{3})?'] };
  both(await run({ ...base, redact_all_types: false }, attrs), [
    ['id', 5n],
    ['credit_card', 'placeholder ****'],
    ['credit_card_int', 4111111111111111n],
  ]);
  both(await run({ ...base, redact_all_types: true }, attrs), [
    ['id', 5n],
    ['credit_card', 'placeholder ****'],
    ['credit_card_int', '****'],
  ]);
});

test('redact_all_types matches doubles, booleans, bytes, arrays and maps by the Collector string form', async () => {
  const got = await run({ allow_all_keys: true, redact_all_types: true, blocked_values: ['1e\\+21', 'true', '^AQID$', 'Bearer [a-z]+', '"pin":[0-9]+'] }, [
    ['big', 1e21],
    ['small', 0.5],
    ['flag', true],
    ['raw', Buffer.from([1, 2, 3])],
    ['hdr', ['Bearer abc', 'x']],
    ['obj', { kv: [['z', 'last'], ['pin', 1234n]] }],
    ['keep', ['a', 'b']],
  ]);
  both(got, [
    ['big', '****'],
    ['small', 0.5],
    ['flag', '****'],
    ['raw', '****'],
    ['hdr', '["****","x"]'],
    ['obj', '{****,"z":"last"}'],
    ['keep', ['a', 'b']],
  ]);
});

test('a blocked key masks the whole value: a non-string becomes "****" even without redact_all_types, each line is masked', async () => {
  const got = await run({ allow_all_keys: true, blocked_key_patterns: ['(?i)^secret'] }, [
    ['SECRET_PIN', 1234n],
    ['secret.note', 'line one\nline two'],
    ['secret.empty', ''],
    ['other', 'visible'],
  ]);
  both(got, [
    ['SECRET_PIN', '****'],
    ['secret.note', '****\n****'],
    ['secret.empty', '****'],
    ['other', 'visible'],
  ]);
});

test('an allowed value wins over a blocked key pattern and blocked values', async () => {
  const got = await run({ allow_all_keys: true, blocked_key_patterns: ['token'], blocked_values: ['mycompany'], allowed_values: ['^support\\.mycompany\\.com$'] }, [
    ['token', 'support.mycompany.com'],
    ['host', 'support.mycompany.com'],
    ['other', 'www.mycompany.com'],
  ]);
  both(got, [
    ['token', 'support.mycompany.com'],
    ['host', 'support.mycompany.com'],
    ['other', 'www.****.com'],
  ]);
});

test('an empty match is replaced as Go does, not as JavaScript does', async () => {
  const got = await run({ allow_all_keys: true, blocked_values: ['a*'] }, [['v', 'baaac']]);
  both(got, [['v', '****b****c****']]);
});

test('repeated keys are handled one by one, as the Collector ranges over them', async () => {
  const got = await run({ allowed_keys: ['card'], blocked_values: ['4[0-9]{15}'], summary: 'info' }, [
    ['card', '4111111111111111'],
    ['card', 'no number'],
    ['drop', 'a'],
    ['drop', 'b'],
  ]);
  both(got, [
    ['card', '****'],
    ['card', 'no number'],
    ['redaction.redacted.count', 2n],
    ['redaction.masked.count', 1n],
  ]);
});

test('nothing to change: the batch goes on as the very bytes received', async () => {
  const { proc, next } = setup({ allow_all_keys: true, blocked_values: ['4[0-9]{15}'], summary: 'debug' });
  const bytes = request([{ attrs: [['service.name', 'checkout']], scopes: [{ attrs: [['lib.attr', 'x']], spans: [{ attrs: [['a', 'b']], events: [{ name: 'e', attrs: [['c', 'd']] }] }] }] }]);
  await proc.consume(new TraceBatch(bytes), CTX);
  assert.deepEqual(Buffer.from(next.received[0]!.bytes), Buffer.from(bytes));
});

test('allow_all_keys alone changes nothing: the batch itself goes on, pending edits and all', async () => {
  const { proc, next } = setup({ allow_all_keys: true });
  const batch = new TraceBatch(request([{ scopes: [{ spans: [{ attrs: [['a', 'b']], events: [{ name: 'e', attrs: [['c', 'd']] }] }] }] }]));
  batch.appendSpanAttribute(0, encodeKey('x'), encodeString('y'));
  await proc.consume(batch, CTX);
  assert.deepEqual(decode(next.received[0]!.bytes).spans[0]!.attrs, [
    ['a', 'b'],
    ['x', 'y'],
  ]);
});

test('span event attributes are redacted like span attributes, each event with its own summary (TestSpanEventRedacted)', async () => {
  const { proc, next } = setup({ allow_all_keys: true, blocked_values: ['xyzxyz'], summary: 'debug' });
  const bytes = request([
    {
      scopes: [
        {
          spans: [
            { name: 'login', attrs: [['a', 'b']], events: [{ name: 'ok', attrs: [['username', 'foobar']] }, { name: 'auth', attrs: [['password', 'xyzxyz'], ['username', 'foobar']] }] },
            { name: 'clean', attrs: [['a', 'b']], events: [{ name: 'ok', attrs: [['username', 'foobar']] }] },
          ],
        },
      ],
    },
  ]);
  await proc.consume(new TraceBatch(bytes), CTX);
  const out = decode(next.received[0]!.bytes);
  const time = '1700000000050000000';
  assert.deepEqual(out.spans, [
    {
      name: 'login',
      attrs: [['a', 'b']],
      events: [
        { name: 'ok', time, attrs: [['username', 'foobar']] },
        {
          name: 'auth',
          time,
          attrs: [
            ['password', '****'],
            ['redaction.masked.count', 1n],
            ['redaction.masked.keys', 'password'],
            ['username', 'foobar'],
          ],
        },
      ],
    },
    { name: 'clean', attrs: [['a', 'b']], events: [{ name: 'ok', time, attrs: [['username', 'foobar']] }] },
  ]);
});

test('instrumentation scope attributes are redacted too; the scope keeps its name and its spans', async () => {
  const { proc, next } = setup({ allowed_keys: ['keep'], summary: 'info' });
  const bytes = request([
    {
      attrs: [['keep', 'r']],
      scopes: [
        { attrs: [['secret', 's'], ['keep', 'x']], spans: [{ name: 'a' }, { name: 'b' }] },
        { attrs: [['keep', 'fine']], spans: [{ name: 'c', attrs: [['keep', 'k'], ['gone', 'g']] }] },
      ],
    },
  ]);
  await proc.consume(new TraceBatch(bytes), CTX);
  const out = decode(next.received[0]!.bytes);
  assert.deepEqual(out.scopes, [
    [
      ['keep', 'x'],
      ['redaction.redacted.count', 1n],
    ],
    [['keep', 'fine']],
  ]);
  assert.deepEqual(
    out.spans.map((sp) => [sp.name, sp.attrs]),
    [
      ['a', []],
      ['b', []],
      [
        'c',
        [
          ['keep', 'k'],
          ['redaction.redacted.count', 1n],
        ],
      ],
    ],
  );
  assert.deepEqual(out.resources, [[['keep', 'r']]]);
  const T = otlpType('ExportTraceServiceRequest');
  const raw = T.toObject(T.decode(next.received[0]!.bytes)) as { resourceSpans: { scopeSpans: { scope: { name: string; version: string } }[] }[] };
  assert.deepEqual(
    raw.resourceSpans[0]!.scopeSpans.map((ss) => [ss.scope.name, ss.scope.version]),
    [
      ['lib', '1.0.0'],
      ['lib', '1.0.0'],
    ],
  );
});

test('an event whose attributes are all removed stays, with its name and time', async () => {
  const { proc, next } = setup({});
  await proc.consume(new TraceBatch(request([{ scopes: [{ spans: [{ events: [{ name: 'e', attrs: [['x', 'y'], ['z', 1n]] }] }] }] }])), CTX);
  assert.deepEqual(decode(next.received[0]!.bytes).spans[0]!.events, [{ name: 'e', time: '1700000000050000000', attrs: [] }]);
});

test('many resources, scopes and spans: each span gets its own decision and summary', async () => {
  const { proc, next, settings } = setup({ allowed_keys: ['service.name', 'user'], blocked_values: ['@example\\.com$'], summary: 'info' });
  const resources: ResourceDef[] = [];
  for (let r = 0; r < 3; r++) {
    resources.push({
      attrs: [['service.name', `svc-${r}`], ['host.ip', '10.0.0.1']],
      scopes: [0, 1].map((s) => ({ spans: [0, 1, 2].map((i) => ({ name: `${r}-${s}-${i}`, attrs: [['user', i === 1 ? `u${i}@example.com` : `u${i}`], ['n', BigInt(i)]] as Attrs })) })),
    });
  }
  await proc.consume(new TraceBatch(request(resources)), CTX);
  const out = decode(next.received[0]!.bytes);
  assert.equal(out.spans.length, 18);
  for (const [r, res] of out.resources.entries()) {
    assert.deepEqual(res, [['redaction.redacted.count', 1n], ['service.name', `svc-${r}`]]);
  }
  for (const sp of out.spans) {
    const i = Number(sp.name.split('-')[2]);
    const want: Attrs = i === 1 ? [['redaction.masked.count', 1n], ['redaction.redacted.count', 1n], ['user', 'u1****']] : [['redaction.redacted.count', 1n], ['user', `u${i}`]];
    assert.deepEqual(sp.attrs, want, sp.name);
  }
  assert.equal(await settings.telemetry.value('tracewarden_redaction_attributes_total', { processor: 'redaction', action: 'redacted' }), 21);
  assert.equal(await settings.telemetry.value('tracewarden_redaction_attributes_total', { processor: 'redaction', action: 'masked' }), 6);
});

test('edits made upstream are what is redacted: a removed attribute does not come back, an added one is checked', async () => {
  const { proc, next } = setup({ allow_all_keys: true, blocked_values: ['Bearer'] });
  const batch = new TraceBatch(request([{ scopes: [{ spans: [{ attrs: [['http.request.header.authorization', 'Bearer eyJhbGciOi.x.y'], ['a', 'b']] }] }] }]));
  // An earlier processor stripped the credential and wrote an attribute of its own.
  batch.removeSpanAttribute(0, encodeKey('http.request.header.authorization'));
  batch.appendSpanAttribute(0, encodeKey('note'), encodeString('Bearer seen'));
  await proc.consume(batch, CTX);
  assert.deepEqual(decode(next.received[0]!.bytes).spans[0]!.attrs, [
    ['a', 'b'],
    ['note', '**** seen'],
  ]);
});

test('a ResourceSpans with two Resource messages (which decoders merge) is refused as invalid', async () => {
  const one = request([{ attrs: [['a', 'b']], scopes: [{ spans: [{}] }] }]);
  // resource_spans { resource {...} scope_spans {...} } + a second resource field appended inside it.
  const extraResource = Buffer.from([0x0a, 0x00]);
  const rsLen = one[1]!; // short test request: one-byte length
  assert.ok(rsLen < 0x7f && one.length === rsLen + 2);
  const inner = Buffer.concat([Buffer.from(one.subarray(2)), extraResource]);
  const bytes = Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
  const { proc } = setup({ allow_all_keys: true });
  await assert.rejects(proc.consume(new TraceBatch(bytes), CTX), (err: unknown) => err instanceof PipelineError && err.code === 'INVALID_ARGUMENT' && /resource occurs more than once|more than one resource/.test(err.message));
});

test('malformed bytes are refused as invalid, not crashed on', async () => {
  const { proc } = setup({ allow_all_keys: true });
  await assert.rejects(proc.consume(new TraceBatch(Uint8Array.of(0x0a, 0x05, 0x12)), CTX), (err: unknown) => err instanceof PipelineError && err.code === 'INVALID_ARGUMENT');
});

test('random batches: every resource and span ends as a plain model of the Collector algorithm says', async () => {
  let seed = 7;
  const rnd = (n: number) => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const KEYS = ['id', 'name', 'note', 'card', 'api_token', 'safe', 'x.y', 'redaction.masked.count', 'redaction.redacted.keys'];
  const value = (): Val => {
    switch (rnd(5)) {
      case 0:
        return BigInt(rnd(3) === 0 ? 4111111111111111 : rnd(100));
      case 1:
        return `pay 4111111111111111 ${rnd(10)}`;
      case 2:
        return rnd(2) === 0 ? 'a,b' : '';
      default:
        return `v${rnd(1000)}`;
    }
  };
  const attrs = (): Attrs => {
    const keys = KEYS.filter(() => rnd(2) === 0);
    return keys.map((k) => [k, k === 'redaction.masked.count' ? BigInt(rnd(5)) : value()]);
  };
  for (let round = 0; round < 40; round++) {
    const config = {
      allow_all_keys: rnd(2) === 0,
      allowed_keys: KEYS.filter(() => rnd(2) === 0),
      ignored_keys: rnd(2) === 0 ? ['safe'] : [],
      blocked_key_patterns: rnd(2) === 0 ? ['token'] : [],
      blocked_values: ['4[0-9]{15}'],
      redact_all_types: rnd(2) === 0,
      summary: ['debug', 'info', 'silent'][rnd(3)]!,
    };
    const resources: ResourceDef[] = [];
    for (let r = rnd(3) + 1; r > 0; r--) {
      const scopes = [];
      for (let s = rnd(3); s >= 0; s--) {
        const spans = Array.from({ length: rnd(4) }, (_, i) => ({ name: `s${i}`, attrs: attrs(), events: Array.from({ length: rnd(3) }, (_, e) => ({ name: `e${e}`, attrs: attrs() })) }));
        scopes.push({ attrs: attrs(), spans });
      }
      resources.push({ attrs: attrs(), scopes });
    }
    const { proc, next } = setup(config);
    await proc.consume(new TraceBatch(request(resources)), CTX);
    const spans = resources.flatMap((r) => r.scopes.flatMap((s) => s.spans));
    if (spans.length === 0) {
      assert.equal(next.received.length, 0);
      continue;
    }
    const out = decode(next.received[0]!.bytes);
    // Scopes without spans are kept as received (attributes redacted all the same).
    const scopes = resources.flatMap((r) => r.scopes);
    assert.deepEqual(out.resources, resources.map((r) => model(config, r.attrs ?? [])), `round ${round} resources`);
    assert.deepEqual(out.scopes, scopes.map((s) => model(config, s.attrs ?? [])), `round ${round} scopes`);
    assert.deepEqual(out.spans.map((s) => s.attrs), spans.map((s) => model(config, s.attrs ?? [])), `round ${round} spans`);
    assert.deepEqual(out.spans.map((s) => s.events.map((e) => e.attrs)), spans.map((s) => (s.events ?? []).map((e) => model(config, e.attrs))), `round ${round} events`);
  }
});

/** The Collector's processAttrs and addMetaAttrs over a plain list (unique keys; strings and ints only). */
function model(c: { allow_all_keys: boolean; allowed_keys: string[]; ignored_keys: string[]; blocked_key_patterns: string[]; redact_all_types: boolean; summary: string }, attrs: Attrs): Attrs {
  const summaryKeys = ['redaction.redacted.keys', 'redaction.redacted.count', 'redaction.masked.keys', 'redaction.masked.count', 'redaction.allowed.keys', 'redaction.allowed.count', 'redaction.ignored.count'];
  const out = new Map<string, Val>();
  const redacted: string[] = [];
  const masked: string[] = [];
  let ignored = 0;
  for (const [k, v] of attrs) {
    if (c.ignored_keys.includes(k)) {
      ignored++;
      out.set(k, v);
      continue;
    }
    if (!c.allow_all_keys && !c.allowed_keys.includes(k) && !summaryKeys.includes(k)) {
      redacted.push(k);
      continue;
    }
    const text = typeof v === 'string' ? v : c.redact_all_types ? String(v) : '';
    if (c.blocked_key_patterns.some((p) => k.includes(p))) {
      masked.push(k);
      out.set(k, '****');
      continue;
    }
    const m = text.replace(/4[0-9]{15}/g, '****');
    if (m !== text) {
      masked.push(k);
      out.set(k, m);
    } else out.set(k, v);
  }
  if (c.summary !== 'silent') {
    for (const [list, keysKey, countKey] of [
      [redacted, 'redaction.redacted.keys', 'redaction.redacted.count'],
      [masked, 'redaction.masked.keys', 'redaction.masked.count'],
    ] as [string[], string, string][]) {
      if (list.length === 0) continue;
      if (c.summary === 'debug') {
        const prev = out.get(keysKey);
        const all = [...list, ...(typeof prev === 'string' && prev !== '' ? prev.split(',') : [])].sort();
        out.set(keysKey, all.join(','));
      }
      const prev = out.get(countKey);
      out.set(countKey, (typeof prev === 'bigint' ? prev : 0n) + BigInt(list.length));
    }
    if (ignored > 0) {
      const prev = out.get('redaction.ignored.count');
      out.set('redaction.ignored.count', (typeof prev === 'bigint' ? prev : 0n) + BigInt(ignored));
    }
  }
  return sortAttrs([...out.entries()]);
}
