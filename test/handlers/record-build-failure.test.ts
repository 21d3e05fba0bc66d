import { LocalRuntime } from '../../cli/local/local-runtime';
import { CodeBuildStandInError } from '../../cli/local/local-aws';
import { LocalMetrics } from '../../cli/local/local-metrics';
import { campaignId, CampaignTrigger, MemberState, RebuildRequest } from '../../lambdas/domain/campaign';
import { parseConfig, PatchlineConfig } from '../../lambdas/domain/config';
import { ImageNode } from '../../lambdas/domain/lineage';
import { PatchlineMetric } from '../../lambdas/domain/patchline-metric';
import { HandlerDependencies, RebuildStarter, tableStores } from '../../lambdas/handlers/dependencies';
import { makeRecordBuildFailureHandler, MissingRebuildStarterError } from '../../lambdas/handlers/record-build-failure';
import { startTestTable } from '../support/dynamodb';
import { digestOf, projectConfig, projectTemplate, pushEvent, sampleEvent } from '../support/template';

const node = (image: string, parents: string[]): ImageNode => ({
  image,
  tier: 'application',
  owner: 'platform-team',
  parents: parents.map((p) => ({ image: p, role: 'runtime' as const })),
  build: { project: `apps-${image.replace(/\//g, '-')}` },
});

/** R → A → B, and R → C. */
const CHAIN = [node('enterprise/os', []), node('apps/a', ['enterprise/os']), node('apps/b', ['apps/a']), node('apps/c', ['enterprise/os'])];
const MEMBERS = CHAIN.slice(1).map((n) => ({ image: n.image, priority: 600, parents: n.parents.map((p) => p.image) }));

function noSettle(): PatchlineConfig {
  const config = projectConfig();
  return parseConfig({ ...config, rebuild: { ...config.rebuild, settleWindowSeconds: 0 } });
}

/** Resolves when `condition` holds, polled (no assertion depends on how long it takes; a minute means it is stuck). */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('Function: makeRecordBuildFailureHandler', () => {
  let table: Awaited<ReturnType<typeof startTestTable>>;
  let deps: HandlerDependencies;
  let started: Array<{ name: string; input: RebuildRequest }>;
  let metrics: LocalMetrics;
  const [oldDigest, newDigest] = [digestOf('os-old'), digestOf('os-new')];
  const older = campaignId('enterprise/os', oldDigest);
  const newer = campaignId('enterprise/os', newDigest);
  const starter: RebuildStarter = {
    account: '123456789012',
    region: 'eu-west-1',
    start: async (name, input) => {
      started.push({ name, input });
      return true;
    },
  };

  beforeEach(async () => {
    table = await startTestTable();
    started = [];
    metrics = new LocalMetrics();
    const { client, tableName } = table;
    deps = {
      ...tableStores({ client, tableName, concurrency: 2 }),
      taskTokens: { succeed: async () => true, fail: async () => true },
      defaultBuildSeconds: 600,
      now: () => new Date('2024-03-01T10:10:00Z'),
      metrics,
      rebuilds: starter,
    };
    await deps.lineage.putImages(CHAIN);
    await deps.lineage.putVersion({ image: 'enterprise/os', digest: oldDigest, tags: ['latest'], pushedAt: '2024-03-01T10:00:00Z' });
    await deps.lineage.putVersion({ image: 'enterprise/os', digest: newDigest, tags: ['latest'], pushedAt: '2024-03-01T10:05:00Z' });
    // The older campaign had apps/a building when a newer push of the root superseded it; the newer one deferred apps/a.
    const record = (id: string, digest: string) => ({ campaignId: id, rootImage: 'enterprise/os', rootDigest: digest, trigger: CampaignTrigger.PUSH, reason: 'push', startedAt: '2024-03-01T10:00:00Z', memberCount: 3 });
    await deps.campaigns.create(record(older, oldDigest), MEMBERS);
    await deps.campaigns.transition(older, 'apps/a', [MemberState.PENDING], MemberState.BUILDING);
    await deps.campaigns.create(record(newer, newDigest), MEMBERS);
    await deps.campaigns.claimRoot({ rootImage: 'enterprise/os', campaignId: newer, rootDigest: newDigest, pushedAt: '2024-03-01T10:05:00Z' }, undefined);
    await deps.campaigns.supersede(older, newer, 'superseded');
  });

  afterEach(async () => {
    await table.stop();
  });

  it('hands a superseded campaign\u2019s failed image over to the root\u2019s current campaign, pinned to the newer root', async () => {
    const result = await makeRecordBuildFailureHandler(deps)({ campaignId: older, image: 'apps/a', error: { Error: 'States.TaskFailed', Cause: 'exit 1' } });

    expect(result.handedOverTo).toBe(newer);
    expect(started).toEqual([{ name: expect.any(String), input: expect.objectContaining({ campaignId: newer, image: 'apps/a', baseImage: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/enterprise/os@${newDigest}` }) }]);
    expect(result.handedOver).toEqual(started);
    expect((await deps.campaigns.memberStates(older, ['apps/a'])).get('apps/a')?.state).toBe(MemberState.FAILED);
    // The newer campaign's apps/b still waits for apps/a there: nothing was skipped in it.
    expect([...(await deps.campaigns.memberStates(newer, ['apps/a', 'apps/b', 'apps/c'])).values()].map((m) => m.state)).toEqual(['pending', 'pending', 'pending']);
  });

  it('hands nothing over when the failed campaign is the root\u2019s current one, and skips the subtree', async () => {
    await deps.campaigns.transition(newer, 'apps/a', [MemberState.PENDING], MemberState.BUILDING);
    const result = await makeRecordBuildFailureHandler(deps)({ campaignId: newer, image: 'apps/a' });
    expect(result).toEqual({ skipped: ['apps/b'], handedOver: [] });
    expect(started).toEqual([]);
  });

  it('counts RebuildsFailed per failure and CampaignsFailed for the campaign\u2019s first failure only, once on a retry', async () => {
    const handler = makeRecordBuildFailureHandler(deps);
    await deps.campaigns.transition(newer, 'apps/a', [MemberState.PENDING], MemberState.BUILDING);
    await deps.campaigns.transition(newer, 'apps/c', [MemberState.PENDING], MemberState.BUILDING);
    await handler({ campaignId: newer, image: 'apps/a' });
    await handler({ campaignId: newer, image: 'apps/a' }); // a retried invocation
    await handler({ campaignId: newer, image: 'apps/c' });
    expect(metrics.total(PatchlineMetric.REBUILDS_FAILED)).toBe(2);
    expect(metrics.total(PatchlineMetric.CAMPAIGNS_FAILED)).toBe(1);
  });

  it('refuses to hand an image over without a rebuild starter, after recording the failure', async () => {
    const { rebuilds: _none, ...withoutStarter } = deps;
    await expect(makeRecordBuildFailureHandler(withoutStarter)({ campaignId: older, image: 'apps/a' })).rejects.toThrow(MissingRebuildStarterError);
    expect((await deps.campaigns.memberStates(older, ['apps/a'])).get('apps/a')?.state).toBe(MemberState.FAILED);
  });

  it('refuses an input without a campaign id', async () => {
    await expect(makeRecordBuildFailureHandler(deps)({ image: 'apps/a' })).rejects.toThrow(/record-build-failure/);
  });

  describe('an execution that ended without its own failure path (RebuildEndedRule)', () => {
    /** The real "Step Functions Execution Status Change" sample with the status and the rebuild's input put in. */
    const ended = (status: string, input: unknown, name = 'rebuild-apps-a'): Record<string, unknown> => {
      const event = structuredClone(sampleEvent(`awsdocs-aws-step-functions-developer-guide@3d6752c1__doc_source__cw-events.md__sfn-execution-status-change-${status}.json`)) as Record<string, any>;
      event.detail.name = name;
      event.detail.input = input === undefined ? null : JSON.stringify(input);
      return event;
    };

    it.each(['ABORTED', 'TIMED_OUT'])('fails a building member of a %s execution with the reason and skips its subtree', async (status) => {
      await deps.campaigns.transition(newer, 'apps/a', [MemberState.PENDING], MemberState.BUILDING);
      const result = await makeRecordBuildFailureHandler(deps)(ended(status, { campaignId: newer, image: 'apps/a', baseImage: 'x' }));
      expect(result).toEqual({ skipped: ['apps/b'], handedOver: [] });
      const states = await deps.campaigns.memberStates(newer, ['apps/a', 'apps/b', 'apps/c']);
      expect(states.get('apps/a')).toMatchObject({ state: MemberState.FAILED, reason: `rebuild execution rebuild-apps-a ended ${status}` });
      expect(states.get('apps/b')).toMatchObject({ state: MemberState.SKIPPED, reason: expect.stringContaining(`apps/a failed to build (rebuild execution rebuild-apps-a ended ${status})`) });
      expect(states.get('apps/c')?.state).toBe(MemberState.PENDING);
      expect(metrics.total(PatchlineMetric.REBUILDS_FAILED)).toBe(1);
    });

    it('fails a member still waiting for its slot (pending) when its execution is aborted', async () => {
      await makeRecordBuildFailureHandler(deps)(ended('ABORTED', { campaignId: newer, image: 'apps/c' }));
      expect((await deps.campaigns.memberStates(newer, ['apps/c'])).get('apps/c')?.state).toBe(MemberState.FAILED);
    });

    it('changes nothing for a FAILED execution whose own failure path recorded it, nor hands it over again', async () => {
      const handler = makeRecordBuildFailureHandler(deps);
      await handler({ campaignId: older, image: 'apps/a', error: { Error: 'States.TaskFailed' } });
      expect(started).toHaveLength(1);
      const result = await handler(ended('FAILED', { campaignId: older, image: 'apps/a' }));
      expect(result).toEqual({ skipped: [], handedOver: [] });
      expect(started).toHaveLength(1);
      expect((await deps.campaigns.memberStates(older, ['apps/a'])).get('apps/a')?.reason).toBe('States.TaskFailed');
      expect(metrics.total(PatchlineMetric.REBUILDS_FAILED)).toBe(1);
    });

    it('changes nothing for a member that was built before its execution failed', async () => {
      await deps.campaigns.transition(newer, 'apps/c', [MemberState.PENDING], MemberState.BUILDING);
      await deps.campaigns.transition(newer, 'apps/c', [MemberState.BUILDING], MemberState.BUILT);
      await makeRecordBuildFailureHandler(deps)(ended('FAILED', { campaignId: newer, image: 'apps/c' }));
      expect((await deps.campaigns.memberStates(newer, ['apps/c'])).get('apps/c')?.state).toBe(MemberState.BUILT);
    });

    it.each<[string, unknown, RegExp]>([
      ['an input that was not included', undefined, /not included or not JSON/],
      ['an input without a campaign', { image: 'apps/a' }, /campaignId/],
      ['a SUCCEEDED status', 'succeeded', /status/],
    ])('refuses %s, naming the field', async (_name, input, message) => {
      const event = input === 'succeeded' ? ended('SUCCEEDED', { campaignId: newer, image: 'apps/a' }) : ended('ABORTED', input);
      await expect(makeRecordBuildFailureHandler(deps)(event)).rejects.toThrow(message);
      expect((await deps.campaigns.memberStates(newer, ['apps/a'])).get('apps/a')?.state).toBe(MemberState.PENDING);
    });
  });
});

describe('Class: LocalRuntime (a superseded campaign\u2019s build fails)', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  it('rebuilds the image in the newer campaign, and everything below it, instead of leaving it pending', async () => {
    runtime = await LocalRuntime.start({ config: noSettle(), lineage: CHAIN, template: projectTemplate() });
    const [d1, d2] = [digestOf('os-old'), digestOf('os-new')];
    const first = campaignId('enterprise/os', d1);
    // The first campaign's builds are held until the second push has superseded it; its apps/a build then fails.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = 0;
    const codebuild = runtime.codebuild;
    const original = codebuild.startBuildSync.bind(codebuild);
    codebuild.startBuildSync = async (parameters) => {
      const env = new Map(((parameters.EnvironmentVariablesOverride as Array<{ Name: string; Value: string }>) ?? []).map((v) => [v.Name, v.Value]));
      if (env.get('PATCHLINE_CAMPAIGN') !== first) return original(parameters);
      held += 1;
      await gate;
      if (env.get('PATCHLINE_IMAGE') === 'apps/a') throw new CodeBuildStandInError('States.TaskFailed', JSON.stringify({ Build: { BuildStatus: 'FAILED' } }));
      return original(parameters);
    };

    runtime.send({ ...pushEvent('enterprise/os', d1), time: '2024-03-01T10:00:00Z' });
    const done = runtime.runUntilQuiet();
    await until(() => held === 2, 'apps/a and apps/c building for the first campaign');
    runtime.send({ ...pushEvent('enterprise/os', d2), time: '2024-03-01T10:05:00Z' });
    await until(async () => (await runtime!.deps.campaigns.get(first))?.status === 'superseded', 'the first campaign superseded');
    await until(() => runtime!.stepFunctions.allExecutions.filter((e) => e.stateMachine.includes('ImagePushed') && e.status !== 'RUNNING').length === 2, 'both pushes decided');
    release();
    await done;

    const newer = (await runtime.deps.campaigns.get(first))!.supersededBy!;
    const newMembers = await runtime.deps.campaigns.members(newer);
    expect(Object.fromEntries(newMembers.map((m) => [m.image, m.state]))).toEqual({ 'apps/a': 'built', 'apps/b': 'built', 'apps/c': 'built' });
    const oldMembers = await runtime.deps.campaigns.members(first);
    expect(oldMembers.find((m) => m.image === 'apps/a')?.state).toBe('failed');
    const builtInNewer = runtime.codebuild.builds.filter((b) => b.campaign === newer);
    expect(builtInNewer.find((b) => b.image === 'apps/a')?.baseImage).toMatch(new RegExp(`/enterprise/os@${d2}$`));
    expect(runtime.metrics.total(PatchlineMetric.REBUILDS_FAILED)).toBe(1);
    expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
  });
});
