import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';

/** Prints rows as an aligned table and writes the result document to bench/results/NAME.json. */
export function reportBenchmark(name: string, rows: ReadonlyArray<Record<string, string | number>>, result: unknown): void {
  reportTable(rows);
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote bench/results/${name}.json`);
}

/** Prints rows as an aligned table, columns named by the first row's keys. */
export function reportTable(rows: ReadonlyArray<Record<string, string | number>>): void {
  if (rows.length > 0) {
    const columns = Object.keys(rows[0]);
    const cell = (v: string | number): string => (typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : String(v));
    const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c] ?? '').length)));
    const line = (values: string[]): string => values.map((v, i) => v.padEnd(widths[i])).join('  ');
    console.log(line(columns));
    console.log(line(widths.map((w) => '-'.repeat(w))));
    for (const row of rows) console.log(line(columns.map((c) => cell(row[c] ?? ''))));
  }
}
