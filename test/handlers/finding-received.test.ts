import { join } from 'path';
import { createPatchlineTable } from '../../cli/local/dynamodb-emulator';
import { loadLineage } from '../../cli/input-files';
import { InvalidFindingEventError } from '../../lambdas/domain/finding';
import { ImageNode } from '../../lambdas/domain/lineage';
import { parsePolicy, Policy } from '../../lambdas/domain/policy';
import { registryHost, RegistryScope, UnconfiguredRegistryError } from '../../lambdas/domain/registry-scope';
import { HandlerDependencies, tableStores } from '../../lambdas/handlers/dependencies';
import { FindingAction, findingReceivedDependencies, FindingReceivedDependencies, makeFindingReceivedHandler, MissingFindingDependenciesError, policyFromConfig } from '../../lambdas/handlers/finding-received';
import { startTestTable } from '../support/dynamodb';
import { digestFor, FINDING_SAMPLE_2024, findingEvent, findingEventIn, SCAN_SAMPLE_LAMBDA_GO, SEED_CVE, UBI_MIRROR } from '../support/finding-events';
import { projectConfig, REPO_ROOT, sampleEvent } from '../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
const NOW = new Date('2024-03-01T00:00:00Z');

type Emulator = Awaited<ReturnType<typeof startTestTable>>;
let emulator: Emulator;
let tables = 0;
beforeAll(async () => {
  emulator = await startTestTable();
});
afterAll(async () => {
  await emulator.stop();
});

/** The real handler on a fresh table holding the seed lineage. */
async function setup(policy?: Policy, lineage: ImageNode[] = SEED): Promise<{ handle: ReturnType<typeof makeFindingReceivedHandler>; deps: HandlerDependencies }> {
  const tableName = `findings-${++tables}`;
  await createPatchlineTable(emulator.client, tableName);
  const client = emulator.client;
  const config = projectConfig();
  const deps: HandlerDependencies = {
    ...tableStores({ client, tableName, concurrency: 10 }),
    taskTokens: { succeed: async () => true, fail: async () => true },
    defaultBuildSeconds: 600,
    now: () => NOW,
    ...findingReceivedDependencies({ client, tableName, config, ...(policy && { policy }) }),
  };
  await deps.lineage.putImages(lineage);
  return { handle: makeFindingReceivedHandler(deps), deps };
}

describe('Function: makeFindingReceivedHandler', () => {
  it('attributes the seed CVE to the external base, alerts the enterprise owner and starts a rebuild of enterprise/python-311', async () => {
    const { handle, deps } = await setup();
    await handle(findingEvent({ repository: UBI_MIRROR, tag: '1-34' }));
    await handle(findingEvent({ repository: 'enterprise/python-311' }));
    const result = await handle(findingEvent({ repository: 'apps/payments-api' }));
    expect(result).toMatchObject({
      image: 'apps/payments-api',
      outcome: 'ACT',
      action: FindingAction.REBUILD,
      origin: { image: `${UBI_MIRROR}:1-34`, action: 'ALERT_OWNER_UPSTREAM', actionImage: 'enterprise/python-311', evidence: 'observed' },
    });
    const campaign = await deps.campaigns.get(result.campaignId!);
    expect(campaign).toMatchObject({ rootImage: 'enterprise/python-311', trigger: 'finding', vulnerabilityIds: [SEED_CVE] });
    expect((await deps.campaigns.members(result.campaignId!)).map((m) => m.image).sort()).toEqual([
      'apps/orders-api',
      'apps/payments-api',
      'builders/python-ci',
      'enterprise/python-311',
    ]);
  });

  it('alerts the enterprise owner once across the image, its child and the mirrored base, with one campaign', async () => {
    const { handle } = await setup();
    const results = [];
    for (const repository of ['apps/payments-api', 'enterprise/python-311']) results.push(await handle(findingEvent({ repository })));
    results.push(await handle(findingEvent({ repository: UBI_MIRROR, tag: '1-34' })));
    const alerts = results.flatMap((r) => r.alerts);
    expect(alerts.map((a) => a.attributes)).toEqual([
      { owner: 'platform-team', severity: 'HIGH', image: 'enterprise/python-311', kind: 'UPSTREAM_VULNERABLE', vulnerability: SEED_CVE },
    ]);
    expect(alerts[0].subject).toBe('Patchline: HIGH CVE-2023-38545 in enterprise/python-311 - vulnerable upstream base');
    expect(alerts[0].message).toContain('curl 7.76.1-26.el9 → 0:7.76.1-26.el9_3.2');
    expect(alerts[0].message).toContain(`Campaign: ${results[0].campaignId}`);
    expect(JSON.parse(alerts[0].message.split('--- JSON ---\n')[1])).toMatchObject({ kind: 'UPSTREAM_VULNERABLE', owner: 'platform-team' });
    expect(results.map((r) => r.suppressedAlerts)).toEqual([0, 1, 1]);
    expect(new Set(results.map((r) => r.campaignId))).toEqual(new Set([results[0].campaignId]));
    // Later findings join the campaign; while its root still waits they name the same execution, a no-op to start.
    const starts = results.flatMap((r) => r.starts);
    expect(new Set(starts.map((s) => s.name)).size).toBe(1);
    expect(starts[0].input).toMatchObject({ image: 'enterprise/python-311', project: 'enterprise-python-311', baseImage: `${UBI_MIRROR}:1-34` });
  });

  it('does not alert again for a re-sent finding whose timestamps alone changed, and alerts again on escalation', async () => {
    const { handle } = await setup();
    const first = await handle(findingEvent({ repository: 'apps/payments-api', at: '2024-02-01T00:00:00Z' }));
    const resent = await handle(findingEvent({ repository: 'apps/payments-api', at: '2024-02-02T00:00:00Z' }));
    const escalated = await handle(findingEvent({ repository: 'apps/payments-api', at: '2024-02-03T00:00:00Z', severity: 'CRITICAL' }));
    expect(first.alerts).toHaveLength(1);
    expect(resent).toMatchObject({ change: 'UNCHANGED', alerts: [], suppressedAlerts: 1 });
    expect(escalated.change).toBe('CHANGED');
    expect(escalated.alerts.map((a) => a.attributes.severity)).toEqual(['CRITICAL']);
  });

  it('rebuilds at an internal origin that carries the CVE alone, and tells its owner the rebuild started', async () => {
    const { handle } = await setup();
    // The base was scanned and does not list the CVE: the origin is the enterprise image.
    await handle(findingEvent({ repository: UBI_MIRROR, tag: '1-34', vulnerabilityId: 'CVE-2024-6119', packageName: 'openssl' }));
    const result = await handle(findingEvent({ repository: 'apps/orders-api' }));
    expect(result.origin).toMatchObject({ image: 'enterprise/python-311', action: 'REBUILD', evidence: 'inferred' });
    expect(result.action).toBe(FindingAction.REBUILD);
    expect(result.alerts.map((a) => [a.attributes.owner, a.attributes.kind])).toEqual([['platform-team', 'REBUILD_STARTED']]);
    expect(result.starts.map((s) => s.input.image)).toEqual(['enterprise/python-311']);
  });

  it('alerts the vendor contact of a COTS image and never rebuilds it', async () => {
    const { handle } = await setup();
    const result = await handle(findingEvent({ repository: 'vendor/observability-agent', tag: '2.1' }));
    expect(result).toMatchObject({ action: FindingAction.ALERT, campaignId: null, starts: [] });
    expect(result.alerts.map((a) => a.attributes)).toEqual([
      { owner: 'observability-vendor', severity: 'HIGH', image: 'vendor/observability-agent', kind: 'VENDOR_VULNERABLE', vulnerability: SEED_CVE },
    ]);
  });

  it('records an excepted finding without an alert, and alerts when the exception has expired', async () => {
    const { handle, deps } = await setup();
    const exception = { image: 'apps/*', vulnerabilityId: SEED_CVE, reason: 'curl unused at runtime', approver: 'security-lead' };
    await deps.exceptions!.add({ ...exception, expiresAt: '2030-01-01T00:00:00Z' });
    const excepted = await handle(findingEvent({ repository: 'apps/payments-api' }));
    expect(excepted).toMatchObject({ outcome: 'EXCEPTED', action: FindingAction.EXCEPTED, alerts: [], starts: [] });
    await deps.exceptions!.add({ ...exception, expiresAt: '2024-02-01T00:00:00Z' });
    const expired = await handle(findingEvent({ repository: 'apps/payments-api', at: '2024-02-15T00:00:00Z' }));
    expect(expired.outcome).toBe('ACT');
    expect(expired.alerts.map((a) => [a.attributes.owner, a.attributes.kind])).toEqual([
      ['platform-team', 'UPSTREAM_VULNERABLE'],
      ['payments-team', 'EXCEPTION_EXPIRED'],
    ]);
  });

  it.each([
    ['below the severity threshold', { severity: 'MEDIUM' }, 'BELOW_THRESHOLD'],
    ['without a fix', { fixedInVersion: null }, 'NO_FIX'],
    ['closed', { status: 'CLOSED' }, 'INACTIVE'],
    ['suppressed', { status: 'SUPPRESSED' }, 'INACTIVE'],
  ])('records a finding %s without alert or rebuild', async (_name, change, outcome) => {
    const { handle, deps } = await setup();
    const result = await handle(findingEvent({ repository: 'apps/payments-api', ...change }));
    expect(result).toMatchObject({ outcome, action: FindingAction.RECORDED, alerts: [], starts: [] });
    expect(await deps.findings!.forImage('apps/payments-api')).toHaveLength(1);
  });

  it('accepts a CVE from a trusted base by policy', async () => {
    const { handle } = await setup(parsePolicy({ ...policyFromConfig(projectConfig()), trustedBases: ['registry.access.redhat.com/**'] }));
    const result = await handle(findingEvent({ repository: 'apps/payments-api' }));
    expect(result).toMatchObject({ outcome: 'TRUSTED_BASE', action: FindingAction.RECORDED, alerts: [] });
  });

  it('records a finding on an image outside the lineage (the 2024 documentation sample) and alerts nobody', async () => {
    const { handle, deps } = await setup();
    const result = await handle(structuredClone(sampleEvent(FINDING_SAMPLE_2024)));
    expect(result).toMatchObject({ image: null, action: FindingAction.UNTRACKED, alerts: [], starts: [] });
    expect(await deps.findings!.forImage('inspector2')).toHaveLength(1);
  });

  it('records a basic-scan summary (the lambda-go sample): no CVE, no alert', async () => {
    const { handle, deps } = await setup();
    const result = await handle(structuredClone(sampleEvent(SCAN_SAMPLE_LAMBDA_GO)));
    expect(result).toMatchObject({ event: 'ECR Image Scan', action: FindingAction.RECORDED, alerts: [], starts: [] });
    expect(await deps.findings!.getScan('tribble-image-scan-test', result.digest)).toMatchObject({ total: 24, highestSeverity: 'CRITICAL' });
  });

  it('refuses a malformed finding before anything is stored', async () => {
    const { handle, deps } = await setup();
    const event = findingEvent({ repository: 'apps/payments-api' });
    event.detail.resources[0].details.awsEcrContainerImage.repositoryName = 'apps/payments-api;rm -rf /';
    await expect(handle(event)).rejects.toThrow(InvalidFindingEventError);
    expect(await deps.findings!.forImage('apps/payments-api')).toEqual([]);
  });

  it('refuses to run without the finding stores', async () => {
    const { deps } = await setup();
    const { findings: _f, ...without } = deps;
    await expect(makeFindingReceivedHandler(without)(findingEvent({ repository: 'apps/payments-api' }))).rejects.toThrow(MissingFindingDependenciesError);
  });
});

describe('Function: makeFindingReceivedHandler (hub and spoke registries)', () => {
  const HUB = { account: '111111111111', region: 'eu-west-1' };
  const SPOKE = { account: '222222222222', region: 'eu-west-1' };
  const REPOSITORY = 'apps/payments-api';
  const SPOKE_KEY = `${registryHost(SPOKE.account, SPOKE.region)}/${REPOSITORY}`;
  const DIGEST = digestFor('payments-api-in-both-registries');

  /** The hub's apps/payments-api (with a worker built on it) and the spoke's same-named repository, another team's image. */
  async function organizationSetup(
    lineage: ImageNode[] = [
      { image: REPOSITORY, tier: 'application', owner: 'hub-team', parents: [], build: { project: 'hub-payments-api' } },
      { image: 'apps/payments-worker', tier: 'application', owner: 'hub-team', parents: [{ image: REPOSITORY, role: 'runtime' }], build: { project: 'hub-payments-worker' } },
      { image: SPOKE_KEY, tier: 'application', owner: 'payments-team', parents: [], build: { project: 'spoke-payments-api' } },
    ],
  ): Promise<{ handle: ReturnType<typeof makeFindingReceivedHandler>; deps: FindingReceivedDependencies }> {
    const { deps: base } = await setup(undefined, lineage);
    const deps: FindingReceivedDependencies = { ...base, registryScope: RegistryScope.of({ hub: HUB, spokes: [SPOKE] }) };
    return { handle: makeFindingReceivedHandler(deps), deps };
  }

  it('stores the same repository, digest and CVE of two accounts as two findings, each attributed to its own image', async () => {
    const { handle, deps } = await organizationSetup();
    const findings = deps.findings!;

    const hub = await handle(findingEventIn(HUB, { repository: REPOSITORY, digest: DIGEST, at: '2024-02-01T00:00:00Z' }));
    const spoke = await handle(findingEventIn(SPOKE, { repository: REPOSITORY, digest: DIGEST, at: '2024-02-01T00:00:00Z' }));

    // Two new findings (one record would have made the second a re-send), each on its own image and owner.
    expect(hub).toMatchObject({ image: REPOSITORY, change: 'NEW', origin: { image: REPOSITORY, actionImage: REPOSITORY } });
    expect(spoke).toMatchObject({ image: SPOKE_KEY, change: 'NEW', origin: { image: SPOKE_KEY, actionImage: SPOKE_KEY } });
    expect(hub.alerts.map((a) => a.attributes)).toEqual([expect.objectContaining({ owner: 'hub-team', image: REPOSITORY })]);
    expect(spoke.alerts.map((a) => a.attributes)).toEqual([expect.objectContaining({ owner: 'payments-team', image: SPOKE_KEY })]);
    expect((await findings.forImage(REPOSITORY)).map((f) => [f.account, f.region, f.digest])).toEqual([[HUB.account, HUB.region, DIGEST]]);
    expect((await findings.forImage(SPOKE_KEY)).map((f) => [f.account, f.region, f.digest])).toEqual([[SPOKE.account, SPOKE.region, DIGEST]]);

    // The spoke closes its finding: the hub's stays open, and still attributes a worker's CVE to the hub image as seen.
    const closed = await handle(findingEventIn(SPOKE, { repository: REPOSITORY, digest: DIGEST, status: 'CLOSED', at: '2024-02-02T00:00:00Z' }));
    expect(closed).toMatchObject({ image: SPOKE_KEY, change: 'CHANGED', outcome: 'INACTIVE' });
    expect((await findings.get(REPOSITORY, DIGEST, SEED_CVE))?.status).toBe('ACTIVE');
    expect((await findings.get(SPOKE_KEY, DIGEST, SEED_CVE))?.status).toBe('CLOSED');
    const worker = await handle(findingEventIn(HUB, { repository: 'apps/payments-worker', at: '2024-02-03T00:00:00Z' }));
    expect(worker).toMatchObject({ image: 'apps/payments-worker', origin: { image: REPOSITORY, actionImage: REPOSITORY, evidence: 'observed', path: [REPOSITORY, 'apps/payments-worker'] } });
  });

  it('reads an external base’s findings from its mirror in a spoke account', async () => {
    const ubi = `${UBI_MIRROR}:1-34`;
    const { handle, deps } = await organizationSetup([
      { image: ubi, tier: 'external', parents: [] },
      { image: SPOKE_KEY, tier: 'application', owner: 'payments-team', parents: [{ image: ubi, role: 'runtime' }], build: { project: 'spoke-payments-api' } },
    ]);
    const mirrored = await handle(findingEventIn(SPOKE, { repository: UBI_MIRROR, tag: '1-34' }));
    expect(mirrored).toMatchObject({ image: ubi, change: 'NEW' });
    expect(await deps.findings!.forImage(`${registryHost(SPOKE.account, SPOKE.region)}/${UBI_MIRROR}`)).toHaveLength(1);

    const result = await handle(findingEventIn(SPOKE, { repository: REPOSITORY }));
    // Seen on the mirror (not merely assumed): the spoke's mirror is searched like the hub's.
    expect(result).toMatchObject({ image: SPOKE_KEY, origin: { image: ubi, action: 'ALERT_OWNER_UPSTREAM', actionImage: SPOKE_KEY, evidence: 'observed' } });
  });

  it('keys a spoke’s basic-scan summary by its registry', async () => {
    const { handle, deps } = await organizationSetup();
    const event = { ...structuredClone(sampleEvent(SCAN_SAMPLE_LAMBDA_GO)), ...SPOKE };
    const result = await handle(event);
    expect(result).toMatchObject({ event: 'ECR Image Scan', action: FindingAction.RECORDED });
    const spokeKey = `${registryHost(SPOKE.account, SPOKE.region)}/tribble-image-scan-test`;
    expect(await deps.findings!.getScan(spokeKey, result.digest)).toMatchObject({ account: SPOKE.account, total: 24 });
    expect(await deps.findings!.getScan('tribble-image-scan-test', result.digest)).toBeUndefined();
  });

  it('refuses a finding from an account that is neither the hub nor a spoke, before anything is stored', async () => {
    const { handle, deps } = await organizationSetup();
    const elsewhere = { account: '333333333333', region: 'eu-west-1' };
    await expect(handle(findingEventIn(elsewhere, { repository: REPOSITORY, digest: DIGEST }))).rejects.toThrow(UnconfiguredRegistryError);
    expect(await deps.findings!.forImage(REPOSITORY)).toEqual([]);
    expect(await deps.findings!.listOpen()).toEqual([]);
  });
});
