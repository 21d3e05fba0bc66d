import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { RebuildRequest } from '../domain/campaign';
import type { RebuildStarter } from '../handlers/dependencies';

export class InvalidStateMachineArnError extends Error {
  public readonly code = 'INVALID_STATE_MACHINE_ARN';
  public constructor(arn: string, options?: { cause?: unknown }) {
    super(`not a Step Functions state machine ARN: ${JSON.stringify(arn.slice(0, 200))}`, options);
    this.name = 'InvalidStateMachineArnError';
  }
}

const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:([a-z0-9-]+):(\d{12}):stateMachine:[A-Za-z0-9_-]{1,80}$/;

/**
 * Starts rebuild-image executions by their deterministic names: a name already used means the rebuild was started
 * before (a retried invocation), which is what the name is for. Internal images are pinned in the state machine's own
 * account and region.
 */
export function stepFunctionsRebuildStarter(client: SFNClient, stateMachineArn: string): RebuildStarter {
  const match = STATE_MACHINE_ARN.exec(stateMachineArn);
  if (!match) throw new InvalidStateMachineArnError(stateMachineArn);
  return {
    region: match[1],
    account: match[2],
    start: async (name: string, input: RebuildRequest) => {
      try {
        await client.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
        return true;
      } catch (error) {
        if (error instanceof ExecutionAlreadyExists) return false;
        throw error;
      }
    },
  };
}
