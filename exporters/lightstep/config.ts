/**
 * `lightstep` exporter configuration: the `otlp` exporter's keys with Lightstep's endpoint as the
 * default, plus the access token, given inline or (better) as a file.
 */
import { s, type Infer } from '../../pipeline/config/schema.js';
import { COLLECTOR_ONLY_GRPC_KEYS, otlpGrpcShape } from '../otlp/config.js';

export const LIGHTSTEP_ENDPOINT = 'ingest.lightstep.com:443';
export const ACCESS_TOKEN_HEADER = 'lightstep-access-token';

export const lightstepConfigSchema = s
  .object(
    {
      ...otlpGrpcShape({ endpoint: LIGHTSTEP_ENDPOINT }),
      access_token: s.string({ nonEmpty: true }).optional(),
      access_token_file: s.string({ nonEmpty: true }).optional(),
    },
    COLLECTOR_ONLY_GRPC_KEYS,
  )
  .refine((c) => {
    if (c.access_token !== undefined && c.access_token_file !== undefined) return 'set access_token or access_token_file, not both';
    if (c.access_token === undefined && c.access_token_file === undefined) return 'an access token is required: set access_token or access_token_file';
    if (Object.keys(c.headers).some((k) => k.toLowerCase() === ACCESS_TOKEN_HEADER)) {
      return `do not set the ${ACCESS_TOKEN_HEADER} header; use access_token or access_token_file`;
    }
    return null;
  });

export type LightstepConfig = Infer<typeof lightstepConfigSchema>;
