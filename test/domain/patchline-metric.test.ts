import { readFileSync } from 'fs';
import { join } from 'path';
import { GAUGED_SEVERITIES, openFindingCounts, PATCHLINE_METRICS_NAMESPACE, PatchlineMetric, remediationSeconds, secondsBetween } from '../../lambdas/domain/patchline-metric';
import * as observability from '../../lib/observability';

describe('PatchlineMetric', () => {
  it('names exactly the metrics the dashboard charts, in its namespace', () => {
    expect(PatchlineMetric).toEqual(observability.PatchlineMetric);
    expect(PATCHLINE_METRICS_NAMESPACE).toBe(observability.PATCHLINE_METRICS_NAMESPACE);
  });

  it('has a row in docs/observability.md for every metric', () => {
    const doc = readFileSync(join(__dirname, '../../docs/observability.md'), 'utf8');
    for (const name of Object.values(PatchlineMetric)) expect(doc).toMatch(new RegExp(`^\\| \`${name}\` \\|`, 'm'));
  });
});

describe('Function: remediationSeconds', () => {
  const open = { status: 'ACTIVE' };
  const closed = { status: 'CLOSED', firstObservedAt: '2024-02-01T00:00:00Z', updatedAt: '2024-02-03T12:00:00Z' };

  it('is the time from the first sighting to the closing, when this change closed an open finding', () => {
    expect(remediationSeconds(open, closed)).toBe((Date.parse(closed.updatedAt) - Date.parse(closed.firstObservedAt)) / 1000);
  });

  it('refuses to count a finding closed on first sight, a re-sent CLOSED, a suppression or a re-opening', () => {
    expect(remediationSeconds(undefined, closed)).toBeUndefined();
    expect(remediationSeconds({ status: 'CLOSED' }, closed)).toBeUndefined();
    expect(remediationSeconds(open, { ...closed, status: 'SUPPRESSED' })).toBeUndefined();
    expect(remediationSeconds({ status: 'CLOSED' }, { ...closed, status: 'ACTIVE' })).toBeUndefined();
  });
});

describe('Function: secondsBetween', () => {
  it('counts whole seconds and never goes negative (clock skew between the two timestamps)', () => {
    expect(secondsBetween('2024-02-01T00:00:00Z', '2024-02-01T00:01:30.400Z')).toBe(90);
    expect(secondsBetween('2024-02-01T00:01:00Z', '2024-02-01T00:00:00Z')).toBe(0);
  });

  it('refuses a timestamp that is not a date', () => {
    expect(secondsBetween('yesterday', '2024-02-01T00:00:00Z')).toBeUndefined();
    expect(secondsBetween('2024-02-01T00:00:00Z', '')).toBeUndefined();
  });
});

describe('Function: openFindingCounts', () => {
  it('counts per owner and gauged severity, zeros included, owners once and sorted', () => {
    const open = [
      { owner: 'payments-team', severity: 'HIGH' },
      { owner: 'payments-team', severity: 'HIGH' },
      { owner: 'platform-team', severity: 'CRITICAL' },
      { owner: 'platform-team', severity: 'MEDIUM' },
    ];
    expect(openFindingCounts(['platform-team', 'payments-team', 'platform-team'], open)).toEqual([
      { owner: 'payments-team', severity: 'CRITICAL', count: 0 },
      { owner: 'payments-team', severity: 'HIGH', count: 2 },
      { owner: 'platform-team', severity: 'CRITICAL', count: 1 },
      { owner: 'platform-team', severity: 'HIGH', count: 0 },
    ]);
    expect(GAUGED_SEVERITIES).toEqual(['CRITICAL', 'HIGH']);
  });

  it('refuses to report an owner it was not given (an image no longer in the lineage)', () => {
    expect(openFindingCounts([], [{ owner: 'gone-team', severity: 'HIGH' }])).toEqual([]);
  });
});
