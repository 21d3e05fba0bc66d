import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand, StateMachineDoesNotExist } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { InvalidStateMachineArnError, stepFunctionsRebuildStarter } from '../../lambdas/aws/step-functions-rebuilds';
import type { RebuildRequest } from '../../lambdas/domain/campaign';

const ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Patchline-rebuild-image';
const REQUEST: RebuildRequest = {
  campaignId: 'c-0123456789abcdef0123',
  image: 'apps/a',
  project: 'apps-a',
  baseImage: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/enterprise/os@sha256:' + 'a'.repeat(64),
  parentImages: [],
  executionName: 'apps-a-0123456789abcdef01234567',
  priority: 600,
};

describe('Function: stepFunctionsRebuildStarter', () => {
  const sfn = mockClient(SFNClient);
  beforeEach(() => sfn.reset());

  it('pins in the state machine\u2019s account and region, and starts the execution by name with the request as input', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${ARN}:x`, startDate: new Date() });
    const starter = stepFunctionsRebuildStarter(new SFNClient({ region: 'eu-west-1' }), ARN);
    expect({ account: starter.account, region: starter.region }).toEqual({ account: '123456789012', region: 'eu-west-1' });
    await expect(starter.start(REQUEST.executionName, REQUEST)).resolves.toBe(true);
    expect(sfn.commandCalls(StartExecutionCommand)[0].args[0].input).toEqual({ stateMachineArn: ARN, name: REQUEST.executionName, input: JSON.stringify(REQUEST) });
  });

  it('reports a name started before as not started (a retried invocation)', async () => {
    sfn.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    await expect(stepFunctionsRebuildStarter(new SFNClient({ region: 'eu-west-1' }), ARN).start(REQUEST.executionName, REQUEST)).resolves.toBe(false);
  });

  it('refuses to hide any other failure', async () => {
    sfn.on(StartExecutionCommand).rejects(new StateMachineDoesNotExist({ message: 'gone', $metadata: {} }));
    await expect(stepFunctionsRebuildStarter(new SFNClient({ region: 'eu-west-1' }), ARN).start(REQUEST.executionName, REQUEST)).rejects.toThrow(StateMachineDoesNotExist);
  });

  it('refuses an ARN that is not a state machine\u2019s', () => {
    expect(() => stepFunctionsRebuildStarter(new SFNClient({}), 'arn:aws:lambda:eu-west-1:123456789012:function:x')).toThrow(InvalidStateMachineArnError);
  });
});
