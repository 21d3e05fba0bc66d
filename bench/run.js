#!/usr/bin/env node
// `npm run bench [-- NAME ...]`: runs bench/NAME.bench.ts (all of them when no name is given), one process each.
// Each benchmark prints a table and writes bench/results/NAME.json.
const { readdirSync } = require('fs');
const { join } = require('path');
const { spawnSync } = require('child_process');

const all = readdirSync(__dirname).filter((f) => f.endsWith('.bench.ts')).map((f) => f.replace(/\.bench\.ts$/, '')).sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !all.includes(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${all.join(', ') || '(none)'}`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length > 0 ? wanted : all) {
  console.log(`\n== bench ${name} ==`);
  const run = spawnSync(process.execPath, [require.resolve('tsx/cli'), join(__dirname, `${name}.bench.ts`)], { stdio: 'inherit' });
  if (run.status !== 0) failed += 1;
}
process.exit(failed > 0 ? 1 : 0);
