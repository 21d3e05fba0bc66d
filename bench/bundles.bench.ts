// Lambda bundles: each lambdas/handlers/*.ts bundled as PatchlineFunction bundles it (esbuild, minified, node22,
// @aws-sdk/* left to the runtime), its size against the 1 MB target, and its cold-start init time: the median time
// of `require(bundle)` in a fresh `node` process (module load and top-level code, as Lambda's Init phase runs them).
import { spawnSync } from 'child_process';
import { build, Metafile } from 'esbuild';
import { mkdtempSync, readdirSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { basename, join } from 'path';
import { reportBenchmark } from './report';

const HANDLERS_DIR = join(__dirname, '../lambdas/handlers');
/** Not a handler: the dependency wiring every handler imports. */
const NOT_HANDLERS = new Set(['dependencies.ts']);
const TARGET_BYTES = 1024 * 1024;
const COLD_STARTS = 15;

interface BundleMeasurement {
  handler: string;
  bytes: number;
  underTarget: boolean;
  /** The three largest inputs by bytes in the output, to see what a bundle is made of. */
  largestInputs: Array<{ input: string; bytes: number }>;
  initMs: { median: number; p90: number; min: number; runs: number };
}

async function bundle(entry: string, outfile: string): Promise<Metafile> {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    sourcemap: false,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    external: ['@aws-sdk/*'],
    metafile: true,
    logLevel: 'error',
  });
  return result.metafile;
}

/** Groups the inputs of a bundle by package (or by our own source folder) and returns the largest. */
function largestInputs(metafile: Metafile, outfile: string): Array<{ input: string; bytes: number }> {
  const output = Object.entries(metafile.outputs).find(([path]) => outfile.endsWith(path) || path.endsWith(basename(outfile)))?.[1];
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.replace(/^(\.\.\/)+/, '').split('/').slice(0, 2).join('/');
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + bytesInOutput);
  }
  return [...byPackage.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([input, bytes]) => ({ input, bytes }));
}

/** Time to load the bundle in a new process; the SDK resolves from the repository's node_modules, as from the runtime's. */
function coldStarts(bundlePath: string): number[] {
  const probe = `const { performance } = require('perf_hooks'); const t = performance.now(); require(${JSON.stringify(bundlePath)}); process.stdout.write(String(performance.now() - t));`;
  const times: number[] = [];
  for (let i = 0; i < COLD_STARTS; i += 1) {
    const run = spawnSync(process.execPath, ['-e', probe], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        NODE_PATH: join(__dirname, '../node_modules'),
        AWS_REGION: 'us-east-1',
        TABLE_NAME: 'patchline-bench',
        REBUILD_CONCURRENCY: '10',
        POWERTOOLS_SERVICE_NAME: 'patchline-bench',
        POWERTOOLS_METRICS_NAMESPACE: 'Patchline',
        POWERTOOLS_LOG_LEVEL: 'SILENT',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    if (run.status !== 0) throw new Error(`loading ${bundlePath} failed: ${run.stderr}`);
    times.push(Number(run.stdout));
  }
  return times.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-bundles-'));
  const measurements: BundleMeasurement[] = [];
  try {
    const handlers = readdirSync(HANDLERS_DIR)
      .filter((f) => f.endsWith('.ts') && !NOT_HANDLERS.has(f))
      .sort();
    for (const file of handlers) {
      const name = file.replace(/\.ts$/, '');
      const outfile = join(dir, name, 'index.js');
      const metafile = await bundle(join(HANDLERS_DIR, file), outfile);
      const bytes = Object.values(metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
      const times = coldStarts(outfile);
      measurements.push({
        handler: name,
        bytes,
        underTarget: bytes < TARGET_BYTES,
        largestInputs: largestInputs(metafile, outfile),
        initMs: { median: times[Math.floor(times.length / 2)], p90: times[Math.ceil(times.length * 0.9) - 1], min: times[0], runs: times.length },
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  reportBenchmark(
    'bundles',
    measurements.map((m) => ({
      handler: m.handler,
      'size KB': Math.round(m.bytes / 1024),
      '< 1 MB': m.underTarget ? 'yes' : 'NO',
      'init ms (median)': m.initMs.median,
      'init ms (p90)': m.initMs.p90,
      'largest input': `${m.largestInputs[0]?.input} (${Math.round((m.largestInputs[0]?.bytes ?? 0) / 1024)} KB)`,
    })),
    {
      node: process.version,
      bundling: { minify: true, target: 'node22', format: 'cjs', external: ['@aws-sdk/*'] },
      targetBytes: TARGET_BYTES,
      coldStartsPerBundle: COLD_STARTS,
      bundles: measurements,
    },
  );
  if (measurements.some((m) => !m.underTarget)) {
    console.error(`bundles over 1 MB: ${measurements.filter((m) => !m.underTarget).map((m) => m.handler).join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
