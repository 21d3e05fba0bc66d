import { Logger } from '@aws-lambda-powertools/logger';
import { campaignId as deriveCampaignId, CampaignTrigger, decideRebuilds, MemberState, RebuildRequest } from '../domain/campaign';
import { ecrImageUri, ImagePush, parseEcrPushEvent } from '../domain/ecr-push-event';
import { isInternalImageKey, LineageGraph } from '../domain/lineage';
import { criticalPathPriorities } from '../domain/scheduling';
import { dependenciesFromEnvironment, HandlerDependencies } from './dependencies';

const logger = new Logger({ serviceName: 'patchline-image-pushed' });

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
}

/**
 * image-pushed: validate the ECR push, record the version, and decide which children to rebuild now. A push of an
 * image that a campaign is rebuilding carries that campaign on; any other push with images below it starts one.
 */
export function makeImagePushedHandler(deps: HandlerDependencies): (event: unknown) => Promise<ImagePushedResult> {
  return async (event) => {
    const push = parseEcrPushEvent(event);
    const image = push.repository;
    const { created } = await deps.lineage.putVersion({ image, digest: push.digest, tags: push.tag ? [push.tag] : [], pushedAt: push.pushedAt });

    let campaign = await deps.campaigns.buildingCampaign(image);
    if (campaign) {
      await deps.campaigns.transition(campaign, image, [MemberState.BUILDING, MemberState.PENDING], MemberState.BUILT, { digest: push.digest });
      await deps.campaigns.clearBuilding(image, campaign);
    }
    const children = await deps.lineage.children(image);
    if (!campaign) {
      if (children.length === 0) return { image, digest: push.digest, campaignId: null, newVersion: created, starts: [], waiting: [], skipped: [] };
      campaign = await startCampaign(deps, push);
    }

    const relevant = [...new Set(children.flatMap((c) => [c.image, ...c.parents.map((p) => p.image)]))];
    const members = await deps.campaigns.memberStates(campaign, relevant);
    const digests = new Map<string, string | undefined>();
    for (const parent of relevant) {
      const member = members.get(parent);
      digests.set(parent, member?.digest ?? (isInternalImageKey(parent) ? (await deps.lineage.currentVersion(parent))?.digest : undefined));
    }
    const decision = decideRebuilds({
      campaignId: campaign,
      pushedImage: image,
      pushedDigest: push.digest,
      children,
      memberState: (i) => members.get(i)?.state,
      parentDigest: (i) => digests.get(i),
      imageUri: (i, digest) => pinnedReference(push, i, digest),
      priority: (i) => members.get(i)?.priority ?? deps.defaultBuildSeconds,
    });
    for (const skip of decision.skip) {
      await deps.campaigns.transition(campaign, skip.image, [MemberState.PENDING], MemberState.SKIPPED, { reason: skip.reason });
    }
    logger.info('push decided', { image, digest: push.digest, campaign, starts: decision.start.length, waiting: decision.wait.length, skipped: decision.skip.length });
    return {
      image,
      digest: push.digest,
      campaignId: campaign,
      newVersion: created,
      starts: decision.start.map((request) => ({ name: request.executionName, input: request })),
      waiting: decision.wait,
      skipped: decision.skip,
    };
  };
}

async function startCampaign(deps: HandlerDependencies, push: ImagePush): Promise<string> {
  const root = push.repository;
  const id = deriveCampaignId(root, push.digest);
  const descendants = await deps.lineage.descendants(root);
  const rootNode = (await deps.lineage.getImage(root)) ?? { image: root, tier: 'enterprise' as const, parents: [] };
  const graph = LineageGraph.fromImages([rootNode, ...descendants]);
  const priorities = criticalPathPriorities(graph, new Set(descendants.map((d) => d.image)), () => deps.defaultBuildSeconds);
  await deps.campaigns.create(
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
  return id;
}

/** Internal images live in the pushing account's ECR; external ones keep their registry and are pinned when known. */
function pinnedReference(push: ImagePush, image: string, digest: string | undefined): string {
  if (isInternalImageKey(image)) return digest ? ecrImageUri(push.account, push.region, image, digest) : image;
  if (!digest) return image;
  return `${image.replace(/:[^/:@]+$/, '').split('@')[0]}@${digest}`;
}

const defaultHandler = (event: unknown): Promise<ImagePushedResult> => makeImagePushedHandler(dependenciesFromEnvironment())(event);
export const handler = defaultHandler;
