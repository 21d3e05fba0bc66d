import { join } from 'path';
import { parseConfig, PatchlineConfig } from '../../../lambdas/domain/config';
import { ImageNode } from '../../../lambdas/domain/lineage';
import { campaignId } from '../../../lambdas/domain/campaign';
import { parseInspectorFindingEvent } from '../../../lambdas/domain/finding';
import { estimateBuildSeconds } from '../../../lambdas/domain/scheduling';
import { BuildBehaviour } from '../../../cli/local/local-aws';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { loadLineage } from '../../../cli/input-files';
import { findingEvent, SEED_CVE } from '../../support/finding-events';
import { digestOf, projectConfig, projectTemplate, pushEvent, REPO_ROOT, sampleEvent } from '../../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
const SCAN_SAMPLE = 'awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__image-scanning-enhanced.md__inspector2-scan-INITIAL_SCAN_COMPLETE-ecr.json';

function withSettle(seconds: number): PatchlineConfig {
  const config = projectConfig();
  return parseConfig({ ...config, rebuild: { ...config.rebuild, settleWindowSeconds: seconds } });
}

const node = (image: string, parents: string[]): ImageNode => ({
  image,
  tier: 'application',
  owner: 'platform-team',
  parents: parents.map((p) => ({ image: p, role: 'runtime' as const })),
  build: { project: `apps-${image.replace(/\//g, '-')}` },
});

/** R → A → B, and R → C: a chain below the root and a sibling. */
const CHAIN = [node('enterprise/os', []), node('apps/a', ['enterprise/os']), node('apps/b', ['apps/a']), node('apps/c', ['enterprise/os'])];

/** A push of `repository` at `digest`, pushed at `time` (the real ECR sample, cloned). */
function pushAt(repository: string, digest: string, time: string): Record<string, unknown> {
  return { ...pushEvent(repository, digest), time };
}

/** The real "Inspector2 Scan" sample with its placeholder digest and repository replaced. */
function scanEvent(repository: string, digest: string): Record<string, unknown> {
  const event = structuredClone(sampleEvent(SCAN_SAMPLE)) as Record<string, any>;
  event.detail['repository-name'] = `arn:aws:ecr:us-east-2:123456789012:repository/${repository}`;
  event.detail['image-digest'] = digest;
  return event;
}

async function start(lineage: readonly ImageNode[], config: PatchlineConfig, builds: BuildBehaviour = {}): Promise<LocalRuntime> {
  return LocalRuntime.start({ config, lineage, builds, template: projectTemplate() });
}

/** Resolves when `condition` holds, polled: the order of events is controlled, not how long anything takes. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function expectSlotsReturned(runtime: LocalRuntime, cap: number): Promise<void> {
  expect(runtime.codebuild.maxConcurrent).toBeLessThanOrEqual(cap);
  expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
  expect(runtime.stepFunctions.pendingTokens).toBe(0);
}

describe('Class: LocalRuntime (campaign rules)', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  describe('Rule: settle window', () => {
    it('coalesces pushes of one root inside the window into one campaign, built once from the latest digest', async () => {
      runtime = await start(CHAIN, withSettle(300));
      const [d1, d2, d3] = [digestOf('os-amd64'), digestOf('os-arm64'), digestOf('os-s390x')];
      // The window is 300 s by arrival. Rather than a Wait long enough for every push to land (a race on a loaded
      // machine), the campaign's rebuilds start only once all three pushes are recorded; their Wait then ends at once.
      const local = runtime;
      const opened = campaignId('enterprise/os', d1);
      const startExecution = local.stepFunctions.startExecution.bind(local.stepFunctions);
      local.stepFunctions.startExecution = async (arn, input, name) => {
        if ((input as { settle?: unknown } | undefined)?.settle !== undefined) await until(async () => (await local.deps.campaigns.get(opened))?.rootDigest === d3, 'all three pushes recorded');
        return startExecution(arn, input, name);
      };
      runtime.send(pushAt('enterprise/os', d1, '2024-03-01T10:00:00Z'));
      runtime.send(pushAt('enterprise/os', d2, '2024-03-01T10:01:00Z'));
      runtime.send(pushAt('enterprise/os', d3, '2024-03-01T10:02:00Z'));
      await runtime.runUntilQuiet();

      const builds = runtime.result().builds;
      expect(builds.map((b) => b.image).sort()).toEqual(['apps/a', 'apps/b', 'apps/c']);
      expect(new Set(builds.map((b) => b.campaign)).size).toBe(1);
      const direct = builds.filter((b) => b.image !== 'apps/b');
      for (const b of direct) expect(b.baseImage).toMatch(new RegExp(`/enterprise/os@${d3}$`));
      const campaign = (await runtime.deps.campaigns.get(builds[0].campaign))!;
      expect(campaign).toEqual(expect.objectContaining({ rootDigest: d3, coalescedDigests: [d2, d3] }));
      expect((await runtime.deps.campaigns.list()).length).toBe(1);
      await expectSlotsReturned(runtime, 10);
    });

    it('starts a second campaign for a push that arrives after the window closed', async () => {
      runtime = await start(CHAIN, withSettle(0));
      runtime.send(pushAt('enterprise/os', digestOf('os-1'), '2024-03-01T10:00:00Z'));
      await runtime.runUntilQuiet();
      runtime.send(pushAt('enterprise/os', digestOf('os-2'), '2024-03-01T12:00:00Z'));
      await runtime.runUntilQuiet();
      const builds = runtime.result().builds;
      expect(new Set(builds.map((b) => b.campaign)).size).toBe(2);
      expect(builds.filter((b) => b.image === 'apps/b')).toHaveLength(2);
      await expectSlotsReturned(runtime, 10);
    });
  });

  describe('Rule: supersede', () => {
    it('supersedes a running campaign: pending members rebuild once, in the new campaign, from the newer digest', async () => {
      runtime = await start(CHAIN, withSettle(0));
      const [d1, d2] = [digestOf('os-old'), digestOf('os-new')];
      // The first campaign's builds are held until the second push has superseded it: they are in flight when it
      // arrives, however slow the machine (a fixed delay would race them).
      const local = runtime;
      const first = campaignId('enterprise/os', d1);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let held = 0;
      const startBuildSync = local.codebuild.startBuildSync.bind(local.codebuild);
      local.codebuild.startBuildSync = async (parameters) => {
        const env = (parameters.EnvironmentVariablesOverride as Array<{ Name: string; Value: string }>) ?? [];
        if (env.find((v) => v.Name === 'PATCHLINE_CAMPAIGN')?.Value === first) {
          held += 1;
          await gate;
        }
        return startBuildSync(parameters);
      };
      runtime.send(pushAt('enterprise/os', d1, '2024-03-01T10:00:00Z'));
      const done = runtime.runUntilQuiet();
      // apps/a and apps/c are building for the first campaign; apps/b waits for apps/a.
      await until(() => held === 2, 'apps/a and apps/c building for the first campaign');
      runtime.send(pushAt('enterprise/os', d2, '2024-03-01T10:05:00Z'));
      await until(async () => (await local.deps.campaigns.get(first))?.status === 'superseded', 'the first campaign superseded');
      await until(() => local.stepFunctions.allExecutions.filter((e) => e.stateMachine.includes('ImagePushed') && e.status !== 'RUNNING').length === 2, 'both pushes decided');
      release();
      await done;

      const campaigns = await runtime.deps.campaigns.list();
      expect(campaigns).toHaveLength(2);
      const older = campaigns.find((c) => c.rootDigest === d1)!;
      const newer = campaigns.find((c) => c.rootDigest === d2)!;
      expect(older).toEqual(expect.objectContaining({ status: 'superseded', supersededBy: newer.campaignId }));
      const olderMembers = await runtime.deps.campaigns.members(older.campaignId);
      expect(olderMembers.find((m) => m.image === 'apps/b')).toEqual(expect.objectContaining({ state: 'superseded', reason: expect.stringContaining(newer.campaignId) }));

      const builds = runtime.codebuild.builds;
      // Pending in the old campaign, apps/b is built exactly once: in the new one, from the new apps/a.
      const b = builds.filter((x) => x.image === 'apps/b');
      expect(b).toHaveLength(1);
      expect(b[0].campaign).toBe(newer.campaignId);
      const newA = builds.find((x) => x.image === 'apps/a' && x.campaign === newer.campaignId)!;
      expect(newA.baseImage).toMatch(new RegExp(`/enterprise/os@${d2}$`));
      expect(b[0].baseImage).toContain(`apps/a@${newA.pushedDigest}`);
      // Builds in flight for the old campaign finished there, and never ran at the same time as the new one's.
      for (const image of ['apps/a', 'apps/c']) {
        const mine = builds.filter((x) => x.image === image);
        expect(mine.filter((x) => x.campaign === newer.campaignId)).toHaveLength(1);
        expect(mine.length).toBeLessThanOrEqual(2);
      }
      const newMembers = await runtime.deps.campaigns.members(newer.campaignId);
      expect(newMembers.map((m) => m.state).sort()).toEqual(['built', 'built', 'built']);
      await expectSlotsReturned(runtime, 10);
    });

    it('starts nothing for a late replay of the superseded digest', async () => {
      runtime = await start(CHAIN, withSettle(0));
      const old = pushAt('enterprise/os', digestOf('os-a'), '2024-03-01T10:00:00Z');
      runtime.send(old);
      await runtime.runUntilQuiet();
      runtime.send(pushAt('enterprise/os', digestOf('os-b'), '2024-03-01T11:00:00Z'));
      await runtime.runUntilQuiet();
      const before = runtime.codebuild.builds.length;
      runtime.send(structuredClone(old));
      await runtime.runUntilQuiet();
      expect(runtime.codebuild.builds.length).toBe(before);
      expect(await runtime.deps.campaigns.list()).toHaveLength(2);
      await expectSlotsReturned(runtime, 10);
    });
  });

  describe('Rule: verification', () => {
    async function findingCampaign(): Promise<{ runtime: LocalRuntime; campaignId: string; rebuilt: (image: string) => string }> {
      const rt = await start(SEED, withSettle(0));
      rt.send(findingEvent({ repository: 'enterprise/python-311', at: '2024-02-01T00:00:00Z' }));
      await rt.runUntilQuiet();
      const root = rt.codebuild.builds.find((b) => b.image === 'enterprise/python-311')!;
      return { runtime: rt, campaignId: root.campaign, rebuilt: (image) => rt.codebuild.builds.find((b) => b.image === image)!.pushedDigest! };
    }

    it('verifies a rebuilt image whose rescan no longer has the CVE that started the campaign', async () => {
      const setup = await findingCampaign();
      runtime = setup.runtime;
      expect((await runtime.deps.campaigns.get(setup.campaignId))?.vulnerabilityIds).toEqual([SEED_CVE]);
      runtime.send(scanEvent('enterprise/python-311', setup.rebuilt('enterprise/python-311')));
      await runtime.runUntilQuiet();
      const member = (await runtime.deps.campaigns.memberStates(setup.campaignId, ['enterprise/python-311'])).get('enterprise/python-311');
      expect(member).toEqual(expect.objectContaining({ state: 'verified', reason: expect.stringContaining(`${SEED_CVE} gone`) }));
      expect(runtime.result().alerts.filter((a) => a.kind === 'STILL_VULNERABLE')).toEqual([]);
      await expectSlotsReturned(runtime, 10);
    });

    it('marks a rebuild still vulnerable and alerts its owner once when the CVE is still found', async () => {
      const setup = await findingCampaign();
      runtime = setup.runtime;
      const digest = setup.rebuilt('enterprise/python-311');
      await runtime.deps.findings!.record('enterprise/python-311', parseInspectorFindingEvent(findingEvent({ repository: 'enterprise/python-311', digest, at: '2024-02-02T00:00:00Z' })));
      const scan = scanEvent('enterprise/python-311', digest);
      runtime.send(scan);
      runtime.send(structuredClone(scan));
      await runtime.runUntilQuiet();
      const member = (await runtime.deps.campaigns.memberStates(setup.campaignId, ['enterprise/python-311'])).get('enterprise/python-311');
      expect(member?.state).toBe('still-vulnerable');
      const owner = SEED.find((n) => n.image === 'enterprise/python-311')!.owner;
      expect(runtime.result().alerts.filter((a) => a.kind === 'STILL_VULNERABLE')).toEqual([
        { owner, kind: 'STILL_VULNERABLE', image: 'enterprise/python-311', vulnerability: SEED_CVE },
      ]);
      await expectSlotsReturned(runtime, 10);
    });

    it('ignores the scan of an image no campaign rebuilt', async () => {
      runtime = await start(SEED, withSettle(0));
      runtime.send(scanEvent('apps/payments-api', digestOf('never-rebuilt')));
      await runtime.runUntilQuiet();
      const result = runtime.result();
      expect(result.alerts).toEqual([]);
      expect(result.deadLetters).toEqual([]);
      expect(result.executions).toEqual([expect.objectContaining({ status: 'SUCCEEDED' })]);
    });

    it('dead-letters the published scan sample: its placeholder digest is not a sha256 digest', async () => {
      runtime = await start(SEED, withSettle(0));
      const sample = sampleEvent(SCAN_SAMPLE);
      runtime.send(sample);
      await runtime.runUntilQuiet();
      expect(runtime.result().deadLetters).toEqual([expect.objectContaining({ event: sample, reason: expect.stringContaining('detail.image-digest') })]);
    });
  });

  describe('Rule: aborted rebuilds', () => {
    it('fails the member of a rebuild aborted while it waits for a slot, skips its subtree, and the siblings go on', async () => {
      // R → A → B and R → C → D, one slot: one of A and C builds while the other waits in AcquireSlot.
      const lineage = [...CHAIN, node('apps/d', ['apps/c'])];
      const config = projectConfig();
      runtime = await start(lineage, parseConfig({ ...config, rebuild: { ...config.rebuild, concurrency: 1, settleWindowSeconds: 0 } }), { buildMillis: 1500 });
      runtime.send(pushEvent('enterprise/os', digestOf('os-aborted')));
      const quiet = runtime.runUntilQuiet();
      let parked: { arn: string; name: string; input: unknown } | undefined;
      await until(async () => {
        const { waiters, holders } = await runtime!.semaphoreState();
        if (waiters === 0) return false;
        parked = runtime!.stepFunctions.allExecutions.find((e) => e.stateMachine.endsWith('rebuild-image') && e.status === 'RUNNING' && !holders.includes(e.name));
        return parked !== undefined;
      }, 'a rebuild parked in AcquireSlot');
      const { image, campaignId: campaign } = parked!.input as { image: string; campaignId: string };
      const child = image === 'apps/a' ? 'apps/b' : 'apps/d';
      const sibling = image === 'apps/a' ? 'apps/c' : 'apps/a';
      expect(runtime.stepFunctions.stopExecution(parked!.arn)).toBe(true);
      await quiet;

      expect(runtime.stepFunctions.allExecutions.find((e) => e.arn === parked!.arn)?.status).toBe('ABORTED');
      const members = new Map((await runtime.deps.campaigns.members(campaign)).map((m) => [m.image, m]));
      expect(members.get(image)).toMatchObject({ state: 'failed', reason: `rebuild execution ${parked!.name} ended ABORTED` });
      expect(members.get(child)).toMatchObject({ state: 'skipped', reason: expect.stringContaining(`${image} failed to build`) });
      expect(members.get(sibling)?.state).toBe('built');
      // Its build never started; the queue entry went with the release (RebuildEndedRule → release-slot).
      expect(runtime.codebuild.builds.map((b) => b.image)).not.toContain(image);
      await expectSlotsReturned(runtime, 1);
      expect(runtime.result().deadLetters).toEqual([]);
    });
  });

  describe('Rule: estimates from recorded builds', () => {
    it('records each rebuild duration and prioritizes the next campaign from them', async () => {
      runtime = await start(CHAIN, withSettle(0), { buildMillis: 30 });
      runtime.send(pushAt('enterprise/os', digestOf('os-x'), '2024-03-01T10:00:00Z'));
      await runtime.runUntilQuiet();
      const durations = await runtime.deps.campaigns.buildDurations(['apps/a', 'apps/b', 'apps/c']);
      for (const image of ['apps/a', 'apps/b', 'apps/c']) {
        expect(durations.get(image)).toHaveLength(1);
        expect(durations.get(image)![0]).toBeGreaterThanOrEqual(0.02);
      }
      runtime.send(pushAt('enterprise/os', digestOf('os-y'), '2024-03-01T11:00:00Z'));
      await runtime.runUntilQuiet();
      const second = (await runtime.deps.campaigns.list()).find((c) => c.rootDigest === digestOf('os-y'))!;
      const members = await runtime.deps.campaigns.members(second.campaignId);
      const est = (image: string): number => estimateBuildSeconds(durations.get(image)!, 600);
      const priority = (image: string): number => members.find((m) => m.image === image)!.priority;
      expect(priority('apps/b')).toBeCloseTo(est('apps/b'), 6);
      expect(priority('apps/a')).toBeCloseTo(est('apps/a') + est('apps/b'), 6);
      expect(priority('apps/a')).toBeLessThan(600);
      await expectSlotsReturned(runtime, 10);
    });
  });
});
