import { LocalMetrics } from '../../cli/local/local-metrics';
import { campaignId, CampaignTrigger } from '../../lambdas/domain/campaign';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { ImageNode } from '../../lambdas/domain/lineage';
import { PatchlineMetric } from '../../lambdas/domain/patchline-metric';
import { HandlerDependencies, tableStores } from '../../lambdas/handlers/dependencies';
import { makeImagePushedHandler } from '../../lambdas/handlers/image-pushed';
import { startTestTable } from '../support/dynamodb';
import { digestOf, pushEvent } from '../support/template';

const node = (image: string, parents: string[]): ImageNode => ({
  image,
  tier: 'application',
  owner: 'platform-team',
  parents: parents.map((p) => ({ image: p, role: 'runtime' as const })),
  build: { project: `apps-${image.replace(/\//g, '-')}` },
});

/** R → A → B. */
const CHAIN = [node('enterprise/os', []), node('apps/a', ['enterprise/os']), node('apps/b', ['apps/a'])];

describe('Function: makeImagePushedHandler', () => {
  let table: Awaited<ReturnType<typeof startTestTable>>;
  let deps: HandlerDependencies;
  let metrics: LocalMetrics;
  let clock: Date;

  beforeEach(async () => {
    table = await startTestTable();
    metrics = new LocalMetrics();
    clock = new Date('2024-03-01T10:00:00Z');
    const { client, tableName } = table;
    deps = {
      ...tableStores({ client, tableName, concurrency: 2 }),
      taskTokens: { succeed: async () => true, fail: async () => true },
      defaultBuildSeconds: 600,
      now: () => clock,
      metrics,
    };
    await deps.lineage.putImages(CHAIN);
  });
  afterEach(async () => {
    await table.stop();
  });

  it('counts CampaignsStarted once per campaign a root push creates: a re-sent push and a leaf push count nothing', async () => {
    const handle = makeImagePushedHandler(deps);
    const [d1, d2] = [digestOf('os-1'), digestOf('os-2')];
    const first = await handle({ ...pushEvent('enterprise/os', d1), time: '2024-03-01T10:00:00Z' });
    await handle({ ...pushEvent('enterprise/os', d1), time: '2024-03-01T10:00:00Z' });
    await handle({ ...pushEvent('apps/b', digestOf('b-1')), time: '2024-03-01T10:01:00Z' });
    expect(first.campaignId).toBe(campaignId('enterprise/os', d1));
    expect(metrics.total(PatchlineMetric.CAMPAIGNS_STARTED)).toBe(1);

    clock = new Date('2024-03-01T11:00:00Z');
    const second = await handle({ ...pushEvent('enterprise/os', d2), time: '2024-03-01T11:00:00Z' });
    expect(second.superseded).toBe(first.campaignId);
    const pushCampaigns = (await deps.campaigns.list()).filter((c) => c.trigger === CampaignTrigger.PUSH);
    expect(pushCampaigns).toHaveLength(2);
    expect(metrics.total(PatchlineMetric.CAMPAIGNS_STARTED)).toBe(pushCampaigns.length);
  });

  it('starts the children of a root push pinned to the pushed digest', async () => {
    const d1 = digestOf('os-1');
    const result = await makeImagePushedHandler(deps)({ ...pushEvent('enterprise/os', d1), time: '2024-03-01T10:00:00Z' });
    expect(result.starts.map((s) => s.input.image)).toEqual(['apps/a']);
    expect(result.starts[0].input.baseImage).toMatch(new RegExp(`/enterprise/os@${d1}$`));
    expect(result.waiting.map((w) => w.image)).toEqual([]);
  });

  it('refuses an event that is not an ECR push, and counts nothing', async () => {
    await expect(makeImagePushedHandler(deps)({ 'detail-type': 'ECR Image Action', detail: {} })).rejects.toThrow(InvalidEventError);
    expect(metrics.total(PatchlineMetric.CAMPAIGNS_STARTED)).toBe(0);
  });
});
