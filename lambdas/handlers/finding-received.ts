import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { createHash } from 'crypto';
import { AlertKind, buildAlert, FindingAlertInput } from '../domain/alert';
import { campaignId as deriveCampaignId, CampaignTrigger, decideRebuilds, MemberState, RebuildRequest } from '../domain/campaign';
import { PatchlineConfig } from '../domain/config';
import { FixAvailable, NormalizedFinding, parseEcrScanEvent, parseInspectorFindingEvent } from '../domain/finding';
import { imageKey, ImageNode, LineageGraph, ParentRole, Tier } from '../domain/lineage';
import { parseImageRef } from '../domain/image-ref';
import { attributeOrigin, OriginAction, OriginAttribution } from '../domain/origin';
import { MetricDimension, PatchlineMetric, remediationSeconds } from '../domain/patchline-metric';
import { evaluateFinding, parsePolicy, Policy, PolicyOutcome } from '../domain/policy';
import { REGISTRY_SCOPE_ENV, RegistryScope } from '../domain/registry-scope';
import { criticalPathPriorities } from '../domain/scheduling';
import { AlertDedupStore, ExceptionStore, FindingChange, FindingStore, StoredFinding } from '../store/finding-store';
import { dependenciesFromEnvironment, HandlerDependencies, publishingMetrics, requireEnv } from './dependencies';
import { collectAlerts, PublishableAlert } from './publishable-alerts';
import { traced } from '../aws/traced-client';

const logger = new Logger({ serviceName: 'patchline-finding-received' });

/** What finding-received did with an event. */
export const FindingAction = {
  /** A rebuild campaign starts where the fix lands (and its owner is told). */
  REBUILD: 'REBUILD',
  /** Owners or vendors are alerted; nothing is rebuilt. */
  ALERT: 'ALERT',
  /** An approved exception covers it: recorded, no alert. */
  EXCEPTED: 'EXCEPTED',
  /** Stored only: not active, below the threshold, no fix, a trusted base, or a basic-scan summary. */
  RECORDED: 'RECORDED',
  /** Stored only: the image is not in the lineage, so there is nobody to tell and nothing to rebuild. */
  UNTRACKED: 'UNTRACKED',
  /** An older version of a finding already stored (events out of order): nothing changed. */
  STALE: 'STALE',
} as const;
export type FindingAction = (typeof FindingAction)[keyof typeof FindingAction];

export interface FindingReceivedResult {
  readonly event: 'Inspector2 Finding' | 'ECR Image Scan';
  readonly repository: string;
  readonly digest: string;
  /** The lineage key the finding was matched to; null when the image is not in the lineage. */
  readonly image: string | null;
  readonly vulnerabilityId: string | null;
  readonly change: FindingChange | null;
  readonly outcome: PolicyOutcome | null;
  readonly action: FindingAction;
  readonly reason: string;
  readonly origin: { image: string; action: OriginAction; actionImage: string; evidence: string; path: string[] } | null;
  readonly campaignId: string | null;
  readonly alerts: PublishableAlert[];
  /** Alerts not sent again because one was sent within the dedup window. */
  readonly suppressedAlerts: number;
  readonly starts: ReadonlyArray<{ name: string; input: RebuildRequest }>;
}

export class MissingFindingDependenciesError extends Error {
  public readonly code = 'MISSING_FINDING_DEPENDENCIES';
  public constructor(missing: readonly string[]) {
    super(`finding-received needs ${missing.join(', ')} in its dependencies`);
    this.name = 'MissingFindingDependenciesError';
  }
}

/** The shared dependencies plus the hub's registry scope (as image-pushed's: spoke images are keyed by registry). */
export type FindingReceivedDependencies = HandlerDependencies & { readonly registryScope?: RegistryScope };

type FindingDependencies = FindingReceivedDependencies &
  Required<Pick<HandlerDependencies, 'findings' | 'exceptions' | 'alertDedup' | 'findingPolicy'>> & { readonly registryScope: RegistryScope };

/** The vulnerability policy of a config; exceptions live in the store (`patchline exception add`). */
export function policyFromConfig(config: PatchlineConfig): Policy {
  return parsePolicy({
    severityThreshold: config.severityThreshold,
    requireFixAvailable: config.requireFixAvailable,
    exceptions: config.exceptions,
    trustedBases: config.trustedBases,
  });
}

/** The finding stores and policy, for the local runtime and the CLI. */
export function findingReceivedDependencies(props: { client: DynamoDBClient; tableName: string; config: PatchlineConfig; policy?: Policy }) {
  const { client, tableName, config } = props;
  return {
    findings: new FindingStore({ client, tableName }),
    exceptions: new ExceptionStore({ client, tableName }),
    alertDedup: new AlertDedupStore({ client, tableName, windowSeconds: config.alertDedupDays * 86_400 }),
    findingPolicy: props.policy ?? policyFromConfig(config),
  };
}

function requireFindingDependencies(deps: FindingReceivedDependencies): FindingDependencies {
  const missing = (['findings', 'exceptions', 'alertDedup', 'findingPolicy'] as const).filter((k) => deps[k] === undefined);
  if (missing.length > 0) throw new MissingFindingDependenciesError(missing);
  return { ...deps, registryScope: deps.registryScope ?? RegistryScope.singleAccount() } as FindingDependencies;
}

/**
 * The dedup digest of alerts about `image`: a stable identity of the image, not of one of its versions. The same CVE
 * arrives reported on many digests (the image, every image below it, re-scans after each push, Inspector re-sends),
 * and the owner of the image where the fix lands is to hear about it once per window; an escalation still alerts.
 */
export function alertIdentityDigest(image: string): string {
  return `sha256:${createHash('sha256').update(`patchline-image\u0000${image}`).digest('hex')}`;
}

/** ECR repository that mirrors an external image (pull-through cache or copy named after it): `registry/path`. */
export function mirrorRepository(externalKey: string): string {
  const ref = parseImageRef(externalKey);
  return `${ref.registry}/${ref.repository}`;
}

/**
 * The lineage key of a scanned repository: the internal image itself (keyed by its registry, as image-pushed keys it),
 * else an external image it mirrors (by tag). An account/region that is neither the hub nor a spoke is refused.
 */
async function resolveImage(deps: FindingDependencies, finding: Pick<NormalizedFinding, 'repository' | 'tags' | 'account' | 'region'>): Promise<ImageNode | undefined> {
  const internal = await deps.lineage.getImage(imageKeyOf(deps.registryScope, finding));
  if (internal) return internal;
  for (const tag of finding.tags.slice(0, 10)) {
    let key: string;
    try {
      key = imageKey(`${finding.repository}:${tag}`);
    } catch {
      continue;
    }
    const node = await deps.lineage.getImage(key);
    if (node) return node;
  }
  return undefined;
}

/** Findings of the version of `image` that matters: its current digest when it has findings, else the latest scanned. */
async function findingsOfImage(deps: FindingDependencies, image: string): Promise<StoredFinding[] | undefined> {
  const scope = deps.registryScope;
  if (scope.isInternal(image)) {
    // Findings are keyed by the image (registry-qualified for a spoke); the filter drops records a hub repository got
    // from a same-named spoke repository before findings were keyed by registry.
    const all = (await deps.findings.forImage(image)).filter((f) => keyOfFinding(scope, f) === image);
    if (all.length === 0) return undefined;
    const current = (await deps.lineage.currentVersion(image))?.digest;
    const byDigest = new Map<string, StoredFinding[]>();
    for (const f of all) byDigest.set(f.digest, [...(byDigest.get(f.digest) ?? []), f]);
    if (current && byDigest.has(current)) return byDigest.get(current);
    const latest = all.reduce((a, b) => (b.lastObservedAt > a.lastObservedAt ? b : a));
    return byDigest.get(latest.digest);
  }
  let repository: string;
  try {
    repository = mirrorRepository(image);
  } catch {
    return undefined;
  }
  const ref = parseImageRef(image);
  // The mirror repository may sit in the hub or in any spoke: its findings are keyed by registry.
  const all = (await Promise.all(scope.keysOf(repository).map((key) => deps.findings.forImage(key)))).flat();
  const mine = all.filter((f) => (ref.tag ? f.tags.includes(ref.tag) : f.digest === ref.digest));
  return mine.length > 0 ? mine : undefined;
}

/**
 * The image key a finding (or basic-scan summary) is stored and looked up under: its repository in the registry of its
 * account and region (bare for the hub, qualified for a spoke); refuses an account/region that is not configured.
 */
function imageKeyOf(scope: RegistryScope, finding: Pick<NormalizedFinding, 'repository' | 'account' | 'region'>): string {
  return scope.keyOf(finding.account, finding.region, finding.repository);
}

/** The image key of a stored finding; undefined for a registry that is not (or no longer) configured. */
function keyOfFinding(scope: RegistryScope, finding: Pick<NormalizedFinding, 'repository' | 'account' | 'region'>): string | undefined {
  try {
    return imageKeyOf(scope, finding);
  } catch {
    return undefined;
  }
}

/** The dedup key of alerts about `image`, and its current digest (shown in the alert) when a push was recorded. */
async function alertDigest(deps: FindingDependencies, image: string): Promise<{ key: string; real?: string }> {
  const current = deps.registryScope.isInternal(image) ? (await deps.lineage.currentVersion(image))?.digest : undefined;
  return { key: alertIdentityDigest(image), ...(current && { real: current }) };
}

interface PlannedAlert {
  readonly input: FindingAlertInput;
  readonly dedupDigest: string;
}

/**
 * finding-received: parse (invalid input throws, and the state machine dead-letters the original event) → store →
 * origin along the lineage → policy → act: a rebuild campaign at an internal origin with a fix (or at the first
 * internal image below an external one), an alert to the owner of that image, or to the vendor of a COTS image.
 * Returns the alerts to publish (already deduplicated) and the rebuild executions to start.
 */
export function makeFindingReceivedHandler(deps: FindingReceivedDependencies): (event: unknown) => Promise<FindingReceivedResult> {
  return async (event) => {
    const detailType = event !== null && typeof event === 'object' ? (event as Record<string, unknown>)['detail-type'] : undefined;
    if (detailType === 'ECR Image Scan') return handleScan(requireFindingDependencies(deps), event);
    const finding = parseInspectorFindingEvent(event);
    return handleFinding(requireFindingDependencies(deps), finding);
  };
}

async function handleScan(deps: FindingDependencies, event: unknown): Promise<FindingReceivedResult> {
  const summary = parseEcrScanEvent(event);
  // Keyed by registry, as the findings are: an unconfigured account/region is refused before anything is stored.
  const { stale } = await deps.findings.recordScan(imageKeyOf(deps.registryScope, summary), summary);
  const node = await resolveImage(deps, summary);
  const reason = `basic scan of ${summary.repository}@${summary.digest}: ${summary.total} finding(s), highest ${summary.highestSeverity ?? 'none'}; basic scanning names no CVE, so the summary is recorded for the gate`;
  logger.info('scan summary recorded', { repository: summary.repository, digest: summary.digest, total: summary.total, stale });
  return {
    event: 'ECR Image Scan',
    repository: summary.repository,
    digest: summary.digest,
    image: node?.image ?? null,
    vulnerabilityId: null,
    change: null,
    outcome: null,
    action: stale ? FindingAction.STALE : FindingAction.RECORDED,
    reason,
    origin: null,
    campaignId: null,
    alerts: [],
    suppressedAlerts: 0,
    starts: [],
  };
}

async function handleFinding(deps: FindingDependencies, finding: NormalizedFinding): Promise<FindingReceivedResult> {
  const now = deps.now();
  // Keyed by registry: a hub and a spoke repository of the same name holding the same digest keep separate records.
  const recorded = await deps.findings.record(imageKeyOf(deps.registryScope, finding), finding);
  const remediated = remediationSeconds(recorded.previous, recorded.finding);
  if (remediated !== undefined) deps.metrics?.seconds(PatchlineMetric.TIME_TO_REMEDIATE, remediated, { [MetricDimension.SEVERITY]: finding.severity });
  const base = {
    event: 'Inspector2 Finding' as const,
    repository: finding.repository,
    digest: finding.digest,
    vulnerabilityId: finding.vulnerabilityId,
    change: recorded.change,
    campaignId: null,
    alerts: [],
    suppressedAlerts: 0,
    starts: [],
  };
  if (recorded.change === FindingChange.STALE) {
    return { ...base, image: null, outcome: null, action: FindingAction.STALE, reason: 'an older event than the stored finding: ignored', origin: null };
  }
  const node = await resolveImage(deps, finding);
  if (!node) {
    const reason = `${finding.repository} is not in the lineage: the finding is recorded, nobody is alerted`;
    logger.info('finding on an untracked image', { repository: finding.repository, vulnerabilityId: finding.vulnerabilityId });
    return { ...base, image: null, outcome: null, action: FindingAction.UNTRACKED, reason, origin: null };
  }

  // The image and everything above it: enough to attribute the origin, without loading the whole lineage.
  const ancestors = await deps.lineage.ancestors(node.image);
  const graph = LineageGraph.fromImages([node, ...ancestors]);
  const lookups = new Map<string, StoredFinding[] | undefined>();
  for (const ancestor of ancestors) lookups.set(ancestor.image, await findingsOfImage(deps, ancestor.image));
  lookups.set(node.image, [recorded.finding]);
  const origin = attributeOrigin(graph, node.image, { vulnerabilityId: finding.vulnerabilityId, packages: finding.packages }, (image) => lookups.get(image));

  const exceptions = [...deps.findingPolicy.exceptions, ...(await deps.exceptions.forVulnerability(finding.vulnerabilityId))];
  const policy: Policy = { ...deps.findingPolicy, exceptions };
  const decision = evaluateFinding(finding, { image: node.image, tier: node.tier, origin: origin.origin }, policy, now);
  const originSummary = { image: origin.origin, action: origin.action, actionImage: origin.actionImage, evidence: origin.evidence, path: origin.path.map((s) => s.image) };
  const done = (action: FindingAction, reason: string, extra: Partial<FindingReceivedResult> = {}): FindingReceivedResult => {
    logger.info('finding decided', { image: node.image, digest: finding.digest, vulnerabilityId: finding.vulnerabilityId, change: recorded.change, outcome: decision.outcome, action, reason });
    return { ...base, image: node.image, outcome: decision.outcome, action, reason, origin: originSummary, ...extra };
  };

  if (decision.outcome === PolicyOutcome.EXCEPTED) return done(FindingAction.EXCEPTED, decision.reason);
  if (decision.outcome !== PolicyOutcome.ACT) return done(FindingAction.RECORDED, decision.reason);

  const common = {
    vulnerabilityId: finding.vulnerabilityId,
    severity: finding.severity,
    ...(finding.cvss !== undefined && { cvss: finding.cvss }),
    packages: finding.packages,
    origin: { image: origin.origin, internal: origin.originInternal, evidence: origin.evidence },
  };
  const planned: PlannedAlert[] = [];
  const campaigns: Array<{ id: string; starts: Array<{ name: string; input: RebuildRequest }> }> = [];
  const ownerless: string[] = [];
  for (const target of await actionTargets(deps, graph, origin)) {
    const version = await alertDigest(deps, target.image);
    const rebuildable = target.tier !== Tier.COTS && target.build !== undefined && finding.fixAvailable !== FixAvailable.NO;
    const campaign = rebuildable && origin.action !== OriginAction.ALERT_VENDOR ? await startFindingCampaign(deps, target, version, finding, origin) : undefined;
    if (campaign) campaigns.push(campaign);
    if (target.owner === undefined) {
      ownerless.push(target.image);
      continue;
    }
    const to = { owner: target.owner, image: target.image, ...(version.real && { digest: version.real }) };
    if (target.tier === Tier.COTS) {
      planned.push({ dedupDigest: version.key, input: { ...common, ...to, kind: AlertKind.VENDOR_VULNERABLE } });
    } else if (campaign && origin.originInternal) {
      const action = `rebuilding ${target.image} and the images below it (campaign ${campaign.id})`;
      planned.push({ dedupDigest: version.key, input: { ...common, ...to, kind: AlertKind.REBUILD_STARTED, action, campaignId: campaign.id } });
    } else {
      const action = campaign
        ? `the fix comes from the upstream image ${origin.origin}; rebuilding ${target.image} and the images below it now (campaign ${campaign.id}), and again when ${origin.origin} is updated`
        : origin.originInternal
          ? `${target.image} cannot be rebuilt by Patchline (no build project, or no fix yet): rebuild it when a fix is available`
          : undefined;
      planned.push({
        dedupDigest: version.key,
        input: { ...common, ...to, kind: AlertKind.UPSTREAM_VULNERABLE, ...(action && { action }), ...(campaign && { campaignId: campaign.id }) },
      });
    }
  }
  if (decision.outcome === PolicyOutcome.ACT && decision.expiredException && node.owner !== undefined) {
    const reported = await alertDigest(deps, node.image);
    const { approver, expiresAt, reason } = decision.expiredException;
    planned.push({
      dedupDigest: reported.key,
      input: { ...common, owner: node.owner, image: node.image, ...(reported.real && { digest: reported.real }), kind: AlertKind.EXCEPTION_EXPIRED, exception: { approver, expiresAt, reason } },
    });
  }

  const { alerts, suppressed } = await collectAlerts(
    deps,
    planned.map((p) => {
      const alert = buildAlert(p.input);
      return { alert, claim: { digest: p.dedupDigest, vulnerabilityId: finding.vulnerabilityId, kind: alert.kind, severity: finding.severity } };
    }),
    now,
  );
  const unowned = ownerless.length > 0 ? `; no owner to alert for ${ownerless.join(', ')}` : '';
  const action = campaigns.length > 0 ? FindingAction.REBUILD : alerts.length + suppressed > 0 ? FindingAction.ALERT : FindingAction.RECORDED;
  return done(action, `${origin.reason}${unowned}`, {
    campaignId: campaigns[0]?.id ?? null,
    alerts,
    suppressedAlerts: suppressed,
    starts: campaigns.flatMap((c) => c.starts),
  });
}

/**
 * The images the action lands on: the COTS image, the internal origin, or the first internal image below an external
 * origin. A finding reported on the external image itself (a mirror) has no internal image on its path: the first
 * internal images below it are its children.
 */
async function actionTargets(deps: HandlerDependencies, graph: LineageGraph, origin: OriginAttribution): Promise<ImageNode[]> {
  const action = graph.require(origin.actionImage);
  if (action.tier !== Tier.EXTERNAL) return [action];
  const children = await deps.lineage.children(action.image);
  return children
    .filter((c) => c.tier !== Tier.EXTERNAL && c.parents.some((p) => p.image === action.image && p.role === ParentRole.RUNTIME))
    .map(({ depth: _depth, ...node }) => node);
}

/**
 * A rebuild campaign rooted at the image where the fix lands: the image itself is its first member (its rebuild picks
 * up the fixed packages), the images below follow through their own push events. The id derives from the image and
 * the parent versions it would be rebuilt from: every finding until a parent moves (other CVEs, the same CVE reported
 * lower down, re-sends, the rebuilt image's own rescan) joins one campaign instead of rebuilding in a loop; a new
 * upstream or parent digest allows the next one. A deterministic execution name makes a repeated start a no-op.
 */
async function startFindingCampaign(
  deps: FindingDependencies,
  root: ImageNode,
  version: { key: string; real?: string },
  finding: NormalizedFinding,
  origin: OriginAttribution,
): Promise<{ id: string; starts: Array<{ name: string; input: RebuildRequest }> }> {
  const digests = new Map<string, string | undefined>();
  for (const parent of root.parents) digests.set(parent.image, (await deps.lineage.currentVersion(parent.image))?.digest);
  const pin = (image: string, digest: string | undefined): string => deps.registryScope.pinnedReference(image, digest, finding);
  const pinnedParents = root.parents.map((p) => pin(p.image, digests.get(p.image)));
  const id = deriveCampaignId(root.image, `finding#${pinnedParents.join(',')}`);
  const descendants = await deps.lineage.descendants(root.image);
  const members = [root.image, ...descendants.map((d) => d.image)];
  const graph = LineageGraph.fromImages([root, ...descendants]);
  const priorities = criticalPathPriorities(graph, new Set(members), () => deps.defaultBuildSeconds);
  const created = await deps.campaigns.create(
    {
      campaignId: id,
      rootImage: root.image,
      rootDigest: version.real ?? 'unknown',
      trigger: CampaignTrigger.FINDING,
      reason: `${finding.vulnerabilityId} (${finding.severity}) reported on ${finding.repository}@${finding.digest}; origin ${origin.origin}`,
      startedAt: deps.now().toISOString(),
      memberCount: members.length,
      vulnerabilityIds: [finding.vulnerabilityId],
    },
    [
      { image: root.image, priority: priorities.get(root.image) ?? deps.defaultBuildSeconds, parents: root.parents.map((p) => p.image) },
      ...descendants.map((d) => ({ image: d.image, priority: priorities.get(d.image) ?? deps.defaultBuildSeconds, parents: d.parents.map((p) => p.image) })),
    ],
  );
  const state = (await deps.campaigns.memberStates(id, [root.image])).get(root.image)?.state;
  // Only a root still waiting to be built is started (again: the execution name makes a duplicate start a no-op).
  if (state !== MemberState.PENDING) return { id, starts: [] };
  const decision = decideRebuilds({
    campaignId: id,
    pushedImage: '',
    pushedDigest: '',
    children: [root],
    memberState: (image) => (image === root.image ? MemberState.PENDING : undefined),
    parentDigest: (image) => digests.get(image),
    imageUri: pin,
    priority: (image) => priorities.get(image) ?? deps.defaultBuildSeconds,
    // A spoke image is rebuilt in its own account, as image-pushed places it.
    placement: (image) => deps.registryScope.placement(image),
  });
  // A base built FROM scratch has no parent to pin.
  const starts = decision.start.map((request) => ({
    name: request.executionName,
    input: request.baseImage === undefined ? { ...request, baseImage: 'scratch', parentImages: [] } : request,
  }));
  if (created) deps.metrics?.count(PatchlineMetric.CAMPAIGNS_STARTED, 1);
  logger.info('finding campaign', { campaignId: id, root: root.image, created, starts: starts.length });
  return { id, starts };
}

let environmentDependencies: FindingReceivedDependencies | undefined;

/**
 * The Lambda's dependencies: the shared ones plus the finding stores and FINDING_POLICY / ALERT_DEDUP_SECONDS (also
 * registry-rescan's, which decides missed findings through this handler).
 */
export function findingDependenciesFromEnvironment(): FindingReceivedDependencies {
  if (!environmentDependencies) {
    const client = traced(new DynamoDBClient({}));
    const tableName = requireEnv('TABLE_NAME');
    environmentDependencies = {
      ...dependenciesFromEnvironment(),
      findings: new FindingStore({ client, tableName }),
      exceptions: new ExceptionStore({ client, tableName }),
      alertDedup: new AlertDedupStore({ client, tableName, windowSeconds: Number(requireEnv('ALERT_DEDUP_SECONDS')) }),
      findingPolicy: parsePolicy(JSON.parse(requireEnv('FINDING_POLICY'))),
      registryScope: RegistryScope.fromEnvironment(process.env[REGISTRY_SCOPE_ENV]),
    };
  }
  return environmentDependencies;
}

export const handler = (event: unknown): Promise<FindingReceivedResult> => {
  const deps = findingDependenciesFromEnvironment();
  return publishingMetrics(deps, makeFindingReceivedHandler(deps))(event);
};
