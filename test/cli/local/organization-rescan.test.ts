import { Finding } from '@aws-sdk/client-inspector2';
import { readFileSync } from 'fs';
import { join } from 'path';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { LocalScanners, localScannersFor } from '../../../cli/local/local-scanners';
import { CfnTemplate, LOCAL_ACCOUNT, LOCAL_REGION, synthesizeTemplate } from '../../../cli/local/synthesized-template';
import { normalizeListedFinding } from '../../../lambdas/aws/inspector-findings';
import { OciRegistryClient } from '../../../lambdas/aws/oci-registry';
import { parseConfig, PatchlineConfig } from '../../../lambdas/domain/config';
import { ImageNode } from '../../../lambdas/domain/lineage';
import { MetricDimension, PatchlineMetric } from '../../../lambdas/domain/patchline-metric';
import { hubAccessRoleArn, registryHost } from '../../../lambdas/domain/registry-scope';
import { DigestResult, makeRegistryRescanHandler, RESCAN_SESSION_NAME } from '../../../lambdas/handlers/registry-rescan';
import { RESCAN_WORKFLOW_ID } from '../../../lib/rescan-workflow';
import { listedFinding } from '../../support/inspector-findings';
import { ensureRegistryBinary, pushImage, RunningRegistry, startRegistry } from '../../support/registry-process';
import { digestOf, REPO_ROOT } from '../../support/template';

const HUB = { account: '111111111111', region: 'eu-west-1' };
const PAYMENTS = { account: '222222222222', region: 'eu-west-1' };
const ORDERS = { account: '333333333333', region: 'us-east-1' };
const STRANGER = { account: '444444444444', region: 'eu-west-1' };
type Where = typeof HUB;

const key = (where: Where, repository: string): string => `${registryHost(where.account, where.region)}/${repository}`;
const UBI = 'registry.access.redhat.com/ubi9/python-311:1-34';
const ENTERPRISE = 'enterprise/python-311';
/** The hub's own repository of the same name as the payments account's image. */
const HUB_PAYMENTS = 'apps/payments-api';
const SPOKE_PAYMENTS = key(PAYMENTS, 'apps/payments-api');
const SPOKE_ORDERS = key(ORDERS, 'apps/orders-api');
const registryStatus = ensureRegistryBinary();
const describeWithRegistry = registryStatus.available ? describe : describe.skip;

/** The shipped example: hub in eu-west-1, payments in eu-west-1 (same region), orders in us-east-1. */
function exampleConfig(): PatchlineConfig {
  return parseConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'examples/organization.config.json'), 'utf8')));
}

/** Two team images sitting directly on the upstream base, and a hub repository named like the payments one. */
function lineage(): ImageNode[] {
  const image = (name: string, parent: string, owner: string, project: string): ImageNode => ({
    image: name,
    tier: 'application',
    owner,
    parents: [{ image: parent, role: 'runtime' }],
    build: { project },
  });
  return [
    { ...image(ENTERPRISE, UBI, 'platform-team', 'enterprise-python-311'), tier: 'enterprise' },
    image(HUB_PAYMENTS, ENTERPRISE, 'platform-team', 'apps-payments-api'),
    image(SPOKE_PAYMENTS, UBI, 'payments-team', 'apps-payments-api'),
    image(SPOKE_ORDERS, UBI, 'orders-team', 'apps-orders-api'),
  ];
}

/** A finding as ListFindings returns it for an image of `where` (a delegated administrator lists its members' too). */
function listedFindingIn(where: Where, change: Parameters<typeof listedFinding>[0]): Finding {
  const finding = listedFinding(change) as Record<string, any>;
  const rewrite = (arn: string): string => arn.replace(/:us-east-1:123456789012:/, `:${where.region}:${where.account}:`);
  finding.awsAccountId = where.account;
  finding.findingArn = rewrite(finding.findingArn);
  for (const resource of finding.resources) {
    resource.id = rewrite(resource.id);
    resource.region = where.region;
    resource.details.awsEcrContainerImage.registry = where.account;
    resource.details.image.registry = where.account;
  }
  return finding as Finding;
}

function rescanArn(template: CfnTemplate): string {
  const logicalId = Object.keys(template.Resources).find((id) => template.Resources[id].Type === 'AWS::StepFunctions::StateMachine' && id.startsWith(`${RESCAN_WORKFLOW_ID}StateMachine`))!;
  return `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${logicalId}`;
}

/** Runs the synthesized registry-rescan state machine once, to the end of everything it started. */
async function rescan(runtime: LocalRuntime, template: CfnTemplate): Promise<{ output: DigestResult; states: string[] }> {
  const started = await runtime.stepFunctions.startExecution(rescanArn(template), { nextToken: '' });
  await runtime.runUntilQuiet();
  const execution = runtime.stepFunctions.allExecutions.find((e) => e.arn === started.executionArn)!;
  expect(execution.error).toBeUndefined();
  expect(execution.status).toBe('SUCCEEDED');
  return { output: execution.output as DigestResult, states: execution.states };
}

describe('State machine: registry-rescan (organization, synthesized ASL, local runtime)', () => {
  const config = exampleConfig();
  let template: CfnTemplate;
  let runtime: LocalRuntime | undefined;
  beforeAll(() => {
    template = synthesizeTemplate(config);
  });
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  describe('a spoke image named like a hub repository', () => {
    const U0 = digestOf('ubi-0');
    const U1 = digestOf('ubi-1');
    const E1 = digestOf('enterprise-1');
    const HUB_DIGEST = digestOf('hub-payments');
    const SPOKE_DIGEST = digestOf('spoke-payments');
    const hubFixed = { repository: 'apps/payments-api', digest: HUB_DIGEST, vulnerabilityId: 'CVE-2024-1001' };
    const spokeOpen = { repository: 'apps/payments-api', digest: SPOKE_DIGEST, vulnerabilityId: 'CVE-2024-1002' };
    let scanners: LocalScanners;

    beforeEach(async () => {
      runtime = await LocalRuntime.start({ config, lineage: lineage(), template });
      scanners = localScannersFor(runtime.deps);
      const { lineage: store, findings } = runtime.deps;
      await store.putVersion({ image: UBI, digest: U0, tags: ['1-34'], pushedAt: '2025-01-01T00:00:00Z' });
      await store.putVersion({ image: UBI, digest: U1, tags: ['1-34'], pushedAt: '2025-03-01T00:00:00Z' });
      await store.putVersion({ image: ENTERPRISE, digest: E1, tags: ['1'], pushedAt: '2025-03-02T00:00:00Z', parentDigests: { [UBI]: U1 } });
      await store.putVersion({ image: HUB_PAYMENTS, digest: HUB_DIGEST, tags: ['1'], pushedAt: '2025-03-03T00:00:00Z', parentDigests: { [ENTERPRISE]: E1 } });
      // The payments account's image was last built on the older upstream base: one version behind.
      await store.putVersion({ image: SPOKE_PAYMENTS, digest: SPOKE_DIGEST, tags: ['1'], pushedAt: '2025-01-03T00:00:00Z', parentDigests: { [UBI]: U0 } });
      await store.putVersion({ image: SPOKE_ORDERS, digest: digestOf('orders'), tags: ['1'], pushedAt: '2025-03-03T00:00:00Z', parentDigests: { [UBI]: U1 } });
      // The hub's registry, as the rescan lists it.
      scanners.backend.addImage(ENTERPRISE, E1, { tags: ['1'], pushedAt: '2025-03-02T00:00:00Z' });
      scanners.backend.addImage(HUB_PAYMENTS, HUB_DIGEST, { tags: ['1'], pushedAt: '2025-03-03T00:00:00Z' });
      // Stored from events: one finding of each registry, each under its own key.
      await findings!.record(HUB_PAYMENTS, normalizeListedFinding(listedFindingIn(HUB, { ...hubFixed, at: '2025-02-01T00:00:00Z' })));
      await findings!.record(SPOKE_PAYMENTS, normalizeListedFinding(listedFindingIn(PAYMENTS, { ...spokeOpen, at: '2025-02-01T00:00:00Z' })));
    });

    it('reconciles the hub repository under its bare key and leaves the spoke image\'s findings under its qualified key to the spoke\'s sweep', async () => {
      const { states } = await rescan(runtime!, template);
      expect(states).not.toContain('RepositoryFailed');
      const { findings } = runtime!.deps;
      // Fixed in the hub (Inspector2 no longer lists it): closed under the bare key.
      const hub = await findings!.get(HUB_PAYMENTS, hubFixed.digest, hubFixed.vulnerabilityId);
      expect(hub?.status).toBe('CLOSED');
      expect(hub?.account).toBe(HUB.account);
      // The hub's sweep reads its own registry only; the payments account's registry (empty here: its repository is not
      // listed) is swept with its own role, so its finding is neither closed nor touched.
      const spoke = await findings!.get(SPOKE_PAYMENTS, spokeOpen.digest, spokeOpen.vulnerabilityId);
      expect(spoke?.status).toBe('ACTIVE');
      expect(spoke?.history.map((h) => h.status)).toEqual(['ACTIVE']);
      expect(spoke?.account).toBe(PAYMENTS.account);
      expect(await findings!.forImage(HUB_PAYMENTS)).toEqual([expect.objectContaining({ vulnerabilityId: hubFixed.vulnerabilityId })]);
    });

    it('does not take findings of other accounts that a delegated-administrator Inspector2 lists with the hub repository as its own', async () => {
      // The same image digest in the payments account's repository of the same name still has the hub's fixed CVE,
      // and another CVE; an account that is not configured has the repository too.
      scanners.backend.putFinding(listedFindingIn(PAYMENTS, { ...hubFixed, at: '2025-04-01T00:00:00Z' }));
      scanners.backend.putFinding(listedFindingIn(PAYMENTS, { ...spokeOpen, vulnerabilityId: 'CVE-2024-1003', at: '2025-04-01T00:00:00Z' }));
      scanners.backend.putFinding(listedFindingIn(STRANGER, { ...hubFixed, vulnerabilityId: 'CVE-2024-1004', at: '2025-04-01T00:00:00Z' }));
      const { states } = await rescan(runtime!, template);
      expect(states).not.toContain('RepositoryFailed');
      const { findings } = runtime!.deps;
      // Another account's finding of the same digest and CVE does not keep the hub's open.
      expect((await findings!.get(HUB_PAYMENTS, hubFixed.digest, hubFixed.vulnerabilityId))?.status).toBe('CLOSED');
      // Nothing of theirs is recorded by the rescan, under any key: spoke findings arrive as forwarded events.
      expect((await findings!.forImage(HUB_PAYMENTS)).map((f) => f.vulnerabilityId)).toEqual([hubFixed.vulnerabilityId]);
      expect((await findings!.forImage(SPOKE_PAYMENTS)).map((f) => f.vulnerabilityId)).toEqual([spokeOpen.vulnerabilityId]);
      expect(await findings!.forImage(key(STRANGER, 'apps/payments-api'))).toEqual([]);
      expect(runtime!.result().alerts.filter((a) => a.kind !== 'DIGEST')).toEqual([]);
      expect(runtime!.codebuild.builds).toEqual([]);
    });

    it('attributes the spoke image\'s open findings and drift to its owner in the digest, apart from the same-named hub image', async () => {
      const { output } = await rescan(runtime!, template);
      expect(output.drifted).toEqual([{ image: SPOKE_PAYMENTS, owner: 'payments-team', versionsBehind: 1, daysBehind: expect.any(Number), parents: [UBI] }]);
      expect(output.openFindings).toBe(1);

      const digests = runtime!.sns.published.filter((m) => m.attributes.kind === 'DIGEST');
      expect(digests.map((d) => d.attributes.owner).sort()).toEqual(['payments-team']);
      const json = JSON.parse(digests[0].message.split('--- JSON ---\n')[1]);
      expect(json.entries).toEqual([expect.objectContaining({ image: SPOKE_PAYMENTS, vulnerabilityId: spokeOpen.vulnerabilityId, severity: 'HIGH' })]);
      expect(json.drifted).toEqual([expect.objectContaining({ image: SPOKE_PAYMENTS, versionsBehind: 1, parents: [UBI] })]);

      // The open-findings gauge counts it for its owner, not for the owner of the hub repository of that name.
      const gauge = (owner: string): number => runtime!.metrics.total(PatchlineMetric.OPEN_FINDINGS, { [MetricDimension.OWNER]: owner, [MetricDimension.SEVERITY]: 'HIGH' });
      expect(gauge('payments-team')).toBe(1);
      expect(gauge('platform-team')).toBe(0);
    });
  });

  describe('the spokes\' registries, swept through their hub-access roles', () => {
    const SPOKE_DIGEST = digestOf('spoke-payments');
    const OLD_SPOKE_DIGEST = digestOf('spoke-payments-old');
    const HUB_DIGEST = digestOf('hub-payments');
    const ORDERS_DIGEST = digestOf('orders');
    /** Forwarded and stored; fixed since, so the spoke's Inspector2 no longer lists it. */
    const spokeFixed = { repository: 'apps/payments-api', digest: SPOKE_DIGEST, vulnerabilityId: 'CVE-2024-1002' };
    /** Found in the spoke, its forwarded event missed. */
    const spokeMissed = { repository: 'apps/payments-api', digest: SPOKE_DIGEST, vulnerabilityId: 'CVE-2024-2001', severity: 'MEDIUM' };
    /** Open in the hub's repository of the same name, listed by the hub's Inspector2. */
    const hubOpen = { repository: 'apps/payments-api', digest: HUB_DIGEST, vulnerabilityId: 'CVE-2024-1001', severity: 'MEDIUM' };
    let scanners: LocalScanners;

    beforeEach(async () => {
      runtime = await LocalRuntime.start({ config, lineage: lineage(), template });
      scanners = localScannersFor(runtime.deps);
      const { findings } = runtime.deps;
      scanners.backend.addImage(HUB_PAYMENTS, HUB_DIGEST, { tags: ['1'], pushedAt: '2025-03-03T00:00:00Z' });
      scanners.backend.putFinding(listedFindingIn(HUB, { ...hubOpen, at: '2025-02-01T00:00:00Z' }));
      await findings!.record(HUB_PAYMENTS, normalizeListedFinding(listedFindingIn(HUB, { ...hubOpen, at: '2025-02-01T00:00:00Z' })));
      // The payments account's registry: its image (and an older, untagged digest), a repository it does not let
      // Patchline sweep, and Inspector2 listing the finding whose event was missed.
      const payments = scanners.spokeScanners.backend(PAYMENTS);
      payments.addImage('apps/payments-api', SPOKE_DIGEST, { tags: ['1'], pushedAt: '2025-03-03T00:00:00Z' });
      payments.addImage('apps/payments-api', OLD_SPOKE_DIGEST, { pushedAt: '2025-01-03T00:00:00Z' });
      payments.addImage('scratch/tools', digestOf('scratch'), { tags: ['1'] });
      payments.putFinding(listedFindingIn(PAYMENTS, { ...spokeMissed, at: '2025-04-01T00:00:00Z' }));
      scanners.spokeScanners.backend(ORDERS).addImage('apps/orders-api', ORDERS_DIGEST, { tags: ['1'] });
      await findings!.record(SPOKE_PAYMENTS, normalizeListedFinding(listedFindingIn(PAYMENTS, { ...spokeFixed, at: '2025-02-01T00:00:00Z' })));
    });

    const assumed = (): Array<Record<string, unknown>> =>
      runtime!.calls.filter((c) => c.service === 'sts' && c.action === 'AssumeRole' && (c.parameters as { RoleSessionName: string }).RoleSessionName === RESCAN_SESSION_NAME).map((c) => ({ ...(c.parameters as object), ...(c.outcome && { outcome: c.outcome }) }));

    it('recovers a spoke finding whose forwarded event was missed, under the spoke image\'s key', async () => {
      const { states } = await rescan(runtime!, template);
      expect(states).not.toContain('RepositoryFailed');
      const recovered = await runtime!.deps.findings!.get(SPOKE_PAYMENTS, spokeMissed.digest, spokeMissed.vulnerabilityId);
      expect(recovered).toMatchObject({ status: 'ACTIVE', account: PAYMENTS.account, region: PAYMENTS.region, repository: 'apps/payments-api', severity: 'MEDIUM' });
      // Under the spoke key only: not under the hub's repository of that name, nor the bare name.
      expect((await runtime!.deps.findings!.forImage(HUB_PAYMENTS)).map((f) => f.vulnerabilityId)).toEqual([hubOpen.vulnerabilityId]);
    });

    it('closes a spoke finding its Inspector2 no longer lists', async () => {
      await rescan(runtime!, template);
      const closed = await runtime!.deps.findings!.get(SPOKE_PAYMENTS, spokeFixed.digest, spokeFixed.vulnerabilityId);
      expect(closed?.status).toBe('CLOSED');
      expect(closed?.history.map((h) => h.status)).toEqual(['ACTIVE', 'CLOSED']);
      expect(closed?.account).toBe(PAYMENTS.account);
    });

    it('assumes each spoke\'s role once, in its own region, and reads there only the repositories configured for it', async () => {
      await rescan(runtime!, template);
      expect(assumed()).toEqual([
        { RoleArn: hubAccessRoleArn(PAYMENTS.account, PAYMENTS.region), RoleSessionName: RESCAN_SESSION_NAME, DurationSeconds: 3600, Region: PAYMENTS.region },
        { RoleArn: hubAccessRoleArn(ORDERS.account, ORDERS.region), RoleSessionName: RESCAN_SESSION_NAME, DurationSeconds: 3600, Region: ORDERS.region },
      ]);
      // One listing page and one repository (apps/payments-api; scratch/tools is not among apps/payments*) per spoke.
      expect(scanners.spokeScanners.backend(PAYMENTS).calls).toEqual({ DescribeRepositories: 1, DescribeImages: 1, ListFindings: 1 });
      expect(scanners.spokeScanners.backend(ORDERS).calls).toEqual({ DescribeRepositories: 1, DescribeImages: 1, ListFindings: 1 });
      // The hub's own apps/payments-api is swept by the hub as before, its finding left open and unchanged.
      const hub = await runtime!.deps.findings!.get(HUB_PAYMENTS, hubOpen.digest, hubOpen.vulnerabilityId);
      expect(hub).toMatchObject({ status: 'ACTIVE', account: HUB.account });
      expect(hub?.history.map((h) => h.status)).toEqual(['ACTIVE']);
      expect(scanners.backend.calls.DescribeImages).toBe(1);
      expect(runtime!.metrics.total(PatchlineMetric.RESCAN_SPOKES_UNREACHABLE, {})).toBe(0);
    });

    it('fails only a refusing spoke: its repositories are skipped and counted, the other spoke and the hub are swept', async () => {
      scanners.spokeScanners.refuse(hubAccessRoleArn(ORDERS.account, ORDERS.region));
      const { states } = await rescan(runtime!, template);
      expect(states).not.toContain('RepositoryFailed');
      expect(assumed()).toEqual([
        expect.objectContaining({ RoleArn: hubAccessRoleArn(PAYMENTS.account, PAYMENTS.region), Region: PAYMENTS.region }),
        expect.objectContaining({ RoleArn: hubAccessRoleArn(ORDERS.account, ORDERS.region), Region: ORDERS.region, outcome: 'AccessDenied' }),
      ]);
      expect(scanners.spokeScanners.backend(ORDERS).calls).toEqual({});
      expect((await runtime!.deps.findings!.get(SPOKE_PAYMENTS, spokeFixed.digest, spokeFixed.vulnerabilityId))?.status).toBe('CLOSED');
      expect((await runtime!.deps.findings!.get(SPOKE_PAYMENTS, spokeMissed.digest, spokeMissed.vulnerabilityId))?.status).toBe('ACTIVE');
      expect(runtime!.metrics.total(PatchlineMetric.RESCAN_SPOKES_UNREACHABLE, {})).toBe(1);
    });

    it('fails a refusing spoke\'s repository item with an error naming its role and region', async () => {
      scanners.spokeScanners.refuse(hubAccessRoleArn(ORDERS.account, ORDERS.region));
      const rescanStep = makeRegistryRescanHandler(runtime!.deps, scanners);
      await expect(rescanStep({ action: 'rescanRepository', repository: { ...ORDERS, repository: 'apps/orders-api' } })).rejects.toThrow(
        `could not assume ${hubAccessRoleArn(ORDERS.account, ORDERS.region)} in ${ORDERS.region} to read the spoke's registry`,
      );
      await expect(rescanStep({ action: 'rescanRepository', repository: { ...ORDERS, repository: 'apps/orders-api' } })).rejects.toMatchObject({ name: 'SpokeRegistryAccessError', code: 'SPOKE_REGISTRY_ACCESS_DENIED' });
    });

    it('fails an item of a repository or registry the configuration does not sweep, before assuming any role', async () => {
      const rescanStep = makeRegistryRescanHandler(runtime!.deps, scanners);
      await expect(rescanStep({ action: 'rescanRepository', repository: { ...PAYMENTS, repository: 'scratch/tools' } })).rejects.toMatchObject({ name: 'UnsweptRepositoryError', code: 'UNSWEPT_REPOSITORY' });
      await expect(rescanStep({ action: 'rescanRepository', repository: { ...STRANGER, repository: 'apps/payments-api' } })).rejects.toThrow(/444444444444\/eu-west-1 is not among the spokes' configured repositories/);
      await expect(rescanStep({ action: 'rescanRepository', repository: { ...PAYMENTS, account: '22', repository: 'apps/payments-api' } })).rejects.toMatchObject({ name: 'InvalidRescanInputError' });
      await expect(rescanStep({ action: 'listRepositories', nextToken: '9/abc' })).rejects.toThrow(/nextToken: not a rescan cursor <registry 0-2>/);
      expect(assumed()).toEqual([]);
    });
  });

  describeWithRegistry('an upstream base a spoke image sits on moves', () => {
    let registry: RunningRegistry;
    let oldUbi: string;
    let newUbi: string;
    beforeAll(async () => {
      registry = await startRegistry();
      oldUbi = (await pushImage(registry.url, 'ubi9/python-311', '1-34', { layers: [{ 'etc/release': 'ubi 9.3\n' }] })).digest;
      newUbi = (await pushImage(registry.url, 'ubi9/python-311', '1-34', { layers: [{ 'etc/release': 'ubi 9.4\n' }] })).digest;
    }, 60_000);
    afterAll(async () => {
      await registry?.stop();
    });

    it('starts one campaign whose rebuild of each spoke image runs in that spoke, through its role, pinned to the new base', async () => {
      runtime = await LocalRuntime.start({ config, lineage: lineage(), template });
      localScannersFor(runtime.deps).registry = new OciRegistryClient({ endpoints: { 'registry.access.redhat.com': registry.url } });
      await runtime.deps.lineage.putVersion({ image: UBI, digest: oldUbi, tags: ['1-34'], pushedAt: '2025-01-01T00:00:00Z' });
      await rescan(runtime, template);

      const [campaign, ...others] = await runtime.deps.campaigns.list();
      expect(others).toEqual([]);
      expect(campaign).toMatchObject({ trigger: 'upstream', rootImage: UBI, rootDigest: newUbi });
      const members = await runtime.deps.campaigns.memberStates(campaign.campaignId, [ENTERPRISE, HUB_PAYMENTS, SPOKE_PAYMENTS, SPOKE_ORDERS]);
      expect([...members.keys()].sort()).toEqual([ENTERPRISE, HUB_PAYMENTS, SPOKE_PAYMENTS, SPOKE_ORDERS].sort());

      // What upstream-watch asked for: each image directly on the moved base, placed where image-pushed places it.
      const requested = new Map(
        runtime.stepFunctions.allExecutions
          .filter((e) => e.stateMachine.endsWith('rebuild-image'))
          .map((e) => [(e.input as { image: string }).image, e.input as Record<string, unknown>]),
      );
      const pin = `registry.access.redhat.com/ubi9/python-311@${newUbi}`;
      expect(requested.get(SPOKE_PAYMENTS)).toMatchObject({
        campaignId: campaign.campaignId,
        baseImage: pin,
        buildAccount: PAYMENTS.account,
        buildRegion: PAYMENTS.region,
        buildRoleArn: hubAccessRoleArn(PAYMENTS.account, PAYMENTS.region),
      });
      expect(requested.get(SPOKE_ORDERS)).toMatchObject({ baseImage: pin, buildAccount: ORDERS.account, buildRegion: ORDERS.region, buildRoleArn: hubAccessRoleArn(ORDERS.account, ORDERS.region) });
      expect(requested.get(ENTERPRISE)).toMatchObject({ baseImage: pin, buildAccount: HUB.account, buildRegion: HUB.region });
      expect(requested.get(ENTERPRISE)).not.toHaveProperty('buildRoleArn');

      // And where the builds ran: each spoke image in its own account (orders outside the hub region, remotely), the
      // hub's images, the same-named apps/payments-api included, in the hub with no role.
      const builds = new Map(runtime.codebuild.builds.map((b) => [b.image, b]));
      expect([...builds.keys()].sort()).toEqual([ENTERPRISE, HUB_PAYMENTS, SPOKE_PAYMENTS, SPOKE_ORDERS].sort());
      expect(builds.get(SPOKE_PAYMENTS)).toMatchObject({ status: 'SUCCEEDED', baseImage: pin, roleArn: hubAccessRoleArn(PAYMENTS.account, PAYMENTS.region), registry: PAYMENTS });
      expect(builds.get(SPOKE_PAYMENTS)!.buildRegion).toBeUndefined();
      expect(builds.get(SPOKE_ORDERS)).toMatchObject({ status: 'SUCCEEDED', baseImage: pin, roleArn: hubAccessRoleArn(ORDERS.account, ORDERS.region), registry: ORDERS, buildRegion: ORDERS.region });
      for (const image of [ENTERPRISE, HUB_PAYMENTS]) {
        expect(builds.get(image)!.status).toBe('SUCCEEDED');
        expect(builds.get(image)!.roleArn).toBeUndefined();
        expect(builds.get(image)!.registry).toBeUndefined();
      }
      expect(new Set([...builds.values()].map((b) => b.campaign))).toEqual(new Set([campaign.campaignId]));
      expect(runtime.result().deadLetters).toEqual([]);
      expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
    });
  });
});
