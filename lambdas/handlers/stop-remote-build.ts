import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { hubAccessRoleArn } from '../domain/registry-scope';
import { ExecutionEndStatus, remoteBuildSessionName, stoppedBuildReason } from '../domain/remote-build';
import { awsRemoteCodeBuild, RemoteBuildStopOutcome, RemoteCodeBuild } from '../aws/remote-codebuild';
import { RemoteBuildTokenStore } from '../store/remote-build-store';
import { dependenciesFromEnvironment, HandlerDependencies, requireEnv } from './dependencies';
import { UnexpectedBuildRoleError } from './start-remote-build';
import { traced } from '../aws/traced-client';

const logger = new Logger({ serviceName: 'patchline-stop-remote-build' });

/** The "Step Functions Execution Status Change" event of a rebuild-image execution that ended (the fields used here). */
export const StopRemoteBuildInputSchema = z.object({
  'detail-type': z.literal('Step Functions Execution Status Change'),
  source: z.literal('aws.states'),
  detail: z.object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,80}$/, 'not a Step Functions execution name'),
    status: z.enum(Object.values(ExecutionEndStatus) as [ExecutionEndStatus, ...ExecutionEndStatus[]]),
  }),
});

export const StopRemoteBuildOutcome = {
  /** StopBuild accepted: the build ends STOPPED, its token is gone. */
  STOPPED: 'stopped',
  /** The build had ended before the stop (its end event may still be on its way): only the records were removed. */
  ALREADY_ENDED: 'already-ended',
  /** The execution has no remote build waiting (hub or same-region build, or its end was handled). */
  NO_REMOTE_BUILD: 'no-remote-build',
  /** A SUCCEEDED execution: its build ended normally, nothing to stop. */
  EXECUTION_SUCCEEDED: 'execution-succeeded',
} as const;
export type StopRemoteBuildOutcome = (typeof StopRemoteBuildOutcome)[keyof typeof StopRemoteBuildOutcome];

export interface StopRemoteBuildServices {
  readonly codebuild: RemoteCodeBuild;
  readonly tokens: RemoteBuildTokenStore;
}

/**
 * Stops the spoke build of a rebuild-image execution that ended while parked on it (aborted, timed out, failed):
 * Step Functions stops `.sync` builds by itself, not the one start-remote-build started in another region. The token
 * is deleted first, so the build's late end event resumes nothing; the lookup last, so a failed stop is retried with
 * the event. A stop that took effect is noted on the campaign member.
 */
export function makeStopRemoteBuildHandler(deps: HandlerDependencies, services: StopRemoteBuildServices): (event: unknown) => Promise<{ outcome: StopRemoteBuildOutcome }> {
  return async (event) => {
    const parsed = StopRemoteBuildInputSchema.safeParse(event);
    if (!parsed.success) throw new InvalidEventError('stop-remote-build', describeIssues(parsed.error, event), { cause: parsed.error });
    const { name: execution, status } = parsed.data.detail;
    if (status === ExecutionEndStatus.SUCCEEDED) return { outcome: StopRemoteBuildOutcome.EXECUTION_SUCCEEDED };
    const build = await services.tokens.forExecution(execution, deps.now());
    if (!build) return { outcome: StopRemoteBuildOutcome.NO_REMOTE_BUILD };
    // The stored role must still be the one the scope computes: a tampered item cannot steer the hub into another role.
    const expected = hubAccessRoleArn(build.account, build.region);
    if (build.roleArn !== expected) throw new UnexpectedBuildRoleError(build.roleArn, expected);
    await services.tokens.delete(build.buildArn);
    const stop = await services.codebuild.stopBuild({
      roleArn: build.roleArn,
      account: build.account,
      region: build.region,
      buildId: build.buildId,
      sessionName: remoteBuildSessionName(execution),
    });
    if (stop === RemoteBuildStopOutcome.STOPPED) {
      await deps.campaigns.recordStoppedBuild(build.campaignId, build.image, { buildId: build.buildId, reason: stoppedBuildReason(build.buildId, execution, status) }, deps.now().toISOString());
    }
    await services.tokens.deleteExecution(execution);
    logger.info('remote build of an ended execution', { execution, status, build: build.buildArn, stop });
    return { outcome: stop === RemoteBuildStopOutcome.STOPPED ? StopRemoteBuildOutcome.STOPPED : StopRemoteBuildOutcome.ALREADY_ENDED };
  };
}

let services: StopRemoteBuildServices | undefined;

export const handler = (event: unknown): Promise<{ outcome: StopRemoteBuildOutcome }> => {
  services ??= { codebuild: awsRemoteCodeBuild(), tokens: new RemoteBuildTokenStore({ client: traced(new DynamoDBClient({})), tableName: requireEnv('TABLE_NAME') }) };
  return makeStopRemoteBuildHandler(dependenciesFromEnvironment(), services)(event);
};
