/** Listening and closing, shared by every server a component starts (receivers, telemetry, health). */
import type { AddressInfo, Server } from 'node:net';

export interface BoundAddress {
  host: string;
  port: number;
}

/** Splits "host:port" (host may be empty, a name, IPv4 or [IPv6]); an empty host listens on all interfaces. */
export function splitHostPort(endpoint: string): { host: string | undefined; port: number } {
  const i = endpoint.lastIndexOf(':');
  let host = i >= 0 ? endpoint.slice(0, i) : '';
  const port = Number(i >= 0 ? endpoint.slice(i + 1) : endpoint);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: host === '' ? undefined : host, port };
}

/** Listens on a validated "host:port"; the error names what could not listen and why (EADDRINUSE...). */
export function listen(server: Server, endpoint: string, what: string): Promise<BoundAddress> {
  const { host, port } = splitHostPort(endpoint);
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
