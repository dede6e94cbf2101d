/**
 * Component types of the OpenTelemetry Collector (core and contrib) that a trace config may name and
 * tracewarden does not implement, so that such a config is refused with a message saying exactly that,
 * not as a typo ("unknown type").
 */
import type { ComponentKind } from '../service/component.js';

export const COLLECTOR_TYPES: Record<ComponentKind, readonly string[]> = {
  receiver: ['jaeger', 'zipkin', 'kafka', 'opencensus', 'skywalking', 'solace', 'pulsar', 'awsxray', 'googlecloudpubsub', 'azureeventhub', 'datadog', 'splunk_hec', 'otlpjsonfile', 'filelog', 'hostmetrics', 'prometheus', 'k8s_cluster', 'kubeletstats', 'receiver_creator', 'nop'],
  processor: ['tail_sampling', 'probabilistic_sampler', 'k8sattributes', 'groupbytrace', 'groupbyattrs', 'cumulativetodelta', 'deltatorate', 'metricstransform', 'spanmetrics', 'routing', 'logdedup', 'redaction', 'geoip', 'remotetap', 'sumologic', 'isolationforest', 'interval', 'schema', 'unroll', 'coralogix', 'logstransform', 'metricsgeneration', 'experimental_metricsgeneration', 'datadog', 'lookup'],
  exporter: ['kafka', 'loadbalancing', 'file', 'zipkin', 'jaeger', 'prometheus', 'prometheusremotewrite', 'awsxray', 'datadog', 'elasticsearch', 'googlecloud', 'splunk_hec', 'sapm', 'signalfx', 'honeycombmarker', 'clickhouse', 'azuremonitor', 'awss3', 'sentry', 'opensearch', 'logzio', 'coralogix', 'dynatrace', 'nop'],
  extension: ['basicauth', 'bearertokenauth', 'oauth2client', 'headers_setter', 'memory_ballast', 'k8s_observer', 'docker_observer', 'host_observer', 'jaegerremotesampling', 'sigv4auth', 'asapauth', 'awsproxy', 'storage', 'db_storage', 'opamp', 'remotetap', 'sumologic', 'healthcheckv2', 'googleclientauth'],
  connector: ['spanmetrics', 'servicegraph', 'count', 'exceptions', 'failover', 'roundrobin', 'datadog', 'grafanacloud', 'signaltometrics', 'sum'],
};
