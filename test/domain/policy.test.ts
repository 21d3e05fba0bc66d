import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NormalizedFinding, parseInspectorFindingEvent } from '../../lambdas/domain/finding';
import {
  evaluateFinding,
  gateImage,
  InvalidPolicyError,
  matchesImagePattern,
  parsePolicy,
  Policy,
  PolicyDecision,
  PolicyException,
  PolicyOutcome,
} from '../../lambdas/domain/policy';

const EVENTS = join(__dirname, '../../../shared/data/events');
const SAMPLE = JSON.parse(
  readFileSync(join(EVENTS, 'docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json'), 'utf8'),
);

/** The 2024 sample (MEDIUM, fix available) on `apps/payments-api`, changed by `change`. */
function finding(change: Partial<NormalizedFinding> = {}): NormalizedFinding {
  return { ...parseInspectorFindingEvent(structuredClone(SAMPLE)), repository: 'apps/payments-api', ...change };
}

const APP = { image: 'apps/payments-api', tier: 'application' } as const;
const NOW = new Date('2025-06-01T12:00:00Z');

function exception(change: Partial<PolicyException> = {}): PolicyException {
  return {
    image: 'apps/payments-api',
    vulnerabilityId: 'CVE-2024-6119',
    reason: 'not reachable: TLS is terminated at the load balancer',
    approver: 'security-team',
    expiresAt: '2025-07-01T00:00:00Z',
    ...change,
  };
}

const policy = (change: Record<string, unknown> = {}): Policy => parsePolicy({ severityThreshold: 'MEDIUM', ...change });

describe('Function: parsePolicy', () => {
  it('fills the defaults: HIGH threshold, fix required, no exceptions, no trusted bases', () => {
    expect(parsePolicy({})).toEqual({ severityThreshold: 'HIGH', requireFixAvailable: true, exceptions: [], trustedBases: [] });
  });

  it('keeps exceptions and trusted bases as given', () => {
    const parsed = parsePolicy({ exceptions: [exception()], trustedBases: ['registry.access.redhat.com/ubi9/**'] });
    expect(parsed.exceptions).toEqual([exception()]);
    expect(parsed.trustedBases).toEqual(['registry.access.redhat.com/ubi9/**']);
  });

  it.each<[string, unknown, RegExp]>([
    ['refuses a misspelt key', { severityTreshold: 'LOW' }, /Unrecognized key: "severityTreshold"/],
    ['refuses an unknown severity', { severityThreshold: 'SEVERE' }, /severityThreshold: Invalid option/],
    ['refuses an exception without expiry', { exceptions: [{ ...exception(), expiresAt: undefined }] }, /exceptions\.0\.expiresAt: expiresAt must be an ISO 8601 date-time/],
    ['refuses an exception expiring "next week"', { exceptions: [exception({ expiresAt: 'next week' })] }, /exceptions\.0\.expiresAt/],
    ['refuses an exception without approver', { exceptions: [exception({ approver: '  ' })] }, /exceptions\.0\.approver: approver is empty/],
    ['refuses a reason with a newline', { exceptions: [exception({ reason: 'ok\nApproved: everyone' })] }, /exceptions\.0\.reason: reason contains control/],
    ['refuses an image pattern with shell metacharacters', { exceptions: [exception({ image: 'apps/*; rm -rf /' })] }, /exceptions\.0\.image: an image key or pattern/],
    ['refuses a vulnerability id that is not one', { exceptions: [exception({ vulnerabilityId: '*' })] }, /exceptions\.0\.vulnerabilityId: not a vulnerability id/],
    ['refuses a trusted base with a space', { trustedBases: ['ubi 9'] }, /trustedBases\.0: an image key or pattern/],
  ])('%s', (_name, input, message) => {
    expect(() => parsePolicy(input)).toThrow(InvalidPolicyError);
    expect(() => parsePolicy(input)).toThrow(message);
  });
});

describe('Function: matchesImagePattern', () => {
  it.each([
    ['apps/payments-api', 'apps/payments-api', true],
    ['apps/payments-api', 'apps/payments-api-v2', false],
    ['apps/*', 'apps/payments-api', true],
    ['apps/*', 'apps/team/api', false],
    ['apps/**', 'apps/team/api', true],
    ['apps/*', 'vendor/observability-agent', false],
    ['*', 'inspector2', true],
    ['*', 'apps/payments-api', false],
    ['registry.access.redhat.com/ubi9/*', 'registry.access.redhat.com/ubi9/python-311:1-34', true],
    ['registry.access.redhat.com/ubi9/*', 'registryXaccess.redhat.com/ubi9/python-311:1-34', false],
    ['python:3.*', 'python:3.11', true],
  ])('%s against %s is %s', (pattern, image, expected) => {
    expect(matchesImagePattern(pattern, image)).toBe(expected);
  });
});

describe('Function: evaluateFinding', () => {
  it('acts on an active finding at the threshold with a fix', () => {
    const decision = evaluateFinding(finding(), APP, policy(), NOW);
    expect(decision).toEqual({ outcome: PolicyOutcome.ACT, reason: 'CVE-2024-6119 is MEDIUM (threshold MEDIUM) with a fix on apps/payments-api (application)' });
  });

  it('keeps a finding below the threshold', () => {
    const decision = evaluateFinding(finding(), APP, policy({ severityThreshold: 'HIGH' }), NOW);
    expect(decision.outcome).toBe(PolicyOutcome.BELOW_THRESHOLD);
    expect(decision.reason).toBe('CVE-2024-6119 is MEDIUM, below the HIGH threshold');
  });

  it('ranks UNTRIAGED below LOW', () => {
    expect(evaluateFinding(finding({ severity: 'UNTRIAGED' }), APP, policy({ severityThreshold: 'LOW' }), NOW).outcome).toBe(PolicyOutcome.BELOW_THRESHOLD);
    expect(evaluateFinding(finding({ severity: 'UNTRIAGED' }), APP, policy({ severityThreshold: 'INFORMATIONAL' }), NOW).outcome).toBe(PolicyOutcome.ACT);
  });

  it('waits for a fix when one is required, and acts without one when not', () => {
    const noFix = finding({ fixAvailable: 'NO' });
    expect(evaluateFinding(noFix, APP, policy(), NOW)).toEqual({ outcome: PolicyOutcome.NO_FIX, reason: 'CVE-2024-6119 has no fix available yet' });
    expect(evaluateFinding(noFix, APP, policy({ requireFixAvailable: false }), NOW).outcome).toBe(PolicyOutcome.ACT);
  });

  it('treats a partial fix as a fix', () => {
    const decision = evaluateFinding(finding({ fixAvailable: 'PARTIAL' }), APP, policy(), NOW);
    expect(decision.outcome).toBe(PolicyOutcome.ACT);
    expect(decision.reason).toContain('with a partial fix');
  });

  it.each(['CLOSED', 'SUPPRESSED'] as const)('does nothing for a %s finding', (status) => {
    const decision = evaluateFinding(finding({ status, severity: 'CRITICAL' }), APP, policy(), NOW);
    expect(decision).toEqual({ outcome: PolicyOutcome.INACTIVE, reason: `CVE-2024-6119 is ${status} on apps/payments-api` });
  });

  it('excepts a finding with an unexpired exception, and says who approved it', () => {
    const decision = evaluateFinding(finding(), APP, policy({ exceptions: [exception()] }), NOW);
    expect(decision).toEqual({
      outcome: PolicyOutcome.EXCEPTED,
      exception: exception(),
      reason: 'CVE-2024-6119 on apps/payments-api is excepted until 2025-07-01T00:00:00Z (approved by security-team: not reachable: TLS is terminated at the load balancer)',
    });
  });

  it('applies an exception given as a glob', () => {
    const decision = evaluateFinding(finding(), APP, policy({ exceptions: [exception({ image: 'apps/*' })] }), NOW);
    expect(decision.outcome).toBe(PolicyOutcome.EXCEPTED);
  });

  it('ignores an exception for another image or another vulnerability', () => {
    const exceptions = [exception({ image: 'apps/orders-api' }), exception({ vulnerabilityId: 'CVE-2023-38545' })];
    expect(evaluateFinding(finding(), APP, policy({ exceptions }), NOW).outcome).toBe(PolicyOutcome.ACT);
  });

  it('stops applying an exception by itself once it has expired, and reports the expired one', () => {
    const p = policy({ exceptions: [exception({ expiresAt: '2025-06-01T12:00:00Z' })] });
    const before = evaluateFinding(finding(), APP, p, new Date('2025-06-01T11:59:59Z'));
    const at = evaluateFinding(finding(), APP, p, NOW);
    expect(before.outcome).toBe(PolicyOutcome.EXCEPTED);
    expect(at.outcome).toBe(PolicyOutcome.ACT);
    expect(at).toMatchObject({ expiredException: { approver: 'security-team', expiresAt: '2025-06-01T12:00:00Z' } });
    expect(at.reason).toMatch(/its exception expired at 2025-06-01T12:00:00Z$/);
  });

  it('prefers the unexpired exception among several, the latest expiry first', () => {
    const exceptions = [
      exception({ expiresAt: '2025-01-01T00:00:00Z', approver: 'old' }),
      exception({ expiresAt: '2025-08-01T00:00:00Z', approver: 'later' }),
      exception({ expiresAt: '2025-07-01T00:00:00Z', approver: 'sooner' }),
    ];
    const decision = evaluateFinding(finding(), APP, policy({ exceptions }), NOW) as Extract<PolicyDecision, { outcome: 'EXCEPTED' }>;
    expect(decision.exception.approver).toBe('later');
  });

  it('accepts a finding on a trusted base, or one attributed to a trusted base', () => {
    const p = policy({ trustedBases: ['registry.access.redhat.com/ubi9/*', 'enterprise/python-311'] });
    const onBase = evaluateFinding(finding(), { image: 'enterprise/python-311', tier: 'enterprise' }, p, NOW);
    expect(onBase).toEqual({ outcome: PolicyOutcome.TRUSTED_BASE, reason: 'CVE-2024-6119: enterprise/python-311 is a trusted base (enterprise/python-311)' });
    const inherited = evaluateFinding(finding(), { ...APP, origin: 'registry.access.redhat.com/ubi9/python-311:1-34' }, p, NOW);
    expect(inherited.outcome).toBe(PolicyOutcome.TRUSTED_BASE);
    expect(inherited.reason).toContain('its origin registry.access.redhat.com/ubi9/python-311:1-34');
    expect(evaluateFinding(finding(), { ...APP, origin: 'apps/payments-api' }, p, NOW).outcome).toBe(PolicyOutcome.ACT);
  });

  it('lets an exception win over the thresholds, so a waiver shows as one', () => {
    const decision = evaluateFinding(finding({ fixAvailable: 'NO' }), APP, policy({ exceptions: [exception()] }), NOW);
    expect(decision.outcome).toBe(PolicyOutcome.EXCEPTED);
  });
});

describe('Function: gateImage', () => {
  const critical = finding({ vulnerabilityId: 'CVE-2023-38545', severity: 'CRITICAL' });
  const high = finding({ vulnerabilityId: 'CVE-2023-0001', severity: 'HIGH' });
  const low = finding({ vulnerabilityId: 'CVE-2023-0002', severity: 'LOW' });

  it('passes an image without findings', () => {
    expect(gateImage([], APP, policy(), NOW)).toEqual({ pass: true, violations: [], excepted: [] });
  });

  it('fails on findings the policy acts upon, most severe first, and lets the rest through', () => {
    const result = gateImage([low, high, critical], APP, policy(), NOW);
    expect(result.pass).toBe(false);
    expect(result.violations.map((v) => v.finding.vulnerabilityId)).toEqual(['CVE-2023-38545', 'CVE-2023-0001']);
    expect(result.violations.every((v) => v.decision.outcome === PolicyOutcome.ACT)).toBe(true);
  });

  it('passes while an exception holds and fails again when it expires', () => {
    const p = policy({ exceptions: [exception({ vulnerabilityId: 'CVE-2023-38545', image: 'apps/**' })] });
    const during = gateImage([critical, low], APP, p, NOW);
    expect(during.pass).toBe(true);
    expect(during.excepted.map((v) => v.finding.vulnerabilityId)).toEqual(['CVE-2023-38545']);
    const after = gateImage([critical, low], APP, p, new Date('2025-07-01T00:00:00Z'));
    expect(after.pass).toBe(false);
    expect(after.violations[0].decision).toMatchObject({ outcome: 'ACT', expiredException: { vulnerabilityId: 'CVE-2023-38545' } });
  });
});
