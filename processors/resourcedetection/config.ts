import { s, type Infer } from '../../pipeline/config/schema.js';

/** Attributes the system detector can write, and whether each is on by default (the Collector's metadata). */
export const SYSTEM_ATTRIBUTES: Record<string, boolean> = {
  'host.name': true,
  'os.type': true,
  'host.id': false,
  'host.arch': false,
  'host.ip': false,
  'host.mac': false,
  'host.cpu.vendor.id': false,
  'host.cpu.model.name': false,
  'host.cpu.family': false,
  'host.cpu.model.id': false,
  'host.cpu.stepping': false,
  'host.cpu.cache.l2.size': false,
  'os.description': false,
  'os.version': false,
};

/** System attributes the Collector can detect that tracewarden does not (CPU identification details). */
const NOT_DETECTED = ['host.cpu.vendor.id', 'host.cpu.family', 'host.cpu.model.id', 'host.cpu.stepping', 'host.cpu.cache.l2.size'];

const UNSUPPORTED = ['docker', 'gcp', 'ec2', 'ecs', 'eks', 'elastic_beanstalk', 'lambda', 'azure', 'aks', 'consul', 'heroku', 'openshift', 'k8snode', 'kubeadm', 'dynatrace', 'akamai', 'scaleway', 'hetzner', 'vultr', 'oraclecloud', 'upcloud', 'digitalocean', 'nova', 'openstacknova'];

const enabled = s.object({ enabled: s.bool() });

export const resourceDetectionConfigSchema = s
  .object(
    {
      detectors: s.array(s.string({ nonEmpty: true })).default([]),
      /** How long detection may take at start-up. */
      timeout: s.duration().default(5000),
      /** Detected values replace what a resource already has (the Collector's default), or only fill gaps. */
      override: s.bool().default(true),
      system: s
        .object({
          hostname_sources: s.array(s.enum('dns', 'os', 'cname', 'lookup')).default(['dns', 'os']),
          resource_attributes: s.map(enabled).default({}),
        })
        .optional(),
      env: s.object({}).optional(),
    },
    { client: 'no effect (no cloud detector is used)' },
  )
  .refine((c) => {
    for (const d of c.detectors) {
      if (d === 'env' || d === 'system') continue;
      if (UNSUPPORTED.includes(d)) return `the ${d} detector is not supported by tracewarden; supported: env, system (set cloud and Kubernetes facts through OTEL_RESOURCE_ATTRIBUTES with the env detector)`;
      return `unknown detector ${JSON.stringify(d)}; supported: env, system`;
    }
    for (const [k, v] of Object.entries(c.system?.resource_attributes ?? {})) {
      if (!(k in SYSTEM_ATTRIBUTES)) return `system.resource_attributes: unknown attribute ${k}; known: ${Object.keys(SYSTEM_ATTRIBUTES).join(', ')}`;
      if (v.enabled && NOT_DETECTED.includes(k)) return `system.resource_attributes: ${k} is not detected by tracewarden yet; leave it disabled`;
    }
    return null;
  });

export type ResourceDetectionConfig = Infer<typeof resourceDetectionConfigSchema>;
