/**
 * Fetches a JSON document (OIDC discovery, a JWKS) from a configured URL with the limits a key source
 * needs: HTTPS unless plain HTTP was allowed in config, no redirects (a redirect could leave the
 * configured origin or downgrade to HTTP), a timeout, and a body size limit enforced while reading.
 */

export type FetchFailure = 'insecure_url' | 'network' | 'timeout' | 'http_status' | 'too_large' | 'invalid_json';

export class KeyFetchError extends Error {
  constructor(
    readonly code: FetchFailure,
    message: string,
  ) {
    super(message);
    this.name = 'KeyFetchError';
  }
}

export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
  allowInsecureHttp: boolean;
}

export interface FetchedJson {
  body: unknown;
  /** Cache-Control max-age in ms (0 for no-store/no-cache), or null when the response gave none. */
  maxAgeMs: number | null;
}

export function checkUrl(url: string, allowInsecureHttp: boolean): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new KeyFetchError('insecure_url', `not a URL: ${url}`);
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && allowInsecureHttp) return u;
  throw new KeyFetchError('insecure_url', `${url} must use https (plain http only with allow_insecure_http: true)`);
}

export async function fetchJson(url: string, limits: FetchLimits): Promise<FetchedJson> {
  const u = checkUrl(url, limits.allowInsecureHttp);
  let res: Response;
  try {
    res = await fetch(u, { redirect: 'error', signal: AbortSignal.timeout(limits.timeoutMs), headers: { accept: 'application/json' } });
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError') throw new KeyFetchError('timeout', `${url}: no answer within ${limits.timeoutMs} ms`);
    throw new KeyFetchError('network', `${url}: ${describeNetworkError(err)}`);
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw new KeyFetchError('http_status', `${url}: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limits.maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new KeyFetchError('too_large', `${url}: body of ${declared} bytes is over the ${limits.maxBytes}-byte limit`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limits.maxBytes) {
        await reader.cancel().catch(() => {});
        throw new KeyFetchError('too_large', `${url}: body is over the ${limits.maxBytes}-byte limit`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof KeyFetchError) throw err;
    const name = (err as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError') throw new KeyFetchError('timeout', `${url}: body not received within ${limits.timeoutMs} ms`);
    throw new KeyFetchError('network', `${url}: ${describeNetworkError(err)}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new KeyFetchError('invalid_json', `${url}: body is not valid JSON`);
  }
  return { body, maxAgeMs: maxAge(res.headers.get('cache-control')) };
}

function maxAge(header: string | null): number | null {
  if (header === null) return null;
  if (/\b(no-store|no-cache)\b/i.test(header)) return 0;
  const m = /\bmax-age\s*=\s*"?(\d+)"?/i.exec(header);
  return m ? Number(m[1]) * 1000 : null;
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
