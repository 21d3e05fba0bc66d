import { CodeBuildClient, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { traced } from './traced-client';

/** A StartBuild in a spoke account and region, made with the spoke's hub-access role. */
export interface RemoteBuildRequest {
  readonly roleArn: string;
  readonly account: string;
  readonly region: string;
  readonly project: string;
  readonly environment: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  /** The STS session name (shows in the spoke's CloudTrail): 2–64 of `[\w+=,.@-]`. */
  readonly sessionName: string;
}

export interface StartedRemoteBuild {
  /** `<project>:<uuid>` */
  readonly id: string;
  /** `arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>`: the state change event's `build-id`. */
  readonly arn: string;
}

/** Starts builds in another account and region; AWS: STS + CodeBuild, locally: the CodeBuild stand-in. */
export interface RemoteCodeBuild {
  startBuild(request: RemoteBuildRequest): Promise<StartedRemoteBuild>;
}

/** CodeBuild errors the rebuild workflow retries (CODEBUILD_THROTTLING_ERRORS, without the `CodeBuild.` prefix). */
const THROTTLING = new Set(['AccountLimitExceededException', 'ThrottlingException', 'CodeBuildException']);

/**
 * CodeBuild refused the start for a limit. Its `name` is the error Step Functions sees from the Lambda
 * (`CodeBuild.AccountLimitExceededException`, …): the same Retry as the `.sync` StartBuild tasks matches it.
 */
export class RemoteBuildThrottledError extends Error {
  public readonly code = 'REMOTE_BUILD_THROTTLED';
  public constructor(codeBuildError: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = `CodeBuild.${codeBuildError}`;
  }
}

export class RemoteBuildNotStartedError extends Error {
  public readonly code = 'REMOTE_BUILD_NOT_STARTED';
  public constructor(project: string, region: string, options?: { cause?: unknown }) {
    super(`CodeBuild StartBuild of ${project} in ${region} returned no build id/ARN`, options);
    this.name = 'RemoteBuildNotStartedError';
  }
}

/** What AssumeRole returns, as the SDK clients take it. */
export interface TemporaryCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/** Session of the assumed role: CodeBuild needs minutes at most to accept a StartBuild. */
const SESSION_SECONDS = 900;

/**
 * The AWS implementation: AssumeRole at the spoke region's STS endpoint (regional, not the global one: it works when
 * the global endpoint is disabled and keeps the call in the spoke's region), then StartBuild in that region.
 */
export function awsRemoteCodeBuild(clients: { sts?: (region: string) => STSClient; codebuild?: (region: string, credentials: TemporaryCredentials) => CodeBuildClient } = {}): RemoteCodeBuild {
  const sts = clients.sts ?? ((region: string) => traced(new STSClient({ region, useGlobalEndpoint: false })));
  const codebuild = clients.codebuild ?? ((region, credentials) => traced(new CodeBuildClient({ region, credentials })));
  return {
    startBuild: async (request) => {
      const assumed = await sts(request.region).send(
        new AssumeRoleCommand({ RoleArn: request.roleArn, RoleSessionName: request.sessionName, DurationSeconds: SESSION_SECONDS }),
      );
      const c = assumed.Credentials;
      const credentials: TemporaryCredentials = { accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken, expiration: c?.Expiration };
      try {
        const out = await codebuild(request.region, credentials).send(
          new StartBuildCommand({
            projectName: request.project,
            environmentVariablesOverride: request.environment.map((v) => ({ name: v.name, value: v.value, type: 'PLAINTEXT' })),
          }),
        );
        if (!out.build?.id || !out.build.arn) throw new RemoteBuildNotStartedError(request.project, request.region);
        return { id: out.build.id, arn: out.build.arn };
      } catch (error) {
        const name = (error as { name?: unknown }).name;
        if (typeof name === 'string' && THROTTLING.has(name)) throw new RemoteBuildThrottledError(name, (error as Error).message, { cause: error });
        throw error;
      }
    },
  };
}
