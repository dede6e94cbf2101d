#!/usr/bin/env node
// Fails (exit 1) when the source has an import cycle, or when the framework (pipeline/) imports a concrete
// component (receivers/, processors/, exporters/, extensions/, connectors/). Type-only imports count: a
// cycle of types is still a cycle in the design. Reads the TypeScript sources; needs no build.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', 'dist', '.git', '.bench-out']);
const COMPONENTS = ['receivers/', 'processors/', 'exporters/', 'extensions/', 'connectors/'];

function sources(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(relative(root, p));
  }
  return out;
}

const IMPORT = /(?:^|[^\w.])(?:import|export)\s[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
const files = sources(root);
const graph = new Map();
for (const f of files) {
  const text = readFileSync(join(root, f), 'utf8');
  const deps = new Set();
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    const target = normalize(join(dirname(f), spec)).replace(/\.js$/, '.ts');
    if (existsSync(join(root, target))) deps.add(target);
  }
  graph.set(f, deps);
}

const problems = [];
for (const [f, deps] of graph) {
  if (!f.startsWith('pipeline/')) continue;
  for (const d of deps) if (COMPONENTS.some((c) => d.startsWith(c))) problems.push(`the framework imports a component: ${f} → ${d}`);
}

// Tarjan's strongly connected components: any component of more than one file is a cycle.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const on = new Set();
function strong(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  on.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!idx.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const scc = [];
    let w;
    do {
      w = stack.pop();
      on.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? new Set()).has(v)) problems.push(`import cycle: ${scc.sort().join(' ↔ ')}`);
  }
}
for (const f of graph.keys()) if (!idx.has(f)) strong(f);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`imports: ${files.length} files, no cycle, the framework imports no component`);
