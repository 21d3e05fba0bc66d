import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { MemberState } from '../domain/campaign';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { dependenciesFromEnvironment, HandlerDependencies } from './dependencies';

const logger = new Logger({ serviceName: 'patchline-record-build-failure' });

export const RecordBuildFailureInputSchema = z.object({
  campaignId: z.string().regex(/^c-[a-f0-9]{20}$/),
  image: z.string().min(1).max(1000),
  error: z.object({ Error: z.string().max(1000).optional(), Cause: z.string().optional() }).optional(),
});

/**
 * A rebuild failed: the image is marked failed and every image below it that is still pending in the campaign is
 * skipped, with the reason; siblings go on.
 */
export function makeRecordBuildFailureHandler(deps: HandlerDependencies): (event: unknown) => Promise<{ skipped: string[] }> {
  return async (event) => {
    const parsed = RecordBuildFailureInputSchema.safeParse(event);
    if (!parsed.success) throw new InvalidEventError('record-build-failure', describeIssues(parsed.error, event), { cause: parsed.error });
    const { campaignId, image, error } = parsed.data;
    const reason = `${error?.Error ?? 'build failed'}${error?.Cause ? `: ${error.Cause.slice(0, 500)}` : ''}`;
    await deps.campaigns.transition(campaignId, image, [MemberState.BUILDING, MemberState.PENDING], MemberState.FAILED, { reason });
    await deps.campaigns.clearBuilding(image, campaignId);
    const skipped: string[] = [];
    for (const below of await deps.lineage.descendants(image)) {
      const moved = await deps.campaigns.transition(campaignId, below.image, [MemberState.PENDING], MemberState.SKIPPED, {
        reason: `not rebuilt: ${image} failed to build (${reason.slice(0, 200)})`,
      });
      if (moved) skipped.push(below.image);
    }
    logger.warn('rebuild failed', { campaignId, image, reason, skipped: skipped.length });
    return { skipped };
  };
}

export const handler = (event: unknown): Promise<{ skipped: string[] }> => makeRecordBuildFailureHandler(dependenciesFromEnvironment())(event);
