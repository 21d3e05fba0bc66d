import { parseConfig, PatchlineConfig } from '../../../lambdas/domain/config';
import { ImageNode } from '../../../lambdas/domain/lineage';
import { BuildBehaviour } from '../../../cli/local/local-aws';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { loadLineage } from '../../../cli/input-files';
import { digestOf, projectConfig, projectTemplate, pushEvent, REPO_ROOT, sampleEvent, PUSH_SAMPLE } from '../../support/template';
import { join } from 'path';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));

function withCap(config: PatchlineConfig, concurrency: number): PatchlineConfig {
  return parseConfig({ ...config, rebuild: { ...config.rebuild, concurrency } });
}

async function run(lineage: readonly ImageNode[], events: unknown[], builds: BuildBehaviour = {}, config = projectConfig()): Promise<LocalRuntime> {
  const runtime = await LocalRuntime.start({ config, lineage, builds, template: projectTemplate() });
  for (const event of events) runtime.send(event);
  await runtime.runUntilQuiet();
  return runtime;
}

/** The semaphore never exceeds the cap and is never leaked: checked after every scenario. */
async function expectSlotsReturned(runtime: LocalRuntime, cap: number): Promise<void> {
  expect(runtime.codebuild.maxConcurrent).toBeLessThanOrEqual(cap);
  expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
  expect(runtime.stepFunctions.pendingTokens).toBe(0);
}

const node = (image: string, parents: string[], extra: Partial<ImageNode> = {}): ImageNode => ({
  image,
  tier: 'application',
  owner: 'platform-team',
  parents: parents.map((p) => ({ image: p, role: 'runtime' as const })),
  build: { project: `apps-${image.replace(/\//g, '-')}` },
  ...extra,
});

describe('Class: LocalRuntime', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  it('rebuilds each child of a pushed image once, from the pushed digest, and leaves the COTS image alone', async () => {
    const digest = digestOf('enterprise-1');
    runtime = await run(SEED, [pushEvent('enterprise/python-311', digest)]);
    const builds = runtime.result().builds;
    expect(builds.map((b) => b.image).sort()).toEqual(['apps/orders-api', 'apps/payments-api', 'builders/python-ci']);
    for (const b of builds) expect(b.baseImage).toBe(`123456789012.dkr.ecr.us-west-2.amazonaws.com/enterprise/python-311@${digest}`);
    expect(new Set(builds.map((b) => b.campaign)).size).toBe(1);
    // Every StartBuild call carried the digest-pinned BASE_IMAGE override.
    const overrides = runtime.calls.filter((c) => c.service === 'codebuild').map((c) => (c.parameters as { EnvironmentVariablesOverride: Array<{ Name: string; Value: string }> }).EnvironmentVariablesOverride);
    for (const o of overrides) expect(o.find((v) => v.Name === 'BASE_IMAGE')?.Value).toMatch(/@sha256:[a-f0-9]{64}$/);
    await expectSlotsReturned(runtime, 10);
  });

  it('starts no second build for a duplicate push event', async () => {
    const event = pushEvent('enterprise/python-311', digestOf('enterprise-2'));
    runtime = await run(SEED, [event, structuredClone(event), structuredClone(event)]);
    const built = runtime.result().builds.map((b) => b.image);
    expect(built.sort()).toEqual(['apps/orders-api', 'apps/payments-api', 'builders/python-ci']);
    await expectSlotsReturned(runtime, 10);
  });

  it('rebuilds the shared child of a diamond once, after both of its parents', async () => {
    const lineage = [
      node('enterprise/os', [], { tier: 'enterprise', build: { project: 'apps-base-os' } }),
      node('apps/mid-left', ['enterprise/os']),
      node('apps/mid-right', ['enterprise/os']),
      node('apps/shared', ['apps/mid-left', 'apps/mid-right']),
    ];
    runtime = await run(lineage, [pushEvent('enterprise/os', digestOf('os-1'))]);
    const built = runtime.result().builds.map((b) => b.image);
    expect(built.filter((b) => b === 'apps/shared')).toHaveLength(1);
    expect(built.indexOf('apps/shared')).toBeGreaterThan(Math.max(built.indexOf('apps/mid-left'), built.indexOf('apps/mid-right')));
    const shared = runtime.codebuild.builds.find((b) => b.image === 'apps/shared')!;
    // Both parents pinned to their freshly rebuilt digests.
    const rebuilt = (image: string): string => runtime!.codebuild.builds.find((b) => b.image === image)!.pushedDigest!;
    expect(shared.parentImages).toEqual(expect.arrayContaining([expect.stringContaining(`apps/mid-left@${rebuilt('apps/mid-left')}`), expect.stringContaining(`apps/mid-right@${rebuilt('apps/mid-right')}`)]));
    await expectSlotsReturned(runtime, 10);
  });

  it('skips only the subtree of a failed build; siblings are built', async () => {
    const lineage = [
      node('enterprise/os', [], { build: { project: 'apps-base-os' } }),
      node('apps/mid-broken', ['enterprise/os'], { build: { project: 'apps-broken' } }),
      node('apps/mid-fine', ['enterprise/os']),
      node('apps/below-broken', ['apps/mid-broken']),
      node('apps/below-fine', ['apps/mid-fine']),
    ];
    runtime = await run(lineage, [pushEvent('enterprise/os', digestOf('os-2'))], { failProjects: new Set(['apps-broken']) });
    const result = runtime.result();
    expect(result.builds.filter((b) => b.status === 'SUCCEEDED').map((b) => b.image).sort()).toEqual(['apps/below-fine', 'apps/mid-fine']);
    expect(result.builds.filter((b) => b.status === 'FAILED').map((b) => b.image)).toEqual(['apps/mid-broken']);
    const campaign = result.builds[0].campaign;
    const members = await runtime.deps.campaigns.members(campaign);
    const state = (image: string) => members.find((m) => m.image === image);
    expect(state('apps/mid-broken')?.state).toBe('failed');
    expect(state('apps/below-broken')).toEqual(expect.objectContaining({ state: 'skipped', reason: expect.stringContaining('apps/mid-broken failed to build') }));
    expect(state('apps/below-fine')?.state).toBe('built');
    await expectSlotsReturned(runtime, 10);
  });

  it('retries a throttled StartBuild and then builds', async () => {
    runtime = await run(SEED, [pushEvent('enterprise/python-311', digestOf('enterprise-3'))], { throttle: new Map([['apps-payments-api', 3]]) });
    const refused = runtime.calls.filter((c) => c.service === 'codebuild' && c.outcome === 'AccountLimitExceededException');
    expect(refused).toHaveLength(3);
    expect(runtime.result().builds.map((b) => b.image).sort()).toEqual(['apps/orders-api', 'apps/payments-api', 'builders/python-ci']);
    await expectSlotsReturned(runtime, 10);
  });

  it('never runs more builds than the cap, and hands every slot back', async () => {
    const lineage = [node('enterprise/os', [], { build: { project: 'apps-base-os' } })];
    for (let i = 0; i < 12; i++) lineage.push(node(`apps/a${i}`, ['enterprise/os']));
    for (let i = 0; i < 6; i++) lineage.push(node(`apps/b${i}`, [`apps/a${i}`]));
    runtime = await run(lineage, [pushEvent('enterprise/os', digestOf('os-3'))], { buildMillis: 20 }, withCap(projectConfig(), 3));
    expect(runtime.result().builds).toHaveLength(18);
    expect(runtime.codebuild.maxConcurrent).toBeLessThanOrEqual(3);
    expect(runtime.codebuild.maxConcurrent).toBeGreaterThan(1); // the cap was actually exercised
    await expectSlotsReturned(runtime, 3);
  });

  it('sends a malformed push to the dead-letter queue with the original event intact', async () => {
    const bad = pushEvent('apps/payments-api', 'sha256:not-a-digest');
    (bad.detail as Record<string, unknown>)['image-tag'] = 42;
    runtime = await run(SEED, [bad]);
    const { deadLetters, builds, executions } = runtime.result();
    expect(builds).toEqual([]);
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0].event).toEqual(bad);
    expect(deadLetters[0].reason).toContain('detail.image-digest');
    expect(executions).toEqual([expect.objectContaining({ status: 'FAILED' })]);
  });

  it('dead-letters the published push sample: its 60-hex digest is not a sha256 digest', async () => {
    const sample = sampleEvent(PUSH_SAMPLE);
    (sample.detail as Record<string, unknown>)['repository-name'] = 'apps/payments-api';
    runtime = await run(SEED, [sample]);
    expect(runtime.result().deadLetters).toEqual([expect.objectContaining({ event: sample, reason: expect.stringContaining('not a sha256:<64 hex> image digest') })]);
  });

  it('reports an event with no detail as matching no rule, keeping it whole', async () => {
    const event = pushEvent('apps/payments-api', digestOf('x'));
    delete event.detail;
    runtime = await run(SEED, [event]);
    expect(runtime.result().deadLetters).toEqual([expect.objectContaining({ event, reason: expect.stringContaining('matched no Patchline rule') })]);
  });
});
