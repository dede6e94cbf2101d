/**
 * The probabilistic sampler against the OpenTelemetry Collector's own `probabilistic_sampler` (contrib
 * v0.165.1: processor/probabilisticsamplerprocessor and pkg/sampling). Where an expected value comes from,
 * each test says:
 * - "Collector test": a case of the Collector's tracesprocessor_test.go, config_test.go or
 *   pkg/sampling tests, carried over with its expected result;
 * - "Go": computed by running the Collector's code (its processor, or pkg/sampling's exported functions)
 *   on exactly these inputs;
 * - "derived": worked out by hand from the Go source, the working shown in the comment.
 * Outputs are decoded with protobufjs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceBatch, encodeKey } from '../../pipeline/batch/batch.js';
import { otlpType } from '../../pipeline/batch/otlp-schema.js';
import { ParseContext, parseOrThrow } from '../../pipeline/config/schema.js';
import type { RequestContext } from '../../pipeline/service/component.js';
import { RecordingConsumer, processorSettings, type TestSettings } from '../../test/helpers/processor-recorder.js';
import { decodeRequest } from '../../test/helpers/ottl-fixture.js';
import { prng } from '../../test/helpers/prng.js';
import { probabilisticSamplerConfigSchema } from './config.js';
import { factory } from './index.js';
import { MODE_EQUALIZING, MODE_HASH_SEED, MODE_NEVER, MODE_PROPORTIONAL, ProbabilisticSamplerProcessor, planSampler } from './probabilistic-sampler.js';
import { PRIORITY_DEFER, PRIORITY_DROP, PRIORITY_KEEP, stringPriority } from './priority.js';
import { U56, fnvHash, hashBuckets, probabilityToThreshold, writeTValue } from './sampling.js';

const T = otlpType('ExportTraceServiceRequest');
const CTX: RequestContext = { receiver: 'otlp', transport: 'grpc', peer: 'test', auth: null };

interface SpanIn {
  /** 32 hex digits; all zeros is the invalid (empty) trace id. */
  tid?: string;
  ts?: string;
  attributes?: Record<string, unknown> | [string, unknown][];
}

function value(v: unknown): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'bigint') return { intValue: v.toString() };
  if (typeof v === 'object' && v !== null && 'double' in v) return { doubleValue: (v as { double: number }).double };
  return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
}

/** A request with one resource and scope; span i has span id i (big-endian) and name `s<i>`. */
function request(spans: SpanIn[]): Uint8Array {
  return T.encode(
    T.fromObject({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }] },
          scopeSpans: [
            {
              scope: { name: 'lib', version: '1.0' },
              spans: spans.map((s, i) => {
                const id = Buffer.alloc(8);
                id.writeUInt32BE(i, 4);
                return {
                  traceId: Buffer.from(s.tid ?? 'fefefefefefefefefe80000000000000', 'hex'),
                  spanId: id,
                  traceState: s.ts ?? '',
                  name: `s${i}`,
                  kind: 2,
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000250000000',
                  attributes: (Array.isArray(s.attributes) ? s.attributes : Object.entries(s.attributes ?? {})).map(([key, v]) => ({ key, value: value(v) })),
                  events: [{ name: 'e', timeUnixNano: '1700000000100000000', attributes: [{ key: 'k', value: { stringValue: 'v' } }] }],
                };
              }),
            },
          ],
        },
      ],
    }),
  ).finish();
}

interface Outcome {
  /** Per input span: its exported trace state, or null when it was dropped. */
  kept: (string | null)[];
  next: RecordingConsumer;
  settings: TestSettings;
  processor: ProbabilisticSamplerProcessor;
}

function processor(config: unknown, id = 'probabilistic_sampler'): { p: ProbabilisticSamplerProcessor; next: RecordingConsumer; settings: TestSettings } {
  const settings = processorSettings(id);
  const next = new RecordingConsumer();
  const p = new ProbabilisticSamplerProcessor(settings, parseOrThrow(probabilisticSamplerConfigSchema, config), next);
  return { p, next, settings };
}

function outcome(next: RecordingConsumer, n: number): (string | null)[] {
  const kept: (string | null)[] = new Array(n).fill(null);
  for (const r of next.received) {
    for (const rs of decodeRequest(r.bytes).resourceSpans) {
      for (const ss of rs.scopeSpans) {
        for (const s of ss.spans) kept[(s.spanId as Buffer).readUInt32BE(4)] = (s.traceState as string | undefined) ?? '';
      }
    }
  }
  return kept;
}

async function run(config: unknown, spans: SpanIn[]): Promise<Outcome> {
  const { p, next, settings } = processor(config);
  await p.consume(new TraceBatch(request(spans)), CTX);
  return { kept: outcome(next, spans.length), next, settings, processor: p };
}

/** 16 random bytes from the seeded generator, as hex. */
function randomTraceIds(seed: number, n: number): string[] {
  const rand = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let h = '';
    for (let k = 0; k < 4; k++) h += Math.floor(rand() * 2 ** 32).toString(16).padStart(8, '0');
    out.push(h);
  }
  return out;
}

const tv = (u: U56): string => {
  const b = new Uint8Array(14);
  return Buffer.from(b.subarray(0, writeTValue(u.hi, u.lo, b, 0))).toString();
};

// ---------------------------------------------------------------- configuration

test('defaults are the Collector\'s: 0%, seed 0, mode unset (hash_seed for traces), precision 4, fail_closed', () => {
  const c = parseOrThrow(probabilisticSamplerConfigSchema, {});
  assert.deepEqual(c, { sampling_percentage: 0, hash_seed: 0, mode: '', sampling_precision: 4, fail_closed: true });
  assert.equal(planSampler(c).mode, MODE_NEVER);
  // Mode selection (makeSampler): unset is hash_seed for traces, with or without a seed.
  assert.equal(planSampler(parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 10 })).mode, MODE_HASH_SEED);
  assert.equal(planSampler(parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 10, hash_seed: 7 })).mode, MODE_HASH_SEED);
  assert.equal(planSampler(parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 10, mode: 'proportional' })).mode, MODE_PROPORTIONAL);
  assert.equal(planSampler(parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 10, mode: 'equalizing' })).mode, MODE_EQUALIZING);
  assert.equal(planSampler(parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 10, mode: '' })).mode, MODE_HASH_SEED);
  assert.equal(factory.type, 'probabilistic_sampler');
  assert.deepEqual(factory.reads!(c), ['sampling.priority']);
});

test('config errors: the Collector\'s Validate on the float32 percentage, precision 1..14, seed as uint32, mode', () => {
  const problem = (config: unknown): string => {
    try {
      parseOrThrow(probabilisticSamplerConfigSchema, config);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  assert.match(problem({ sampling_percentage: -1 }), /^sampling_percentage: sampling rate is negative/);
  // 1e-15% is a ratio of 1e-17, below 2^-56 (1.39e-17): too small (Collector test: invalid_small.yaml).
  assert.match(problem({ sampling_percentage: 1e-15 }), /^sampling_percentage: sampling rate is too small/);
  assert.equal(problem({ sampling_percentage: 1.4e-15 }), '');
  // 1e39 does not fit a float32: +Inf (Collector test: invalid_inf.yaml); 1e-300 becomes 0, which is valid.
  assert.match(problem({ sampling_percentage: 1e39 }), /sampling rate is invalid/);
  assert.equal(problem({ sampling_percentage: 1e-300 }), '');
  assert.equal(problem({ sampling_percentage: 200 }), '');
  assert.match(problem({ sampling_percentage: 'ten' }), /expected a number/);
  assert.match(problem({ sampling_precision: 0 }), /^sampling_precision: must be at least 1/);
  assert.match(problem({ sampling_precision: 15 }), /^sampling_precision: must be at most 14/);
  assert.match(problem({ sampling_precision: 2.5 }), /expected an integer/);
  assert.match(problem({ hash_seed: -1 }), /^hash_seed: must be at least 0/);
  assert.match(problem({ hash_seed: 2 ** 32 }), /^hash_seed: must be at most 4294967295/);
  assert.match(problem({ mode: 'consistent' }), /^mode: unsupported sampler mode "consistent"/);
  assert.match(problem({ fail_closed: 'yes' }), /^fail_closed: expected true or false/);
  assert.match(problem({ sampling_precentage: 10 }), /^sampling_precentage: unknown key/);
  assert.match(problem({ attribute_source: 'span' }), /^attribute_source: invalid attribute source: span\. Expected: traceID or record/);
  // Every problem at once.
  assert.equal(problem({ sampling_percentage: -1, sampling_precision: 0, mode: 'x' }).split('; ').length, 3);
});

test('the logs-only keys are accepted with a warning each (they have no effect on traces in the Collector either)', () => {
  const ctx = new ParseContext();
  const c = probabilisticSamplerConfigSchema.parse({ sampling_percentage: 15, attribute_source: 'record', from_attribute: 'logID', sampling_priority: 'priority' }, ['processors', 'probabilistic_sampler'], ctx);
  assert.ok(c !== undefined);
  assert.deepEqual(
    ctx.issues.map((i) => [i.path.join('.'), i.warning]),
    [
      ['processors.probabilistic_sampler.attribute_source', true],
      ['processors.probabilistic_sampler.from_attribute', true],
      ['processors.probabilistic_sampler.sampling_priority', true],
    ],
  );
  assert.match(ctx.issues[0]!.message, /logs only/);
  // attribute_source: record selects hash_seed for logs only; traces keep the trace rules.
  assert.equal(planSampler({ ...c, mode: 'proportional' }).mode, MODE_PROPORTIONAL);
});

// ---------------------------------------------------------------- arithmetic (Go: pkg/sampling v0.165.1)

test('hash_seed buckets: uint32(float32(pct) * float32(163.84)), truncated (Go)', () => {
  // Go: uint32(pct * percentageScaleFactor) for these float32 percentages printed 4096, 1638, 5461, 2506, 1, 0, 16382, 10158, 163.
  const cases: [number, number][] = [
    [25, 4096],
    [10, 1638],
    [100 / 3, 5461],
    [15.3, 2506],
    [0.006103515625, 1], // 100/16384: the float32 product 0.99999998 rounds to 1.0f
    [0.0061035, 0], // just below: 0.99999 truncates to 0, so hash_seed samples nothing
    [99.99, 16382],
    [62, 10158],
    [1, 163],
  ];
  for (const [pct, buckets] of cases) assert.equal(hashBuckets(Math.fround(pct)), buckets, `pct ${pct}`);
  const plan = planSampler(parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 0.0061035 }));
  assert.equal(plan.mode, MODE_NEVER);
});

test('probability to threshold with precision, including the extra digits near 0 and 1 (Go)', () => {
  // Go: sampling.ProbabilityToThresholdWithPrecision(p, prec).TValue()
  const cases: [number, number, string][] = [
    [0.1, 4, 'e666'],
    [0.05, 4, 'f3333'], // Frexp(0.05) has exponent -4: one more digit
    [0.25, 4, 'c'],
    [0.01, 4, 'fd70a'],
    [0.01, 3, 'fd71'],
    [0.01, 14, 'fd70a3d70a3d71'],
    [0.4, 3, '99a'],
    [0.2, 6, 'cccccd'],
    [Math.fround(15.3) / 100, 4, 'd8d5'],
    [1 / 3, 4, 'aaab'],
    [0.999, 2, '0042'], // Frexp(1 - 0.999) has exponent -9: two more digits
    [1e-10, 4, 'ffffffff920d'],
    [2 ** -56, 4, 'ffffffffffffff'],
    [Math.fround((1 - 8e-7) * 100) / 100, 10, '00000cccccccd'],
    [1, 4, '0'],
  ];
  const out = new U56();
  for (const [p, prec, want] of cases) {
    assert.ok(probabilityToThreshold(p, prec, out), `in range: ${p}`);
    assert.equal(tv(out), want, `${p} at precision ${prec}`);
  }
  assert.equal(probabilityToThreshold(2 ** -57, 4, out), false);
  assert.equal(probabilityToThreshold(1.5, 4, out), false);
});

test('FNV-1a of seed and trace id: the Collector\'s TestEmptyHashFunction value for 16 zero bytes (Collector test)', () => {
  // computeHash(16 zero bytes, seed 0) & 0x3fff == 0x2455 (tracesprocessor_test.go TestEmptyHashFunction).
  assert.equal(fnvHash(0, new Uint8Array(16), 0) & 0x3fff, 0x2455);
  // derived: FNV-1a 32 of the 20 bytes (seed 0 as 4 LE bytes, then 16 zeros): offset 0x811c9dc5, each byte
  // h = (h ^ b) * 0x01000193 mod 2^32; with all bytes zero that is 0x811c9dc5 * 0x01000193^20 mod 2^32.
  let h = 0x811c9dc5n;
  for (let i = 0; i < 20; i++) h = (h * 0x01000193n) % 2n ** 32n;
  assert.equal(fnvHash(0, new Uint8Array(16), 0), Number(h));
});

// ---------------------------------------------------------------- hash_seed mode

test('hash_seed: the same trace ids are kept as by the Collector at 50% (Collector test: TestHashingFunction)', async () => {
  // (seed, trace id, sampled) from the Collector's TestHashingFunction, made by running its hash_seed sampler.
  const vectors: [number, string, boolean][] = [
    [653, '474a03c76d75951a4b4c537ced8f1122', true],
    [563, '53a518291e91307e43cd8467bb06f986', true],
    [142, 'a56a02f843b9bc6ee0b13889249e90e6', true],
    [904, '4e40762d3ee97a1c0932e4fa584f89a8', false],
    [445, '5224507db93db513f0ea2a4b4e0578c8', true],
    [38, '0c8717ced36216037af657e9d7f8b35b', true],
    [561, '2a8aa76c18d08e1e8be935541f9318c7', false],
    [757, '9e3d0f9481dc422cb613ea550897ae71', false],
    [22, '66a66c516ac22054673e5da5e6492545', false],
    [172, '84a1ce7bcea3e66194e72b4aa2694e31', true],
    [552, 'a811a7def34ca4b98d8e320afd115fad', false],
    [546, 'e3a345cc8dbb6f014bfa1edad3981820', true],
    [315, 'a71effb50e28d27cbdc9892f3765b8c2', false],
    [790, '7629ecbea89398bfd9752a2f51c2c137', true],
    [555, 'de6cdfb44d69e211f886c57120d7bda0', true],
    [666, '3ee60b013303bcfda06be89071b90bd1', true],
    [305, 'c90c7cf3471bbc3a804a8a831633705b', true],
    [35, '855f493c5b5b1e2fcbc9993f8061eac8', false],
    [561, '0a0af00f63e098a39883705a423b0aa8', true],
    [70, '19c386ee7a9f2d56ff9ab2e6374540af', false],
    [936, '62dda24e4be24f5198e4d8dd4010c811', true],
    [835, '6c77db08bbded7bdd5c99c6e2fea41d2', false],
    [99, '497f02db51c898ac441aae18a8b7ced9', false],
    [773, '988481445600bb91bbe23e3103034bcd', true],
    [460, '60c3b9a2dde734d71ba5cca7eb164bce', true],
  ];
  for (const [seed, tid, sampled] of vectors) {
    const { kept } = await run({ sampling_percentage: 50, hash_seed: seed }, [{ tid }]);
    assert.equal(kept[0] !== null, sampled, `seed ${seed}, trace ${tid}`);
  }
});

test('hash_seed: th from the 14-bit threshold and rv from the hash are written (Collector test + Go)', async () => {
  // Collector test (HashSeedTraceState): the th written at 100, 75, 50, 25, 10 and 33.3% is 0, 4, 8, c, e668,
  // aaac; derived for 10%: 16384 - 1638 = 14746 = 0x399a, shifted left by 42 of 56 bits is 0xe668 << 40.
  const pcts: [number, string][] = [
    [100, '0'],
    [75, '4'],
    [50, '8'],
    [25, 'c'],
    [10, 'e668'],
    [100 / 3, 'aaac'],
  ];
  const tids = randomTraceIds(11, 64);
  for (const [pct, th] of pcts) {
    const { kept } = await run({ sampling_percentage: pct, hash_seed: 4312, mode: 'hash_seed' }, tids.map((tid) => ({ tid })));
    const sampled = kept.filter((k): k is string => k !== null);
    assert.ok(sampled.length > 0);
    for (const ts of sampled) {
      const m = /^ot=rv:([0-9a-f]{14});th:([0-9a-f]+)$/.exec(ts);
      assert.ok(m, ts);
      assert.equal(m[2], th);
      // threshold <= randomness, comparing the zero-padded 14-digit values
      assert.ok(BigInt('0x' + m[2]!.padEnd(14, '0')) <= BigInt('0x' + m[1]!), ts);
    }
  }
  // Go (the Collector's processor on these spans, seed 0, 75%): the exact rv, then th, then other members.
  const tid = '0000000000000000008a6b027051da20';
  const { kept } = await run({ sampling_percentage: 75, mode: 'hash_seed' }, [{ tid }, { tid, ts: 'vendor=x' }, { tid, ts: 'ot=th:0' }, { tid, ts: 'ot=rv:ffffffffffffff' }]);
  // derived: FNV-1a(seed 0, trace id) = 0xf5250c3f; bucket 0xc3f = 3135 < 12288 buckets of 75%: kept.
  // rv = (16383 - 3135) << 42 | (t ^ t << 10) << 14 | 3135 with t = hash >> 18 = 0x3d49: cf003d46524c3f.
  // The last two already carry th or rv, which the hash_seed mode refuses: an error, dropped (fail_closed).
  assert.deepEqual(kept, ['ot=rv:cf003d46524c3f;th:4', 'ot=rv:cf003d46524c3f;th:4,vendor=x', null, null]);
  assert.equal(fnvHash(0, Buffer.from(tid, 'hex'), 0), 0xf5250c3f);
});

test('hash_seed: missing randomness (an all-zero trace id) fails closed, or open with rv all ones (Collector test + Go)', async () => {
  // Collector test (MissingRandomness): [pct, failClosed, sampled]
  const cases: [number, boolean, boolean][] = [
    [0, true, false],
    [62, true, false],
    [100, true, false],
    [0, false, false],
    [62, false, true],
    [100, false, true],
  ];
  for (const [pct, failClosed, sampled] of cases) {
    const { kept, settings } = await run({ sampling_percentage: pct, hash_seed: 4312, fail_closed: failClosed }, [{ tid: '0'.repeat(32) }]);
    assert.equal(kept[0] !== null, sampled, `${pct}% fail_closed ${failClosed}`);
    // pct 0 bypasses the randomness check: nothing is logged.
    const logged = settings.sink.lines.join('\n');
    if (pct === 0) assert.doesNotMatch(logged, /missing randomness/);
    else assert.match(logged, /missing randomness/);
  }
  // Go: failing open, the span gets the all-ones randomness the Collector substitutes, and th 0. Spans whose
  // trace state does not parse, or already has rv or th, are kept as they came.
  const ff = 'ff'.repeat(16);
  const { kept } = await run({ sampling_percentage: 75, fail_closed: false }, [
    { tid: '0'.repeat(32) },
    { tid: ff, ts: 'ot=th:0' },
    { tid: ff, ts: 'ot=rv:ffffffffffffff' },
    { tid: ff, ts: 'Vendor=x' },
    { tid: ff, ts: 'ot=th:' },
    { tid: ff, ts: 'a=1 , ot=th:8' },
  ]);
  assert.deepEqual(kept, ['ot=rv:ffffffffffffff;th:0', 'ot=th:0', 'ot=rv:ffffffffffffff', 'Vendor=x', 'ot=th:', 'a=1 , ot=th:8']);
});

// ---------------------------------------------------------------- proportional and equalizing

/** Collector test (Test_tracesamplerprocessor_TraceState): [name, config, trace id, trace state, priority, equalizing, proportional]. */
const TRACE_STATE_CASES: [string, Record<string, unknown>, string | null, string, unknown, string | null, string | null][] = [
  // Unset precision in that test is Go's 0, "full precision": 14 here. fail_closed is false there (a zero Config).
  ['100 percent', { sampling_percentage: 100 }, null, '', undefined, 'ot=th:0', 'ot=th:0'],
  ['50 percent sampled', { sampling_percentage: 50 }, null, '', undefined, 'ot=th:8', 'ot=th:8'],
  ['25 percent sampled', { sampling_percentage: 25 }, 'ddddddddddddddddddc0000000000000', '', undefined, 'ot=th:c', 'ot=th:c'],
  ['25 percent unsampled', { sampling_percentage: 25 }, 'ddddddddddddddddddb0000000000000', '', undefined, null, null],
  ['1 percent sampled', { sampling_percentage: 1 }, null, 'ot=rv:FD70A3D70A3D71', undefined, 'ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71', 'ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71'],
  ['1 percent, rv, precision 4', { sampling_percentage: 1, sampling_precision: 4 }, null, 'ot=rv:FD70A3D70A3D71', undefined, 'ot=rv:FD70A3D70A3D71;th:fd70a', 'ot=rv:FD70A3D70A3D71;th:fd70a'],
  ['1 percent, rv, precision 3 rounds up to fd71', { sampling_percentage: 1, sampling_precision: 3 }, null, 'ot=rv:FD70A3D70A3D71', undefined, null, null],
  ['1 percent not sampled with rvalue', { sampling_percentage: 1 }, null, 'ot=rv:FD70A3D70A3D70', undefined, null, null],
  ['49 percent not sampled with default tid', { sampling_percentage: 49 }, null, '', undefined, null, null],
  ['1 percent sampled with rvalue', { sampling_percentage: 1 }, null, 'ot=rv:fd70B000000000', undefined, 'ot=rv:fd70B000000000;th:fd70a3d70a3d71', 'ot=rv:fd70B000000000;th:fd70a3d70a3d71'],
  ['1 percent sampled with tid', { sampling_percentage: 1, sampling_precision: 4 }, 'a0a0a0a0a0a0a0a0a0fe000000000000', '', undefined, 'ot=th:fd70a', 'ot=th:fd70a'],
  ['sampled by priority', { sampling_percentage: 1 }, null, '', 2, 'ot=th:0', 'ot=th:0'],
  ['not sampled by priority', { sampling_percentage: 99 }, null, '', 0, null, null],
  ['incoming 50 percent with rvalue', { sampling_percentage: 50 }, null, 'ot=rv:90000000000000;th:80000000000000', undefined, 'ot=rv:90000000000000;th:8', null],
  ['incoming 50 percent at 25 percent not sampled', { sampling_percentage: 25 }, null, 'ot=th:8', undefined, null, null],
  ['incoming 50 percent at 25 percent sampled', { sampling_percentage: 25 }, 'ffffffffffffffffffffffffffffffff', 'ot=th:8', undefined, 'ot=th:c', 'ot=th:e'],
  ['equalizing vs proportional', { sampling_percentage: 50 }, null, 'ot=rv:c0000000000000;th:8', undefined, 'ot=rv:c0000000000000;th:8', 'ot=rv:c0000000000000;th:c'],
  ['inconsistent arriving threshold', { sampling_percentage: 100 }, null, 'ot=rv:40000000000000;th:8', undefined, 'ot=rv:40000000000000;th:0', 'ot=rv:40000000000000;th:0'],
  ['inconsistent arriving threshold not sampled', { sampling_percentage: 1, fail_closed: true }, null, 'ot=rv:40000000000000;th:8', undefined, null, null],
  ['40 percent precision 3 with rvalue', { sampling_percentage: 40, sampling_precision: 3 }, null, 'ot=rv:a0000000000000', undefined, 'ot=rv:a0000000000000;th:99a', 'ot=rv:a0000000000000;th:99a'],
  ['arriving 50 percent sampled at 40 percent precision 6', { sampling_percentage: 40, sampling_precision: 6 }, 'a0a0a0a0a0a0a0a0a0d0000000000000', 'ot=th:8', undefined, 'ot=th:99999a', 'ot=th:cccccd'],
  ['arriving 50 percent sampled at 40 percent partly sampled', { sampling_percentage: 40, sampling_precision: 3 }, 'a0a0a0a0a0a0a0a0a0b0000000000000', 'ot=th:8', undefined, 'ot=th:99a', null],
  ['arriving 50 percent sampled at 40 percent not sampled', { sampling_percentage: 40, sampling_precision: 3 }, 'a0a0a0a0a0a0a0a0a080000000000000', 'ot=th:8', undefined, null, null],
  ['200 percent equals 100 percent', { sampling_percentage: 200 }, null, '', undefined, 'ot=th:0', 'ot=th:0'],
  ['tiny probability rounding', { sampling_percentage: 100 * 2 ** -14 }, '111111111111111111ffffffffffffff', 'ot=th:fffc', undefined, 'ot=th:fffc', 'ot=th:fffffff'],
  ['almost 100pct sampling', { sampling_percentage: (1 - 8e-7) * 100, sampling_precision: 10 }, '111111111111111111ffffffffffffff', '', undefined, 'ot=th:00000cccccccd', 'ot=th:00000cccccccd'],
  ['probability underflow', { sampling_percentage: 2 ** -4 }, '111111111111111111ffffffffffffff', 'ot=th:fffffffffffff8', undefined, 'ot=th:fffffffffffff8', null],
];

test('equalizing and proportional: the Collector\'s trace state cases, span by span (Collector test)', async () => {
  for (const [name, cfg, tid, ts, priority, eq, prop] of TRACE_STATE_CASES) {
    for (const [mode, want] of [
      ['equalizing', eq],
      ['proportional', prop],
    ] as const) {
      const config = { sampling_precision: 14, fail_closed: false, ...cfg, mode, hash_seed: 4312 };
      const span: SpanIn = { ts, ...(tid === null ? {} : { tid }), ...(priority === undefined ? {} : { attributes: { 'sampling.priority': priority } }) };
      const { kept } = await run(config, [span]);
      assert.equal(kept[0], want, `${mode}: ${name}`);
    }
  }
});

test('errors with fail_closed: missing randomness, bad rv/th, inconsistent th; dropped and logged (Collector test)', async () => {
  // Collector test (TraceStateErrors), 100% with fail_closed: [trace id, trace state, logged error]
  const cases: [string, string, RegExp][] = [
    ['0'.repeat(32), '', /missing randomness/],
    ['fefefefefefefefefe80000000000000', 'ot=rv:abababababababab', /r-value must have 14 hex digits/],
    ['fefefefefefefefefe80000000000000', 'ot=th:abababababababab', /t-value exceeds 14 hex digits/],
    ['fefefefefefefefefe80000000000000', 'ot=th:-1', /t-value is not hexadecimal/],
    ['ffffffffffffffffff70000000000000', 'ot=th:8', /inconsistent arriving threshold/],
    ['fefefefefefefefefe80000000000000', 'ot=th:8;rv:70000000000000', /inconsistent arriving threshold/],
  ];
  for (const mode of ['equalizing', 'proportional']) {
    for (const [tid, ts, message] of cases) {
      const { kept, settings } = await run({ sampling_percentage: 100, mode, fail_closed: true }, [{ tid, ts }]);
      assert.equal(kept[0], null, `${mode}: ${ts}`);
      assert.match(settings.sink.lines.join('\n'), message);
    }
  }
});

test('fail_closed: false keeps spans with errors, their trace state as it came when it did not parse (Go)', async () => {
  const spans: SpanIn[] = [
    { tid: 'ff'.repeat(16), ts: 'ot=th:zz' }, // does not parse: kept, not rewritten
    { tid: '0'.repeat(32), ts: 'ot=th:8' }, // no randomness: kept, th cannot be lowered to 0
    { tid: 'ff'.repeat(16), ts: 'Vendor=x' }, // a key with an upper-case letter is a syntax error
  ];
  const open = await run({ sampling_percentage: 50, mode: 'proportional', fail_closed: false }, spans);
  assert.deepEqual(open.kept, ['ot=th:zz', 'ot=th:8', 'Vendor=x']);
  const closed = await run({ sampling_percentage: 50, mode: 'proportional' }, spans);
  assert.deepEqual(closed.kept, [null, null, null]);
  assert.equal(closed.next.received.length, 0, 'a batch left with no span is not passed on');
});

// ---------------------------------------------------------------- the trace state written back

test('trace state: other vendors and ot sub-keys kept, ot first, blanks trimmed, rv kept as received (Go)', async () => {
  const { kept } = await run({ sampling_percentage: 25, mode: 'proportional' }, [
    { tid: 'ff'.repeat(16), ts: 'vendor=x , ot=th:8;foo:bar' },
    { tid: 'ff'.repeat(16), ts: 'congo=t61rcWkgMzE,ot=rv:FFFFFFFFFFFFFF;p:8,rojo=00f067aa0ba902b7' },
    { tid: 'ff'.repeat(16), ts: ' a=1 ,, tenant@sys=two words ,\tb=2' },
  ]);
  // 50% arriving, 25% proportional: 12.5%, th e. No th arriving: 25%, th c.
  assert.deepEqual(kept, ['ot=th:e;foo:bar,vendor=x', 'ot=rv:FFFFFFFFFFFFFF;th:c;p:8,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', 'ot=th:c,a=1,tenant@sys=two words,b=2']);
});

test('trace state limits as the Collector applies them: 31 list pieces, empty ones counted; a later ot wins (Go)', async () => {
  const members = Array.from({ length: 31 }, (_, i) => `k${i}=v`).join(',');
  const { kept } = await run({ sampling_percentage: 100, mode: 'proportional' }, [
    { tid: 'ff'.repeat(16), ts: members },
    { tid: 'ff'.repeat(16), ts: members + ',k31=v' },
    { tid: 'ff'.repeat(16), ts: members + ',' }, // a trailing comma adds no piece
    { tid: 'ff'.repeat(16), ts: members + ',,' }, // but an empty piece before it does
    { tid: 'ff'.repeat(16), ts: 'ot=th:8,ot=rv:ABCDEF01234567' },
    { tid: 'ff'.repeat(16), ts: 'a=' + 'x'.repeat(1023) },
  ]);
  assert.deepEqual(kept, ['ot=th:0,' + members, null, 'ot=th:0,' + members, null, 'ot=rv:ABCDEF01234567;th:0', null]);

  // Keys: at most 256 characters; in a multi-tenant key, a tenant of at most 241 and a system of at most 14.
  const keys = await run({ sampling_percentage: 50, mode: 'proportional' }, [
    { tid: 'ff'.repeat(16), ts: 'k'.repeat(257) + '=v' },
    { tid: 'ff'.repeat(16), ts: 'k'.repeat(256) + '=v' },
    { tid: 'ff'.repeat(16), ts: 't'.repeat(242) + '@s=v' },
    { tid: 'ff'.repeat(16), ts: 't'.repeat(241) + '@' + 's'.repeat(15) + '=v' },
    { tid: 'ff'.repeat(16), ts: 't'.repeat(241) + '@' + 's'.repeat(14) + '=v' },
  ]);
  assert.deepEqual(keys.kept, [null, 'ot=th:8,' + 'k'.repeat(256) + '=v', null, null, 'ot=th:8,' + 't'.repeat(241) + '@' + 's'.repeat(14) + '=v']);
});

test('a kept span whose trace state is already what would be written is not edited: the batch goes on as received', async () => {
  const spans: SpanIn[] = [
    { tid: 'ff'.repeat(16), ts: 'ot=th:8' },
    { tid: 'ff'.repeat(16), ts: 'ot=th:c,other=1' },
  ];
  const bytes = request(spans);
  const { p, next } = processor({ sampling_percentage: 50, mode: 'equalizing' });
  await p.consume(new TraceBatch(bytes), CTX);
  assert.equal(next.received.length, 1);
  // No edit at all: the batch passed on encodes to the very array it was made from.
  assert.equal(next.received[0]!.bytes, bytes);
});

test('the rest of the span is untouched when the trace state is written or inserted', async () => {
  const { next } = await run({ sampling_percentage: 100, mode: 'equalizing' }, [
    { tid: 'ff'.repeat(16), attributes: { a: 'b', n: 7 } },
    { tid: 'ff'.repeat(16), ts: 'x=y', attributes: { a: 'c' } },
  ]);
  const spans = decodeRequest(next.received[0]!.bytes).resourceSpans[0]!.scopeSpans[0]!.spans;
  assert.equal(spans.length, 2);
  for (const s of spans) {
    assert.equal((s.traceId as Buffer).toString('hex'), 'ff'.repeat(16));
    assert.equal(s.kind, 2);
    assert.equal(s.startTimeUnixNano, '1700000000000000000');
    assert.equal((s.events as unknown[]).length, 1);
  }
  assert.deepEqual(
    spans.map((s) => [s.name, s.traceState, (s.attributes as { key: string }[]).map((a) => a.key)]),
    [
      ['s0', 'ot=th:0', ['a', 'n']],
      ['s1', 'ot=th:0,x=y', ['a']],
    ],
  );
});

test('0% samples nothing but what sampling.priority keeps, and writes back even a trace state that did not parse (Go)', async () => {
  // The Collector's never-sampler keeps its parsed trace state even on a parse error; a priority that
  // keeps the span then writes it back: here nothing parsed, so the state becomes ot=th:0 (Go printed it).
  const { kept } = await run({ sampling_percentage: 0 }, [
    { tid: 'ff'.repeat(16), ts: 'a=1,B=2', attributes: { 'sampling.priority': 1 } },
    { tid: 'ff'.repeat(16), ts: 'ot=th:8,a=1', attributes: { 'sampling.priority': 1 } },
    { tid: 'ff'.repeat(16), ts: 'ot=th:8,a=1' },
  ]);
  assert.deepEqual(kept, ['ot=th:0', 'ot=th:8,a=1', null]);
  const open = await run({ sampling_percentage: 0, fail_closed: false }, [{ tid: 'ff'.repeat(16), ts: 'a=1,B=2' }]);
  assert.deepEqual(open.kept, ['ot=th:0']);
});

// ---------------------------------------------------------------- sampling.priority

test('sampling.priority: 0 drops and above 0 keeps in every mode, as int, double or string (Collector test)', async () => {
  // Collector test (SpanSamplingPriority): trace id 01 00..00 has W3C randomness 0, sampled only at 100%.
  const tid = '01' + '0'.repeat(30);
  const cases: [number, string, unknown, boolean][] = [
    [0, 'sampling.priority', 2, true],
    [0, 'sampling.priority', { double: 1 }, true],
    [0, 'sampling.priority', '1', true],
    [100, 'sampling.priority', 0, false],
    [100, 'sampling.priority', { double: 0 }, false],
    [100, 'sampling.priority', '0', false],
    [0, 'no.sampling.priority', 2, false],
    [100, 'no.sampling.priority', 2, true],
  ];
  for (const mode of ['hash_seed', 'equalizing', 'proportional']) {
    for (const [pct, key, v, sampled] of cases) {
      const { kept, settings } = await run({ sampling_percentage: pct, mode, hash_seed: 4312 }, [{ tid, attributes: { [key]: v } }]);
      assert.equal(kept[0] !== null, sampled, `${mode} ${pct}% ${key}=${JSON.stringify(v)}`);
      // The Collector's metric names the decision's source: the priority when it decided.
      const policy = key === 'sampling.priority' || pct === 0 ? 'sampling_priority' : mode === 'hash_seed' ? 'trace_id_hash' : 'trace_id_w3c';
      const metric = 'otelcol_processor_probabilistic_sampler_count_spans_processed_total';
      assert.equal(await settings.telemetry.value(metric, { policy, sampled: String(sampled) }), 1, `${mode} ${pct}% ${key}: policy ${policy}`);
    }
  }
});

test('sampling.priority values: <0, NaN and other types defer; strings as Go\'s ParseFloat reads them (Collector test + Go)', async () => {
  // Collector test (parseSpanSamplingPriority) for ints, doubles and strings; Go for the other strings
  // (strconv.ParseFloat: 1e-400 underflows to 0 without error, 1e400 is a range error, hex needs p).
  const s = (text: string): number => {
    const b = Buffer.from(text, 'latin1');
    return stringPriority(b, 0, b.length);
  };
  const cases: [string, number][] = [
    ['0.0', PRIORITY_DROP],
    ['0.5', PRIORITY_KEEP],
    ['-0.5', PRIORITY_DEFER],
    ['NaN', PRIORITY_DEFER],
    ['-0', PRIORITY_DROP],
    ['1e-400', PRIORITY_DROP],
    ['1e400', PRIORITY_DEFER],
    ['0x1p0', PRIORITY_KEEP],
    ['0x1', PRIORITY_DEFER],
    ['1_0', PRIORITY_KEEP],
    ['1__0', PRIORITY_DEFER],
    ['inf', PRIORITY_KEEP],
    ['+Infinity', PRIORITY_KEEP],
    ['-inf', PRIORITY_DEFER],
    ['infin', PRIORITY_DEFER],
    [' 1', PRIORITY_DEFER],
    ['.5', PRIORITY_KEEP],
    ['', PRIORITY_DEFER],
    ['1abc', PRIORITY_DEFER],
    ['1.5.5', PRIORITY_DEFER],
    ['0x1p1x', PRIORITY_DEFER],
  ];
  for (const [text, want] of cases) assert.equal(s(text), want, JSON.stringify(text));

  // Through the processor at 50% with trace ids that 50% keeps (W3C) and drops.
  const keepTid = 'ff'.repeat(16);
  const dropTid = '00'.repeat(16).replace(/^00/, '01');
  const values: [unknown, boolean, boolean][] = [
    [1, true, true],
    [-1, true, false],
    [{ double: -1 }, true, false],
    [{ double: Number.NaN }, true, false],
    ['-0.5', true, false],
    [true, true, false],
    [0, false, false],
  ];
  for (const [v, keepWhenRandom, keepWhenNot] of values) {
    const { kept } = await run({ sampling_percentage: 50, mode: 'proportional' }, [
      { tid: keepTid, attributes: { 'sampling.priority': v } },
      { tid: dropTid, attributes: { 'sampling.priority': v } },
    ]);
    assert.deepEqual(
      kept.map((k) => k !== null),
      [keepWhenRandom, keepWhenNot],
      `priority ${String(v)}`,
    );
  }
});

test('sampling.priority: the first attribute with the key counts, as pdata\'s Map.Get finds it', async () => {
  const { kept } = await run({ sampling_percentage: 100 }, [
    { tid: 'ff'.repeat(16), attributes: [['sampling.priority', 0], ['sampling.priority', 1]] },
    { tid: 'ff'.repeat(16), attributes: [['other', 0], ['sampling.priority', 'x'], ['sampling.priority', 0]] },
  ]);
  assert.deepEqual(kept.map((k) => k !== null), [false, true]);
});

test('sampling.priority written by an earlier processor is seen (the batch is sealed first)', async () => {
  const batch = new TraceBatch(request([{ tid: 'ff'.repeat(16) }, { tid: 'ff'.repeat(16) }]));
  batch.setSpanString(1, encodeKey('sampling.priority'), '0');
  const { p, next } = processor({ sampling_percentage: 100 });
  await p.consume(batch, CTX);
  assert.deepEqual(outcome(next, 2).map((k) => k !== null), [true, false]);
});

// ---------------------------------------------------------------- statistics and consistency

const N = 20_000;

/**
 * Bounds that hold for a fair sampler with overwhelming probability: 6 standard deviations of a binomial
 * count (a fair sampler falls outside with probability below 2e-9). The trace ids come from a seeded
 * generator, so each run sees the same ids and the same counts.
 */
function assertRate(count: number, n: number, p: number, what: string): void {
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(count - n * p) <= 6 * sd, `${what}: ${count} of ${n}, expected ${n * p} ± ${(6 * sd).toFixed(0)}`);
}

test('rates over 20,000 random trace ids match the configured percentage in every mode', async () => {
  const tids = randomTraceIds(20260, N);
  const bytes = request(tids.map((tid) => ({ tid })));
  for (const mode of ['hash_seed', 'proportional', 'equalizing']) {
    for (const pct of [1, 10, 25, 50, 90]) {
      const { p, next, settings } = processor({ sampling_percentage: pct, mode, hash_seed: 1234 });
      await p.consume(new TraceBatch(bytes), CTX);
      const kept = next.spanTotal;
      // hash_seed keeps floor(pct * 163.84) of 16384 buckets.
      const expected = mode === 'hash_seed' ? hashBuckets(Math.fround(pct)) / 16384 : pct / 100;
      assertRate(kept, N, expected, `${mode} ${pct}%`);
      assert.equal(await settings.telemetry.value('tracewarden_dropped_spans_total', { component: 'probabilistic_sampler', reason: 'sampled_out' }), N - kept);
      assert.equal(await settings.telemetry.value('otelcol_processor_outgoing_items_total', { processor: 'probabilistic_sampler' }), kept);
      assert.equal(await settings.telemetry.value('otelcol_processor_incoming_items_total', { processor: 'probabilistic_sampler' }), N);
      const policy = mode === 'hash_seed' ? 'trace_id_hash' : 'trace_id_w3c';
      assert.equal(await settings.telemetry.value('otelcol_processor_probabilistic_sampler_count_spans_processed_total', { policy, sampled: 'true' }), kept);
    }
  }
  // Arriving with th:8 (50%), proportional 25% keeps 12.5%; equalizing 25% keeps 25% of the original.
  const half = request(tids.map((tid) => ({ tid, ts: 'ot=th:8' })));
  const { p: prop, next: propNext } = processor({ sampling_percentage: 25, mode: 'proportional', fail_closed: false });
  await prop.consume(new TraceBatch(half), CTX);
  // fail_closed false: the about half whose randomness is below th:8 are inconsistent and kept (always).
  const consistent = tids.filter((t) => parseInt(t.slice(18, 19), 16) >= 8).length;
  assertRate(propNext.spanTotal - (N - consistent), consistent, 0.25, 'proportional 25% of 50%');
});

test('consistency: what 10% keeps, 50% keeps too (same ids), and samplers in series (Go for the th)', async () => {
  const tids = randomTraceIds(7, N);
  const bytes = request(tids.map((tid) => ({ tid })));
  for (const mode of ['proportional', 'equalizing', 'hash_seed']) {
    const low = processor({ sampling_percentage: 10, mode });
    const high = processor({ sampling_percentage: 50, mode });
    await low.p.consume(new TraceBatch(bytes), CTX);
    await high.p.consume(new TraceBatch(bytes), CTX);
    const a = outcome(low.next, N);
    const b = outcome(high.next, N);
    let kept = 0;
    for (let i = 0; i < N; i++) {
      if (a[i] === null) continue;
      kept++;
      assert.notEqual(b[i], null, `${mode}: span ${i} kept at 10% but not at 50%`);
    }
    assertRate(kept, N, mode === 'hash_seed' ? hashBuckets(10) / 16384 : 0.1, `${mode} 10%`);
  }

  // In series: 10% then 50%. Equalizing keeps everything the first kept (th e666 is already the larger);
  // proportional keeps about half of it, with th f333 (Go: ProbabilityToThresholdWithPrecision of
  // prob(e666) * 0.5 = 0.050003 at precision 4 -> "f333"; the Collector's processor printed ot=th:f333).
  for (const [mode, share, th] of [
    ['equalizing', 1, 'ot=th:e666'],
    ['proportional', 0.5, 'ot=th:f333'],
  ] as const) {
    const second = processor({ sampling_percentage: 50, mode });
    const first = new ProbabilisticSamplerProcessor(processorSettings('first'), parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 10, mode }), second.p);
    await first.consume(new TraceBatch(bytes), CTX);
    const out = outcome(second.next, N).filter((k): k is string => k !== null);
    const lowKept = outcome((await run({ sampling_percentage: 10, mode }, tids.map((tid) => ({ tid })))).next, N).filter((k) => k !== null).length;
    if (share === 1) assert.equal(out.length, lowKept);
    else assertRate(out.length, lowKept, share, `${mode} 50% after 10%`);
    assert.ok(out.every((ts) => ts === th), `${mode}: ${out[0]}`);
  }
});
