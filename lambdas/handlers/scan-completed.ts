import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { AlertKind, buildAlert } from '../domain/alert';
import { MemberState, VerificationVerdict, verifyRebuild } from '../domain/campaign';
import { parseInspectorScanEvent } from '../domain/inspector-scan-event';
import { MetricDimension, PatchlineMetric, secondsBetween } from '../domain/patchline-metric';
import { FindingStore, StoredFinding } from '../store/finding-store';
import { dependenciesFromEnvironment, HandlerDependencies, publishingMetrics, requireEnv } from './dependencies';
import { MissingFindingDependenciesError } from './finding-received';
import { collectAlerts, PublishableAlert } from './publishable-alerts';

const logger = new Logger({ serviceName: 'patchline-scan-completed' });

export const ScanVerdict = { ...VerificationVerdict, NOT_A_REBUILD: 'not-a-rebuild', ALREADY_CHECKED: 'already-checked' } as const;
export type ScanVerdict = (typeof ScanVerdict)[keyof typeof ScanVerdict];

export interface ScanCompletedResult {
  readonly repository: string;
  readonly digest: string;
  readonly campaignId: string | null;
  readonly verdict: ScanVerdict;
  /** The triggering CVEs still found on the rebuilt digest. */
  readonly stillVulnerable: string[];
  /** STILL_VULNERABLE alerts for the state machine to publish (one per CVE). */
  readonly alerts: PublishableAlert[];
}

/**
 * scan-completed: a rescanned image that a campaign rebuilt is checked for the CVEs that triggered the campaign, read
 * from the finding store (finding-received records the scan's findings): none left → the member is verified; any left
 * → still vulnerable, and its owner is alerted. The member moves once (conditional), so a re-sent scan alerts nobody twice.
 */
export function makeScanCompletedHandler(deps: HandlerDependencies): (event: unknown) => Promise<ScanCompletedResult> {
  return async (event) => {
    const scan = parseInspectorScanEvent(event);
    if (!deps.findings) throw new MissingFindingDependenciesError(['findings']);
    const base = { repository: scan.repository, digest: scan.digest, stillVulnerable: [], alerts: [] };
    const built = await deps.campaigns.builtBy(scan.repository, scan.digest);
    if (!built) return { ...base, campaignId: null, verdict: ScanVerdict.NOT_A_REBUILD };
    const campaign = await deps.campaigns.get(built.campaignId);
    const triggering = [...(campaign?.vulnerabilityIds ?? [])];
    const findings = await deps.findings.forDigest(scan.repository, scan.digest);
    const { verdict, remaining } = verifyRebuild(triggering, findings);
    const ids = [...new Set(remaining.map((f) => f.vulnerabilityId))];
    const reason =
      verdict === VerificationVerdict.VERIFIED
        ? triggering.length > 0
          ? `rescan of ${scan.digest}: ${triggering.join(', ')} gone`
          : `rescan of ${scan.digest} completed (campaign not started by a CVE)`
        : `rescan of ${scan.digest}: still vulnerable to ${ids.join(', ')}`;
    const to = verdict === VerificationVerdict.VERIFIED ? MemberState.VERIFIED : MemberState.STILL_VULNERABLE;
    const moved = await deps.campaigns.transition(built.campaignId, scan.repository, [MemberState.BUILT], to, { reason }, scan.scannedAt);
    if (!moved) return { ...base, campaignId: built.campaignId, verdict: ScanVerdict.ALREADY_CHECKED };
    if (verdict === VerificationVerdict.VERIFIED && triggering.length > 0) {
      for (const remediated of remediations(await deps.findings.forRepository(scan.repository), triggering, scan.scannedAt)) {
        deps.metrics?.seconds(PatchlineMetric.TIME_TO_REMEDIATE, remediated.seconds, { [MetricDimension.SEVERITY]: remediated.severity });
      }
    }
    const owner = (await deps.lineage.getImage(scan.repository))?.owner;
    const stillVulnerable =
      verdict === VerificationVerdict.STILL_VULNERABLE && owner
        ? remaining.map((finding) => ({
            alert: buildAlert({
              kind: AlertKind.STILL_VULNERABLE,
              owner,
              image: scan.repository,
              digest: scan.digest,
              vulnerabilityId: finding.vulnerabilityId,
              severity: finding.severity,
              packages: finding.packages,
              campaignId: built.campaignId,
            }),
          }))
        : [];
    // No dedup claim: the member moved to still-vulnerable once (above), so a re-sent scan never gets here.
    const { alerts } = await collectAlerts(deps, stillVulnerable, deps.now());
    logger.info('rebuild checked', { repository: scan.repository, digest: scan.digest, campaignId: built.campaignId, verdict, stillVulnerable: ids });
    return { ...base, campaignId: built.campaignId, verdict, stillVulnerable: ids, alerts };
  };
}

export const handler = (event: unknown): Promise<ScanCompletedResult> => {
  const deps = scanDependencies();
  return publishingMetrics(deps, makeScanCompletedHandler(deps))(event);
};

/**
 * A verified rebuild remediated each CVE that triggered its campaign: from the CVE's first sighting on the image (any
 * digest) to the rescan that found it gone, with the severity it was reported at. A CVE never recorded is left out.
 */
function remediations(findingsOfImage: readonly StoredFinding[], triggering: readonly string[], scannedAt: string): Array<{ seconds: number; severity: string }> {
  const found: Array<{ seconds: number; severity: string }> = [];
  for (const id of new Set(triggering)) {
    const sightings = findingsOfImage.filter((f) => f.vulnerabilityId === id);
    if (sightings.length === 0) continue;
    const first = sightings.reduce((a, b) => (b.firstObservedAt < a.firstObservedAt ? b : a));
    const seconds = secondsBetween(first.firstObservedAt, scannedAt);
    if (seconds !== undefined) found.push({ seconds, severity: first.severity });
  }
  return found;
}

let environmentDependencies: HandlerDependencies | undefined;

/** The shared dependencies plus the finding store (the rebuilt digest's findings). */
function scanDependencies(): HandlerDependencies {
  environmentDependencies ??= {
    ...dependenciesFromEnvironment(),
    findings: new FindingStore({ client: new DynamoDBClient({}), tableName: requireEnv('TABLE_NAME') }),
  };
  return environmentDependencies;
}
