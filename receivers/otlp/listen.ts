/** Endpoint parsing, TLS material loading and listening, shared by both transports. */
import { readFile } from 'node:fs/promises';
import type { AddressInfo, Server } from 'node:net';
import type { TlsOptions } from 'node:tls';
import type { TlsConfig } from './config.js';

export interface BoundAddress {
  host: string;
  port: number;
}

/** "host:port" as validated by endpointSchema; an empty host means every interface. */
export function splitEndpoint(endpoint: string): { host: string | undefined; port: number } {
  const i = endpoint.lastIndexOf(':');
  let host = endpoint.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: host === '' ? undefined : host, port: Number(endpoint.slice(i + 1)) };
}

/** Reads the certificate files once; the error names the file, never its content. */
export async function loadTls(tls: TlsConfig): Promise<TlsOptions> {
  const read = async (what: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`cannot read tls ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  const opts: TlsOptions = {
    cert: await read('cert_file', tls.cert_file),
    key: await read('key_file', tls.key_file),
    minVersion: tls.min_version === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
  };
  if (tls.client_ca_file !== undefined) {
    opts.ca = await read('client_ca_file', tls.client_ca_file);
    opts.requestCert = true;
    opts.rejectUnauthorized = true;
  }
  return opts;
}

export function listen(server: Server, endpoint: string, what: string): Promise<BoundAddress> {
  const { host, port } = splitEndpoint(endpoint);
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new Error(`cannot listen for ${what} on ${endpoint}: ${err.code ?? err.message}`));
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}

/** Stops listening; resolves once every connection has ended. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
  });
}

/** True when `p` settles before the deadline (epoch ms), false otherwise. */
export async function settlesBy(p: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), false);
  });
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
