import { CampaignStatus } from './campaign';
import { ecrImageUri } from './ecr-push-event';
import { isInternalImageKey } from './lineage';

/**
 * A build that a superseded campaign still had running ended, pushed or failed: the image is rebuilt in the campaign
 * that now holds its root, if any. Pure: the caller reads the ended campaign and the root's pointer.
 * Returns the campaign to hand the image over to, or undefined (the campaign was not superseded, or the root's
 * pointer still names it: nothing newer to rebuild in).
 */
export function handoverCampaign(
  ended: { readonly campaignId: string; readonly status?: CampaignStatus } | undefined,
  rootPointer: { readonly campaignId: string } | undefined,
): string | undefined {
  if (ended?.status !== CampaignStatus.SUPERSEDED) return undefined;
  const current = rootPointer?.campaignId;
  return current && current !== ended.campaignId ? current : undefined;
}

/** Where internal images live: the registry `<account>.dkr.ecr.<region>…` their rebuilds are pinned in. */
export interface EcrRegistryLocation {
  readonly account: string;
  readonly region: string;
}

/**
 * The reference a rebuild pins a parent to: an internal image by digest in its ECR registry, an external one in its
 * own registry by digest when the digest is known; unpinned (the key itself) when it is not.
 */
export function pinnedImageReference(registry: EcrRegistryLocation, image: string, digest: string | undefined): string {
  if (isInternalImageKey(image)) return digest ? ecrImageUri(registry.account, registry.region, image, digest) : image;
  if (!digest) return image;
  return `${image.replace(/:[^/:@]+$/, '').split('@')[0]}@${digest}`;
}
