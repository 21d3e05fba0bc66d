import { AccountLimitExceededException, CodeBuildClient, InvalidInputException, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { awsRemoteCodeBuild, RemoteBuildThrottledError } from '../../lambdas/aws/remote-codebuild';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { CODEBUILD_THROTTLING_ERRORS } from '../../lib/patchline-stack';
import { HandlerDependencies, tableStores } from '../../lambdas/handlers/dependencies';
import { makeStartRemoteBuildHandler, StartRemoteBuildInput, UnexpectedBuildRoleError } from '../../lambdas/handlers/start-remote-build';
import { RemoteBuildTokenStore } from '../../lambdas/store/remote-build-store';
import { startTestTable } from '../support/dynamodb';
import { digestOf } from '../support/template';

const NOW = new Date('2026-11-25T10:00:00Z');
const ROLE = 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1';
const BUILD_ID = 'apps-orders-api:8745a7a9-c340-456a-9166-edf953571b01';
const BUILD_ARN = `arn:aws:codebuild:us-east-1:333333333333:build/${BUILD_ID}`;
const INPUT: StartRemoteBuildInput = {
  taskToken: 'AQCEAAAAKgAAAAMAAAAAAAAAAeXample-token',
  execution: 'apps-orders-api-0123456789abcdef01234567',
  project: 'apps-orders-api',
  image: '333333333333.dkr.ecr.us-east-1.amazonaws.com/apps/orders-api',
  baseImage: `111111111111.dkr.ecr.eu-west-1.amazonaws.com/enterprise/python-311@${digestOf('platform-1')}`,
  parentImages: ['enterprise/python-311'],
  campaignId: 'c-0123456789abcdef0123',
  buildAccount: '333333333333',
  buildRegion: 'us-east-1',
  buildRoleArn: ROLE,
};

describe('Function: makeStartRemoteBuildHandler', () => {
  const sts = mockClient(STSClient);
  const codebuild = mockClient(CodeBuildClient);
  let table: Awaited<ReturnType<typeof startTestTable>>;
  let deps: HandlerDependencies;
  let tokens: RemoteBuildTokenStore;
  const regions: string[] = [];

  beforeAll(async () => {
    table = await startTestTable();
    const { client, tableName } = table;
    deps = {
      ...tableStores({ client, tableName, concurrency: 2 }),
      taskTokens: { succeed: async () => true, fail: async () => true },
      defaultBuildSeconds: 600,
      now: () => NOW,
    };
    tokens = new RemoteBuildTokenStore({ client, tableName });
  });
  afterAll(async () => table.stop());
  beforeEach(() => {
    sts.reset();
    codebuild.reset();
    regions.length = 0;
    sts.on(AssumeRoleCommand).resolves({ Credentials: { AccessKeyId: 'ASIAEXAMPLE', SecretAccessKey: 'secret', SessionToken: 'session', Expiration: new Date('2026-11-25T10:15:00Z') } });
  });

  /** The AWS implementation, recording the region each client was made for. */
  const handler = () =>
    makeStartRemoteBuildHandler(deps, {
      tokens,
      codebuild: awsRemoteCodeBuild({
        sts: (region) => {
          regions.push(`sts:${region}`);
          return new STSClient({ region });
        },
        codebuild: (region, credentials) => {
          regions.push(`codebuild:${region}:${credentials.accessKeyId}`);
          return new CodeBuildClient({ region, credentials });
        },
      }),
    });

  it('assumes the spoke role at the spoke region STS, starts the build there with the workflow environment, and keeps the token by build ARN', async () => {
    codebuild.on(StartBuildCommand).resolves({ build: { id: BUILD_ID, arn: BUILD_ARN } });
    await expect(handler()(INPUT)).resolves.toEqual({ buildId: BUILD_ID, buildArn: BUILD_ARN });
    expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input)).toEqual([{ RoleArn: ROLE, RoleSessionName: `patchline-${INPUT.execution}`, DurationSeconds: 900 }]);
    expect(codebuild.commandCalls(StartBuildCommand).map((c) => c.args[0].input)).toEqual([
      {
        projectName: 'apps-orders-api',
        environmentVariablesOverride: [
          { name: 'BASE_IMAGE', value: INPUT.baseImage, type: 'PLAINTEXT' },
          { name: 'PATCHLINE_PARENT_IMAGES', value: '["enterprise/python-311"]', type: 'PLAINTEXT' },
          { name: 'PATCHLINE_CAMPAIGN', value: INPUT.campaignId, type: 'PLAINTEXT' },
          { name: 'PATCHLINE_IMAGE', value: INPUT.image, type: 'PLAINTEXT' },
        ],
      },
    ]);
    // StartBuild ran with the assumed credentials, both clients in the spoke's region.
    expect(regions).toEqual(['sts:us-east-1', 'codebuild:us-east-1:ASIAEXAMPLE']);
    expect(await tokens.get(BUILD_ARN, NOW)).toEqual({ buildArn: BUILD_ARN, buildId: BUILD_ID, taskToken: INPUT.taskToken, image: INPUT.image, campaignId: INPUT.campaignId, startedAt: NOW.toISOString(), execution: INPUT.execution });
    // The way back from the execution to the build, for stop-remote-build.
    expect(await tokens.forExecution(INPUT.execution, NOW)).toEqual({
      execution: INPUT.execution,
      account: '333333333333',
      region: 'us-east-1',
      roleArn: ROLE,
      buildArn: BUILD_ARN,
      buildId: BUILD_ID,
      image: INPUT.image,
      campaignId: INPUT.campaignId,
      startedAt: NOW.toISOString(),
    });
    await tokens.delete(BUILD_ARN, INPUT.execution);
  });

  it('fails with the CodeBuild.<limit> error the workflow retries when CodeBuild refuses for a limit, storing no token', async () => {
    codebuild.on(StartBuildCommand).rejects(new AccountLimitExceededException({ message: 'Cannot have more than 1 builds in queue', $metadata: {} }));
    const error = await handler()(INPUT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteBuildThrottledError);
    expect((error as Error).name).toBe('CodeBuild.AccountLimitExceededException');
    expect(CODEBUILD_THROTTLING_ERRORS).toContain((error as Error).name);
    expect(await tokens.get(BUILD_ARN, NOW)).toBeUndefined();
    expect(await tokens.forExecution(INPUT.execution, NOW)).toBeUndefined();
  });

  it('fails with CodeBuild\u2019s own error for anything else', async () => {
    codebuild.on(StartBuildCommand).rejects(new InvalidInputException({ message: 'project not found', $metadata: {} }));
    await expect(handler()(INPUT)).rejects.toThrow(InvalidInputException);
  });

  it('refuses a role that is not the hub-access role of the build account and region, before calling STS', async () => {
    await expect(handler()({ ...INPUT, buildRoleArn: 'arn:aws:iam::333333333333:role/Admin' })).rejects.toThrow(UnexpectedBuildRoleError);
    await expect(handler()({ ...INPUT, buildRegion: 'eu-west-1' })).rejects.toThrow(UnexpectedBuildRoleError);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  it('refuses an input without a task token or with a malformed account', async () => {
    const { taskToken: _token, ...withoutToken } = INPUT;
    await expect(handler()(withoutToken)).rejects.toThrow(InvalidEventError);
    await expect(handler()({ ...INPUT, buildAccount: '3333' })).rejects.toThrow(InvalidEventError);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });
});
