/**
 * The spans every benchmark uses: 20 attributes of mixed types, the shape an HTTP server span carries
 * (the Collector's published figures use 20 attributes a span).
 */
import { buildRequest, type AttrValue, type SpanSpec } from '../test/helpers/otlp.js';

export const AUTH = 'http.request.header.authorization';

/** Attributes of span i; `credential` replaces the default made-up bearer token attribute when given. */
export function spanAttributes(i: number, credential?: Record<string, AttrValue>): Record<string, AttrValue> {
  const attrs: Record<string, AttrValue> = {
    'http.request.method': i % 5 === 0 ? 'POST' : 'GET',
    'http.route': '/api/v1/orders/{id}',
    'url.path': `/api/v1/orders/${100000 + i}`,
    'url.scheme': 'https',
    'url.query': `page=${i % 7}&limit=50`,
    'http.response.status_code': i % 13 === 0 ? 500 : 200,
    'server.address': 'orders.internal.example.com',
    'server.port': 8443,
    'client.address': `10.0.${i % 256}.${(i * 7) % 256}`,
    'network.protocol.version': '1.1',
    'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
    'http.request.body.size': 512 + (i % 1024),
    'http.response.body.size': 2048 + (i % 4096),
    'http.server.request.duration': 0.0125 + (i % 100) / 1000,
    'db.cache.hit': i % 3 === 0,
    'retry.attempt': i % 4,
    'feature.flags': ['checkout-v2', 'fast-path'],
    'http.request.header.x-request-id': [`req-${i.toString(16).padStart(12, '0')}`],
    'thread.name': `worker-${i % 8}`,
  };
  return { ...attrs, ...(credential ?? { [AUTH]: [`Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImtleS0xIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.${'s'.repeat(86)}${i % 10}`] }) };
}

/** A request of n such spans; `credential(i)` gives span i's credential attribute, or none. */
export function batchOf(n: number, credential?: (i: number) => Record<string, AttrValue>, ids?: (i: number) => { traceId: Buffer; spanId: Buffer }): Uint8Array {
  const spans: SpanSpec[] = [];
  for (let i = 0; i < n; i++) spans.push({ name: `GET /api/v1/orders/{id} ${i % 11}`, attributes: spanAttributes(i, credential?.(i)), ...ids?.(i) });
  return new Uint8Array(
    buildRequest([
      {
        attributes: { 'service.name': 'orders', 'service.version': '2.14.1', 'host.name': 'node-7', 'deployment.environment': 'prod' },
        scopes: [{ name: '@opentelemetry/instrumentation-http', spans }],
      },
    ]),
  );
}
