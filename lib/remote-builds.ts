import { Duration, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { PatchlineConfig } from '../lambdas/domain/config';
import { RegistryScope } from '../lambdas/domain/registry-scope';
import { ENDED_BUILD_STATUSES } from '../lambdas/domain/remote-build';
import { PatchlineFunction } from './patchline-function';
import { grantTableData } from './table-access';

/**
 * Construct id of the start-remote-build function, directly in the stack: its role's physical name is
 * `<stack>-StartRemoteBuildFunctionRole<hash>-<suffix>`, which the spokes' hub-access roles trust by prefix. A deeper
 * path would lengthen the logical id and CloudFormation would truncate the name below 64 characters.
 */
export const START_REMOTE_BUILD_FUNCTION_ID = 'StartRemoteBuildFunction';
export const REMOTE_BUILD_ENDED_FUNCTION_ID = 'RemoteBuildEndedFunction';
/** The stop-remote-build function, directly in the stack for the same reason: the spokes trust its role by prefix. */
export const STOP_REMOTE_BUILD_FUNCTION_ID = 'StopRemoteBuildFunction';
/** The hub-bus rule taking the forwarded ends of spoke builds to remote-build-ended. */
export const HUB_CODEBUILD_ENDED_RULE_ID = 'HubCodeBuildEndedRule';

/** The role-name prefix of the start-remote-build function in hub stack `hubStackName` (for ArnLike trust conditions). */
export function startRemoteBuildRolePrefix(hubStackName: string): string {
  return `${hubStackName}-${START_REMOTE_BUILD_FUNCTION_ID}Role`;
}

/** The role-name prefix of the stop-remote-build function in hub stack `hubStackName` (for ArnLike trust conditions). */
export function stopRemoteBuildRolePrefix(hubStackName: string): string {
  return `${hubStackName}-${STOP_REMOTE_BUILD_FUNCTION_ID}Role`;
}

export interface RemoteBuildsProps {
  readonly config: PatchlineConfig;
  readonly table: dynamodb.ITableV2;
  readonly tableKey: kms.IKey;
  readonly deadLetterQueue: sqs.IQueue;
  /** The shared function environment (TABLE_NAME, …). */
  readonly environment: Record<string, string>;
  /** ARN of the rebuild-image state machine (built from its fixed name: a reference would be a cycle). */
  readonly rebuildStateMachineArn: string;
}

/**
 * Rebuilds of spoke images outside the hub's region, which Step Functions cannot reach with task credentials:
 * start-remote-build (invoked `.waitForTaskToken`) assumes the spoke's regional hub-access role and starts the build;
 * the spoke forwards the build's end to the hub bus, where a rule hands it to remote-build-ended, which resumes the
 * execution. Should the execution end first (aborted, timed out, failed), stop-remote-build stops the build through the
 * same role. Only for configs with such a spoke (`forConfig` returns undefined otherwise).
 */
export class RemoteBuilds {
  public readonly startFunction: PatchlineFunction;
  public readonly endedFunction: PatchlineFunction;
  public readonly stopFunction: PatchlineFunction;
  /** The region builds run in without this path (the hub's): the rebuild workflow's Choice compares against it. */
  public readonly hubRegion: string;

  private constructor(
    private readonly stack: Stack,
    private readonly props: RemoteBuildsProps,
    roleArns: readonly string[],
    hubRegion: string,
  ) {
    this.hubRegion = hubRegion;
    const fn = (id: string, handler: string): PatchlineFunction => new PatchlineFunction(stack, id, { handler, environment: props.environment, deadLetterQueue: props.deadLetterQueue });
    this.startFunction = fn(START_REMOTE_BUILD_FUNCTION_ID, 'start-remote-build');
    this.endedFunction = fn(REMOTE_BUILD_ENDED_FUNCTION_ID, 'remote-build-ended');
    this.stopFunction = fn(STOP_REMOTE_BUILD_FUNCTION_ID, 'stop-remote-build');
    for (const f of [this.startFunction, this.endedFunction, this.stopFunction]) grantTableData(props.table, props.tableKey, f);
    // Exactly the hub-access roles of the spokes outside the hub's region (the workflow's own role has the others):
    // the two functions that start and stop builds there, no other.
    this.startFunction.addToRolePolicy(new iam.PolicyStatement({ sid: 'BuildInRemoteSpokes', actions: ['sts:AssumeRole'], resources: [...roleArns] }));
    this.stopFunction.addToRolePolicy(new iam.PolicyStatement({ sid: 'StopBuildsInRemoteSpokes', actions: ['sts:AssumeRole'], resources: [...roleArns] }));
    this.endedFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], resources: [props.rebuildStateMachineArn] }));
  }

  public static forConfig(stack: Stack, props: RemoteBuildsProps): RemoteBuilds | undefined {
    const organization = props.config.organization;
    const roleArns = RegistryScope.forOrganization(organization).remoteBuildRoleArns();
    if (!organization || roleArns.length === 0) return undefined;
    return new RemoteBuilds(stack, props, roleArns, organization.hub.region);
  }

  /**
   * Adds stop-remote-build to the rule on the rebuild-image executions that ended without their release step (the one
   * that frees their slot): an execution parked on a remote build leaves no build running behind it.
   */
  public stopBuildsOfEndedExecutions(rebuildEndedRule: events.Rule): void {
    rebuildEndedRule.addTarget(new targets.LambdaFunction(this.stopFunction, { deadLetterQueue: this.props.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(24) }));
  }

  /** The rule on the hub bus: ended builds of the remote spokes' projects → remote-build-ended (DLQ, retries as the other rules). */
  public routeBuildEvents(hubBus: events.IEventBus): events.Rule {
    const spokes = (this.props.config.organization?.spokes ?? []).filter((s) => s.region !== this.hubRegion);
    return new events.Rule(this.stack, HUB_CODEBUILD_ENDED_RULE_ID, {
      description: 'Ends of spoke builds outside the hub region, forwarded by the spokes: resume the parked rebuilds',
      eventBus: hubBus,
      eventPattern: {
        source: ['aws.codebuild'],
        detailType: ['CodeBuild Build State Change'],
        account: [...new Set(spokes.map((s) => s.account))],
        region: [...new Set(spokes.map((s) => s.region))],
        detail: { 'build-status': [...ENDED_BUILD_STATUSES] },
      },
      targets: [new targets.LambdaFunction(this.endedFunction, { deadLetterQueue: this.props.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(24) })],
    });
  }
}
