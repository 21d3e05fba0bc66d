import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { repinRoot } from '../domain/campaign';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { isDigest } from '../domain/image-ref';
import { dependenciesFromEnvironment, HandlerDependencies } from './dependencies';

const logger = new Logger({ serviceName: 'patchline-resolve-settled-rebuild' });

/** The rebuild-image input (a RebuildRequest) of a root's child that waited out the campaign's settle window. */
export const SettledRebuildInputSchema = z.looseObject({
  campaignId: z.string().regex(/^c-[a-f0-9]{20}$/),
  image: z.string().min(1).max(1000),
  baseImage: z.string().min(1),
  parentImages: z.array(z.string().min(1)).max(64),
  settle: z.object({ until: z.iso.datetime({ offset: true }), rootImage: z.string().min(1), rootUri: z.string().min(1) }),
});

export class CampaignNotFoundError extends Error {
  public readonly code = 'CAMPAIGN_NOT_FOUND';
  public constructor(campaignId: string, options?: { cause?: unknown }) {
    super(`campaign ${campaignId} does not exist`, options);
    this.name = 'CampaignNotFoundError';
  }
}

/**
 * After the settle window: the root may have been pushed again meanwhile (another architecture landed). The request
 * is re-pinned to the root digest the campaign holds now, and goes on without its `settle` part.
 */
export function makeResolveSettledRebuildHandler(deps: HandlerDependencies): (event: unknown) => Promise<Record<string, unknown>> {
  return async (event) => {
    const parsed = SettledRebuildInputSchema.safeParse(event);
    if (!parsed.success) throw new InvalidEventError('resolve-settled-rebuild', describeIssues(parsed.error, event), { cause: parsed.error });
    const { settle, ...request } = parsed.data;
    const campaign = await deps.campaigns.get(request.campaignId);
    if (!campaign) throw new CampaignNotFoundError(request.campaignId);
    const latest = campaign.rootDigest;
    if (!isDigest(latest)) return request; // nothing better known: keep the pins it was started with
    const parentImages = repinRoot(request.parentImages, settle.rootUri, latest);
    const [baseImage] = repinRoot([request.baseImage], settle.rootUri, latest);
    logger.info('settled', { campaignId: request.campaignId, image: request.image, rootDigest: latest, coalesced: campaign.coalescedDigests?.length ?? 0 });
    return { ...request, baseImage, parentImages };
  };
}

export const handler = (event: unknown): Promise<Record<string, unknown>> => makeResolveSettledRebuildHandler(dependenciesFromEnvironment())(event);
