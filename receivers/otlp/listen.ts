/** TLS material loading, shared by both transports. */
import { readFile } from 'node:fs/promises';
import type { TlsOptions } from 'node:tls';
import type { TlsConfig } from './config.js';

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
