/**
 * Client TLS settings with the Collector's `configtls` key names, shared by the OTLP exporters. Files
 * are read once at start; an unreadable file is a start-up error that names the file.
 */
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { parseOrThrow, s, type Infer } from '../../pipeline/config/schema.js';

const tlsObject = s.object(
    {
      /** Plain text instead of TLS (gRPC; for HTTP the URL scheme decides). */
      insecure: s.bool().default(false),
      /** Accept any server certificate. For tests and emergencies only. */
      insecure_skip_verify: s.bool().default(false),
      ca_file: s.string({ nonEmpty: true }).optional(),
      ca_pem: s.string({ nonEmpty: true }).optional(),
      cert_file: s.string({ nonEmpty: true }).optional(),
      cert_pem: s.string({ nonEmpty: true }).optional(),
      key_file: s.string({ nonEmpty: true }).optional(),
      key_pem: s.string({ nonEmpty: true }).optional(),
      server_name_override: s.string({ nonEmpty: true }).optional(),
      include_system_ca_certs_pool: s.bool().default(false),
    },
    {
      min_version: 'TLS 1.2 is the minimum, as the Collector defaults to',
      max_version: 'the highest version both sides support is used',
      cipher_suites: "Node's default cipher suites are used",
      curve_preferences: "Node's default curves are used",
      reload_interval: 'certificates are read once at start',
    },
);

// A refined object has no implicit default, so an absent `tls:` gets the object's own defaults here.
export const tlsSchema = tlsObject
  .refine((t) => {
    if (t.ca_file !== undefined && t.ca_pem !== undefined) return 'set ca_file or ca_pem, not both';
    if (t.cert_file !== undefined && t.cert_pem !== undefined) return 'set cert_file or cert_pem, not both';
    if (t.key_file !== undefined && t.key_pem !== undefined) return 'set key_file or key_pem, not both';
    const hasCert = t.cert_file !== undefined || t.cert_pem !== undefined;
    const hasKey = t.key_file !== undefined || t.key_pem !== undefined;
    if (hasCert !== hasKey) return 'a client certificate needs both cert_file and key_file';
    return null;
  })
  .default(parseOrThrow(tlsObject, {}));

export type TlsConfig = Infer<typeof tlsSchema>;

export interface TlsMaterial {
  /** Trusted CAs; undefined means the system roots. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

async function load(file: string | undefined, pem: string | undefined, what: string): Promise<Buffer | undefined> {
  if (pem !== undefined) return Buffer.from(pem);
  if (file === undefined) return undefined;
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read TLS ${what} file ${file}: ${code}`);
  }
}

export async function loadTls(t: TlsConfig): Promise<TlsMaterial> {
  let ca = await load(t.ca_file, t.ca_pem, 'CA');
  if (ca !== undefined && t.include_system_ca_certs_pool) ca = Buffer.concat([ca, Buffer.from('\n' + rootCertificates.join('\n'))]);
  const cert = await load(t.cert_file, t.cert_pem, 'certificate');
  const key = await load(t.key_file, t.key_pem, 'key');
  const m: TlsMaterial = { rejectUnauthorized: !t.insecure_skip_verify };
  if (ca !== undefined) m.ca = ca;
  if (cert !== undefined) m.cert = cert;
  if (key !== undefined) m.key = key;
  if (t.server_name_override !== undefined) m.servername = t.server_name_override;
  return m;
}
