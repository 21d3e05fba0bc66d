import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { EcrRegistry, matchesRepositoryPattern, StartScanResult } from '../aws/ecr-registry';
import { InspectorFindings } from '../aws/inspector-findings';
import { SpokeScannerClients } from '../aws/spoke-scanners';
import { AlertKind, buildAlert, DigestDriftEntry, DigestEntry } from '../domain/alert';
import { DriftedImage, DriftSubject, findDrift, ParentVersion } from '../domain/drift';
import { FindingStatus, NormalizedFinding } from '../domain/finding';
import { Tier } from '../domain/lineage';
import { MetricDimension, openFindingCounts, PatchlineMetric, remediationSeconds } from '../domain/patchline-metric';
import { Policy } from '../domain/policy';
import { decideBasicScan, expiredExceptionFindings, reconcileFindings, ScanDecision } from '../domain/rescan';
import { HandlerDependencies, publishingMetrics } from './dependencies';
import { RegistryLocation, RegistryScope } from '../domain/registry-scope';
import { alertIdentityDigest, findingDependenciesFromEnvironment, FindingReceivedDependencies, makeFindingReceivedHandler } from './finding-received';
import { collectAlerts, PublishableAlert } from './publishable-alerts';
import { RescanServices, rescanServicesFromEnvironment, SpokeRepositories } from './rescan-services';
import { MemberState, type RebuildRequest } from '../domain/campaign';

const logger = new Logger({ serviceName: 'patchline-registry-rescan' });

/**
 * registry-rescan: the steps of the scheduled sweep, one Lambda with an `action` so the state machine can page through
 * repositories and fan out over them (Map, or Distributed Map when counts are large):
 * - listRepositories: one page of the configured ECR repositories, the hub's and then each spoke's (through its
 *   PatchlineHubAccess-<region> role);
 * - rescanRepository: one repository (a spoke's with that spoke's role, under its qualified keys) — basic scans that
 *   are due, or Inspector2 findings reconciled with the store (missed and re-opened findings go through
 *   finding-received's own decision), expired exceptions, drift;
 * - digest: one digest alert per owner of what is open and which of its images are behind their bases, and the
 *   organization's drift.
 */
export const RescanAction = { LIST_REPOSITORIES: 'listRepositories', RESCAN_REPOSITORY: 'rescanRepository', DIGEST: 'digest' } as const;
export type RescanAction = (typeof RescanAction)[keyof typeof RescanAction];

/** A repository of a spoke's registry, as a Map item: its account, region and name (a hub item is the bare name). */
export const SpokeRepositoryItemSchema = z.strictObject({
  account: z.string().regex(/^\d{12}$/, 'an AWS account id is 12 digits'),
  region: z.string().regex(/^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/, 'not an AWS region name (e.g. eu-west-1)'),
  repository: z.string().min(1).max(256),
});
export type SpokeRepositoryItem = z.infer<typeof SpokeRepositoryItemSchema>;

export const RescanInputSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal(RescanAction.LIST_REPOSITORIES), nextToken: z.string().max(4096).nullish() }),
  z.strictObject({ action: z.literal(RescanAction.RESCAN_REPOSITORY), repository: z.union([z.string().min(1).max(256), SpokeRepositoryItemSchema]) }),
  z.strictObject({ action: z.literal(RescanAction.DIGEST), period: z.string().max(64).optional() }),
]);
export type RescanInput = z.infer<typeof RescanInputSchema>;

/** The STS session name of the rescan's AssumeRole calls (it shows in the spokes' CloudTrail). */
export const RESCAN_SESSION_NAME = 'patchline-registry-rescan';

export class InvalidRescanInputError extends Error {
  public readonly code = 'INVALID_RESCAN_INPUT';
  public constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(`invalid registry-rescan input: ${problems.join('; ')}`, options);
    this.name = 'InvalidRescanInputError';
  }
}

/** A spoke item of a registry or repository the configuration does not sweep. */
export class UnsweptRepositoryError extends Error {
  public readonly code = 'UNSWEPT_REPOSITORY';
  public constructor(item: SpokeRepositoryItem) {
    super(`repository ${item.repository} of ${item.account}/${item.region} is not among the spokes' configured repositories (organization.spokes[].repositories): not swept`);
    this.name = 'UnsweptRepositoryError';
  }
}

export class MissingRescanDependenciesError extends Error {
  public readonly code = 'MISSING_RESCAN_DEPENDENCIES';
  public constructor(missing: readonly string[]) {
    super(`registry-rescan needs ${missing.join(', ')} in its dependencies`);
    this.name = 'MissingRescanDependenciesError';
  }
}

export interface RepositoryPage {
  /** The hub's repositories by name, a spoke's as `{ account, region, repository }`. */
  readonly repositories: Array<string | SpokeRepositoryItem>;
  /**
   * Where the next page starts, `<registry>/<ECR token>` (registry 0 is the hub, 1… the spokes in configuration
   * order); null when this was the last page (the state machine's Choice tests it).
   */
  readonly nextToken: string | null;
  /** A spoke whose repositories could not be listed (its role refused): its repositories are not swept this time. */
  readonly unreachable?: { readonly account: string; readonly region: string; readonly error: string };
}

export interface RepositoryRescan {
  readonly repository: string;
  /** The spoke's account and region; absent for the hub's own repositories. */
  readonly account?: string;
  readonly region?: string;
  /** The lineage image, null when the repository is not in the lineage. */
  readonly image: string | null;
  readonly images: number;
  readonly missed: number;
  readonly reopened: number;
  readonly closed: number;
  readonly changed: number;
  readonly refused: number;
  readonly scansStarted: number;
  readonly scansSkipped: Partial<Record<ScanDecision, number>>;
  readonly alerts: PublishableAlert[];
  readonly starts: Array<{ name: string; input: RebuildRequest }>;
  readonly drift: DriftedImage | null;
}

export interface DigestResult {
  readonly owners: number;
  readonly alerts: PublishableAlert[];
  /** Every drifted image (capped at 200), most days behind first. */
  readonly drifted: Array<Pick<DriftedImage, 'image' | 'owner' | 'versionsBehind' | 'daysBehind'> & { parents: string[] }>;
  readonly openFindings: number;
}

type RescanDependencies = HandlerDependencies &
  Required<Pick<HandlerDependencies, 'findings' | 'exceptions' | 'alertDedup' | 'findingPolicy'>> & { readonly registryScope: RegistryScope };

function requireRescanDependencies(deps: FindingReceivedDependencies): RescanDependencies {
  const missing = (['findings', 'exceptions', 'alertDedup', 'findingPolicy'] as const).filter((k) => deps[k] === undefined);
  if (missing.length > 0) throw new MissingRescanDependenciesError(missing);
  return { ...deps, registryScope: deps.registryScope ?? RegistryScope.singleAccount() } as RescanDependencies;
}

/** The image key of a stored finding; undefined for a registry that is not (or no longer) configured. */
function keyOfFinding(scope: RegistryScope, finding: Pick<NormalizedFinding, 'repository' | 'account' | 'region'>): string | undefined {
  try {
    return scope.keyOf(finding.account, finding.region, finding.repository);
  } catch {
    return undefined;
  }
}

export function makeRegistryRescanHandler(deps: FindingReceivedDependencies, services: RescanServices): (event: unknown) => Promise<RepositoryPage | RepositoryRescan | DigestResult> {
  const findingReceived = makeFindingReceivedHandler(deps);
  return async (event) => {
    const parsed = RescanInputSchema.safeParse(event);
    if (!parsed.success) {
      throw new InvalidRescanInputError(parsed.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`), { cause: parsed.error });
    }
    const input = parsed.data;
    const full = requireRescanDependencies(deps);
    switch (input.action) {
      case RescanAction.LIST_REPOSITORIES:
        return listRepositories(full, services, input.nextToken || undefined);
      case RescanAction.RESCAN_REPOSITORY: {
        if (typeof input.repository === 'string') return rescanRepository(full, services, services.ecr, services.inspector, findingReceived, input.repository);
        const item = input.repository;
        const spoke = sweptSpoke(services, item);
        full.registryScope.keyOf(item.account, item.region, item.repository); // refuses a spoke the scope does not know
        if (!services.spokes) throw new MissingRescanDependenciesError(['spoke scanners (services.spokes)']);
        let scanners: SpokeScannerClients;
        try {
          scanners = await services.spokes.scannersOf(spoke, RESCAN_SESSION_NAME);
        } catch (error) {
          spokeUnreachable(full, item, error);
          throw error;
        }
        return rescanRepository(full, services, scanners.ecr, scanners.inspector, findingReceived, item.repository, spoke);
      }
      case RescanAction.DIGEST:
        return digest(full, services, input.period);
    }
  };
}

/** The configured spoke of a spoke item, refusing a registry or repository the configuration does not sweep. */
function sweptSpoke(services: RescanServices, item: SpokeRepositoryItem): SpokeRepositories {
  const spoke = (services.settings.spokes ?? []).find((s) => s.account === item.account && s.region === item.region);
  if (!spoke || !spoke.repositories.some((p) => p !== '*' && matchesRepositoryPattern(p, item.repository))) throw new UnsweptRepositoryError(item);
  return spoke;
}

/** Counted and logged where it happens; the item (or the page's `unreachable`) carries the error. */
function spokeUnreachable(deps: RescanDependencies, spoke: RegistryLocation, error: unknown): void {
  logger.error('spoke registry unreachable', { account: spoke.account, region: spoke.region, error: (error as Error).message });
  deps.metrics?.count(PatchlineMetric.RESCAN_SPOKES_UNREACHABLE, 1);
}

const CURSOR = /^(\d{1,4})\/(.*)$/s;

/**
 * One page of one registry: the hub's repositories first, then each spoke's (listed with its role, kept to its
 * configured repositories). A spoke that cannot be listed is reported in `unreachable` and skipped: the others go on.
 */
async function listRepositories(deps: RescanDependencies, services: RescanServices, nextToken: string | undefined): Promise<RepositoryPage> {
  const spokes = services.settings.spokes ?? [];
  let registry = 0;
  let token: string | undefined;
  if (nextToken !== undefined) {
    const cursor = CURSOR.exec(nextToken);
    if (!cursor || Number(cursor[1]) > spokes.length) {
      throw new InvalidRescanInputError([`nextToken: not a rescan cursor <registry 0-${spokes.length}>/<token> (received ${JSON.stringify(nextToken.slice(0, 64))})`]);
    }
    registry = Number(cursor[1]);
    token = cursor[2] || undefined;
  }
  const following = (next: string | undefined): string | null => (next ? `${registry}/${next}` : registry < spokes.length ? `${registry + 1}/` : null);
  if (registry === 0) {
    const page = await services.ecr.repositoriesPage(services.settings.repositories, token);
    return { repositories: page.items.map((r) => r.name), nextToken: following(page.nextToken) };
  }
  const spoke = spokes[registry - 1];
  if (!services.spokes) throw new MissingRescanDependenciesError(['spoke scanners (services.spokes)']);
  let page: Awaited<ReturnType<EcrRegistry['repositoriesPage']>>;
  try {
    const scanners = await services.spokes.scannersOf(spoke, RESCAN_SESSION_NAME);
    page = await scanners.ecr.repositoriesPage(spoke.repositories, token);
  } catch (error) {
    // Whatever the cause (role refused, a spoke stack without ecr:DescribeRepositories yet, throttling): one spoke
    // must not stop the sweep of the hub and the others.
    spokeUnreachable(deps, spoke, error);
    return { repositories: [], nextToken: following(undefined), unreachable: { account: spoke.account, region: spoke.region, error: (error as Error).message } };
  }
  return { repositories: page.items.map((r) => ({ account: spoke.account, region: spoke.region, repository: r.name })), nextToken: following(page.nextToken) };
}

async function rescanRepository(
  deps: RescanDependencies,
  services: RescanServices,
  ecr: EcrRegistry,
  inspector: InspectorFindings,
  findingReceived: (event: unknown) => Promise<{ alerts: PublishableAlert[]; starts: ReadonlyArray<{ name: string; input: RebuildRequest }> }>,
  repository: string,
  spoke?: RegistryLocation,
): Promise<RepositoryRescan> {
  const now = deps.now();
  // The hub's own images keep their bare keys; a spoke's, read with its role, are keyed by its registry host.
  const registry = spoke ?? { account: services.settings.account, region: services.settings.region };
  const key = deps.registryScope.keyOf(registry.account, registry.region, repository);
  const node = await deps.lineage.getImage(key);
  const listed = await ecr.images(repository);
  const alerts: PublishableAlert[] = [];
  const starts: Array<{ name: string; input: RebuildRequest }> = [];
  const counts = { missed: 0, reopened: 0, closed: 0, changed: 0, refused: 0, scansStarted: 0 };
  const skipped: Partial<Record<ScanDecision, number>> = {};

  if (services.settings.scanningMode === 'basic') {
    // Untagged digests were replaced by a newer push: scanning them spends the daily quota on nothing anyone runs.
    for (const image of listed.filter((i) => i.tags.length > 0)) {
      const { decision } = decideBasicScan(image, { maxScanAgeDays: services.settings.maxScanAgeDays, now });
      if (decision === ScanDecision.SCAN && (await ecr.startImageScan(repository, image.digest)) === StartScanResult.STARTED) counts.scansStarted += 1;
      else skipped[decision === ScanDecision.SCAN ? ScanDecision.DAILY_LIMIT : decision] = (skipped[decision] ?? 0) + 1;
    }
  } else {
    const listing = await inspector.all(repository);
    // A delegated-administrator Inspector2 also lists the same-named repositories of member accounts: those findings
    // are of other images (a spoke's are swept with that spoke's role), not to be reconciled against this registry.
    const fresh = { ...listing, findings: listing.findings.filter((f) => keyOfFinding(deps.registryScope, f) === key) };
    counts.refused = fresh.refused;
    // Findings are keyed by the image; the filter drops records this repository got from a same-named spoke
    // repository before findings were keyed by registry (those are not reconciled against this registry).
    const stored = (await deps.findings.forImage(key)).filter((f) => keyOfFinding(deps.registryScope, f) === key);
    const result = reconcileFindings({ stored, fresh: fresh.findings, digests: new Set(listed.map((i) => i.digest)), now });
    counts.missed = result.missed.length;
    counts.reopened = result.reopened.length;
    counts.changed = result.changed.length;
    counts.closed = result.closed.length;
    for (const finding of result.closed) {
      const recorded = await deps.findings.record(key, finding);
      const remediated = remediationSeconds(recorded.previous, recorded.finding);
      if (remediated !== undefined) deps.metrics?.seconds(PatchlineMetric.TIME_TO_REMEDIATE, remediated, { [MetricDimension.SEVERITY]: finding.severity });
    }
    // Missed, re-opened and re-scored findings are decided exactly as if their event had arrived.
    for (const finding of [...result.missed, ...result.reopened, ...result.changed]) {
      const event = fresh.events.get(finding.findingArn);
      if (event === undefined) continue;
      const decided = await findingReceived(event);
      alerts.push(...decided.alerts);
      starts.push(...decided.starts);
    }
    // The rescan's own alerts (those of the findings decided above came from finding-received).
    if (node) alerts.push(...(await expiredExceptionAlerts(deps, node.image, node.tier, node.owner, fresh.findings, now)));
  }

  let drift: DriftedImage | null = null;
  if (node) {
    const report = findDrift([await driftSubject(deps, node.image, node.owner, node.parents.map((p) => p.image))], await parentHistories(services, node.parents.map((p) => p.image)), now);
    drift = report.drifted[0] ?? null;
  }
  logger.info('repository rescanned', { repository, ...spoke, images: listed.length, ...counts, alerts: alerts.length, starts: starts.length, drifted: drift !== null });
  return { repository, ...(spoke && { account: spoke.account, region: spoke.region }), image: node?.image ?? null, images: listed.length, ...counts, scansSkipped: skipped, alerts, starts, drift };
}

/** EXCEPTION_EXPIRED for open findings that only an exception kept quiet; the dedup window stops repeats. */
async function expiredExceptionAlerts(
  deps: RescanDependencies,
  image: string,
  tier: Tier,
  owner: string | undefined,
  open: readonly NormalizedFinding[],
  now: Date,
): Promise<PublishableAlert[]> {
  if (owner === undefined) return [];
  const active = open.filter((f) => f.status === FindingStatus.ACTIVE);
  const ids = [...new Set(active.map((f) => f.vulnerabilityId))];
  const stored = (await Promise.all(ids.map((id) => deps.exceptions.forVulnerability(id)))).flat();
  const policy: Policy = { ...deps.findingPolicy, exceptions: [...deps.findingPolicy.exceptions, ...stored] };
  const current = (await deps.lineage.currentVersion(image))?.digest;
  const candidates = active.filter((f) => current === undefined || f.digest === current).map((finding) => ({ finding, subject: { image, tier } }));
  const expiredAlerts = expiredExceptionFindings(candidates, policy, now).map((expired) => {
    const f = expired.finding;
    const alert = buildAlert({
      kind: AlertKind.EXCEPTION_EXPIRED,
      owner,
      image,
      digest: f.digest,
      vulnerabilityId: f.vulnerabilityId,
      severity: f.severity,
      ...(f.cvss !== undefined && { cvss: f.cvss }),
      packages: f.packages,
      action: `the exception ended: ${expired.reason}`,
      exception: { approver: expired.exception.approver, expiresAt: expired.exception.expiresAt, reason: expired.exception.reason },
    });
    return { alert, claim: { digest: alertIdentityDigest(image), vulnerabilityId: f.vulnerabilityId, kind: AlertKind.EXCEPTION_EXPIRED, severity: f.severity } };
  });
  return (await collectAlerts(deps, expiredAlerts, now)).alerts;
}

async function driftSubject(deps: HandlerDependencies, image: string, owner: string | undefined, parents: string[]): Promise<DriftSubject> {
  const current = await deps.lineage.currentVersion(image);
  return {
    image,
    ...(owner !== undefined && { owner }),
    parents,
    ...(current && { current: { digest: current.digest, pushedAt: current.pushedAt, ...(current.parentDigests && { parentDigests: current.parentDigests }) } }),
  };
}

async function parentHistories(services: RescanServices, parents: readonly string[]): Promise<(parent: string) => ParentVersion[]> {
  const histories = new Map<string, ParentVersion[]>();
  for (const parent of new Set(parents)) histories.set(parent, await services.versions.versions(parent));
  return (parent) => histories.get(parent) ?? [];
}

async function digest(deps: RescanDependencies, services: RescanServices, period: string | undefined): Promise<DigestResult> {
  const now = deps.now();
  const graph = await deps.lineage.loadGraph();
  const internal = [...graph.images()].filter((n) => deps.registryScope.isInternal(n.image) && n.tier !== Tier.EXTERNAL);
  const currents = new Map<string, string>();
  const subjects: DriftSubject[] = [];
  for (const node of internal) {
    const subject = await driftSubject(deps, node.image, node.owner, node.parents.map((p) => p.image));
    if (subject.current) currents.set(node.image, subject.current.digest);
    subjects.push(subject);
  }
  const parents = [...new Set(internal.flatMap((n) => n.parents.map((p) => p.image)))];
  const drift = findDrift(subjects, await parentHistories(services, parents), now);
  const entries = new Map<string, DigestEntry[]>();
  const byImage = new Map(internal.map((n) => [n.image, n]));
  let openFindings = 0;
  const gauged: Array<{ owner: string; severity: string }> = [];
  for (const f of await deps.findings.listOpen(10_000)) {
    const image = keyOfFinding(deps.registryScope, f);
    const node = image === undefined ? undefined : byImage.get(image);
    const current = image === undefined ? undefined : currents.get(image);
    if (!node?.owner || (current !== undefined && f.digest !== current)) continue;
    openFindings += 1;
    gauged.push({ owner: node.owner, severity: f.severity });
    entries.set(node.owner, [...(entries.get(node.owner) ?? []), { image: node.image, vulnerabilityId: f.vulnerabilityId, severity: f.severity, status: f.fixAvailable === 'NO' ? 'no fix yet' : 'fix available' }]);
  }
  const driftedByOwner = new Map<string, DigestDriftEntry[]>();
  for (const d of drift.drifted) {
    if (d.owner === undefined) continue;
    const entry = { image: d.image, parents: d.parents.map((p) => p.parent), versionsBehind: d.versionsBehind, daysBehind: d.daysBehind };
    driftedByOwner.set(d.owner, [...(driftedByOwner.get(d.owner) ?? []), entry]);
  }
  const label = period ?? now.toISOString().slice(0, 10);
  // One digest per owner with open findings or images behind their base.
  const digestOwners = [...new Set([...entries.keys(), ...driftedByOwner.keys()])].sort((a, b) => a.localeCompare(b));
  const digests = digestOwners.map((owner) => ({
    alert: buildAlert({ kind: AlertKind.DIGEST, owner, entries: entries.get(owner) ?? [], drifted: driftedByOwner.get(owner) ?? [], period: label }),
  }));
  const { alerts } = await collectAlerts(deps, digests, now);
  // Gauges, once per run: every owner is reported, zeros included, so a fixed backlog shows as 0 and not as a gap.
  const owners = internal.flatMap((n) => (n.owner === undefined ? [] : [n.owner]));
  for (const { owner, severity, count } of openFindingCounts(owners, gauged)) {
    deps.metrics?.count(PatchlineMetric.OPEN_FINDINGS, count, { [MetricDimension.OWNER]: owner, [MetricDimension.SEVERITY]: severity });
  }
  deps.metrics?.count(PatchlineMetric.CAMPAIGNS_RUNNING, await runningCampaigns(deps));
  return {
    owners: alerts.length,
    alerts,
    drifted: drift.drifted.slice(0, 200).map((d) => ({ image: d.image, ...(d.owner !== undefined && { owner: d.owner }), versionsBehind: d.versionsBehind, daysBehind: d.daysBehind, parents: d.parents.map((p) => p.parent) })),
    openFindings,
  };
}

/** Campaigns read for the CampaignsRunning gauge: the newest ones (a campaign runs for hours, not weeks). */
const RUNNING_CAMPAIGNS_SCANNED = 200;

/** Campaigns with members still pending or building (a superseded one counts while its last builds run). */
async function runningCampaigns(deps: HandlerDependencies): Promise<number> {
  let running = 0;
  for (const campaign of await deps.campaigns.list(RUNNING_CAMPAIGNS_SCANNED)) {
    const members = await deps.campaigns.members(campaign.campaignId);
    if (members.some((m) => m.state === MemberState.PENDING || m.state === MemberState.BUILDING)) running += 1;
  }
  return running;
}

export const handler = (event: unknown): Promise<RepositoryPage | RepositoryRescan | DigestResult> => {
  const deps = findingDependenciesFromEnvironment();
  return publishingMetrics(deps, makeRegistryRescanHandler(deps, rescanServicesFromEnvironment()))(event);
};
