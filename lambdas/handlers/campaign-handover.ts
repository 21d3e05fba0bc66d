import { CampaignStatus, ChildRecord, decideRebuilds, MemberState, RebuildDecision, RebuildRequest } from '../domain/campaign';
import { handoverCampaign } from '../domain/campaign-handover';
import { isInternalImageKey } from '../domain/lineage';
import type { BuildPlacement } from '../domain/registry-scope';
import { HandlerDependencies } from './dependencies';

/** One rebuild-image execution to start: its deterministic name and its input. */
export interface RebuildStart {
  readonly name: string;
  readonly input: RebuildRequest;
}

/** How a rebuild pins a parent image given its digest (see pinnedImageReference). */
export type PinImage = (image: string, digest: string | undefined) => string;

/** Which keys name images Patchline rebuilds, and where each rebuild runs (a RegistryScope is one). */
export interface RebuildRegistry {
  isInternal(key: string): boolean;
  placement(key: string): BuildPlacement;
}

/**
 * decideRebuilds within `campaign`, with the campaign's member states and each parent's pin: its rebuild in the
 * campaign when built there, else its current digest. `pushedImage`/`pushedDigest` name a push that decides its
 * children ('' when none, e.g. a handover). Without `registry`, every repository-shaped key is internal and every
 * rebuild runs in the hub.
 */
export async function decideInCampaign(
  deps: HandlerDependencies,
  campaign: string,
  pushed: { readonly image: string; readonly digest: string },
  children: readonly ChildRecord[],
  pin: PinImage,
  registry?: RebuildRegistry,
): Promise<RebuildDecision> {
  const isInternal = (key: string): boolean => registry?.isInternal(key) ?? isInternalImageKey(key);
  const relevant = [...new Set(children.flatMap((c) => [c.image, ...c.parents.map((p) => p.image)]))];
  const members = await deps.campaigns.memberStates(campaign, relevant);
  const digests = new Map<string, string | undefined>();
  for (const parent of relevant) {
    const member = members.get(parent);
    digests.set(parent, member?.digest ?? (isInternal(parent) ? (await deps.lineage.currentVersion(parent))?.digest : undefined));
  }
  return decideRebuilds({
    campaignId: campaign,
    pushedImage: pushed.image,
    pushedDigest: pushed.digest,
    children,
    memberState: (i) => members.get(i)?.state,
    parentDigest: (i) => digests.get(i),
    imageUri: pin,
    priority: (i) => members.get(i)?.priority ?? deps.defaultBuildSeconds,
    ...(registry && { placement: (i: string) => registry.placement(i) }),
  });
}

/**
 * A build that a superseded campaign had in flight ended (its push, or its failure): the image's rebuild in the
 * root's current campaign, deferred so that two builds of one image never run at once, is decided now from that
 * campaign's parents. Images it cannot rebuild are skipped there with the reason. Returns the executions to start
 * (none when the campaign was not superseded, or the image still waits for a parent of the current campaign).
 */
export async function handOverToCurrentCampaign(
  deps: HandlerDependencies,
  endedCampaign: string,
  image: string,
  pin: PinImage,
  registry?: RebuildRegistry,
): Promise<{ campaignId: string | undefined; starts: RebuildStart[] }> {
  const record = await deps.campaigns.get(endedCampaign);
  // Only a superseded campaign hands over: the pointer is not read for the others (most pushes of a rebuilt image).
  const current = handoverCampaign(record, record?.status === CampaignStatus.SUPERSEDED ? await deps.campaigns.rootPointer(record.rootImage) : undefined);
  if (!current) return { campaignId: undefined, starts: [] };
  const node = await deps.lineage.getImage(image);
  if (!node) return { campaignId: current, starts: [] };
  const decision = await decideInCampaign(deps, current, { image: '', digest: '' }, [node], pin, registry);
  for (const skip of decision.skip) await deps.campaigns.transition(current, skip.image, [MemberState.PENDING], MemberState.SKIPPED, { reason: skip.reason });
  return { campaignId: current, starts: decision.start.map((request) => ({ name: request.executionName, input: request })) };
}
