import { FindingStatus, Severity } from './finding';

/**
 * Patchline's own CloudWatch metrics: what the operations dashboard (lib/observability.ts) charts. Names, units and
 * dimensions are listed in docs/observability.md; the dashboard searches this namespace by metric name.
 */
export const PATCHLINE_METRICS_NAMESPACE = 'Patchline';

export const PatchlineMetric = {
  CAMPAIGNS_STARTED: 'CampaignsStarted',
  CAMPAIGNS_RUNNING: 'CampaignsRunning',
  CAMPAIGNS_FAILED: 'CampaignsFailed',
  REBUILDS_FAILED: 'RebuildsFailed',
  OPEN_FINDINGS: 'OpenFindings',
  TIME_TO_REMEDIATE: 'TimeToRemediate',
  ALERTS_SENT: 'AlertsSent',
  ALERTS_UNDELIVERED: 'AlertsUndelivered',
  /** A spoke registry the rescan could not read (its hub-access role refused): one per listing page or repository. */
  RESCAN_SPOKES_UNREACHABLE: 'RescanSpokesUnreachable',
} as const;
export type PatchlineMetric = (typeof PatchlineMetric)[keyof typeof PatchlineMetric];

/** Dimension names (besides the `service` Powertools adds). */
export const MetricDimension = { OWNER: 'Owner', SEVERITY: 'Severity', KIND: 'Kind' } as const;
export type MetricDimension = (typeof MetricDimension)[keyof typeof MetricDimension];

/** The severities the open-findings gauge is reported for (the dashboard has one widget each). */
export const GAUGED_SEVERITIES: readonly Severity[] = [Severity.CRITICAL, Severity.HIGH];

/**
 * Seconds from a finding's first sighting to its closing, when this change closed it (it was open before); undefined
 * otherwise, so a re-sent CLOSED event or an out-of-order one is not counted twice.
 */
export function remediationSeconds(
  previous: { readonly status: string } | undefined,
  current: { readonly status: string; readonly firstObservedAt: string; readonly updatedAt: string },
): number | undefined {
  if (previous?.status !== FindingStatus.ACTIVE || current.status !== FindingStatus.CLOSED) return undefined;
  return secondsBetween(current.firstObservedAt, current.updatedAt);
}

/** Whole seconds from `from` to `to`, never negative; undefined when either is not a date. */
export function secondsBetween(from: string, to: string): number | undefined {
  const start = Date.parse(from);
  const end = Date.parse(to);
  if (!Number.isFinite(start) || !Number.isFinite(end)) return undefined;
  return Math.max(0, Math.round((end - start) / 1000));
}

/** Open findings per owner and gauged severity: every (owner, severity) pair is reported, zeros included, so a widget line drops to 0. */
export function openFindingCounts(
  owners: Iterable<string>,
  open: Iterable<{ readonly owner: string; readonly severity: string }>,
): Array<{ owner: string; severity: Severity; count: number }> {
  const counts = new Map<string, number>();
  for (const f of open) counts.set(`${f.owner}\u0000${f.severity}`, (counts.get(`${f.owner}\u0000${f.severity}`) ?? 0) + 1);
  return [...new Set(owners)].sort().flatMap((owner) => GAUGED_SEVERITIES.map((severity) => ({ owner, severity, count: counts.get(`${owner}\u0000${severity}`) ?? 0 })));
}
