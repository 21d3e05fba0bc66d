import { Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { isScheduleExpression, PatchlineConfig } from '../lambdas/domain/config';
import { policyFromConfig } from '../lambdas/handlers/finding-received';
import { RegistryScope } from '../lambdas/domain/registry-scope';
import { DEFAULT_MAX_SCAN_AGE_DAYS, SPOKE_REPOSITORIES_ENV, SpokeRepositories } from '../lambdas/handlers/rescan-services';
import { PatchlineFunction } from './patchline-function';
import { bindRegistryScope } from './spoke-builds';
import { grantTableData } from './table-access';
import { publishAlerts, startRebuilds } from './workflow-steps';

/** Construct id in the stack: the local runtime and the tests find its resources under it. */
export const RESCAN_WORKFLOW_ID = 'RegistryRescanWorkflow';

/**
 * Construct id of the registry-rescan function, directly in the stack (not under the workflow): its role is named
 * `<stack>-RegistryRescanFunctionRole<hash>-<suffix>`, which the spokes' hub-access roles trust by prefix. Under the
 * workflow's path the logical id would be long enough for CloudFormation to truncate the generated name.
 */
export const REGISTRY_RESCAN_FUNCTION_ID = 'RegistryRescanFunction';
/** Its handler file: the `service` dimension of its metrics is `patchline-<handler>` (the ops alarm on RescanSpokesUnreachable). */
export const REGISTRY_RESCAN_HANDLER = 'registry-rescan';

/** The role-name prefix of the registry-rescan function in hub stack `hubStackName` (for ArnLike trust conditions). */
export function registryRescanRolePrefix(hubStackName: string): string {
  return `${hubStackName}-${REGISTRY_RESCAN_FUNCTION_ID}Role`;
}

/** What the rescan function may call on the configured repositories. */
export const ECR_RESCAN_ACTIONS = ['ecr:DescribeImages', 'ecr:StartImageScan'] as const;

export interface RescanWorkflowProps {
  readonly table: dynamodb.ITableV2;
  /** The table's customer-managed key. */
  readonly tableKey: kms.IKey;
  /** The alerts topic: missed-finding alerts, expired exceptions and the per-owner digests. */
  readonly topic: sns.ITopic;
  /** Undeliverable scheduled starts and asynchronous invocation failures. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The validated config: repositories, scanning mode, rescan.schedule, the policy and the dedup window. */
  readonly config: PatchlineConfig;
  /** rebuild-image: missed findings and moved upstream tags start rebuilds through it. */
  readonly rebuildStateMachine: sfn.IStateMachine;
  /**
   * Run the per-repository step as a Distributed Map (child executions, each with its own history) instead of an
   * inline Map. An inline Map's iterations count against the execution's 25,000-event history: with about 8 events
   * per repository it fits up to some 2,000 repositories a sweep; above that, set this.
   * @default false
   */
  readonly distributed?: boolean;
  /** Repositories rescanned at once. @default 10 */
  readonly maxConcurrency?: number;
  /** Basic scanning: an image whose last scan is older than this is scanned again (ECR allows one scan a day). @default 7 */
  readonly maxScanAgeDays?: number;
  /** Registry host → base URL for the upstream watch (an ECR pull-through cache). @default - each registry itself */
  readonly registryEndpoints?: Readonly<Record<string, string>>;
}

/**
 * registry-rescan (Standard), started by EventBridge Scheduler on `rescan.schedule`: page through the configured ECR
 * repositories, the hub's then each spoke's (through its PatchlineHubAccess-<region> role) → per repository (Map): basic scans that are due or Inspector2 findings reconciled with the store,
 * expired exceptions, drift → publish its alerts and start the rebuilds its missed findings call for → the upstream
 * watch (external parents' tags resolved to digests; a moved tag starts a campaign) → one digest alert per owner.
 */
export class RescanWorkflow extends Construct {
  public readonly rescanFunction: PatchlineFunction;
  public readonly upstreamFunction: PatchlineFunction;
  public readonly stateMachine: sfn.StateMachine;
  public readonly schedule: scheduler.Schedule;

  public constructor(scope: Construct, id: string, props: RescanWorkflowProps) {
    super(scope, id);
    const { config } = props;
    if (!Token.isUnresolved(config.rescan.schedule) && !isScheduleExpression(config.rescan.schedule)) {
      throw new Error(`RescanWorkflow config.rescan.schedule must be rate(N unit) or cron(6 fields) (received ${JSON.stringify(config.rescan.schedule)})`);
    }
    const maxScanAgeDays = props.maxScanAgeDays ?? DEFAULT_MAX_SCAN_AGE_DAYS;
    if (!(Number.isInteger(maxScanAgeDays) && maxScanAgeDays >= 1 && maxScanAgeDays <= 365)) {
      throw new Error(`RescanWorkflow maxScanAgeDays must be a whole number of days from 1 to 365 (received ${maxScanAgeDays})`);
    }
    const maxConcurrency = props.maxConcurrency ?? 10;
    if (!(Number.isInteger(maxConcurrency) && maxConcurrency >= 1 && maxConcurrency <= 1000)) {
      throw new Error(`RescanWorkflow maxConcurrency must be a whole number from 1 to 1000 (received ${maxConcurrency})`);
    }
    const stack = Stack.of(this);
    const environment = {
      TABLE_NAME: props.table.tableName,
      REBUILD_CONCURRENCY: String(config.rebuild.concurrency),
      DEFAULT_BUILD_SECONDS: String(config.rebuild.defaultBuildSeconds),
      REPOSITORIES: JSON.stringify(config.repositories),
      SCANNING_MODE: config.scanning.mode,
      MAX_SCAN_AGE_DAYS: String(maxScanAgeDays),
      ECR_ACCOUNT: stack.account,
      REGISTRY_ENDPOINTS: JSON.stringify(props.registryEndpoints ?? {}),
      FINDING_POLICY: JSON.stringify(policyFromConfig(config)),
      ALERT_DEDUP_SECONDS: String(config.alertDedupDays * 86_400),
    };
    const spokes: SpokeRepositories[] = (config.organization?.spokes ?? []).map((s) => ({ account: s.account, region: s.region, repositories: [...(s.repositories ?? config.repositories)] }));
    // A repository with thousands of images and findings takes minutes, not seconds.
    this.rescanFunction = new PatchlineFunction(stack, REGISTRY_RESCAN_FUNCTION_ID, {
      handler: REGISTRY_RESCAN_HANDLER,
      environment: { ...environment, ...(spokes.length > 0 && { [SPOKE_REPOSITORIES_ENV]: JSON.stringify(spokes) }) },
      deadLetterQueue: props.deadLetterQueue,
      timeout: Duration.minutes(10),
      memorySize: 512,
    });
    this.upstreamFunction = new PatchlineFunction(this, 'UpstreamWatchFunction', { handler: 'upstream-watch', environment, deadLetterQueue: props.deadLetterQueue, timeout: Duration.minutes(5) });
    for (const f of [this.rescanFunction, this.upstreamFunction]) {
      grantTableData(props.table, props.tableKey, f);
      bindRegistryScope(f, config);
    }
    this.grantScanners(config);

    this.stateMachine = this.buildStateMachine(props, maxConcurrency);

    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'Patchline registry rescan: missed findings, expired exceptions, upstream bases, drift',
      schedule: scheduler.ScheduleExpression.expression(config.rescan.schedule),
      target: new schedulerTargets.StepFunctionsStartExecution(this.stateMachine, {
        input: scheduler.ScheduleTargetInput.fromObject({ nextToken: '' }),
        deadLetterQueue: props.deadLetterQueue,
        retryAttempts: 8,
        maxEventAge: Duration.hours(6),
      }),
    });
  }

  private grantScanners(config: PatchlineConfig): void {
    const stack = Stack.of(this);
    const repositoryArn = (name: string): string => stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: name });
    const fn = this.rescanFunction;
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ScanConfiguredRepositories', actions: [...ECR_RESCAN_ACTIONS], resources: config.repositories.map(repositoryArn) }));
    // Listing repositories (no names given) is authorized on the account's repositories, filtered in the function.
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListRepositories', actions: ['ecr:DescribeRepositories'], resources: [repositoryArn('*')] }));
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListFindings', actions: ['inspector2:ListFindings'], resources: ['*'] }));
    const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
    const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
    const policy = fn.role!.node.findChild('DefaultPolicy').node.defaultChild!;
    const ack = (resource: string, reason: string): void =>
      Validations.of(policy).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason: `${policy.node.path}: ${reason}` });
    for (const prefix of new Set([...config.repositories.filter((r) => r.endsWith('*')), '*'])) {
      ack(
        `arn:<AWS::Partition>:ecr:${region}:${account}:repository/${prefix}`,
        prefix === '*'
          ? 'ecr:DescribeRepositories without names lists the account’s repositories in this region; the function keeps the configured ones.'
          : `repositories in patchline.config.json names the ECR repository prefix ${prefix}: the operator scoped it.`,
      );
    }
    ack('*', 'inspector2:ListFindings accepts no resource scope (Service Authorization Reference); the request filters by repository.');
    // The spokes' registries are swept through their hub-access roles (whose policies scope what is read there).
    const spokeRoles = RegistryScope.forOrganization(config.organization).hubAccessRoleArns();
    if (spokeRoles.length > 0) fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'RescanSpokeRegistries', actions: ['sts:AssumeRole'], resources: spokeRoles }));
  }

  private buildStateMachine(props: RescanWorkflowProps, maxConcurrency: number): sfn.StateMachine {
    const invoke = (id: string, fn: PatchlineFunction, payload: Record<string, unknown>, resultPath: string): tasks.LambdaInvoke =>
      new tasks.LambdaInvoke(this, id, { lambdaFunction: fn, payload: sfn.TaskInput.fromObject(payload), payloadResponseOnly: true, resultPath, retryOnServiceExceptions: true });

    // An undelivered alert is dead-lettered (its claim given back) and the sweep goes on: the DeadLetters alarm reports it.
    const claims = { table: props.table, tableKey: props.tableKey, dedupSeconds: props.config.alertDedupDays * 86_400 };
    const publish = (id: string, itemsPath: string): sfn.Map =>
      publishAlerts(this, id, { topic: props.topic, itemsPath, publishId: `${id}Alert`, deadLetterQueue: props.deadLetterQueue, claims });
    const startRebuildsOf = (id: string, itemsPath: string): sfn.Map =>
      startRebuilds(this, id, { stateMachine: props.rebuildStateMachine, itemsPath, startId: `${id}Start`, alreadyStartedId: `${id}AlreadyStarted` });

    const begin = new sfn.Pass(this, 'Begin', { result: sfn.Result.fromObject({ nextToken: '' }) });
    const listRepositories = invoke('ListRepositories', this.rescanFunction, { action: 'listRepositories', nextToken: sfn.JsonPath.stringAt('$.nextToken') }, '$.page');

    const rescanRepository = invoke('RescanRepository', this.rescanFunction, { action: 'rescanRepository', repository: sfn.JsonPath.stringAt('$.repository') }, '$.result');
    // One repository that cannot be read must not stop the sweep: its error is kept in the Map item's output.
    rescanRepository.addCatch(new sfn.Pass(this, 'RepositoryFailed'), { errors: ['States.ALL'], resultPath: '$.error' });
    const perRepository = rescanRepository.next(publish('PublishRepositoryAlerts', '$.result.alerts')).next(startRebuildsOf('StartFindingRebuilds', '$.result.starts'));
    const mapProps = {
      itemsPath: '$.page.repositories',
      itemSelector: { repository: sfn.JsonPath.stringAt('$$.Map.Item.Value') },
      maxConcurrency,
      resultPath: sfn.JsonPath.DISCARD,
    };
    const rescanAll = props.distributed ? new sfn.DistributedMap(this, 'RescanRepositories', mapProps) : new sfn.Map(this, 'RescanRepositories', mapProps);
    rescanAll.itemProcessor(perRepository);

    const upstream = invoke('WatchUpstream', this.upstreamFunction, {}, '$.upstream');
    const digest = invoke('BuildDigests', this.rescanFunction, { action: 'digest' }, '$.digest');
    const tail = upstream
      .next(startRebuildsOf('StartUpstreamRebuilds', '$.upstream.starts'))
      .next(digest)
      .next(publish('PublishDigests', '$.digest.alerts'))
      .next(new sfn.Succeed(this, 'Rescanned', { outputPath: '$.digest' }));

    const nextPage = new sfn.Pass(this, 'NextPage', { parameters: { 'nextToken.$': '$.page.nextToken' } }).next(listRepositories);
    const morePages = new sfn.Choice(this, 'MorePages')
      .when(sfn.Condition.and(sfn.Condition.isPresent('$.page.nextToken'), sfn.Condition.isString('$.page.nextToken')), nextPage)
      .otherwise(tail);
    const definition = begin.next(listRepositories).next(rescanAll).next(morePages);

    return new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      timeout: Duration.hours(12),
      logs: { destination: new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS }), level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
  }
}
