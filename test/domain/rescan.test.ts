import { parseInspectorFindingEvent, FindingStatus, NormalizedFinding } from '../../lambdas/domain/finding';
import { Tier } from '../../lambdas/domain/lineage';
import { parsePolicy } from '../../lambdas/domain/policy';
import { decideBasicScan, expiredExceptionFindings, InvalidScanAgeError, reconcileFindings, ScanDecision } from '../../lambdas/domain/rescan';
import { digestFor, findingEvent } from '../support/finding-events';

const NOW = new Date('2025-06-30T12:00:00Z');
const DIGEST = digestFor('apps/payments-api:1');

function finding(vulnerabilityId: string, change: { status?: string; severity?: string; digest?: string } = {}): NormalizedFinding {
  return parseInspectorFindingEvent(findingEvent({ repository: 'apps/payments-api', digest: change.digest ?? DIGEST, vulnerabilityId, at: '2025-06-01T00:00:00Z', ...change }));
}

describe('Function: reconcileFindings', () => {
  it('picks up missed findings, closes vanished ones and re-opens closed ones', () => {
    const stored = [
      { ...finding('CVE-2024-0001'), contentHash: 'x', history: [], revision: 1 },
      finding('CVE-2024-0002', { status: 'CLOSED' }),
      finding('CVE-2024-0003'),
    ];
    const fresh = [finding('CVE-2024-0002'), finding('CVE-2024-0003'), finding('CVE-2024-0004')];
    const result = reconcileFindings({ stored, fresh, digests: new Set([DIGEST]), now: NOW });
    expect(result.missed.map((f) => f.vulnerabilityId)).toEqual(['CVE-2024-0004']);
    expect(result.reopened.map((f) => f.vulnerabilityId)).toEqual(['CVE-2024-0002']);
    expect(result.closed.map((f) => [f.vulnerabilityId, f.status, f.updatedAt])).toEqual([['CVE-2024-0001', FindingStatus.CLOSED, NOW.toISOString()]]);
    // The stored record's own fields (hash, history, revision) do not leak into the write.
    expect(Object.keys(result.closed[0])).not.toContain('revision');
    expect(result.unchanged).toBe(1);
  });

  it('leaves findings of digests that were not listed alone', () => {
    const other = finding('CVE-2024-0001', { digest: digestFor('apps/payments-api:0') });
    const result = reconcileFindings({ stored: [other], fresh: [], digests: new Set([DIGEST]), now: NOW });
    expect(result.closed).toEqual([]);
  });

  it('reports a severity change', () => {
    const result = reconcileFindings({ stored: [finding('CVE-2024-0001')], fresh: [finding('CVE-2024-0001', { severity: 'CRITICAL' })], digests: new Set([DIGEST]), now: NOW });
    expect(result.changed.map((f) => f.severity)).toEqual(['CRITICAL']);
  });
});

describe('Function: expiredExceptionFindings', () => {
  const subject = { image: 'apps/payments-api', tier: Tier.APPLICATION };
  const exception = { image: 'apps/*', vulnerabilityId: 'CVE-2024-0001', reason: 'not reachable', approver: 'sec-lead', expiresAt: '2025-06-29T00:00:00Z' };

  it('returns findings whose exception has expired', () => {
    const policy = parsePolicy({ exceptions: [exception] });
    const out = expiredExceptionFindings([{ finding: finding('CVE-2024-0001'), subject }], policy, NOW);
    expect(out.map((o) => [o.finding.vulnerabilityId, o.exception.approver])).toEqual([['CVE-2024-0001', 'sec-lead']]);
  });

  it('leaves findings whose exception still runs, and findings that never had one', () => {
    const policy = parsePolicy({ exceptions: [{ ...exception, expiresAt: '2025-07-30T00:00:00Z' }] });
    expect(expiredExceptionFindings([{ finding: finding('CVE-2024-0001'), subject }, { finding: finding('CVE-2024-0009'), subject }], policy, NOW)).toEqual([]);
  });
});

describe('Function: decideBasicScan', () => {
  const day = 86_400_000;
  const ago = (ms: number): string => new Date(NOW.getTime() - ms).toISOString();

  it('scans an image never scanned, or scanned longer ago than the max age', () => {
    expect(decideBasicScan({ digest: DIGEST }, { maxScanAgeDays: 7, now: NOW }).decision).toBe(ScanDecision.SCAN);
    expect(decideBasicScan({ digest: DIGEST, lastScanAt: ago(8 * day) }, { maxScanAgeDays: 7, now: NOW }).decision).toBe(ScanDecision.SCAN);
  });

  it('respects ECR’s one scan per image per day, even with a max age of one day', () => {
    expect(decideBasicScan({ digest: DIGEST, lastScanAt: ago(23 * 3_600_000) }, { maxScanAgeDays: 1, now: NOW }).decision).toBe(ScanDecision.DAILY_LIMIT);
    expect(decideBasicScan({ digest: DIGEST, lastScanAt: ago(25 * 3_600_000) }, { maxScanAgeDays: 1, now: NOW }).decision).toBe(ScanDecision.SCAN);
  });

  it('leaves a recent scan and a running one', () => {
    expect(decideBasicScan({ digest: DIGEST, lastScanAt: ago(3 * day) }, { maxScanAgeDays: 7, now: NOW }).decision).toBe(ScanDecision.RECENT);
    expect(decideBasicScan({ digest: DIGEST, scanStatus: 'IN_PROGRESS' }, { maxScanAgeDays: 7, now: NOW }).decision).toBe(ScanDecision.IN_PROGRESS);
  });

  it('refuses a max age that is not a whole number of days', () => {
    expect(() => decideBasicScan({ digest: DIGEST }, { maxScanAgeDays: 0.5, now: NOW })).toThrow(InvalidScanAgeError);
  });
});
