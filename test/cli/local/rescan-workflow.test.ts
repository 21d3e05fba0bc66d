import { join } from 'path';
import { loadLineage } from '../../../cli/input-files';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { LocalScanners, localScannersFor } from '../../../cli/local/local-scanners';
import { LOCAL_ACCOUNT, LOCAL_REGION } from '../../../cli/local/synthesized-template';
import { OciRegistryClient } from '../../../lambdas/aws/oci-registry';
import { normalizeListedFinding } from '../../../lambdas/aws/inspector-findings';
import { DigestResult } from '../../../lambdas/handlers/registry-rescan';
import { RESCAN_WORKFLOW_ID } from '../../../lib/rescan-workflow';
import { listedFinding } from '../../support/inspector-findings';
import { ensureRegistryBinary, pushImage, RunningRegistry, startRegistry } from '../../support/registry-process';
import { digestOf, projectConfig, projectTemplate, REPO_ROOT } from '../../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
const UBI = 'registry.access.redhat.com/ubi9/python-311:1-34';
const ENTERPRISE = 'enterprise/python-311';
const E0 = digestOf('enterprise-0');
const E1 = digestOf('enterprise-1');
const status = ensureRegistryBinary();
const describeWithRegistry = status.available ? describe : describe.skip;

function rescanArn(): string {
  const resources = projectTemplate().Resources;
  const logicalId = Object.keys(resources).find((id) => resources[id].Type === 'AWS::StepFunctions::StateMachine' && id.startsWith(`${RESCAN_WORKFLOW_ID}StateMachine`))!;
  return `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${logicalId}`;
}

async function seed(runtime: LocalRuntime, scanners: LocalScanners, oldUbi: string): Promise<void> {
  const { lineage } = runtime.deps;
  await lineage.putVersion({ image: UBI, digest: oldUbi, tags: ['1-34'], pushedAt: '2025-01-01T00:00:00Z' });
  await lineage.putVersion({ image: ENTERPRISE, digest: E0, tags: ['1'], pushedAt: '2025-01-02T00:00:00Z', parentDigests: { [UBI]: oldUbi } });
  await lineage.putVersion({ image: ENTERPRISE, digest: E1, tags: ['2'], pushedAt: '2025-03-02T00:00:00Z', parentDigests: { [UBI]: oldUbi } });
  // payments-api was last built on E0: one enterprise version behind. orders-api records no parent digest.
  await lineage.putVersion({ image: 'apps/payments-api', digest: digestOf('pay'), tags: ['1'], pushedAt: '2025-01-03T00:00:00Z', parentDigests: { [ENTERPRISE]: E0 } });
  await lineage.putVersion({ image: 'apps/orders-api', digest: digestOf('orders'), tags: ['1'], pushedAt: '2025-01-03T00:00:00Z' });
  scanners.backend.addImage(ENTERPRISE, E0, { pushedAt: '2025-01-02T00:00:00Z' });
  scanners.backend.addImage(ENTERPRISE, E1, { tags: ['2'], pushedAt: '2025-03-02T00:00:00Z' });
  scanners.backend.addImage('apps/payments-api', digestOf('pay'), { tags: ['1'], pushedAt: '2025-01-03T00:00:00Z' });
  scanners.backend.addImage('apps/orders-api', digestOf('orders'), { tags: ['1'], pushedAt: '2025-01-03T00:00:00Z' });
  scanners.backend.addImage('scratch/unconfigured', digestOf('scratch'));
}

describeWithRegistry('State machine: registry-rescan (synthesized ASL, local runtime)', () => {
  let registry: RunningRegistry;
  let runtime: LocalRuntime;
  let scanners: LocalScanners;
  let output: DigestResult;
  let newUbi: string;
  const fixedCve = { repository: 'apps/payments-api', digest: digestOf('pay'), vulnerabilityId: 'CVE-2024-0001' };
  const missedCve = { repository: 'apps/orders-api', digest: digestOf('orders'), vulnerabilityId: 'CVE-2024-0002', severity: 'CRITICAL' };
  const waivedCve = { repository: 'apps/payments-api', digest: digestOf('pay'), vulnerabilityId: 'CVE-2024-0003' };

  beforeAll(async () => {
    registry = await startRegistry();
    const oldUbi = (await pushImage(registry.url, 'ubi9/python-311', '1-34', { layers: [{ 'etc/release': 'ubi 9.3\n' }] })).digest;
    newUbi = (await pushImage(registry.url, 'ubi9/python-311', '1-34', { layers: [{ 'etc/release': 'ubi 9.4\n' }] })).digest;
    runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
    scanners = localScannersFor(runtime.deps);
    scanners.registry = new OciRegistryClient({ endpoints: { 'registry.access.redhat.com': registry.url } });
    await seed(runtime, scanners, oldUbi);
    // Stored from events: the fixed CVE (Inspector has closed it since) and the waived one.
    await runtime.deps.findings!.record('apps/payments-api', normalizeListedFinding(listedFinding({ ...fixedCve, at: '2025-02-01T00:00:00Z' })));
    await runtime.deps.findings!.record('apps/payments-api', normalizeListedFinding(listedFinding({ ...waivedCve, at: '2025-02-01T00:00:00Z' })));
    await runtime.deps.exceptions!.add({ image: 'apps/payments-api', vulnerabilityId: waivedCve.vulnerabilityId, reason: 'not reachable', approver: 'sec-lead', expiresAt: '2025-03-01T00:00:00Z' });
    scanners.backend.putFinding(listedFinding({ ...waivedCve, at: '2025-02-01T00:00:00Z' }));
    // The missed one: listed by Inspector2, never received as an event.
    scanners.backend.putFinding(listedFinding({ ...missedCve, at: '2025-06-01T00:00:00Z' }));

    const started = await runtime.stepFunctions.startExecution(rescanArn(), { nextToken: '' });
    await runtime.runUntilQuiet();
    const execution = runtime.stepFunctions.allExecutions.find((e) => e.arn === started.executionArn)!;
    expect(execution.error).toBeUndefined();
    expect(execution.status).toBe('SUCCEEDED');
    output = execution.output as DigestResult;
  }, 120_000);

  afterAll(async () => {
    await runtime?.stop();
    await registry?.stop();
  });

  it('picks up a missed finding and acts on it as finding-received would', async () => {
    const stored = await runtime.deps.findings!.get(missedCve.repository, missedCve.digest, missedCve.vulnerabilityId);
    expect(stored?.status).toBe('ACTIVE');
    const alerts = runtime.result().alerts.filter((a) => a.vulnerability === missedCve.vulnerabilityId);
    // finding-received attributes the sample's OS package to the shared enterprise base: its owner hears of it.
    expect(alerts).toEqual([expect.objectContaining({ owner: 'platform-team', kind: 'UPSTREAM_VULNERABLE', image: ENTERPRISE })]);
  });

  it('closes a stored finding the scanner no longer lists', async () => {
    const stored = await runtime.deps.findings!.get(fixedCve.repository, fixedCve.digest, fixedCve.vulnerabilityId);
    expect(stored?.status).toBe('CLOSED');
    expect(stored?.history.map((h) => h.status)).toEqual(['ACTIVE', 'CLOSED']);
  });

  it('turns an expired exception into an EXCEPTION_EXPIRED alert to the owner', () => {
    expect(runtime.result().alerts).toEqual(
      expect.arrayContaining([{ owner: 'payments-team', kind: 'EXCEPTION_EXPIRED', image: 'apps/payments-api', vulnerability: waivedCve.vulnerabilityId }]),
    );
  });

  it('starts a rebuild campaign at the first internal image below a moved upstream tag', async () => {
    const campaigns = await runtime.deps.campaigns.list();
    const upstream = campaigns.find((c) => c.trigger === 'upstream');
    expect(upstream).toMatchObject({ rootImage: UBI, rootDigest: newUbi });
    const enterpriseBuild = runtime.result().builds.find((b) => b.image === ENTERPRISE && b.campaign === upstream!.campaignId);
    expect(enterpriseBuild?.baseImage).toBe(`registry.access.redhat.com/ubi9/python-311@${newUbi}`);
    expect((await runtime.deps.lineage.currentVersion(UBI))?.digest).toBe(newUbi);
  });

  it('lists drifted images and sends one digest per owner', () => {
    expect(output.drifted).toEqual(expect.arrayContaining([expect.objectContaining({ image: 'apps/payments-api', owner: 'payments-team' })]));
    expect(output.drifted.map((d) => d.image)).not.toContain('apps/orders-api');
    const digests = runtime.result().alerts.filter((a) => a.kind === 'DIGEST');
    expect(new Set(digests.map((d) => d.owner)).size).toBe(digests.length);
    expect(digests.map((d) => d.owner)).toEqual(expect.arrayContaining(['orders-team', 'payments-team']));
  });

  it("puts each owner's drifted images into its digest, and only its own", () => {
    const published = runtime.sns.published.filter((m) => m.attributes.kind === 'DIGEST');
    const payments = published.find((m) => m.attributes.owner === 'payments-team')!;
    // The digest says what the run's drift report says (the upstream campaign may have added an enterprise version).
    const drift = output.drifted.find((d) => d.image === 'apps/payments-api')!;
    expect(drift.versionsBehind).toBeGreaterThanOrEqual(1);
    const versions = `${drift.versionsBehind} version${drift.versionsBehind === 1 ? '' : 's'}`;
    expect(payments.message).toContain(`apps/payments-api: ${versions} / ${drift.daysBehind} day${drift.daysBehind === 1 ? '' : 's'} behind enterprise/python-311`);
    const json = JSON.parse(payments.message.split('--- JSON ---\n')[1]);
    expect(json.drifted).toEqual([{ image: 'apps/payments-api', versionsBehind: drift.versionsBehind, daysBehind: drift.daysBehind, parents: ['enterprise/python-311'] }]);
    for (const other of published.filter((m) => m.attributes.owner !== 'payments-team')) expect(other.message).not.toContain('apps/payments-api:');
  });

  it('reads ECR and Inspector2 through their paginated APIs, one listing per repository', () => {
    expect(scanners.backend.calls.DescribeRepositories).toBe(1);
    // The configured repositories only: scratch/unconfigured is never described.
    expect(scanners.backend.calls.DescribeImages).toBe(3);
    expect(scanners.backend.calls.ListFindings).toBe(3);
  });
});
