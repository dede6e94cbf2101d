/**
 * The Collector-parity processors on the same 1000-span batches as the other benchmarks (20 attributes a span), each
 * next to the same batch with no processor (index and encode only), and the cost of one OTTL condition per
 * span next to the cost of decoding the span with protobufjs (what a processor that decodes would pay
 * before it could look at an attribute).
 *
 *   npm run bench:processors             (BENCH_RUN_MS, BENCH_RUNS, BENCH_SIZE to change)
 */
import { TraceBatch } from '../pipeline/batch/batch.js';
import { otlpType } from '../pipeline/batch/otlp-schema.js';
import { parseOrThrow } from '../pipeline/config/schema.js';
import type { Processor, RequestContext, TracesConsumer } from '../pipeline/service/component.js';
import { processorSettings } from '../test/helpers/processor-recorder.js';
import { filterConfigSchema } from '../processors/filter/config.js';
import { FilterProcessor } from '../processors/filter/filter-processor.js';
import { transformConfigSchema } from '../processors/transform/config.js';
import { TransformProcessor } from '../processors/transform/transform-processor.js';
import { AttributesProcessor } from '../processors/attributes/attributes-processor.js';
import { attributesConfigSchema } from '../processors/attributes/config.js';
import { ResourceProcessor } from '../processors/resource/resource-processor.js';
import { resourceConfigSchema } from '../processors/resource/config.js';
import { SpanProcessor } from '../processors/span/span-processor.js';
import { spanConfigSchema } from '../processors/span/config.js';
import { ProbabilisticSamplerProcessor } from '../processors/probabilistic_sampler/probabilistic-sampler.js';
import { probabilisticSamplerConfigSchema } from '../processors/probabilistic_sampler/config.js';
import { CTX_SPAN, Target, compileCondition } from '../ottl/index.js';
import { batchOf } from './spans.js';
import { fmt, median } from './stats.js';

const RUN_MS = Number(process.env['BENCH_RUN_MS'] ?? 500);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
const SIZE = Number(process.env['BENCH_SIZE'] ?? 1000);
const CTX: RequestContext = { receiver: 'bench', transport: 'grpc', peer: 'bench', auth: null };

let sink = 0;
const encoder: TracesConsumer = {
  async consume(b) {
    sink += b.encode().length;
  },
};

async function rate(fn: () => Promise<void> | void, spans: number): Promise<number> {
  const runOnce = async (ms: number): Promise<number> => {
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < ms) {
      await fn();
      n++;
    }
    return (n * spans) / ((performance.now() - start) / 1000);
  };
  await runOnce(RUN_MS / 2);
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) rates.push(await runOnce(RUN_MS));
  return median(rates);
}

function processorCase(p: Processor, bytes: Uint8Array): () => Promise<void> {
  return () => p.consume(new TraceBatch(bytes), CTX);
}

async function main(): Promise<void> {
  const bytes = batchOf(SIZE);
  console.log(`tracewarden Collector-parity processors — node ${process.version}, ${SIZE}-span batches of 20 attributes, ${RUNS} runs × ${RUN_MS} ms (median)\n`);
  const filter = (cond: string) => new FilterProcessor(processorSettings('filter'), parseOrThrow(filterConfigSchema, { traces: { span: [cond] } }), encoder);
  const transform = (st: string[]) => new TransformProcessor(processorSettings('transform'), parseOrThrow(transformConfigSchema, { trace_statements: [{ context: 'span', statements: st }] }), encoder);
  const cases: [string, () => Promise<void> | void][] = [
    ['no processor (index + encode)', () => encoder.consume(TraceBatch.encoded(bytes, SIZE).seal().fork(), CTX)],
    ['filter: attributes["http.request.method"] == "DELETE" (drops none)', processorCase(filter('attributes["http.request.method"] == "DELETE"'), bytes)],
    ['filter: attributes["http.request.method"] == "POST" (drops 20%)', processorCase(filter('attributes["http.request.method"] == "POST"'), bytes)],
    ['filter: attributes["http.response.status_code"] >= 500', processorCase(filter('attributes["http.response.status_code"] >= 500'), bytes)],
    ['filter: IsMatch(name, "orders") and kind == SPAN_KIND_SERVER', processorCase(filter('IsMatch(name, "^GET /api/v2") and kind == SPAN_KIND_SERVER'), bytes)],
    ['transform: set one attribute', processorCase(transform(['set(attributes["deployment.region"], "eu-west-1")']), bytes)],
    ['transform: set, rename, delete', processorCase(transform(['set(attributes["route"], attributes["http.route"])', 'set(name, attributes["http.route"])', 'delete_key(attributes, "user_agent.original")']), bytes)],
    ['attributes: upsert, delete, hash', processorCase(new AttributesProcessor(processorSettings('attributes'), parseOrThrow(attributesConfigSchema, { actions: [{ key: 'env', value: 'prod', action: 'upsert' }, { key: 'user_agent.original', action: 'delete' }, { key: 'client.address', action: 'hash' }] }), encoder), bytes)],
    ['resource: upsert one attribute', processorCase(new ResourceProcessor(processorSettings('resource'), parseOrThrow(resourceConfigSchema, { attributes: [{ key: 'cloud.region', value: 'eu-west-1', action: 'upsert' }] }), encoder), bytes)],
    ['span: name from two attributes', processorCase(new SpanProcessor(processorSettings('span'), parseOrThrow(spanConfigSchema, { name: { from_attributes: ['http.request.method', 'http.route'], separator: ' ' } }), encoder), bytes)],
    ['probabilistic_sampler: hash_seed 25%', processorCase(new ProbabilisticSamplerProcessor(processorSettings('sampler'), parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 25 }), encoder), bytes)],
    ['probabilistic_sampler: proportional 25%', processorCase(new ProbabilisticSamplerProcessor(processorSettings('sampler'), parseOrThrow(probabilisticSamplerConfigSchema, { sampling_percentage: 25, mode: 'proportional' }), encoder), bytes)],
  ];
  const rows: string[][] = [['case', 'spans/s']];
  for (const [name, fn] of cases) rows.push([name, fmt(await rate(fn, SIZE))]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));

  // One condition per span on an indexed batch, against protobufjs decoding the same spans.
  const batch = new TraceBatch(bytes);
  batch.index();
  const t = new Target();
  const cond = compileCondition('attributes["http.request.method"] == "POST"', CTX_SPAN).test;
  const condRate = await rate(() => {
    t.reset(batch, CTX_SPAN);
    for (let i = 0; i < SIZE; i++) {
      t.atSpan(i);
      if (cond(t)) sink++;
    }
  }, SIZE);
  const Request = otlpType('ExportTraceServiceRequest');
  const decodeRate = await rate(() => {
    sink += (Request.decode(bytes) as unknown as { resourceSpans: unknown[] }).resourceSpans.length;
  }, SIZE);
  console.log(`\none condition reading one attribute: ${fmt(1e9 / condRate)} ns a span (${fmt(condRate)} spans/s)`);
  console.log(`decoding the span with protobufjs:   ${fmt(1e9 / decodeRate)} ns a span (${fmt(decodeRate)} spans/s) — ${fmt(decodeRate > 0 ? condRate / decodeRate : 0, 1)}× slower than the condition`);
  if (sink === -1) console.log(sink);
}

await main();
