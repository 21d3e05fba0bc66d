import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { AlertKind, buildAlert } from '../domain/alert';
import { MemberState, VerificationVerdict, verifyRebuild } from '../domain/campaign';
import { InspectorScanEventSchema, parseInspectorScanEvent } from '../domain/inspector-scan-event';
import { MetricDimension, PatchlineMetric, secondsBetween } from '../domain/patchline-metric';
import { REGISTRY_SCOPE_ENV, RegistryScope } from '../domain/registry-scope';
import { FindingStore, StoredFinding } from '../store/finding-store';
import { dependenciesFromEnvironment, HandlerDependencies, publishingMetrics, requireEnv } from './dependencies';
import { MissingFindingDependenciesError } from './finding-received';
import { collectAlerts, PublishableAlert } from './publishable-alerts';
import { traced } from '../aws/traced-client';

const logger = new Logger({ serviceName: 'patchline-scan-completed' });

export const ScanVerdict = { ...VerificationVerdict, NOT_A_REBUILD: 'not-a-rebuild', ALREADY_CHECKED: 'already-checked' } as const;
export type ScanVerdict = (typeof ScanVerdict)[keyof typeof ScanVerdict];

export interface ScanCompletedResult {
  readonly repository: string;
  /** The scanned image's lineage key (its repository, or registry-qualified for a spoke's). */
  readonly image: string;
  readonly digest: string;
  readonly campaignId: string | null;
  readonly verdict: ScanVerdict;
  /** The triggering CVEs still found on the rebuilt digest. */
  readonly stillVulnerable: string[];
  /** STILL_VULNERABLE alerts for the state machine to publish (one per CVE). */
  readonly alerts: PublishableAlert[];
}

/** The shared dependencies plus the hub's registry scope (as image-pushed's: a spoke's rebuild is keyed by its registry). */
export type ScanCompletedDependencies = HandlerDependencies & { readonly registryScope?: RegistryScope };

const ScanLocationSchema = InspectorScanEventSchema.pick({ account: true, region: true });

/**
 * scan-completed: a rescanned image that a campaign rebuilt is checked for the CVEs that triggered the campaign, read
 * from the finding store (finding-received records the scan's findings): none left → the member is verified; any left
 * → still vulnerable, and its owner is alerted. The member moves once (conditional), so a re-sent scan alerts nobody twice.
 */
export function makeScanCompletedHandler(deps: ScanCompletedDependencies): (event: unknown) => Promise<ScanCompletedResult> {
  const scope = deps.registryScope ?? RegistryScope.singleAccount();
  return async (event) => {
    const scan = parseInspectorScanEvent(event);
    if (!deps.findings) throw new MissingFindingDependenciesError(['findings']);
    // Campaigns record a rebuild under the image's key, as image-pushed keys its push; an unconfigured registry is refused.
    const { account, region } = ScanLocationSchema.parse(event);
    const image = scope.keyOf(account, region, scan.repository);
    const base = { repository: scan.repository, image, digest: scan.digest, stillVulnerable: [], alerts: [] };
    const built = await deps.campaigns.builtBy(image, scan.digest);
    if (!built) return { ...base, campaignId: null, verdict: ScanVerdict.NOT_A_REBUILD };
    const campaign = await deps.campaigns.get(built.campaignId);
    const triggering = [...(campaign?.vulnerabilityIds ?? [])];
    // The rebuilt digest's findings in this registry: finding-received keys them by the same image key.
    const findings = await deps.findings.forDigest(image, scan.digest);
    const { verdict, remaining } = verifyRebuild(triggering, findings);
    const ids = [...new Set(remaining.map((f) => f.vulnerabilityId))];
    const reason =
      verdict === VerificationVerdict.VERIFIED
        ? triggering.length > 0
          ? `rescan of ${scan.digest}: ${triggering.join(', ')} gone`
          : `rescan of ${scan.digest} completed (campaign not started by a CVE)`
        : `rescan of ${scan.digest}: still vulnerable to ${ids.join(', ')}`;
    const to = verdict === VerificationVerdict.VERIFIED ? MemberState.VERIFIED : MemberState.STILL_VULNERABLE;
    const moved = await deps.campaigns.transition(built.campaignId, image, [MemberState.BUILT], to, { reason }, scan.scannedAt);
    if (!moved) return { ...base, campaignId: built.campaignId, verdict: ScanVerdict.ALREADY_CHECKED };
    if (verdict === VerificationVerdict.VERIFIED && triggering.length > 0) {
      // Findings are keyed by the image; the filter drops records a hub repository got from a same-named spoke
      // repository before findings were keyed by registry.
      const ofImage = (await deps.findings.forImage(image)).filter((f) => keyOfFinding(scope, f) === image);
      for (const remediated of remediations(ofImage, triggering, scan.scannedAt)) {
        deps.metrics?.seconds(PatchlineMetric.TIME_TO_REMEDIATE, remediated.seconds, { [MetricDimension.SEVERITY]: remediated.severity });
      }
    }
    const owner = (await deps.lineage.getImage(image))?.owner;
    const stillVulnerable =
      verdict === VerificationVerdict.STILL_VULNERABLE && owner
        ? remaining.map((finding) => ({
            alert: buildAlert({
              kind: AlertKind.STILL_VULNERABLE,
              owner,
              image,
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
    logger.info('rebuild checked', { repository: scan.repository, image, digest: scan.digest, campaignId: built.campaignId, verdict, stillVulnerable: ids });
    return { ...base, campaignId: built.campaignId, verdict, stillVulnerable: ids, alerts };
  };
}

export const handler = (event: unknown): Promise<ScanCompletedResult> => {
  const deps = scanDependencies();
  return publishingMetrics(deps, makeScanCompletedHandler(deps))(event);
};

/** The image key of a stored finding; undefined for a registry that is not (or no longer) configured. */
function keyOfFinding(scope: RegistryScope, finding: Pick<StoredFinding, 'repository' | 'account' | 'region'>): string | undefined {
  try {
    return scope.keyOf(finding.account, finding.region, finding.repository);
  } catch {
    return undefined;
  }
}

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

let environmentDependencies: ScanCompletedDependencies | undefined;

/** The shared dependencies plus the finding store (the rebuilt digest's findings) and the registry scope. */
function scanDependencies(): ScanCompletedDependencies {
  environmentDependencies ??= {
    ...dependenciesFromEnvironment(),
    findings: new FindingStore({ client: traced(new DynamoDBClient({})), tableName: requireEnv('TABLE_NAME') }),
    registryScope: RegistryScope.fromEnvironment(process.env[REGISTRY_SCOPE_ENV]),
  };
  return environmentDependencies;
}
