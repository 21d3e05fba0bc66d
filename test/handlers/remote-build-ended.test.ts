import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient, TaskTimedOut } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { readFileSync } from 'fs';
import { join } from 'path';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { REMOTE_BUILD_FAILED_ERROR } from '../../lambdas/domain/remote-build';
import { HandlerDependencies, sfnTaskTokenCallbacks, tableStores } from '../../lambdas/handlers/dependencies';
import { makeRemoteBuildEndedHandler, RemoteBuildOutcome } from '../../lambdas/handlers/remote-build-ended';
import { RemoteBuildTokenStore } from '../../lambdas/store/remote-build-store';
import { startTestTable } from '../support/dynamodb';

const EVENTS = join(__dirname, '../../../shared/data/events');
const SUCCEEDED_SAMPLE = 'aws-lambda-go__events__testdata__codebuild-state-change.json';
const FAILED_SAMPLE = 'rgfindl-functionci@bd27f52f__app__test__index.js__codebuild-build-state-change-FAILED.json';
const NOW = new Date('2026-11-25T10:00:00Z');

/** A real sample, as the orders spoke (333333333333, us-east-1) forwards it, for one of its builds with `status`. */
function forwarded(sample: string, buildId: string, status?: string): Record<string, unknown> {
  const event = JSON.parse(readFileSync(join(EVENTS, sample), 'utf8')) as Record<string, unknown> & { detail: Record<string, unknown> };
  const arn = `arn:aws:codebuild:us-east-1:333333333333:build/${buildId}`;
  return {
    ...event,
    account: '333333333333',
    region: 'us-east-1',
    resources: [arn],
    detail: { ...event.detail, 'build-id': arn, 'project-name': buildId.split(':')[0], ...(status && { 'build-status': status }) },
  };
}
const arnOf = (event: Record<string, unknown>): string => (event.detail as Record<string, string>)['build-id'];

describe('Function: makeRemoteBuildEndedHandler', () => {
  const sfn = mockClient(SFNClient);
  let table: Awaited<ReturnType<typeof startTestTable>>;
  let deps: HandlerDependencies;
  let tokens: RemoteBuildTokenStore;
  let handler: (event: unknown) => Promise<{ outcome: RemoteBuildOutcome }>;
  let seq = 0;

  /** Stores a token for a fresh build of apps-orders-api, as start-remote-build does. */
  async function parked(): Promise<{ buildId: string; taskToken: string }> {
    seq += 1;
    const buildId = `apps-orders-api:0000000${seq}-c340-456a-9166-edf953571b01`;
    const taskToken = `token-${seq}`;
    await tokens.put({ buildArn: `arn:aws:codebuild:us-east-1:333333333333:build/${buildId}`, buildId, taskToken, image: '333333333333.dkr.ecr.us-east-1.amazonaws.com/apps/orders-api', campaignId: 'c-0123456789abcdef0123', startedAt: NOW.toISOString() }, NOW);
    return { buildId, taskToken };
  }

  beforeAll(async () => {
    table = await startTestTable();
    const { client, tableName } = table;
    deps = {
      ...tableStores({ client, tableName, concurrency: 2 }),
      taskTokens: sfnTaskTokenCallbacks(new SFNClient({ region: 'eu-west-1' })),
      defaultBuildSeconds: 600,
      now: () => NOW,
    };
    tokens = new RemoteBuildTokenStore({ client, tableName });
    handler = makeRemoteBuildEndedHandler(deps, { tokens });
  });
  afterAll(async () => table.stop());
  beforeEach(() => {
    sfn.reset();
    sfn.on(SendTaskSuccessCommand).resolves({});
    sfn.on(SendTaskFailureCommand).resolves({});
  });

  it('resumes the parked rebuild with { buildId, status } on SUCCEEDED and forgets the token', async () => {
    const { buildId, taskToken } = await parked();
    const event = forwarded(SUCCEEDED_SAMPLE, buildId);
    await expect(handler(event)).resolves.toEqual({ outcome: RemoteBuildOutcome.SUCCEEDED });
    expect(sfn.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input)).toEqual([{ taskToken, output: JSON.stringify({ buildId, status: 'SUCCEEDED' }) }]);
    expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
    expect(await tokens.get(arnOf(event), NOW)).toBeUndefined();
    // A redelivered event finds nothing to resume.
    await expect(handler(event)).resolves.toEqual({ outcome: RemoteBuildOutcome.UNKNOWN_BUILD });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);
  });

  it.each(['FAILED', 'FAULT', 'STOPPED', 'TIMED_OUT'])('fails the parked rebuild with the build status on %s', async (status) => {
    const { buildId, taskToken } = await parked();
    const event = forwarded(FAILED_SAMPLE, buildId, status);
    await expect(handler(event)).resolves.toEqual({ outcome: RemoteBuildOutcome.FAILED });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    expect(sfn.commandCalls(SendTaskFailureCommand).map((c) => c.args[0].input)).toEqual([
      { taskToken, error: REMOTE_BUILD_FAILED_ERROR, cause: JSON.stringify({ Build: { Id: buildId, Arn: arnOf(event), BuildStatus: status, ProjectName: 'apps-orders-api' } }) },
    ]);
    expect(await tokens.get(arnOf(event), NOW)).toBeUndefined();
  });

  it('ignores a build it did not start and an IN_PROGRESS change, calling nothing', async () => {
    await expect(handler(forwarded(SUCCEEDED_SAMPLE, 'apps-orders-api:ffffffff-c340-456a-9166-edf953571b01'))).resolves.toEqual({ outcome: RemoteBuildOutcome.UNKNOWN_BUILD });
    const { buildId } = await parked();
    const inProgress = forwarded(SUCCEEDED_SAMPLE, buildId, 'IN_PROGRESS');
    await expect(handler(inProgress)).resolves.toEqual({ outcome: RemoteBuildOutcome.NOT_ENDED });
    expect(await tokens.get(arnOf(inProgress), NOW)).toBeDefined();
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
  });

  it('treats a token past its TTL as gone (DynamoDB deletes expired items lazily)', async () => {
    const { buildId } = await parked();
    const later = new Date(NOW.getTime() + 49 * 3600 * 1000);
    const lateHandler = makeRemoteBuildEndedHandler({ ...deps, now: () => later }, { tokens });
    await expect(lateHandler(forwarded(SUCCEEDED_SAMPLE, buildId))).resolves.toEqual({ outcome: RemoteBuildOutcome.UNKNOWN_BUILD });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('reports an execution that no longer waits (aborted, timed out) and still forgets the token', async () => {
    sfn.on(SendTaskSuccessCommand).rejects(new TaskTimedOut({ message: 'timed out', $metadata: {} }));
    const { buildId } = await parked();
    const event = forwarded(SUCCEEDED_SAMPLE, buildId);
    await expect(handler(event)).resolves.toEqual({ outcome: RemoteBuildOutcome.EXECUTION_GONE });
    expect(await tokens.get(arnOf(event), NOW)).toBeUndefined();
  });

  it('keeps the token when the callback fails for another reason, so a redelivery can resume it', async () => {
    sfn.on(SendTaskFailureCommand).rejects(new Error('throttled'));
    const { buildId } = await parked();
    const event = forwarded(FAILED_SAMPLE, buildId);
    await expect(handler(event)).rejects.toThrow('throttled');
    expect(await tokens.get(arnOf(event), NOW)).toBeDefined();
  });

  it('refuses an event that is not a build state change with a build ARN', async () => {
    await expect(handler({ ...forwarded(SUCCEEDED_SAMPLE, 'apps-orders-api:x'), 'detail-type': 'CodeBuild Build Phase Change' })).rejects.toThrow(InvalidEventError);
    const bad = forwarded(SUCCEEDED_SAMPLE, 'apps-orders-api:x');
    await expect(handler({ ...bad, detail: { ...(bad.detail as object), 'build-id': 'apps-orders-api:x' } })).rejects.toThrow(InvalidEventError);
  });
});
