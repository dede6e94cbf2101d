import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

const CGROUP_V2_MAX = '/sys/fs/cgroup/memory.max';

/** Memory this process may use in all: the machine's, or the cgroup v2 limit when one is set and lower. */
export function totalMemoryBytes(cgroupFile = CGROUP_V2_MAX): number {
  const machine = totalmem();
  let text: string;
  try {
    text = readFileSync(cgroupFile, 'utf8').trim();
  } catch {
    return machine; // not in a cgroup v2 container
  }
  if (!/^\d+$/.test(text)) return machine; // "max": no limit
  const limit = Number(text);
  return limit > 0 && limit < machine ? limit : machine;
}
