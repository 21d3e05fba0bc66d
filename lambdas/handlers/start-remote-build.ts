import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { hubAccessRoleArn } from '../domain/registry-scope';
import { remoteBuildSessionName } from '../domain/remote-build';
import { awsRemoteCodeBuild, RemoteCodeBuild } from '../aws/remote-codebuild';
import { RemoteBuildTokenStore } from '../store/remote-build-store';
import { dependenciesFromEnvironment, HandlerDependencies, requireEnv } from './dependencies';
import { traced } from '../aws/traced-client';

const logger = new Logger({ serviceName: 'patchline-start-remote-build' });

/** What the rebuild workflow's StartRemoteBuild task passes (`.waitForTaskToken`): the RebuildRequest's build fields. */
export const StartRemoteBuildInputSchema = z.object({
  taskToken: z.string().min(1).max(8192),
  execution: z.string().regex(/^[A-Za-z0-9_-]{1,80}$/, 'not a Step Functions execution name'),
  project: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$/, 'not a CodeBuild project name'),
  image: z.string().min(1).max(1000),
  baseImage: z.string().min(1).max(2000),
  parentImages: z.array(z.string().max(2000)),
  campaignId: z.string().min(1).max(100),
  buildAccount: z.string().regex(/^\d{12}$/),
  buildRegion: z.string().regex(/^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/),
  buildRoleArn: z.string().min(1),
});
export type StartRemoteBuildInput = z.infer<typeof StartRemoteBuildInputSchema>;

export class UnexpectedBuildRoleError extends Error {
  public readonly code = 'UNEXPECTED_BUILD_ROLE';
  public constructor(roleArn: string, expected: string, options?: { cause?: unknown }) {
    super(`refusing to assume ${roleArn}: a build in this account and region goes through ${expected} only`, options);
    this.name = 'UnexpectedBuildRoleError';
  }
}

export interface StartRemoteBuildServices {
  readonly codebuild: RemoteCodeBuild;
  readonly tokens: RemoteBuildTokenStore;
}

export interface StartRemoteBuildResult {
  readonly buildId: string;
  readonly buildArn: string;
}

/**
 * Starts a spoke build in a region Step Functions cannot reach: assumes the spoke's PatchlineHubAccess-<region> role
 * and calls StartBuild there with the same environment overrides as the `.sync` StartBuild tasks, then keeps the task
 * token under the build ARN (and the build under the execution name). The execution stays parked until
 * remote-build-ended sees the build's end; should the execution end first, stop-remote-build stops the build.
 */
export function makeStartRemoteBuildHandler(deps: HandlerDependencies, services: StartRemoteBuildServices): (event: unknown) => Promise<StartRemoteBuildResult> {
  return async (event) => {
    const parsed = StartRemoteBuildInputSchema.safeParse(event);
    if (!parsed.success) throw new InvalidEventError('start-remote-build', describeIssues(parsed.error, event), { cause: parsed.error });
    const input = parsed.data;
    // Only the role the scope computes for this account + region: the request cannot steer the hub into another role.
    const expected = hubAccessRoleArn(input.buildAccount, input.buildRegion);
    if (input.buildRoleArn !== expected) throw new UnexpectedBuildRoleError(input.buildRoleArn, expected);
    const build = await services.codebuild.startBuild({
      roleArn: input.buildRoleArn,
      account: input.buildAccount,
      region: input.buildRegion,
      project: input.project,
      sessionName: remoteBuildSessionName(input.execution),
      environment: [
        { name: 'BASE_IMAGE', value: input.baseImage },
        { name: 'PATCHLINE_PARENT_IMAGES', value: JSON.stringify(input.parentImages) },
        { name: 'PATCHLINE_CAMPAIGN', value: input.campaignId },
        { name: 'PATCHLINE_IMAGE', value: input.image },
      ],
    });
    // After StartBuild: the build ARN is the key. Its end event comes minutes later, forwarded across regions.
    await services.tokens.put(
      { buildArn: build.arn, buildId: build.id, taskToken: input.taskToken, image: input.image, campaignId: input.campaignId, startedAt: deps.now().toISOString() },
      deps.now(),
      // The execution's way back to the build: stop-remote-build stops it if the execution ends while parked.
      { execution: input.execution, account: input.buildAccount, region: input.buildRegion, roleArn: input.buildRoleArn },
    );
    logger.info('remote build started', { image: input.image, build: build.arn, region: input.buildRegion });
    return { buildId: build.id, buildArn: build.arn };
  };
}

let services: StartRemoteBuildServices | undefined;

export const handler = (event: unknown): Promise<StartRemoteBuildResult> => {
  services ??= { codebuild: awsRemoteCodeBuild(), tokens: new RemoteBuildTokenStore({ client: traced(new DynamoDBClient({})), tableName: requireEnv('TABLE_NAME') }) };
  return makeStartRemoteBuildHandler(dependenciesFromEnvironment(), services)(event);
};
