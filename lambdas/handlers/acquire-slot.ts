import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { MAX_PRIORITY_SECONDS } from '../domain/scheduling';
import { dependenciesFromEnvironment, HandlerDependencies } from './dependencies';

const logger = new Logger({ serviceName: 'patchline-acquire-slot' });

export const AcquireSlotInputSchema = z.object({
  taskToken: z.string().min(1).max(8192),
  holder: z.string().regex(/^[A-Za-z0-9_-]{1,80}$/, 'not a Step Functions execution name'),
  priority: z.number().finite().nonnegative().max(MAX_PRIORITY_SECONDS),
});

/**
 * Invoked with `.waitForTaskToken`: queues the rebuild for a slot of the concurrency cap. The execution stays parked
 * until a slot is granted to it (possibly right away) and its token is sent back: no polling, no Wait loop.
 */
export function makeAcquireSlotHandler(deps: HandlerDependencies): (event: unknown) => Promise<{ queued: true }> {
  return async (event) => {
    const parsed = AcquireSlotInputSchema.safeParse(event);
    if (!parsed.success) throw new InvalidEventError('acquire-slot', describeIssues(parsed.error, event), { cause: parsed.error });
    const { taskToken, holder, priority } = parsed.data;
    await deps.semaphore.acquire({ holder, taskToken, priority, enqueuedAt: deps.now().getTime() }, (waiter) =>
      deps.taskTokens.succeed(waiter.taskToken, { slot: 'granted', holder: waiter.holder }),
    );
    logger.info('slot requested', { holder, priority });
    return { queued: true };
  };
}

export const handler = (event: unknown): Promise<{ queued: true }> => makeAcquireSlotHandler(dependenciesFromEnvironment())(event);
