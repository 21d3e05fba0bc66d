import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { PatchlineConfig } from '../../lambdas/domain/config';
import { ImageNode } from '../../lambdas/domain/lineage';
import { UsageError } from '../cli-error';
import { loadConfig, loadLineage, readJson } from '../input-files';
import { BuildBehaviour } from '../local/local-aws';
import { LocalRuntime, SimulationResult } from '../local/local-runtime';
import { STATE_DIR } from '../store-session';
import { showCampaign } from './campaign';

export interface SimulateOptions {
  readonly event: string;
  readonly lineage: string;
  readonly config: string;
  readonly json?: boolean;
  readonly failProject?: string[];
  readonly throttle?: string[];
  readonly concurrency?: string;
}

export interface Simulation {
  readonly result: SimulationResult;
  readonly semaphore: { inUse: number; holders: string[]; waiters: number };
  readonly maxConcurrentBuilds: number;
  readonly tracePath: string;
  /** Each campaign's timeline ("why was this image rebuilt?"), read from the store before it is discarded. */
  readonly campaigns: string[];
}

/** Runs the real workflows on a fresh embedded store, events cascading until quiet; writes the trace under .patchline/. */
export async function runSimulation(events: unknown[], lineage: readonly ImageNode[], config: PatchlineConfig, builds: BuildBehaviour = {}, traceName = 'simulate'): Promise<Simulation> {
  const runtime = await LocalRuntime.start({ config, lineage, builds });
  try {
    for (const event of events) runtime.send(event);
    await runtime.runUntilQuiet();
    const semaphore = await runtime.semaphoreState();
    mkdirSync(STATE_DIR, { recursive: true });
    const tracePath = join(STATE_DIR, `${traceName}-trace.json`);
    writeFileSync(tracePath, `${JSON.stringify({ ...runtime.trace(), semaphore }, null, 2)}\n`);
    const ids = [...new Set(runtime.codebuild.builds.map((b) => b.campaign))];
    const campaigns = await Promise.all(ids.map((id) => showCampaign(runtime.deps.campaigns, id)));
    return { result: runtime.result(), semaphore, maxConcurrentBuilds: runtime.codebuild.maxConcurrent, tracePath, campaigns };
  } finally {
    await runtime.stop();
  }
}

export async function simulateCommand(options: SimulateOptions): Promise<string> {
  const raw = readJson(options.event, 'event file');
  const events = Array.isArray(raw) ? raw : [raw];
  let config = loadConfig(options.config);
  if (options.concurrency !== undefined) {
    const cap = Number(options.concurrency);
    if (!Number.isInteger(cap) || cap < 1) throw new UsageError(`--concurrency must be a whole number ≥ 1 (received ${options.concurrency})`);
    config = { ...config, rebuild: { ...config.rebuild, concurrency: cap } };
  }
  const throttle = new Map(
    (options.throttle ?? []).map((t) => {
      const [project, n] = t.split('=');
      if (!project || !/^\d+$/.test(n ?? '')) throw new UsageError(`--throttle ${JSON.stringify(t)} must be PROJECT=N`);
      return [project, Number(n)] as const;
    }),
  );
  const sim = await runSimulation(events, loadLineage(options.lineage, config), config, { failProjects: new Set(options.failProject ?? []), throttle });
  if (options.json) return JSON.stringify(sim.result, null, 2);
  return formatSimulation(sim);
}

export function formatSimulation(sim: Simulation): string {
  const { result } = sim;
  const lines: string[] = [];
  lines.push(`builds (${result.builds.length}):`);
  for (const b of result.builds) lines.push(`  ${b.status === 'SUCCEEDED' ? '✔' : '✘'} ${b.image}  from ${b.baseImage}  (${b.project}, campaign ${b.campaign}, ${b.buildId})`);
  lines.push(`alerts (${result.alerts.length}):`);
  for (const a of result.alerts) lines.push(`  → ${a.owner}: ${a.kind} ${a.image} ${a.vulnerability}`);
  lines.push(`executions (${result.executions.length}):`);
  for (const e of result.executions) lines.push(`  ${e.status.padEnd(9)} ${e.stateMachine} ${e.name}${e.error ? `  (${e.error.slice(0, 160)})` : ''}`);
  lines.push(`dead letters (${result.deadLetters.length}):`);
  for (const d of result.deadLetters) lines.push(`  ✘ ${d.reason.slice(0, 300)}`);
  for (const campaign of sim.campaigns) lines.push(campaign);
  lines.push(`concurrency slots after the run: ${sim.semaphore.inUse} in use, ${sim.semaphore.waiters} waiting; at most ${sim.maxConcurrentBuilds} build(s) ran at once`);
  lines.push(`full trace: ${sim.tracePath}`);
  return lines.join('\n');
}
