#!/usr/bin/env node
// Lists the mutants the last `npm run mutate` left alive (Survived, and NoCoverage), one line each with the
// source line they changed, from reports/mutation/incremental.json:
//
//   node scripts/mutation-survivors.mjs                      every mutated file
//   node scripts/mutation-survivors.mjs identity/jwt/jws.ts  files whose path contains one of the words
//   node scripts/mutation-survivors.mjs --summary            counts per file only
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const summary = args.includes('--summary');
const words = args.filter((a) => !a.startsWith('--'));
const report = JSON.parse(readFileSync('reports/mutation/incremental.json', 'utf8'));
const rows = [];
for (const [file, { source, mutants }] of Object.entries(report.files)) {
  if (words.length > 0 && !words.some((w) => file.includes(w))) continue;
  const lines = source.split('\n');
  const alive = mutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage');
  const counts = {};
  for (const m of mutants) counts[m.status] = (counts[m.status] ?? 0) + 1;
  rows.push([file, counts]);
  if (summary) continue;
  for (const m of alive.sort((a, b) => a.location.start.line - b.location.start.line)) {
    const line = m.location.start.line;
    const text = (lines[line - 1] ?? '').trim().slice(0, 110);
    const rep = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 60);
    console.log(`${file}:${line}:${m.location.start.column} ${m.status === 'NoCoverage' ? 'NO COVERAGE ' : ''}${m.mutatorName} → ${rep}\n    ${text}`);
  }
}
for (const [file, c] of rows) {
  const killed = (c.Killed ?? 0) + (c.Timeout ?? 0);
  const valid = killed + (c.Survived ?? 0) + (c.NoCoverage ?? 0);
  console.log(`${file}: ${killed}/${valid} killed (${valid === 0 ? 100 : ((100 * killed) / valid).toFixed(1)}%), ${c.Survived ?? 0} survived, ${c.NoCoverage ?? 0} without coverage`);
}
