import { CodeBuildClient, CodeBuildServiceException, InvalidInputException, ResourceNotFoundException, StopBuildCommand } from '@aws-sdk/client-codebuild';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { readFileSync } from 'fs';
import { join } from 'path';
import { awsRemoteCodeBuild, RemoteBuildThrottledError, STOP_BUILD_ATTEMPTS } from '../../lambdas/aws/remote-codebuild';
import { CampaignTrigger, MemberState } from '../../lambdas/domain/campaign';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { HandlerDependencies, tableStores } from '../../lambdas/handlers/dependencies';
import { makeRemoteBuildEndedHandler, RemoteBuildOutcome } from '../../lambdas/handlers/remote-build-ended';
import { UnexpectedBuildRoleError } from '../../lambdas/handlers/start-remote-build';
import { makeStopRemoteBuildHandler, StopRemoteBuildOutcome } from '../../lambdas/handlers/stop-remote-build';
import { CampaignStore } from '../../lambdas/store/campaign-store';
import { RemoteBuildTokenStore } from '../../lambdas/store/remote-build-store';
import { startTestTable } from '../support/dynamodb';

const EVENTS = join(__dirname, '../../../shared/data/events');
const STATUS_SAMPLE = (status: string): string => `awsdocs-aws-step-functions-developer-guide@3d6752c1__doc_source__cw-events.md__sfn-execution-status-change-${status}.json`;
const BUILD_SAMPLE = 'aws-lambda-go__events__testdata__codebuild-state-change.json';
const NOW = new Date('2026-11-25T10:00:00Z');
const ROLE = 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1';
const IMAGE = '333333333333.dkr.ecr.us-east-1.amazonaws.com/apps/orders-api';
const CAMPAIGN = 'c-0123456789abcdef0123';
const CREDENTIALS = { AccessKeyId: 'ASIAEXAMPLE', SecretAccessKey: 'secret', SessionToken: 'session', Expiration: new Date('2026-11-25T10:15:00Z') };

/** CodeBuild's generic throttling answer (not a modelled exception of its API: the SDK names it from the response). */
const throttled = (): CodeBuildServiceException => new CodeBuildServiceException({ name: 'ThrottlingException', $fault: 'client', message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });

/** The documented status change sample of `status`, for rebuild-image execution `name`. */
function executionEnded(status: string, name: string): Record<string, unknown> {
  const event = structuredClone(JSON.parse(readFileSync(join(EVENTS, STATUS_SAMPLE(status)), 'utf8')) as Record<string, unknown> & { detail: Record<string, unknown> });
  return { ...event, detail: { ...event.detail, name } };
}

describe('Function: makeStopRemoteBuildHandler', () => {
  const sts = mockClient(STSClient);
  const codebuild = mockClient(CodeBuildClient);
  let table: Awaited<ReturnType<typeof startTestTable>>;
  let deps: HandlerDependencies;
  let tokens: RemoteBuildTokenStore;
  let campaigns: CampaignStore;
  const regions: string[] = [];
  const sleeps: number[] = [];
  let seq = 0;

  /** A rebuild parked on a fresh build of apps-orders-api in us-east-1: token and lookup stored as start-remote-build does. */
  async function parked(): Promise<{ execution: string; buildId: string; buildArn: string }> {
    seq += 1;
    const execution = `apps-orders-api-${String(seq).padStart(24, '0')}`;
    const buildId = `apps-orders-api:0000000${seq}-c340-456a-9166-edf953571b01`;
    const buildArn = `arn:aws:codebuild:us-east-1:333333333333:build/${buildId}`;
    await tokens.put({ buildArn, buildId, taskToken: `token-${seq}`, image: IMAGE, campaignId: CAMPAIGN, startedAt: NOW.toISOString() }, NOW, {
      execution,
      account: '333333333333',
      region: 'us-east-1',
      roleArn: ROLE,
    });
    return { execution, buildId, buildArn };
  }

  const handler = () =>
    makeStopRemoteBuildHandler(deps, {
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
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      }),
    });

  beforeAll(async () => {
    table = await startTestTable();
    const { client, tableName } = table;
    deps = {
      ...tableStores({ client, tableName, concurrency: 2 }),
      taskTokens: { succeed: async () => true, fail: async () => true },
      defaultBuildSeconds: 600,
      now: () => NOW,
    };
    campaigns = deps.campaigns;
    tokens = new RemoteBuildTokenStore({ client, tableName });
    await campaigns.create({ campaignId: CAMPAIGN, rootImage: 'enterprise/python-311', rootDigest: 'sha256:00', trigger: CampaignTrigger.PUSH, reason: 'push', startedAt: NOW.toISOString(), memberCount: 1 }, [
      { image: IMAGE, priority: 1, parents: ['enterprise/python-311'] },
    ]);
    await campaigns.transition(CAMPAIGN, IMAGE, [MemberState.PENDING], MemberState.BUILDING, {}, NOW.toISOString());
  });
  afterAll(async () => table.stop());
  beforeEach(() => {
    sts.reset();
    codebuild.reset();
    regions.length = 0;
    sleeps.length = 0;
    sts.on(AssumeRoleCommand).resolves({ Credentials: CREDENTIALS });
  });

  it('stops the build of an aborted execution through the spoke role in its region, deletes its token and lookup, and notes why on the member', async () => {
    const { execution, buildId, buildArn } = await parked();
    codebuild.on(StopBuildCommand).resolves({ build: { id: buildId, arn: buildArn, buildStatus: 'IN_PROGRESS', currentPhase: 'BUILD' } });
    await expect(handler()(executionEnded('ABORTED', execution))).resolves.toEqual({ outcome: StopRemoteBuildOutcome.STOPPED });
    expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input)).toEqual([{ RoleArn: ROLE, RoleSessionName: `patchline-${execution}`, DurationSeconds: 900 }]);
    expect(codebuild.commandCalls(StopBuildCommand).map((c) => c.args[0].input)).toEqual([{ id: buildId }]);
    expect(regions).toEqual(['sts:us-east-1', 'codebuild:us-east-1:ASIAEXAMPLE']);
    expect(await tokens.get(buildArn, NOW)).toBeUndefined();
    expect(await tokens.forExecution(execution, NOW)).toBeUndefined();
    const [member] = await campaigns.members(CAMPAIGN);
    const reason = `remote build ${buildId} stopped: rebuild execution ${execution} ended ABORTED`;
    expect(member.stoppedBuild).toEqual({ buildId, reason, at: NOW.toISOString() });
    // The stop moves no state (the execution's end does): the entry is in the member's current state.
    expect(member.state).toBe(MemberState.BUILDING);
    expect(member.history?.at(-1)).toEqual({ state: MemberState.BUILDING, at: NOW.toISOString(), detail: reason });
  });

  it('leaves nothing for the stopped build\u2019s late end event to resume', async () => {
    const { execution, buildId } = await parked();
    codebuild.on(StopBuildCommand).resolves({ build: { id: buildId, buildStatus: 'IN_PROGRESS' } });
    await handler()(executionEnded('TIMED_OUT', execution));
    const callbacks: string[] = [];
    const ended = makeRemoteBuildEndedHandler({ ...deps, taskTokens: { succeed: async (t) => (callbacks.push(t), true), fail: async (t) => (callbacks.push(t), true) } }, { tokens });
    const event = JSON.parse(readFileSync(join(EVENTS, BUILD_SAMPLE), 'utf8')) as Record<string, unknown> & { detail: Record<string, unknown> };
    const arn = `arn:aws:codebuild:us-east-1:333333333333:build/${buildId}`;
    const stopped = { ...event, account: '333333333333', region: 'us-east-1', detail: { ...event.detail, 'build-id': arn, 'project-name': 'apps-orders-api', 'build-status': 'STOPPED' } };
    await expect(ended(stopped)).resolves.toEqual({ outcome: RemoteBuildOutcome.UNKNOWN_BUILD });
    expect(callbacks).toEqual([]);
  });

  it('stops a FAILED execution\u2019s build the same way (a task timeout fails the execution through its Catch)', async () => {
    const { execution, buildId } = await parked();
    codebuild.on(StopBuildCommand).resolves({ build: { id: buildId, buildStatus: 'IN_PROGRESS' } });
    await expect(handler()(executionEnded('FAILED', execution))).resolves.toEqual({ outcome: StopRemoteBuildOutcome.STOPPED });
    expect(codebuild.commandCalls(StopBuildCommand).map((c) => c.args[0].input)).toEqual([{ id: buildId }]);
  });

  it('stops nothing for a SUCCEEDED execution, not even a lookup', async () => {
    const { execution, buildArn } = await parked();
    await expect(handler()(executionEnded('SUCCEEDED', execution))).resolves.toEqual({ outcome: StopRemoteBuildOutcome.EXECUTION_SUCCEEDED });
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
    expect(codebuild.commandCalls(StopBuildCommand)).toHaveLength(0);
    expect(await tokens.get(buildArn, NOW)).toBeDefined();
    await tokens.delete(buildArn, execution);
  });

  it('stops nothing for an execution without a remote build (hub or same-region builds, or an end already handled)', async () => {
    await expect(handler()(executionEnded('ABORTED', 'apps-payments-api-0123456789abcdef01234567'))).resolves.toEqual({ outcome: StopRemoteBuildOutcome.NO_REMOTE_BUILD });
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  it('finds no lookup once remote-build-ended has handled the build\u2019s end', async () => {
    const { execution, buildId } = await parked();
    const event = JSON.parse(readFileSync(join(EVENTS, BUILD_SAMPLE), 'utf8')) as Record<string, unknown> & { detail: Record<string, unknown> };
    const arn = `arn:aws:codebuild:us-east-1:333333333333:build/${buildId}`;
    await makeRemoteBuildEndedHandler(deps, { tokens })({ ...event, account: '333333333333', region: 'us-east-1', detail: { ...event.detail, 'build-id': arn, 'project-name': 'apps-orders-api', 'build-status': 'FAILED' } });
    await expect(handler()(executionEnded('FAILED', execution))).resolves.toEqual({ outcome: StopRemoteBuildOutcome.NO_REMOTE_BUILD });
    expect(codebuild.commandCalls(StopBuildCommand)).toHaveLength(0);
  });

  it.each([
    ['ResourceNotFoundException', new ResourceNotFoundException({ message: 'Build not found', $metadata: {} })],
    ['InvalidInputException (not in progress)', new InvalidInputException({ message: 'Failed to stop build: Build is not in progress', $metadata: {} })],
  ])('treats %s from StopBuild as a build that had ended: records removed, nothing noted', async (_name, error) => {
    const { execution, buildId, buildArn } = await parked();
    codebuild.on(StopBuildCommand).rejects(error);
    await expect(handler()(executionEnded('ABORTED', execution))).resolves.toEqual({ outcome: StopRemoteBuildOutcome.ALREADY_ENDED });
    expect(await tokens.get(buildArn, NOW)).toBeUndefined();
    expect(await tokens.forExecution(execution, NOW)).toBeUndefined();
    const [member] = await campaigns.members(CAMPAIGN);
    expect(member.stoppedBuild?.buildId).not.toBe(buildId);
  });

  it('treats a StopBuild answer with an ended status as already ended', async () => {
    const { execution, buildId } = await parked();
    codebuild.on(StopBuildCommand).resolves({ build: { id: buildId, buildStatus: 'SUCCEEDED' } });
    await expect(handler()(executionEnded('ABORTED', execution))).resolves.toEqual({ outcome: StopRemoteBuildOutcome.ALREADY_ENDED });
  });

  it('retries a throttled StopBuild with backoff, then stops', async () => {
    const { execution, buildId } = await parked();
    codebuild
      .on(StopBuildCommand)
      .rejectsOnce(throttled())
      .rejectsOnce(throttled())
      .resolves({ build: { id: buildId, buildStatus: 'IN_PROGRESS' } });
    await expect(handler()(executionEnded('ABORTED', execution))).resolves.toEqual({ outcome: StopRemoteBuildOutcome.STOPPED });
    expect(codebuild.commandCalls(StopBuildCommand)).toHaveLength(3);
    expect(sleeps).toHaveLength(2);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(1);
  });

  it('fails with CodeBuild.ThrottlingException after the last attempt, keeping the lookup so the redelivered event stops the build', async () => {
    const { execution, buildArn } = await parked();
    codebuild.on(StopBuildCommand).rejects(throttled());
    const error = await handler()(executionEnded('ABORTED', execution)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteBuildThrottledError);
    expect((error as Error).name).toBe('CodeBuild.ThrottlingException');
    expect(codebuild.commandCalls(StopBuildCommand)).toHaveLength(STOP_BUILD_ATTEMPTS);
    expect(await tokens.get(buildArn, NOW)).toBeUndefined();
    expect((await tokens.forExecution(execution, NOW))?.buildArn).toBe(buildArn);
    await tokens.deleteExecution(execution);
  });

  it('fails with CodeBuild\u2019s own error for any other refusal, keeping the lookup', async () => {
    const { execution } = await parked();
    codebuild.on(StopBuildCommand).rejects(new InvalidInputException({ message: 'Invalid build ID', $metadata: {} }));
    await expect(handler()(executionEnded('ABORTED', execution))).rejects.toThrow(InvalidInputException);
    expect(await tokens.forExecution(execution, NOW)).toBeDefined();
    await tokens.deleteExecution(execution);
  });

  it('refuses a stored role that is not the hub-access role of the build account and region, before calling STS', async () => {
    const execution = 'apps-orders-api-tampered000000000000000000';
    const buildId = 'apps-orders-api:ffffffff-c340-456a-9166-edf953571b01';
    await tokens.put({ buildArn: `arn:aws:codebuild:us-east-1:333333333333:build/${buildId}`, buildId, taskToken: 't', image: IMAGE, campaignId: CAMPAIGN, startedAt: NOW.toISOString() }, NOW, {
      execution,
      account: '333333333333',
      region: 'us-east-1',
      roleArn: 'arn:aws:iam::333333333333:role/Admin',
    });
    await expect(handler()(executionEnded('ABORTED', execution))).rejects.toThrow(UnexpectedBuildRoleError);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  it('refuses an event that is not an ended execution\u2019s status change', async () => {
    await expect(handler()(executionEnded('RUNNING', 'apps-orders-api-x'))).rejects.toThrow(InvalidEventError);
    await expect(handler()({ ...executionEnded('ABORTED', 'apps-orders-api-x'), 'detail-type': 'CodeBuild Build State Change' })).rejects.toThrow(InvalidEventError);
    await expect(handler()(executionEnded('ABORTED', 'not a name'))).rejects.toThrow(InvalidEventError);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });
});

describe('Class: RemoteBuildTokenStore (execution lookup)', () => {
  let table: Awaited<ReturnType<typeof startTestTable>>;
  let tokens: RemoteBuildTokenStore;
  const token = { buildArn: 'arn:aws:codebuild:us-east-1:333333333333:build/apps-orders-api:1', buildId: 'apps-orders-api:1', taskToken: 't', image: IMAGE, campaignId: CAMPAIGN, startedAt: NOW.toISOString() };
  const location = { execution: 'apps-orders-api-lookup', account: '333333333333', region: 'us-east-1', roleArn: ROLE };

  beforeAll(async () => {
    table = await startTestTable();
    tokens = new RemoteBuildTokenStore({ client: table.client, tableName: table.tableName, ttlSeconds: 60 });
  });
  afterAll(async () => table.stop());

  it('keeps the build under the execution name with the token\u2019s TTL, and names the execution on the token', async () => {
    await tokens.put(token, NOW, location);
    expect(await tokens.forExecution(location.execution, NOW)).toEqual({ ...location, buildArn: token.buildArn, buildId: token.buildId, image: IMAGE, campaignId: CAMPAIGN, startedAt: NOW.toISOString() });
    expect((await tokens.get(token.buildArn, NOW))?.execution).toBe(location.execution);
    // Past the TTL both are gone for the reader, even before DynamoDB deletes them.
    const later = new Date(NOW.getTime() + 60_000);
    expect(await tokens.forExecution(location.execution, later)).toBeUndefined();
    expect(await tokens.get(token.buildArn, later)).toBeUndefined();
  });

  it('deletes the token and the lookup together when given the execution', async () => {
    await tokens.put(token, NOW, location);
    await tokens.delete(token.buildArn, location.execution);
    expect(await tokens.get(token.buildArn, NOW)).toBeUndefined();
    expect(await tokens.forExecution(location.execution, NOW)).toBeUndefined();
  });
});
