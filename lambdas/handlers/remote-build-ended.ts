import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { isBuildArn, REMOTE_BUILD_FAILED_ERROR, RemoteBuildStatus } from '../domain/remote-build';
import { RemoteBuildTokenStore } from '../store/remote-build-store';
import { dependenciesFromEnvironment, HandlerDependencies, requireEnv } from './dependencies';
import { traced } from '../aws/traced-client';

const logger = new Logger({ serviceName: 'patchline-remote-build-ended' });

/** The "CodeBuild Build State Change" event a spoke forwards to the hub bus (the fields used here). */
export const BuildStateChangeEventSchema = z.object({
  'detail-type': z.literal('CodeBuild Build State Change'),
  source: z.literal('aws.codebuild'),
  account: z.string(),
  region: z.string(),
  detail: z.object({
    'build-status': z.enum(Object.values(RemoteBuildStatus) as [RemoteBuildStatus, ...RemoteBuildStatus[]]),
    'project-name': z.string().min(1),
    'build-id': z.string().refine(isBuildArn, 'not a CodeBuild build ARN'),
  }),
});

export const RemoteBuildOutcome = {
  /** SendTaskSuccess: the execution goes on to release its slot and record the build. */
  SUCCEEDED: 'succeeded',
  /** SendTaskFailure: the execution's Catch releases the slot and records the failure. */
  FAILED: 'failed',
  /** A build Patchline did not start (the spoke's own), or one whose end was handled already. */
  UNKNOWN_BUILD: 'unknown-build',
  /** Not an end (IN_PROGRESS). */
  NOT_ENDED: 'not-ended',
  /** The execution no longer waits (aborted, timed out): nothing to resume. */
  EXECUTION_GONE: 'execution-gone',
} as const;
export type RemoteBuildOutcome = (typeof RemoteBuildOutcome)[keyof typeof RemoteBuildOutcome];

export interface RemoteBuildEndedServices {
  readonly tokens: RemoteBuildTokenStore;
}

/**
 * Resumes the rebuild parked on a remote build: SUCCEEDED → SendTaskSuccess with `{ buildId, status }` (what the `.sync`
 * tasks' ResultSelector yields), any other end → SendTaskFailure with the build's status, so the same Catch and release
 * paths apply. The token (and its execution's lookup) is deleted after the callback, so a redelivered event finds none.
 */
export function makeRemoteBuildEndedHandler(deps: HandlerDependencies, services: RemoteBuildEndedServices): (event: unknown) => Promise<{ outcome: RemoteBuildOutcome }> {
  return async (event) => {
    const parsed = BuildStateChangeEventSchema.safeParse(event);
    if (!parsed.success) throw new InvalidEventError('remote-build-ended', describeIssues(parsed.error, event), { cause: parsed.error });
    const { 'build-status': status, 'build-id': buildArn, 'project-name': project } = parsed.data.detail;
    if (status === RemoteBuildStatus.IN_PROGRESS) return { outcome: RemoteBuildOutcome.NOT_ENDED };
    const token = await services.tokens.get(buildArn, deps.now());
    if (!token) {
      logger.info('build state change of a build Patchline is not waiting for', { build: buildArn, status });
      return { outcome: RemoteBuildOutcome.UNKNOWN_BUILD };
    }
    const resumed =
      status === RemoteBuildStatus.SUCCEEDED
        ? await deps.taskTokens.succeed(token.taskToken, { buildId: token.buildId, status })
        : await deps.taskTokens.fail(
            token.taskToken,
            REMOTE_BUILD_FAILED_ERROR,
            JSON.stringify({ Build: { Id: token.buildId, Arn: buildArn, BuildStatus: status, ProjectName: project } }),
          );
    await services.tokens.delete(buildArn, token.execution);
    logger.info('remote build ended', { image: token.image, build: buildArn, status, resumed });
    if (!resumed) return { outcome: RemoteBuildOutcome.EXECUTION_GONE };
    return { outcome: status === RemoteBuildStatus.SUCCEEDED ? RemoteBuildOutcome.SUCCEEDED : RemoteBuildOutcome.FAILED };
  };
}

let services: RemoteBuildEndedServices | undefined;

export const handler = (event: unknown): Promise<{ outcome: RemoteBuildOutcome }> => {
  services ??= { tokens: new RemoteBuildTokenStore({ client: traced(new DynamoDBClient({})), tableName: requireEnv('TABLE_NAME') }) };
  return makeRemoteBuildEndedHandler(dependenciesFromEnvironment(), services)(event);
};
