import { createServer } from 'node:net';

/**
 * A loopback port that was free a moment ago, for servers that must be told a port (a child process,
 * Prometheus). Servers in this process listen on port 0 instead.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
