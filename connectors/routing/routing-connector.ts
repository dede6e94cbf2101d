/**
 * The routing connector: each span goes to the pipelines of the first route whose condition is true for
 * it (a resource-context route is decided once per resource, for all its spans), or to the default
 * pipelines when none is; with no default, it is dropped and counted (reason `unrouted`). A batch whose
 * spans go different ways is split: each pipeline gets a fork of the batch holding only its spans, so no
 * span is ever delivered to a pipeline it was not routed to.
 *
 * Conditions are evaluated on the batch as it will be exported (sealed first), with the OTTL engine.
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import type { ComponentSettings, Connector, RequestContext, TracesConsumer } from '../../pipeline/service/component.js';
import { zeroed } from '../../pipeline/telemetry/telemetry.js';
import { ErrorModeHandler } from '../../ottl/error-mode.js';
import { CTX_RESOURCE, CTX_SPAN, Target, compileCondition, type CompiledCondition } from '../../ottl/index.js';
import type { RoutingConfig } from './config.js';

interface CompiledRoute {
  condition: CompiledCondition;
  resourceContext: boolean;
  /** Indexes into `pipelines`. */
  targets: number[];
}

const NO_ROUTE = -1;
const UNDECIDED = -2;

export class RoutingConnector implements Connector {
  private readonly routes: CompiledRoute[];
  private readonly defaults: number[];
  private readonly pipelines: TracesConsumer[];
  private readonly errors: ErrorModeHandler;
  private readonly target = new Target();
  private readonly unrouted: { inc(n?: number): void };
  private readonly routed: { inc(n?: number): void }[];
  /** Per span, the route it took (NO_ROUTE for the defaults): reused across batches, grown as needed. */
  private choice = new Int32Array(1024);
  /** Per route and resource, its decision for resource-context routes (1 true, 0 false, UNDECIDED). */
  private resourceDecision = new Int8Array(64);

  constructor(settings: ComponentSettings, config: RoutingConfig, feeds: ReadonlyMap<string, TracesConsumer>) {
    const ids = [...feeds.keys()];
    this.pipelines = ids.map((id) => feeds.get(id)!);
    const index = (id: string): number => ids.indexOf(id);
    this.routes = config.table.map((r) => ({
      condition: compileCondition(r.condition, r.context),
      resourceContext: r.context === CTX_RESOURCE,
      targets: r.pipelines.map(index),
    }));
    this.defaults = config.default_pipelines.map(index);
    this.errors = new ErrorModeHandler(settings, config.error_mode);
    this.unrouted = zeroed(settings.telemetry.dropped(settings.id, 'unrouted'));
    const routedSpans = settings.telemetry.counter('tracewarden_routing_spans_total', 'Spans the routing connector sent, by destination pipeline.', ['connector', 'pipeline']);
    this.routed = ids.map((id) => zeroed(routedSpans.labels(settings.id, id)));
  }

  async start(): Promise<void> {}

  async shutdown(): Promise<void> {}

  async consume(batch: TraceBatch, ctx: RequestContext): Promise<void> {
    const b = batch.seal();
    const spans = b.spanCount;
    this.decide(b, spans);
    const pending: Promise<void>[] = [];
    let unrouted = 0;
    for (let p = 0; p < this.pipelines.length; p++) {
      let count = 0;
      for (let i = 0; i < spans; i++) if (this.goesTo(this.choice[i]!, p)) count++;
      if (count === 0) continue;
      const fork = b.fork();
      if (count < spans) for (let i = 0; i < spans; i++) if (!this.goesTo(this.choice[i]!, p)) fork.dropSpan(i);
      this.routed[p]!.inc(count);
      pending.push(this.pipelines[p]!.consume(fork, ctx));
    }
    if (this.defaults.length === 0) {
      for (let i = 0; i < spans; i++) if (this.choice[i] === NO_ROUTE) unrouted++;
      if (unrouted > 0) this.unrouted.inc(unrouted);
    }
    const results = await Promise.allSettled(pending);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  private goesTo(choice: number, pipeline: number): boolean {
    return choice === NO_ROUTE ? this.defaults.includes(pipeline) : this.routes[choice]!.targets.includes(pipeline);
  }

  /** Fills `choice` with each span's route. */
  private decide(b: TraceBatch, spans: number): void {
    if (this.choice.length < spans) this.choice = new Int32Array(Math.max(spans, this.choice.length * 2));
    const routes = this.routes;
    const resources = b.resourceCount;
    if (this.resourceDecision.length < resources * routes.length) this.resourceDecision = new Int8Array(resources * routes.length * 2);
    this.resourceDecision.fill(UNDECIDED, 0, resources * routes.length);
    const t = this.target;
    t.reset(b, CTX_SPAN);
    for (let i = 0; i < spans; i++) {
      t.atSpan(i);
      let chosen = NO_ROUTE;
      for (let r = 0; r < routes.length; r++) {
        const route = routes[r]!;
        let match: boolean;
        if (route.resourceContext) {
          const slot = t.resource * routes.length + r;
          let d = this.resourceDecision[slot]!;
          if (d === UNDECIDED) this.resourceDecision[slot] = d = this.test(route, t) ? 1 : 0;
          match = d === 1;
        } else {
          match = this.test(route, t);
        }
        if (match) {
          chosen = r;
          break;
        }
      }
      this.choice[i] = chosen;
    }
  }

  /** A route's condition; one that fails does not match (the span goes on to the next route or the defaults) unless error_mode propagates. */
  private test(route: CompiledRoute, t: Target): boolean {
    try {
      return route.condition.test(t);
    } catch (err) {
      this.errors.failed(err, route.condition.text);
      return false;
    }
  }
}
