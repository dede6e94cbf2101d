/**
 * Where a key set is loaded from: OIDC discovery (the configured issuer's `jwks_uri`), an explicit JWKS
 * URL, or a local file. Only configured locations: nothing in a token can point a load elsewhere.
 */
import { readFile } from 'node:fs/promises';
import { checkUrl, fetchJson, KeyFetchError, type FetchLimits } from './fetch-json.js';

export type Loader = () => Promise<{ body: unknown; maxAgeMs: number | null }>;

export function fileLoader(path: string): Loader {
  return async () => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new KeyFetchError('network', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    try {
      return { body: JSON.parse(text), maxAgeMs: null };
    } catch {
      throw new KeyFetchError('invalid_json', `${path} is not valid JSON`);
    }
  };
}

export function urlLoader(url: string, limits: FetchLimits): Loader {
  checkUrl(url, limits.allowInsecureHttp);
  return () => fetchJson(url, limits);
}

/**
 * OIDC discovery: reads `<issuer>/.well-known/openid-configuration`, checks that it names the same issuer
 * (OpenID Connect Discovery §4.3; a mismatch could let one issuer's document vouch for another's keys),
 * then loads its `jwks_uri`, which must meet the same https rule. The document is re-read on each load
 * so a changed `jwks_uri` is followed.
 */
export function discoveryLoader(issuer: string, limits: FetchLimits): Loader {
  const base = issuer.endsWith('/') ? issuer.slice(0, -1) : issuer;
  const discoveryUrl = `${base}/.well-known/openid-configuration`;
  checkUrl(discoveryUrl, limits.allowInsecureHttp);
  return async () => {
    const { body } = await fetchJson(discoveryUrl, limits);
    const doc = body as { issuer?: unknown; jwks_uri?: unknown } | null;
    if (doc === null || typeof doc !== 'object') throw new KeyFetchError('invalid_json', `${discoveryUrl}: not a discovery document`);
    if (doc.issuer !== issuer) throw new KeyFetchError('invalid_json', `${discoveryUrl}: the document's issuer does not match the configured issuer ${issuer}`);
    if (typeof doc.jwks_uri !== 'string') throw new KeyFetchError('invalid_json', `${discoveryUrl}: no jwks_uri`);
    return fetchJson(doc.jwks_uri, limits);
  };
}
