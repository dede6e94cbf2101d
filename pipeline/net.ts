/** Address helpers shared by every server a component starts. */

/** Splits "host:port" (host may be empty, a name, IPv4 or [IPv6]); an empty host listens on all interfaces. */
export function splitHostPort(endpoint: string): { host: string | undefined; port: number } {
  const i = endpoint.lastIndexOf(':');
  let host = i >= 0 ? endpoint.slice(0, i) : '';
  const port = Number(i >= 0 ? endpoint.slice(i + 1) : endpoint);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: host === '' ? undefined : host, port };
}
