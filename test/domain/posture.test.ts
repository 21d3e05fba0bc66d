import { join } from 'path';
import { loadLineage } from '../../cli/input-files';
import { MemberState } from '../../lambdas/domain/campaign';
import { findDrift } from '../../lambdas/domain/drift';
import { parseInspectorFindingEvent } from '../../lambdas/domain/finding';
import { buildPostureReport, CampaignOutcome, campaignOutcome, PostureInput } from '../../lambdas/domain/posture';
import { digestFor, findingEvent } from '../support/finding-events';
import { REPO_ROOT } from '../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
const NOW = new Date('2025-06-30T00:00:00Z');
const PAY = digestFor('apps/payments-api:2');

function finding(repository: string, vulnerabilityId: string, at: string, change: { severity?: string; status?: string; digest?: string } = {}) {
  return parseInspectorFindingEvent(findingEvent({ repository, digest: change.digest ?? PAY, vulnerabilityId, at, ...change }));
}

function input(): PostureInput {
  const closed = { ...finding('apps/payments-api', 'CVE-2024-0100', '2025-05-01T00:00:00Z', { status: 'CLOSED' }), history: [{ status: 'ACTIVE', at: '2025-05-01T00:00:00Z' }, { status: 'CLOSED', at: '2025-05-11T00:00:00Z' }] };
  const drift = findDrift(
    [{ image: 'apps/payments-api', owner: 'payments-team', parents: ['enterprise/python-311'], current: { digest: PAY, pushedAt: '2025-05-01T00:00:00Z', parentDigests: { 'enterprise/python-311': digestFor('e1') } } }],
    () => [{ digest: digestFor('e1'), pushedAt: '2025-04-01T00:00:00Z' }, { digest: digestFor('e2'), pushedAt: '2025-06-10T00:00:00Z' }],
    NOW,
  ).drifted;
  return {
    now: NOW,
    images: SEED,
    currentDigests: new Map([['apps/payments-api', PAY]]),
    findings: [
      finding('apps/payments-api', 'CVE-2024-0001', '2025-03-01T00:00:00Z', { severity: 'CRITICAL' }),
      finding('apps/payments-api', 'CVE-2024-0002', '2025-06-01T00:00:00Z'),
      // An older digest's finding is not open on the image any more.
      finding('apps/payments-api', 'CVE-2024-0003', '2025-01-01T00:00:00Z', { digest: digestFor('apps/payments-api:1') }),
      finding('apps/orders-api', 'CVE-2024-0004', '2025-06-20T00:00:00Z', { severity: 'MEDIUM', digest: digestFor('orders') }),
      finding('shadow/unknown', 'CVE-2024-0005', '2025-06-20T00:00:00Z', { digest: digestFor('shadow') }),
      closed,
    ],
    exceptions: [
      { image: 'apps/payments-api', vulnerabilityId: 'CVE-2024-0002', reason: 'mitigated by WAF', approver: 'sec-lead', expiresAt: '2025-07-15T00:00:00Z' },
      { image: 'apps/orders-api', vulnerabilityId: 'CVE-2024-0004', reason: 'old', approver: 'sec-lead', expiresAt: '2025-06-01T00:00:00Z' },
    ],
    drift,
    campaigns: [
      { campaignId: 'c-1', rootImage: 'enterprise/python-311', trigger: 'push', startedAt: '2025-06-10T00:00:00Z', members: [{ image: 'apps/payments-api', state: MemberState.BUILT, updatedAt: '2025-06-10T01:00:00Z' }, { image: 'apps/orders-api', state: MemberState.FAILED, updatedAt: '2025-06-10T01:00:00Z' }] },
      { campaignId: 'c-2', rootImage: 'apps/payments-api', trigger: 'finding', startedAt: '2025-06-20T00:00:00Z', members: [{ image: 'apps/payments-api', state: MemberState.BUILDING, updatedAt: '2025-06-20T00:00:00Z' }] },
    ],
  };
}

describe('Function: buildPostureReport', () => {
  const report = buildPostureReport(input());
  const payments = report.owners.find((o) => o.owner === 'payments-team')!;

  it('counts open findings of the current digest by severity, per owner and for the organization', () => {
    expect(payments.openFindings).toMatchObject({ CRITICAL: 1, HIGH: 1, total: 2 });
    expect(report.organization.openFindings).toMatchObject({ CRITICAL: 1, HIGH: 1, MEDIUM: 1, total: 3 });
  });

  it('names the oldest unpatched finding with its age', () => {
    expect(payments.oldestUnpatched).toMatchObject({ vulnerabilityId: 'CVE-2024-0001', severity: 'CRITICAL', ageDays: 121 });
  });

  it('splits exceptions into active (with days left) and expired', () => {
    expect(payments.activeExceptions.map((e) => [e.vulnerabilityId, e.daysLeft])).toEqual([['CVE-2024-0002', 15]]);
    expect(report.organization.expiredExceptions.map((e) => e.vulnerabilityId)).toEqual(['CVE-2024-0004']);
  });

  it('reports drift, campaign outcomes and mean time to remediate', () => {
    expect(payments.drifted.map((d) => [d.image, d.versionsBehind])).toEqual([['apps/payments-api', 1]]);
    expect(payments.campaigns).toEqual({ running: 1, failed: 1, completed: 0, total: 2 });
    expect(payments.meanTimeToRemediateDays).toBe(10);
    expect(report.owners.find((o) => o.owner === 'build-tools')!.meanTimeToRemediateDays).toBeNull();
  });

  it('keeps findings on repositories outside the lineage apart', () => {
    expect(report.untracked).toEqual({ repositories: ['shadow/unknown'], openFindings: 1 });
  });

  it('gives each image of the lineage its highest severity and drift', () => {
    const image = report.images.find((i) => i.image === 'apps/payments-api')!;
    expect(image).toMatchObject({ highestSeverity: 'CRITICAL', versionsBehind: 1, digest: PAY });
    expect(report.images.find((i) => i.image === 'builders/python-ci')!.highestSeverity).toBeNull();
  });

  it('attributes a finding to the image it is stored under, not to a same-named hub repository', () => {
    const spoke = '222222222222.dkr.ecr.eu-west-1.amazonaws.com/apps/payments-api';
    const base = input();
    const withSpoke = buildPostureReport({
      ...base,
      images: [...base.images, { image: spoke, tier: 'application', owner: 'spoke-team', parents: [] }],
      // Same repository, digest and CVE as the hub's: without the image it would count on the hub image twice.
      findings: [...base.findings, { ...finding('apps/payments-api', 'CVE-2024-0001', '2025-03-01T00:00:00Z', { severity: 'CRITICAL' }), image: spoke }],
    });
    expect(withSpoke.owners.find((o) => o.owner === 'spoke-team')!.openFindings).toMatchObject({ CRITICAL: 1, total: 1 });
    expect(withSpoke.owners.find((o) => o.owner === 'payments-team')!.openFindings).toEqual(payments.openFindings);
    expect(withSpoke.organization.openFindings.total).toBe(report.organization.openFindings.total + 1);
  });
});

describe('Function: campaignOutcome', () => {
  it('is completed only when no member is pending, building or failed', () => {
    const campaign = (state: MemberState) => ({ campaignId: 'c', rootImage: 'x', trigger: 'push', startedAt: '', members: [{ image: 'x', state, updatedAt: '' }] });
    expect(campaignOutcome(campaign(MemberState.BUILT))).toBe(CampaignOutcome.COMPLETED);
    expect(campaignOutcome(campaign(MemberState.PENDING))).toBe(CampaignOutcome.RUNNING);
    expect(campaignOutcome(campaign(MemberState.FAILED))).toBe(CampaignOutcome.FAILED);
  });
});
