import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { dependenciesFromEnvironment, HandlerDependencies } from './dependencies';

const logger = new Logger({ serviceName: 'patchline-release-slot' });

const HOLDER = z.string().regex(/^[A-Za-z0-9_-]{1,80}$/, 'not a Step Functions execution name');

/** Either the state machine's own release step, or the "Step Functions Execution Status Change" event of an aborted/failed/timed-out rebuild. */
export const ReleaseSlotInputSchema = z.union([
  z.object({ holder: HOLDER }),
  z.object({
    'detail-type': z.literal('Step Functions Execution Status Change'),
    detail: z.object({ name: HOLDER, status: z.enum(['FAILED', 'ABORTED', 'TIMED_OUT', 'SUCCEEDED']) }),
  }),
]);

/** Releases the slot of a rebuild (idempotent) and wakes the highest-priority waiter. */
export function makeReleaseSlotHandler(deps: HandlerDependencies): (event: unknown) => Promise<{ released: boolean }> {
  return async (event) => {
    const parsed = ReleaseSlotInputSchema.safeParse(event);
    if (!parsed.success) throw new InvalidEventError('release-slot', describeIssues(parsed.error, event), { cause: parsed.error });
    const holder = 'holder' in parsed.data ? parsed.data.holder : parsed.data.detail.name;
    const released = await deps.semaphore.release(holder, (waiter) => deps.taskTokens.succeed(waiter.taskToken, { slot: 'granted', holder: waiter.holder }));
    logger.info('slot released', { holder, released });
    return { released };
  };
}

export const handler = (event: unknown): Promise<{ released: boolean }> => makeReleaseSlotHandler(dependenciesFromEnvironment())(event);
