import { CodeBuildClient, StartBuildCommand, StopBuildCommand } from '@aws-sdk/client-codebuild';
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

/** A StopBuild in a spoke account and region, through the same hub-access role the build was started with. */
export interface RemoteBuildStopRequest {
  readonly roleArn: string;
  readonly account: string;
  readonly region: string;
  /** `<project>:<uuid>` */
  readonly buildId: string;
  readonly sessionName: string;
}

export const RemoteBuildStopOutcome = {
  /** CodeBuild accepted the stop: the build ends STOPPED. */
  STOPPED: 'stopped',
  /** The build had ended already (or CodeBuild no longer knows it): nothing to stop. */
  ALREADY_ENDED: 'already-ended',
} as const;
export type RemoteBuildStopOutcome = (typeof RemoteBuildStopOutcome)[keyof typeof RemoteBuildStopOutcome];

/** Starts and stops builds in another account and region; AWS: STS + CodeBuild, locally: the CodeBuild stand-in. */
export interface RemoteCodeBuild {
  startBuild(request: RemoteBuildRequest): Promise<StartedRemoteBuild>;
  stopBuild(request: RemoteBuildStopRequest): Promise<RemoteBuildStopOutcome>;
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

/** StopBuild attempts when CodeBuild throttles, before the error goes back to EventBridge (which retries the event). */
export const STOP_BUILD_ATTEMPTS = 5;
/** CodeBuild's build statuses that end a build: StopBuild returning one of these stopped nothing. */
const ENDED = new Set(['SUCCEEDED', 'FAILED', 'FAULT', 'TIMED_OUT']);
/** StopBuild of a build that is no longer running: CodeBuild answers InvalidInputException with this kind of message. */
const NOT_RUNNING = /not in progress|already (?:been )?(?:completed|stopped|finished)|has completed|terminal/i;

/** A StopBuild refusal that means the build is no longer there to stop. */
function isAlreadyEnded(error: unknown): boolean {
  const { name, message } = error as { name?: unknown; message?: unknown };
  if (name === 'ResourceNotFoundException') return true;
  return name === 'InvalidInputException' && typeof message === 'string' && NOT_RUNNING.test(message);
}

/**
 * The AWS implementation: AssumeRole at the spoke region's STS endpoint (regional, not the global one: it works when
 * the global endpoint is disabled and keeps the call in the spoke's region), then StartBuild or StopBuild in that region.
 */
export function awsRemoteCodeBuild(
  clients: { sts?: (region: string) => STSClient; codebuild?: (region: string, credentials: TemporaryCredentials) => CodeBuildClient; sleep?: (ms: number) => Promise<void> } = {},
): RemoteCodeBuild {
  const sts = clients.sts ?? ((region: string) => traced(new STSClient({ region, useGlobalEndpoint: false })));
  const codebuild = clients.codebuild ?? ((region, credentials) => traced(new CodeBuildClient({ region, credentials })));
  const sleep = clients.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const assume = async (request: { roleArn: string; region: string; sessionName: string }): Promise<TemporaryCredentials> => {
    const assumed = await sts(request.region).send(new AssumeRoleCommand({ RoleArn: request.roleArn, RoleSessionName: request.sessionName, DurationSeconds: SESSION_SECONDS }));
    const c = assumed.Credentials;
    return { accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken, expiration: c?.Expiration };
  };
  return {
    startBuild: async (request) => {
      const credentials = await assume(request);
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
    stopBuild: async (request) => {
      const client = codebuild(request.region, await assume(request));
      for (let attempt = 1; ; attempt++) {
        try {
          const out = await client.send(new StopBuildCommand({ id: request.buildId }));
          return out.build?.buildStatus !== undefined && ENDED.has(out.build.buildStatus) ? RemoteBuildStopOutcome.ALREADY_ENDED : RemoteBuildStopOutcome.STOPPED;
        } catch (error) {
          if (isAlreadyEnded(error)) return RemoteBuildStopOutcome.ALREADY_ENDED;
          const name = (error as { name?: unknown }).name;
          if (typeof name !== 'string' || !THROTTLING.has(name)) throw error;
          if (attempt >= STOP_BUILD_ATTEMPTS) throw new RemoteBuildThrottledError(name, (error as Error).message, { cause: error });
          // Full jitter on an exponential base (250 ms, 500 ms, …): concurrent stops do not retry in step.
          await sleep(Math.random() * 250 * 2 ** (attempt - 1));
        }
      }
    },
  };
}
