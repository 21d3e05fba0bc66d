import { Duration, Stack, StackProps, Token, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PatchlineConfig } from '../lambdas/domain/config';
import { hubAccessRoleName } from '../lambdas/domain/registry-scope';
import { HUB_EVENT_BUS_NAME } from './hub-event-bus';
import { learnLineageRolePrefix } from './lineage-discovery';
import { repositoryFilter } from './patchline-stack';
import { startRemoteBuildRolePrefix, stopRemoteBuildRolePrefix } from './remote-builds';
import { registryRescanRolePrefix } from './rescan-workflow';

// The hub computes the role's ARN from account + region (lambdas/domain/registry-scope.ts): one definition of the name.
export { hubAccessRoleName };

export interface PatchlineSpokeStackProps extends StackProps {
  /** Account of the hub (12 digits). */
  readonly hubAccount: string;
  /** Region of the hub. */
  readonly hubRegion: string;
  /**
   * ARN of the hub's event bus.
   * @default - the `patchline-hub` bus in the hub account and region
   */
  readonly hubEventBusArn?: string;
  /**
   * Principal (ARN, `*` allowed) in the hub account allowed to assume the hub-access role; it replaces every default
   * principal (then it must also cover learn-lineage, registry-rescan and, outside the hub's region,
   * start/stop-remote-build).
   * @default - the hub's rebuild-image state machine role `role/<hubStackName>-RebuildImageWorkflowRole*`, the
   * learn-lineage function role `role/<hubStackName>-LineageDiscoveryFunctionRole*` and the registry-rescan function
   * role `role/<hubStackName>-RegistryRescanFunctionRole*` (outside the hub's region, or in a region not known at
   * synthesis such as a StackSets deployment's, also the start- and stop-remote-build function roles)
   */
  readonly hubPrincipalArn?: string;
  /**
   * Name of the hub stack, used to derive the default `hubPrincipalArn`.
   * @default 'Patchline'
   */
  readonly hubStackName?: string;
  /** ECR repositories of this spoke (names or prefixes ending in `*`). */
  readonly repositories: readonly string[];
  /** CodeBuild projects of this spoke the hub may start (names or prefixes ending in `*`). */
  readonly projects: readonly string[];
  /**
   * The AWS Organizations id; when set, only principals of the organization may assume the hub-access role.
   * @default - no organization condition
   */
  readonly organizationId?: string;
}

/** Rule ids and the exact event each forwards: the hub's view of a spoke is these three events and nothing else. */
export const SpokeRuleId = {
  ECR_PUSH: 'ForwardEcrPushRule',
  INSPECTOR_FINDING: 'ForwardInspectorFindingRule',
  CODEBUILD_STATE: 'ForwardCodeBuildStateRule',
} as const;

/**
 * One per spoke account and region: forwards ECR pushes, Inspector2 findings and CodeBuild build state changes of the
 * configured repositories/projects to the hub's event bus, and holds the role through which the hub starts builds and
 * reads images and findings here.
 */
export class PatchlineSpokeStack extends Stack {
  public readonly deadLetterQueue: sqs.Queue;
  public readonly hubAccessRole: iam.Role;

  public constructor(scope: Construct, id: string, props: PatchlineSpokeStackProps) {
    super(scope, id, props);
    validate(props);
    const hubStackName = props.hubStackName ?? 'Patchline';
    const busArn =
      props.hubEventBusArn ??
      this.formatArn({ account: props.hubAccount, region: props.hubRegion, service: 'events', resource: 'event-bus', resourceName: HUB_EVENT_BUS_NAME });
    const hubBus = events.EventBus.fromEventBusArn(this, 'HubEventBus', busArn);

    // SSE-SQS: a customer-managed key would need EventBridge in its key policy for no gain on forwarded metadata.
    this.deadLetterQueue = new sqs.Queue(this, 'ForwardDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const forwardRole = new iam.Role(this, 'ForwardRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: 'Lets the spoke rules put events on the Patchline hub bus',
    });
    const forward = (): targets.EventBus => new targets.EventBus(hubBus, { role: forwardRole, deadLetterQueue: this.deadLetterQueue });

    new events.Rule(this, SpokeRuleId.ECR_PUSH, {
      description: 'Forwards successful ECR pushes of the configured repositories to the Patchline hub',
      eventPattern: {
        source: ['aws.ecr'],
        detailType: ['ECR Image Action'],
        detail: { 'action-type': ['PUSH'], result: ['SUCCESS'], 'repository-name': repositoryFilter(props.repositories) },
      },
      targets: [forward()],
    });
    new events.Rule(this, SpokeRuleId.INSPECTOR_FINDING, {
      description: 'Forwards Inspector2 findings on images of the configured repositories to the Patchline hub',
      eventPattern: {
        source: ['aws.inspector2'],
        detailType: ['Inspector2 Finding'],
        detail: {
          resources: { type: ['AWS_ECR_CONTAINER_IMAGE'], details: { awsEcrContainerImage: { repositoryName: repositoryFilter(props.repositories) } } },
        },
      },
      targets: [forward()],
    });
    new events.Rule(this, SpokeRuleId.CODEBUILD_STATE, {
      description: 'Forwards build state changes of the configured CodeBuild projects to the Patchline hub',
      eventPattern: {
        source: ['aws.codebuild'],
        detailType: ['CodeBuild Build State Change'],
        detail: { 'project-name': repositoryFilter(props.projects) },
      },
      targets: [forward()],
    });

    this.hubAccessRole = this.buildHubAccessRole(props, hubStackName);
    this.acknowledgeNagFindings(props);
  }

  /** cdk-nag (AwsSolutions) runs on every stack of the app: the accepted findings, each on its resource and with why. */
  private acknowledgeNagFindings(props: PatchlineSpokeStackProps): void {
    const ack = (scope: Construct, id: string, reason: string): void => Validations.of(scope).acknowledge({ id, reason: `${scope.node.path}: ${reason}` });
    ack(this.deadLetterQueue, 'AwsSolutions-SQS3', 'this queue is the dead-letter queue of the forwarding rules (EventBridge target DLQ); it has none of its own.');
    // cdk-nag renders the partition as <AWS::Partition> and the stack's own account/region literally when env is explicit.
    const region = Token.isUnresolved(this.region) ? '<AWS::Region>' : this.region;
    const account = Token.isUnresolved(this.account) ? '<AWS::AccountId>' : this.account;
    const policy = this.hubAccessRole.node.findChild('DefaultPolicy');
    for (const project of props.projects.filter((p) => p.endsWith('*'))) {
      ack(policy, `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:codebuild:${region}:${account}:project/${project}]`, `the spoke's configured CodeBuild project prefix ${project}: the operator scoped it.`);
    }
    for (const repository of props.repositories.filter((r) => r.endsWith('*'))) {
      ack(policy, `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:${region}:${account}:repository/${repository}]`, `the spoke's configured ECR repository prefix ${repository}: the operator scoped it.`);
    }
    ack(
      policy,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:${region}:${account}:repository/*]`,
      'ecr:DescribeRepositories without repository names is authorized on repository/* only; it is the only action there and returns names and settings, no images.',
    );
    ack(policy, 'AwsSolutions-IAM5[Resource::*]', 'inspector2:ListFindings accepts no resource scope (Service Authorization Reference); it is the only action on *.');
  }

  private buildHubAccessRole(props: PatchlineSpokeStackProps, hubStackName: string): iam.Role {
    const principalArn = props.hubPrincipalArn ?? `arn:${this.partition}:iam::${props.hubAccount}:role/${hubStackName}-RebuildImageWorkflowRole*`;
    // Outside the hub's region Step Functions cannot use task credentials: the hub's start-remote-build function
    // assumes the role instead, and stop-remote-build to stop a build whose execution ended, so both are admitted
    // too — not in a spoke known to be in the hub's region; in one whose region is a token (StackSets) they are
    // admitted, since it may be outside (trusting a role name the hub does not create grants nothing).
    const remote = props.hubPrincipalArn === undefined && !this.isKnownInHubRegion(props);
    const hubRole = (prefix: string): string => `arn:${this.partition}:iam::${props.hubAccount}:role/${prefix}*`;
    const remoteBuilds = remote ? [hubRole(startRemoteBuildRolePrefix(hubStackName)), hubRole(stopRemoteBuildRolePrefix(hubStackName))] : [];
    // learn-lineage reads pushed images and registry-rescan sweeps images and findings in every spoke region (a region
    // token too, as for StackSets): always admitted with the defaults; an explicit hubPrincipalArn replaces them all.
    const readers = [hubRole(learnLineageRolePrefix(hubStackName)), hubRole(registryRescanRolePrefix(hubStackName))];
    const principals = props.hubPrincipalArn === undefined ? [principalArn, ...remoteBuilds, ...readers] : principalArn;
    // Trusting the hub account only delegates to its IAM; the PrincipalArn condition narrows it to the rebuild
    // workflow's, learn-lineage's and registry-rescan's roles. No sts:ExternalId: Step Functions' cross-account task Credentials cannot pass one.
    const conditions: Record<string, Record<string, string | string[]>> = { ArnLike: { 'aws:PrincipalArn': principals } };
    if (props.organizationId !== undefined) conditions.StringEquals = { 'aws:PrincipalOrgID': props.organizationId };
    const role = new iam.Role(this, 'HubAccessRole', {
      roleName: hubAccessRoleName(this.region),
      description: 'Assumed by the Patchline hub to start rebuilds and read images and findings in this spoke',
      assumedBy: new iam.AccountPrincipal(props.hubAccount).withConditions(conditions),
      maxSessionDuration: Duration.hours(1),
    });

    const projectArns = props.projects.map((p) => this.formatArn({ service: 'codebuild', resource: 'project', resourceName: p }));
    role.addToPolicy(new iam.PolicyStatement({ sid: 'RebuildConfiguredProjects', actions: ['codebuild:StartBuild', 'codebuild:BatchGetBuilds', 'codebuild:StopBuild'], resources: projectArns }));
    const repositoryArns = props.repositories.map((r) => this.formatArn({ service: 'ecr', resource: 'repository', resourceName: r }));
    // GetDownloadUrlForLayer (learn-lineage reads a pushed image's config blob) and ListTagsForResource (its owner and
    // build-project tags) on the same repositories: ECR scopes both to the repository, not to a blob or tag.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadConfiguredRepositories',
        actions: ['ecr:BatchGetImage', 'ecr:DescribeImages', 'ecr:ListImages', 'ecr:GetDownloadUrlForLayer', 'ecr:ListTagsForResource'],
        resources: repositoryArns,
      }),
    );
    // registry-rescan starts the basic scans that are due (one a day per image at most) on the same repositories.
    role.addToPolicy(new iam.PolicyStatement({ sid: 'ScanConfiguredRepositories', actions: ['ecr:StartImageScan'], resources: repositoryArns }));
    // registry-rescan lists the repositories to sweep: DescribeRepositories without names is authorized on the
    // region's repository/* only (repository names and settings, no images); the hub keeps the configured ones.
    role.addToPolicy(new iam.PolicyStatement({ sid: 'ListRepositories', actions: ['ecr:DescribeRepositories'], resources: [this.formatArn({ service: 'ecr', resource: 'repository', resourceName: '*' })] }));
    // inspector2:ListFindings supports no resource-level permission (Service Authorization Reference): the hub must
    // filter its ListFindings calls by repository itself; the grant is read-only findings metadata of this account.
    role.addToPolicy(new iam.PolicyStatement({ sid: 'ListFindingsNoResourceScope', actions: ['inspector2:ListFindings'], resources: ['*'] }));
    return role;
  }

  /** A spoke whose region is known to be the hub's (an unresolved region, as for StackSets, is not known to be). */
  private isKnownInHubRegion(props: PatchlineSpokeStackProps): boolean {
    return !Token.isUnresolved(this.region) && !Token.isUnresolved(props.hubRegion) && this.region === props.hubRegion;
  }
}

const ACCOUNT = /^\d{12}$/;

function validate(props: PatchlineSpokeStackProps): void {
  if (!Token.isUnresolved(props.hubAccount) && !ACCOUNT.test(props.hubAccount)) {
    throw new Error(`PatchlineSpokeStack: hubAccount must be a 12-digit account id, got ${JSON.stringify(props.hubAccount)}`);
  }
  if (props.repositories.length === 0) throw new Error('PatchlineSpokeStack: repositories is empty; list at least one ECR repository name or prefix*');
  if (props.projects.length === 0) throw new Error('PatchlineSpokeStack: projects is empty; list at least one CodeBuild project name or prefix*');
  if (props.repositories.includes('*') || props.projects.includes('*')) {
    // A bare * would grant every repository or project of the account: the role is meant to be scoped.
    throw new Error(`PatchlineSpokeStack: repositories and projects must name repositories/projects or prefixes, got ${JSON.stringify([...props.repositories, ...props.projects].filter((p) => p === '*'))}`);
  }
}

/**
 * One PatchlineSpokeStack per configured spoke, `PatchlineSpoke-<account>-<region>`, each with its explicit env. A spoke
 * without its own repositories/projects uses the top-level `repositories` and `rebuild.projects`.
 */
export function defineSpokeStacks(scope: Construct, config: PatchlineConfig, hubStackName = 'Patchline'): PatchlineSpokeStack[] {
  const organization = config.organization;
  if (organization === undefined) return [];
  return organization.spokes.map(
    (spoke) =>
      new PatchlineSpokeStack(scope, `PatchlineSpoke-${spoke.account}-${spoke.region}`, {
        env: { account: spoke.account, region: spoke.region },
        description: `Patchline spoke: forwards events of ${spoke.account}/${spoke.region} to the hub and lets the hub rebuild here`,
        hubAccount: organization.hub.account,
        hubRegion: organization.hub.region,
        hubStackName,
        repositories: spoke.repositories ?? config.repositories,
        projects: spoke.projects ?? config.rebuild.projects,
        organizationId: organization.organizationId,
      }),
  );
}
