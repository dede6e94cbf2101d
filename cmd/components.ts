/** The registry: every component type tracewarden knows. A new component is one line here. */
import { Registry, type AnyFactory } from '../pipeline/service/component.js';
import { factory as otlpReceiver } from '../receivers/otlp/index.js';
import { factory as batchProcessor } from '../processors/batch/index.js';
import { factory as memoryLimiter } from '../processors/memory_limiter/index.js';
import { factory as identityProcessor } from '../processors/identity/index.js';
import { factory as redactionProcessor } from '../processors/redaction/index.js';
import { factory as filterProcessor } from '../processors/filter/index.js';
import { factory as transformProcessor } from '../processors/transform/index.js';
import { factory as attributesProcessor } from '../processors/attributes/index.js';
import { factory as resourceProcessor } from '../processors/resource/index.js';
import { factory as spanProcessor } from '../processors/span/index.js';
import { factory as resourceDetectionProcessor } from '../processors/resourcedetection/index.js';
import { factory as probabilisticSampler } from '../processors/probabilistic_sampler/index.js';
import { factory as otlpExporter } from '../exporters/otlp/index.js';
import { factory as otlphttpExporter } from '../exporters/otlphttp/index.js';
import { factory as lightstepExporter } from '../exporters/lightstep/index.js';
import { factory as debugExporter } from '../exporters/debug/index.js';
import { factory as fileExporter } from '../exporters/file/index.js';
import { factory as healthCheck } from '../extensions/health_check/index.js';
import { factory as oidcAuth } from '../extensions/oidc/index.js';
import { factory as fileStorage } from '../extensions/file_storage/index.js';
import { factory as pprof } from '../extensions/pprof/index.js';
import { factory as zpages } from '../extensions/zpages/index.js';
import { factory as forwardConnector } from '../connectors/forward/index.js';
import { factory as routingConnector } from '../connectors/routing/index.js';

export const FACTORIES: readonly AnyFactory[] = [
  otlpReceiver,
  batchProcessor,
  memoryLimiter,
  identityProcessor,
  redactionProcessor,
  filterProcessor,
  transformProcessor,
  attributesProcessor,
  resourceProcessor,
  spanProcessor,
  resourceDetectionProcessor,
  probabilisticSampler,
  otlpExporter,
  otlphttpExporter,
  lightstepExporter,
  debugExporter,
  fileExporter,
  healthCheck,
  oidcAuth,
  fileStorage,
  pprof,
  zpages,
  forwardConnector,
  routingConnector,
];

export function defaultRegistry(): Registry {
  return new Registry(FACTORIES);
}
