/**
 * The env and system detectors, as the Collector's resourcedetection processor has them: `env` reads
 * OTEL_RESOURCE_ATTRIBUTES (comma-separated key=value pairs, values percent-decoded), which is also how a
 * Kubernetes pod passes its facts (`k8s.pod.name=$(POD_NAME),k8s.namespace.name=…` from the downward
 * API); `system` reads the host: name (from DNS or the OS, in the configured order), OS type and, when
 * enabled, id, architecture, addresses and CPU.
 */
import { promises as dns } from 'node:dns';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { Value } from '../../ottl/values.js';

export type Detected = [string, Value][];

export class DetectionError extends Error {
  override readonly name = 'DetectionError';
}

/** OTEL_RESOURCE_ATTRIBUTES as attributes; throws DetectionError naming what is malformed (not its value). */
export function parseResourceAttributes(text: string): Detected {
  const out: Detected = [];
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new DetectionError(`OTEL_RESOURCE_ATTRIBUTES has an entry without key=value (entry ${out.length + 1})`);
    const key = part.slice(0, eq).trim();
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      throw new DetectionError(`OTEL_RESOURCE_ATTRIBUTES: the value of ${key} is not valid percent-encoding`);
    }
    out.push([key, value]);
  }
  return out;
}

export function detectEnv(env: Readonly<Record<string, string | undefined>>): Detected {
  const text = env['OTEL_RESOURCE_ATTRIBUTES'];
  return text === undefined ? [] : parseResourceAttributes(text);
}

/** Go's runtime.GOOS names for os.type. */
function osType(): string {
  const p = os.platform();
  return p === 'win32' ? 'windows' : p === 'sunos' ? 'solaris' : p;
}

/** Go's GOARCH-style host.arch values (semantic conventions). */
function hostArch(): string {
  const a = os.arch();
  return a === 'x64' ? 'amd64' : a === 'ia32' ? 'x86' : a === 'ppc64' ? 'ppc64' : a;
}

async function hostname(sources: readonly string[]): Promise<string> {
  const name = os.hostname();
  for (const source of sources) {
    try {
      if (source === 'os') return name;
      if (source === 'dns' || source === 'lookup' || source === 'cname') {
        // The fully qualified name: the host's address looked up, then its name looked up back.
        const { address } = await dns.lookup(name);
        const names = await dns.reverse(address);
        if (names.length > 0 && names[0] !== '') return names[0]!.replace(/\.$/, '');
      }
    } catch {
      // Try the next source, as the Collector does.
    }
  }
  throw new DetectionError(`no hostname source worked (tried ${sources.join(', ')})`);
}

async function machineId(): Promise<string | null> {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = (await readFile(f, 'utf8')).trim();
      if (id !== '') return id;
    } catch {
      // next
    }
  }
  return null;
}

export async function detectSystem(sources: readonly string[], wanted: (key: string) => boolean): Promise<Detected> {
  const out: Detected = [];
  if (wanted('host.name')) out.push(['host.name', await hostname(sources)]);
  if (wanted('os.type')) out.push(['os.type', osType()]);
  if (wanted('host.id')) {
    const id = await machineId();
    if (id !== null) out.push(['host.id', id]);
  }
  if (wanted('host.arch')) out.push(['host.arch', hostArch()]);
  const nets = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).filter((n) => !n.internal);
  if (wanted('host.ip')) out.push(['host.ip', [...new Set(nets.map((n) => n.address))]]);
  if (wanted('host.mac')) out.push(['host.mac', [...new Set(nets.map((n) => n.mac.toUpperCase().replace(/:/g, '-')))]]);
  const cpu = os.cpus()[0];
  if (wanted('host.cpu.model.name') && cpu !== undefined) out.push(['host.cpu.model.name', cpu.model]);
  if (wanted('os.description')) out.push(['os.description', `${os.type()} ${os.release()} ${os.version()}`]);
  if (wanted('os.version')) out.push(['os.version', os.release()]);
  return out;
}
