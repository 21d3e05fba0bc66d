import { LocalMetrics } from '../../cli/local/local-metrics';
import { campaignId, CampaignTrigger, MemberState } from '../../lambdas/domain/campaign';
import { parseInspectorFindingEvent } from '../../lambdas/domain/finding';
import { ImageNode } from '../../lambdas/domain/lineage';
import { PatchlineMetric } from '../../lambdas/domain/patchline-metric';
import { registryHost, RegistryScope, UnconfiguredRegistryError } from '../../lambdas/domain/registry-scope';
import { makeScanCompletedHandler, ScanCompletedDependencies, ScanVerdict } from '../../lambdas/handlers/scan-completed';
import { FindingStore } from '../../lambdas/store/finding-store';
import { startTestTable } from '../support/dynamodb';
import { digestFor, findingEvent, SEED_CVE } from '../support/finding-events';
import { sampleEvent } from '../support/template';
import { tableStores } from '../../lambdas/handlers/dependencies';

const SCAN_SAMPLE = 'docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-scan-INITIAL_SCAN_COMPLETE-ecr.json';
const HUB = { account: '111111111111', region: 'eu-west-1' };
const SPOKE = { account: '222222222222', region: 'eu-west-1' };
const ORGANIZATION = RegistryScope.of({ hub: HUB, spokes: [SPOKE] });
const REPOSITORY = 'apps/payments';
const SPOKE_KEY = `${registryHost(SPOKE.account, SPOKE.region)}/${REPOSITORY}`;
const ROOT = 'enterprise/os';
const OLD = digestFor('payments-before');
const REBUILT = digestFor('payments-rebuilt');

/** The real Inspector2 scan sample, moved to `where` and naming the rebuilt digest of `apps/payments` by ARN. */
function scanEvent(where: { account: string; region: string }): Record<string, unknown> {
  const event = structuredClone(sampleEvent(SCAN_SAMPLE)) as Record<string, any>;
  Object.assign(event, where, { time: '2024-03-01T12:00:00Z' });
  event.detail['repository-name'] = `arn:aws:ecr:${where.region}:${where.account}:repository/${REPOSITORY}`;
  event.detail['image-digest'] = REBUILT;
  return event;
}

/** The seed CVE found on `digest` of `apps/payments` in `where`, first seen at `at`. */
function finding(where: { account: string; region: string }, digest: string, at: string) {
  return { ...parseInspectorFindingEvent(findingEvent({ repository: REPOSITORY, digest, at })), ...where };
}

describe('Function: makeScanCompletedHandler', () => {
  let table: Awaited<ReturnType<typeof startTestTable>>;
  let deps: ScanCompletedDependencies;
  let findings: FindingStore;
  let metrics: LocalMetrics;
  const campaign = campaignId(ROOT, digestFor('os-patched'));

  /** A finding campaign on the seed CVE that rebuilt `image` (keyed as given) to REBUILT, now waiting for its rescan. */
  async function rebuilt(image: string): Promise<void> {
    const node: ImageNode = { image, tier: 'application', owner: 'payments-team', parents: [{ image: ROOT, role: 'runtime' }] };
    await deps.lineage.putImages([{ image: ROOT, tier: 'enterprise', parents: [] }, node]);
    await deps.campaigns.create(
      { campaignId: campaign, rootImage: ROOT, rootDigest: digestFor('os-patched'), trigger: CampaignTrigger.FINDING, reason: SEED_CVE, startedAt: '2024-03-01T10:00:00Z', memberCount: 1, vulnerabilityIds: [SEED_CVE] },
      [{ image, priority: 600, parents: [ROOT] }],
    );
    expect(await deps.campaigns.transition(campaign, image, [MemberState.PENDING], MemberState.BUILT)).toBeTruthy();
    await deps.campaigns.recordBuiltDigest(image, REBUILT, campaign, '2024-03-01T11:00:00Z');
  }

  beforeEach(async () => {
    table = await startTestTable();
    const { client, tableName } = table;
    findings = new FindingStore({ client, tableName });
    metrics = new LocalMetrics();
    deps = {
      ...tableStores({ client, tableName, concurrency: 2 }),
      taskTokens: { succeed: async () => true, fail: async () => true },
      defaultBuildSeconds: 600,
      now: () => new Date('2024-03-01T12:00:00Z'),
      findings,
      metrics,
      registryScope: ORGANIZATION,
    };
  });

  afterEach(async () => {
    await table.stop();
  });

  it('verifies a spoke rebuild keyed by its registry, timing the remediation from the spoke image’s own first sighting', async () => {
    await rebuilt(SPOKE_KEY);
    // The spoke image had the CVE before its rebuild; a same-named hub repository saw it earlier, which is not this image's history.
    await findings.record(SPOKE_KEY, finding(SPOKE, OLD, '2024-03-01T09:00:00Z'));
    await findings.record(REPOSITORY, finding(HUB, digestFor('hub-payments'), '2024-02-01T00:00:00Z'));

    const result = await makeScanCompletedHandler(deps)(scanEvent(SPOKE));

    expect(result).toMatchObject({ repository: REPOSITORY, image: SPOKE_KEY, campaignId: campaign, verdict: ScanVerdict.VERIFIED, stillVulnerable: [], alerts: [] });
    expect((await deps.campaigns.memberStates(campaign, [SPOKE_KEY])).get(SPOKE_KEY)?.state).toBe(MemberState.VERIFIED);
    const remediated = metrics.of(PatchlineMetric.TIME_TO_REMEDIATE);
    expect(remediated.map((r) => r.value)).toEqual([3 * 3600]);
  });

  it('reports a spoke rebuild still vulnerable, alerting its owner about the registry-qualified image', async () => {
    await rebuilt(SPOKE_KEY);
    await findings.record(SPOKE_KEY, finding(SPOKE, REBUILT, '2024-03-01T11:30:00Z'));

    const result = await makeScanCompletedHandler(deps)(scanEvent(SPOKE));

    expect(result).toMatchObject({ image: SPOKE_KEY, verdict: ScanVerdict.STILL_VULNERABLE, stillVulnerable: [SEED_CVE] });
    expect(result.alerts.map((a) => a.attributes)).toEqual([expect.objectContaining({ owner: 'payments-team', image: SPOKE_KEY, vulnerability: SEED_CVE })]);
    expect((await deps.campaigns.memberStates(campaign, [SPOKE_KEY])).get(SPOKE_KEY)?.state).toBe(MemberState.STILL_VULNERABLE);
  });

  it('verifies a spoke rebuild whose digest a same-named hub repository still holds with the CVE', async () => {
    await rebuilt(SPOKE_KEY);
    // Same digest and CVE, but in the hub's registry: another image's finding, keyed apart from the spoke's.
    await findings.record(REPOSITORY, finding(HUB, REBUILT, '2024-03-01T11:30:00Z'));
    await findings.record(SPOKE_KEY, { ...finding(SPOKE, REBUILT, '2024-03-01T11:45:00Z'), status: 'CLOSED' });

    const result = await makeScanCompletedHandler(deps)(scanEvent(SPOKE));

    expect(result).toMatchObject({ image: SPOKE_KEY, verdict: ScanVerdict.VERIFIED, stillVulnerable: [], alerts: [] });
    expect((await findings.get(REPOSITORY, REBUILT, SEED_CVE))?.status).toBe('ACTIVE');
  });

  it('takes a scan of the hub’s same-named repository for no rebuild of the spoke image', async () => {
    await rebuilt(SPOKE_KEY);

    const result = await makeScanCompletedHandler(deps)(scanEvent(HUB));

    expect(result).toMatchObject({ image: REPOSITORY, campaignId: null, verdict: ScanVerdict.NOT_A_REBUILD });
    expect((await deps.campaigns.memberStates(campaign, [SPOKE_KEY])).get(SPOKE_KEY)?.state).toBe(MemberState.BUILT);
  });

  it('keys by repository without an organization, whatever account the scan comes from', async () => {
    deps = { ...deps, registryScope: undefined };
    await rebuilt(REPOSITORY);

    const result = await makeScanCompletedHandler(deps)(scanEvent(SPOKE));

    expect(result).toMatchObject({ image: REPOSITORY, campaignId: campaign, verdict: ScanVerdict.VERIFIED });
    expect((await deps.campaigns.memberStates(campaign, [REPOSITORY])).get(REPOSITORY)?.state).toBe(MemberState.VERIFIED);
  });

  it('refuses a scan from an account that is neither the hub nor a spoke', async () => {
    await rebuilt(SPOKE_KEY);

    await expect(makeScanCompletedHandler(deps)(scanEvent({ account: '333333333333', region: 'eu-west-1' }))).rejects.toThrow(UnconfiguredRegistryError);
    expect((await deps.campaigns.memberStates(campaign, [SPOKE_KEY])).get(SPOKE_KEY)?.state).toBe(MemberState.BUILT);
  });
});
