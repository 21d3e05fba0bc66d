import { Logger } from '@aws-lambda-powertools/logger';
import {
  campaignId as deriveCampaignId,
  CampaignStatus,
  CampaignTrigger,
  classifyRootPush,
  MemberState,
  RebuildRequest,
  RootCampaignPointer,
  RootPushKind,
  settleDeadline,
} from '../domain/campaign';
import { ImagePush, parseEcrPushEvent } from '../domain/ecr-push-event';
import { LineageGraph } from '../domain/lineage';
import { PatchlineMetric } from '../domain/patchline-metric';
import { REGISTRY_SCOPE_ENV, RegistryScope } from '../domain/registry-scope';
import { criticalPathPriorities, estimateBuildSeconds } from '../domain/scheduling';
import { MemberRecord } from '../store/campaign-store';
import { decideInCampaign, handOverToCurrentCampaign, PinImage } from './campaign-handover';
import { dependenciesFromEnvironment, HandlerDependencies, publishingMetrics } from './dependencies';

const logger = new Logger({ serviceName: 'patchline-image-pushed' });

/** Tries at re-deciding a root push after a racing push moved the root's campaign pointer. */
const ROOT_CLAIM_ATTEMPTS = 5;

export interface ImagePushedResult {
  readonly image: string;
  readonly digest: string;
  /** The campaign this push belongs to (a rebuild it carries on, or one it starts); null when nothing is downstream. */
  readonly campaignId: string | null;
  readonly newVersion: boolean;
  /** One Step Functions StartExecution per child to rebuild now; names are deterministic. */
  readonly starts: ReadonlyArray<{ name: string; input: RebuildRequest }>;
  readonly waiting: ReadonlyArray<{ image: string; waitingFor: string[] }>;
  readonly skipped: ReadonlyArray<{ image: string; reason: string }>;
  /** What a push of a root image did: a new campaign, coalesced into one still settling, a replay, a stale push. */
  readonly rootPush?: RootPushKind;
  /** The campaign this push superseded (its pending members now rebuild in `campaignId`). */
  readonly superseded?: string;
}

/** The shared dependencies plus the hub's registry scope (kept out of HandlerDependencies, which others own). */
export type ImagePushedDependencies = HandlerDependencies & { readonly registryScope?: RegistryScope };

/** image-pushed's own dependencies, for the local runtime and the tests: the scope of the configured organization. */
export function imagePushedDependencies(organization: Parameters<typeof RegistryScope.forOrganization>[0]): { registryScope: RegistryScope } {
  return { registryScope: RegistryScope.forOrganization(organization) };
}

/** A push with `repository` replaced by the image's key (registry-qualified for a spoke image). */
type KeyedPush = ImagePush;

/**
 * image-pushed: validate the ECR push, record the version, and decide which children to rebuild now.
 *
 * A push of an image that a campaign is rebuilding carries that campaign on (and, when that campaign was superseded
 * meanwhile, hands the image over to the campaign that replaced it). Any other push with images below it is a root
 * push: inside the root's settle window it coalesces into the campaign still waiting to start; otherwise it starts a
 * new campaign, superseding the root's previous one.
 */
export function makeImagePushedHandler(deps: ImagePushedDependencies): (event: unknown) => Promise<ImagePushedResult> {
  const scope = deps.registryScope ?? RegistryScope.singleAccount();
  return async (event) => {
    const parsed = parseEcrPushEvent(event);
    // Before anything is written: an event of an account/region that is not configured is refused (dead-lettered).
    const image = scope.keyOf(parsed.account, parsed.region, parsed.repository);
    const push: KeyedPush = { ...parsed, repository: image };
    // Each parent is pinned in its own registry (a team image's enterprise parent lives in the platform account).
    const pin: PinImage = (i, digest) => scope.pinnedReference(i, digest, push);
    const { created } = await deps.lineage.putVersion({ image, digest: push.digest, tags: push.tag ? [push.tag] : [], pushedAt: push.pushedAt });
    const empty = { image, digest: push.digest, newVersion: created, starts: [], waiting: [], skipped: [] };

    let campaign = await deps.campaigns.buildingCampaign(image);
    const handedOver: Array<{ name: string; input: RebuildRequest }> = [];
    if (campaign) {
      await recordBuilt(deps, campaign, image, push.digest);
      // A build that a superseded campaign had in flight pushed: that push stays in the old campaign (its digest was
      // built from the old root), and the image's rebuild in the root's current campaign starts now.
      const handover = await handOverToCurrentCampaign(deps, campaign, image, pin, scope);
      if (handover.campaignId) logger.info('handed over', { image, from: campaign, to: handover.campaignId, starts: handover.starts.length });
      handedOver.push(...handover.starts);
    }
    const children = await deps.lineage.children(image);
    let rootPush: RootPushKind | undefined;
    let superseded: string | undefined;
    let settle: RebuildRequest['settle'];
    if (!campaign) {
      if (children.length === 0) return { ...empty, campaignId: null };
      const root = await rootCampaign(deps, push);
      rootPush = root.kind;
      if (!root.campaignId) return { ...empty, campaignId: null, rootPush };
      campaign = root.campaignId;
      superseded = root.superseded;
      if (root.settlesAt) settle = { until: root.settlesAt, rootImage: image, rootUri: scope.pinnedReference(image, push.digest, push).split('@')[0] };
    }

    const decision = await decideInCampaign(deps, campaign, { image, digest: push.digest }, children, pin, scope);
    for (const skip of decision.skip) {
      await deps.campaigns.transition(campaign, skip.image, [MemberState.PENDING], MemberState.SKIPPED, { reason: skip.reason });
    }
    const { start, deferred } = await deferBusy(deps, campaign, decision.start, superseded);
    const starts = [
      ...start.map((request) => ({ name: request.executionName, input: settle ? { ...request, settle } : request })),
      ...handedOver,
    ];
    logger.info('push decided', { image, digest: push.digest, campaign, rootPush, superseded, starts: starts.length, waiting: decision.wait.length, deferred: deferred.length, skipped: decision.skip.length });
    return {
      ...empty,
      campaignId: campaign,
      starts,
      waiting: [...decision.wait, ...deferred],
      skipped: decision.skip,
      ...(rootPush && { rootPush }),
      ...(superseded && { superseded }),
    };
  };
}

/** The rebuilt image's push: the member is built, its digest remembered for the rescan, its duration for estimates. */
async function recordBuilt(deps: HandlerDependencies, campaign: string, image: string, digest: string): Promise<void> {
  const at = deps.now();
  const member = (await deps.campaigns.memberStates(campaign, [image])).get(image);
  const moved = await deps.campaigns.transition(campaign, image, [MemberState.BUILDING, MemberState.PENDING], MemberState.BUILT, { digest }, at.toISOString());
  await deps.campaigns.clearBuilding(image, campaign);
  if (!moved) return; // a re-sent push: recorded the first time
  await deps.campaigns.recordBuiltDigest(image, digest, campaign, at.toISOString());
  const started = buildingSince(member);
  // From the slot grant to the push: CodeBuild's queue and build time, which is what the critical path waits for.
  if (started !== undefined) await deps.campaigns.recordBuildDuration(image, Math.max(0, (at.getTime() - started) / 1000));
}

function buildingSince(member: MemberRecord | undefined): number | undefined {
  const entry = [...(member?.history ?? [])].reverse().find((h) => h.state === MemberState.BUILDING);
  const at = entry ? Date.parse(entry.at) : Number.NaN;
  return Number.isFinite(at) ? at : undefined;
}

/**
 * An image still building for another (superseded) campaign is not started again: its push would be taken for this
 * campaign's. It waits for that push, which hands it over (see handOverToCurrentCampaign).
 */
async function deferBusy(
  deps: HandlerDependencies,
  campaign: string,
  requests: readonly RebuildRequest[],
  superseded: string | undefined,
): Promise<{ start: RebuildRequest[]; deferred: Array<{ image: string; waitingFor: string[] }> }> {
  const start: RebuildRequest[] = [];
  const deferred: Array<{ image: string; waitingFor: string[] }> = [];
  // The superseded campaign's members moved to building a moment ago may not have written their marker yet.
  const previous = superseded ? await deps.campaigns.memberStates(superseded, requests.map((r) => r.image)) : new Map<string, MemberRecord>();
  for (const request of requests) {
    const marker = await deps.campaigns.buildingCampaign(request.image);
    const busyIn = marker && marker !== campaign ? marker : previous.get(request.image)?.state === MemberState.BUILDING ? superseded : undefined;
    if (busyIn) deferred.push({ image: request.image, waitingFor: [`${request.image} (its build for campaign ${busyIn})`] });
    else start.push(request);
  }
  return { start, deferred };
}

interface RootCampaign {
  readonly kind: RootPushKind;
  /** null: the push starts nothing (a stale push, or a replay of a superseded campaign's digest). */
  readonly campaignId: string | null;
  readonly settlesAt?: string;
  readonly superseded?: string;
}

/** Finds or opens the campaign of a root push (settle window, supersede); see classifyRootPush. */
async function rootCampaign(deps: HandlerDependencies, push: KeyedPush): Promise<RootCampaign> {
  const root = push.repository;
  const window = deps.settleWindowSeconds ?? 0;
  for (let attempt = 0; attempt < ROOT_CLAIM_ATTEMPTS; attempt++) {
    const now = deps.now();
    const pointer = await deps.campaigns.rootPointer(root);
    const kind = classifyRootPush(pointer, push, now);
    const settling = (p: RootCampaignPointer): string | undefined => (p.settlesAt && now.getTime() < Date.parse(p.settlesAt) ? p.settlesAt : undefined);
    if (kind === RootPushKind.STALE) return { kind, campaignId: null };
    if (kind === RootPushKind.REPLAY) {
      // The first delivery may have died between claiming the pointer and writing the campaign.
      await createCampaign(deps, pointer!.campaignId, push);
      return { kind, campaignId: pointer!.campaignId, settlesAt: settling(pointer!) };
    }
    if (kind === RootPushKind.COALESCE) {
      // The push that opened the window may not have written the campaign yet.
      await createCampaign(deps, pointer!.campaignId, push);
      if (await deps.campaigns.coalesce(pointer!, push.digest, push.pushedAt, now)) return { kind, campaignId: pointer!.campaignId, settlesAt: pointer!.settlesAt };
      continue;
    }
    const id = deriveCampaignId(root, push.digest);
    const existing = await deps.campaigns.get(id);
    // A replay of a digest whose campaign was superseded (or of an earlier coalesced one): a newer digest rules.
    if (existing?.status === CampaignStatus.SUPERSEDED) return { kind: RootPushKind.STALE, campaignId: null };
    const settlesAt = settleDeadline(now, window);
    const next: RootCampaignPointer = { rootImage: root, campaignId: id, rootDigest: push.digest, pushedAt: push.pushedAt, ...(settlesAt && { settlesAt }) };
    if (!(await deps.campaigns.claimRoot(next, pointer))) continue;
    await createCampaign(deps, id, push);
    let superseded: string | undefined;
    if (pointer && pointer.campaignId !== id) {
      superseded = pointer.campaignId;
      const moved = await deps.campaigns.supersede(superseded, id, `superseded by campaign ${id}: ${root} was pushed again as ${push.digest}`, now.toISOString());
      logger.info('campaign superseded', { campaign: superseded, by: id, pendingMoved: moved.length });
    }
    return { kind, campaignId: id, settlesAt, superseded };
  }
  throw new RootPushContentionError(root);
}

export class RootPushContentionError extends Error {
  public readonly code = 'ROOT_PUSH_CONTENTION';
  public constructor(root: string, options?: { cause?: unknown }) {
    super(`pushes of ${root} kept moving its campaign pointer after ${ROOT_CLAIM_ATTEMPTS} attempts; the event is retried`, options);
    this.name = 'RootPushContentionError';
  }
}

/** Creates the campaign (idempotent) with every image below the root pending, prioritized by critical path. */
async function createCampaign(deps: HandlerDependencies, id: string, push: KeyedPush): Promise<void> {
  if (await deps.campaigns.get(id)) return;
  const root = push.repository;
  const descendants = await deps.lineage.descendants(root);
  const rootNode = (await deps.lineage.getImage(root)) ?? { image: root, tier: 'enterprise' as const, parents: [] };
  const graph = LineageGraph.fromImages([rootNode, ...descendants]);
  const durations = await deps.campaigns.buildDurations(descendants.map((d) => d.image));
  const estimate = (image: string): number => estimateBuildSeconds(durations.get(image) ?? [], deps.defaultBuildSeconds);
  const priorities = criticalPathPriorities(graph, new Set(descendants.map((d) => d.image)), estimate);
  const created = await deps.campaigns.create(
    {
      campaignId: id,
      rootImage: root,
      rootDigest: push.digest,
      trigger: CampaignTrigger.PUSH,
      reason: `push of ${root}${push.tag ? `:${push.tag}` : ''}@${push.digest}`,
      startedAt: deps.now().toISOString(),
      memberCount: descendants.length,
    },
    descendants.map((d) => ({ image: d.image, priority: priorities.get(d.image) ?? deps.defaultBuildSeconds, parents: d.parents.map((p) => p.image) })),
  );
  // Counted by the delivery that wrote it: a replay or a racing push finds it created.
  if (created) deps.metrics?.count(PatchlineMetric.CAMPAIGNS_STARTED, 1);
}

let environmentDependencies: ImagePushedDependencies | undefined;

export const handler = (event: unknown): Promise<ImagePushedResult> => {
  environmentDependencies ??= { ...dependenciesFromEnvironment(), registryScope: RegistryScope.fromEnvironment(process.env[REGISTRY_SCOPE_ENV]) };
  return publishingMetrics(environmentDependencies, makeImagePushedHandler(environmentDependencies))(event);
};
