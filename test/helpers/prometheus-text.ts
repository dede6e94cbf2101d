/** Reading the Prometheus text exposition the daemon serves on /metrics, for assertions. */

/** The value of one sample, matched by name and exact label set; null when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = (m[2] ?? '')
      .split(',')
      .filter((p) => p !== '')
      .sort()
      .join(',');
    if (got === want) return Number(m[3]);
  }
  return null;
}
