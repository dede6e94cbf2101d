/**
 * `lightstep`: the `otlp` gRPC exporter with Lightstep's endpoint and the access token sent as the
 * `lightstep-access-token` header. The token is a secret header of the otlp exporter: never logged.
 */
import type { ExporterFactory } from '../../pipeline/service/component.js';
import { OtlpGrpcExporter } from '../otlp/grpc-exporter.js';
import { ACCESS_TOKEN_HEADER, lightstepConfigSchema, type LightstepConfig } from './config.js';
import { resolveAccessToken } from './token.js';

export const factory: ExporterFactory<LightstepConfig> = {
  type: 'lightstep',
  kind: 'exporter',
  schema: lightstepConfigSchema,
  create: (settings, config) =>
    new OtlpGrpcExporter(settings, config, {
      secretHeaders: async () => ({ [ACCESS_TOKEN_HEADER]: await resolveAccessToken(config) }),
    }),
};
