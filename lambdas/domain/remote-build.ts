/**
 * A spoke build outside the hub's region: started by start-remote-build, ended by the spoke's forwarded "CodeBuild
 * Build State Change" event (remote-build-ended). The statuses are CodeBuild's `build-status` values.
 */
export const RemoteBuildStatus = {
  IN_PROGRESS: 'IN_PROGRESS',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
  FAULT: 'FAULT',
  STOPPED: 'STOPPED',
  TIMED_OUT: 'TIMED_OUT',
} as const;
export type RemoteBuildStatus = (typeof RemoteBuildStatus)[keyof typeof RemoteBuildStatus];

/** The statuses a build ends in: the hub-bus rule routes exactly these to remote-build-ended. */
export const ENDED_BUILD_STATUSES: readonly RemoteBuildStatus[] = [
  RemoteBuildStatus.SUCCEEDED,
  RemoteBuildStatus.FAILED,
  RemoteBuildStatus.FAULT,
  RemoteBuildStatus.STOPPED,
  RemoteBuildStatus.TIMED_OUT,
];

/** The error a parked rebuild is failed with (SendTaskFailure) when its remote build did not succeed. */
export const REMOTE_BUILD_FAILED_ERROR = 'RemoteBuildFailed';

/** `arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>` */
const BUILD_ARN = /^arn:aws[a-z-]*:codebuild:([a-z0-9-]+):(\d{12}):build\/([A-Za-z0-9][A-Za-z0-9_-]{1,254}):([A-Za-z0-9-]+)$/;

export function isBuildArn(value: string): boolean {
  return BUILD_ARN.test(value);
}

/** The STS session name of a remote build's StartBuild (2–64 of `[\w+=,.@-]`; execution names are a subset). */
export function remoteBuildSessionName(execution: string): string {
  return `patchline-${execution}`.slice(0, 64);
}

/** How a rebuild-image execution ended ("Step Functions Execution Status Change" `status`, without RUNNING). */
export const ExecutionEndStatus = {
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
  ABORTED: 'ABORTED',
  TIMED_OUT: 'TIMED_OUT',
} as const;
export type ExecutionEndStatus = (typeof ExecutionEndStatus)[keyof typeof ExecutionEndStatus];

/** Why a remote build was stopped, in the words kept on its campaign member. */
export function stoppedBuildReason(buildId: string, execution: string, status: ExecutionEndStatus): string {
  return `remote build ${buildId} stopped: rebuild execution ${execution} ended ${status}`;
}
