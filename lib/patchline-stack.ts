import { ArnFormat, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { PatchlineConfig } from '../lambdas/domain/config';
import { BUILDING_MARKER_SORT_KEY } from '../lambdas/store/campaign-store';
import { KeyPrefix, TableKeys } from '../lambdas/store/table';
import { FINDING_WORKFLOW_ID, FindingWorkflow } from './finding-workflow';
import { PatchlineObservability } from './observability';
import { HubEventBus } from './hub-event-bus';
import { LINEAGE_DISCOVERY_ID, LINEAGE_WRITER_RETRY_ERRORS, LineageDiscovery } from './lineage-discovery';
import { PatchlineFunction } from './patchline-function';
import { RemoteBuilds } from './remote-builds';
import { RESCAN_WORKFLOW_ID, RescanWorkflow } from './rescan-workflow';
import { SCAN_COMPLETED_WORKFLOW_ID, ScanCompletedWorkflow } from './scan-completed-workflow';
import { bindRegistryScope, grantSpokeBuilds } from './spoke-builds';
import { grantTableData } from './table-access';
import { deadLetterState, startRebuilds } from './workflow-steps';

export interface PatchlineStackProps extends StackProps {
  /** The validated patchline.config.json. */
  readonly config: PatchlineConfig;
}

/** Construct ids of the workflows: the local runtime finds their definitions in the template by these. */
export const WorkflowId = {
  IMAGE_PUSHED: 'ImagePushedWorkflow',
  REBUILD_IMAGE: 'RebuildImageWorkflow',
} as const;

/** Errors CodeBuild raises when the account is at its concurrent-build or API rate limit: retried, not failed. */
export const CODEBUILD_THROTTLING_ERRORS = ['CodeBuild.AccountLimitExceededException', 'CodeBuild.ThrottlingException', 'CodeBuild.CodeBuildException'];

/** ECR repository filter for EventBridge patterns: `apps/*` → prefix `apps/`. */
export function repositoryFilter(patterns: readonly string[]): Array<string | { prefix: string }> {
  return patterns.map((p) => (p.endsWith('*') ? { prefix: p.slice(0, -1) } : p));
}

export class PatchlineStack extends Stack {
  public readonly table: dynamodb.TableV2;
  public readonly key: kms.Key;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly alertsTopic: sns.Topic;
  public readonly imagePushed: sfn.StateMachine;
  public readonly rebuildImage: sfn.StateMachine;
  private readonly rebuildWorkflowName: string;
  /** Spoke builds outside the hub's region (start-remote-build / remote-build-ended); only with such a spoke. */
  private remoteBuilds?: RemoteBuilds;

  public constructor(scope: Construct, id: string, props: PatchlineStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.rebuildWorkflowName = `${this.stackName}-rebuild-image`;

    this.key = new kms.Key(this, 'Key', {
      description: 'Patchline: encrypts the alert topic, the dead-letter queue and the table',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // EventBridge, SNS and CloudWatch deliver into the encrypted queue/topic: they need the key, but only on behalf of
    // this account's own rules, topics and alarms (aws:SourceAccount closes the confused-deputy path).
    for (const service of ['events.amazonaws.com', 'sns.amazonaws.com', 'cloudwatch.amazonaws.com']) {
      this.key.addToResourcePolicy(
        new iam.PolicyStatement({
          principals: [new iam.ServicePrincipal(service)],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
        }),
      );
    }

    this.table = new dynamodb.TableV2(this, 'Table', {
      partitionKey: { name: TableKeys.PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TableKeys.SORT_KEY, type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      encryption: dynamodb.TableEncryptionV2.customerManagedKey(this.key),
      timeToLiveAttribute: TableKeys.TTL_ATTRIBUTE,
      globalSecondaryIndexes: [
        {
          indexName: TableKeys.GSI1,
          partitionKey: { name: TableKeys.GSI1_PARTITION_KEY, type: dynamodb.AttributeType.STRING },
          sortKey: { name: TableKeys.GSI1_SORT_KEY, type: dynamodb.AttributeType.STRING },
        },
      ],
    });

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      // Dead letters are the only copy of what could not be processed: they outlive the stack, like the table.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.alertsTopic = new sns.Topic(this, 'AlertsTopic', {
      displayName: 'Patchline alerts',
      masterKey: this.key,
      enforceSSL: true,
    });
    for (const [owner, contact] of Object.entries(config.owners)) {
      // Each owner sees only its own alerts: the filter policy matches the `owner` message attribute.
      const filterPolicy = { owner: sns.SubscriptionFilter.stringFilter({ allowlist: [owner] }) };
      if (contact.email) this.alertsTopic.addSubscription(new subscriptions.EmailSubscription(contact.email, { filterPolicy }));
      if (contact.https) this.alertsTopic.addSubscription(new subscriptions.UrlSubscription(contact.https, { filterPolicy }));
    }

    const environment = {
      TABLE_NAME: this.table.tableName,
      REBUILD_CONCURRENCY: String(config.rebuild.concurrency),
      DEFAULT_BUILD_SECONDS: String(config.rebuild.defaultBuildSeconds),
      SETTLE_WINDOW_SECONDS: String(config.rebuild.settleWindowSeconds),
    };
    const fn = (id: string, handler: string): PatchlineFunction =>
      new PatchlineFunction(this, id, { handler, environment, deadLetterQueue: this.deadLetterQueue });
    const imagePushedFn = fn('ImagePushedFunction', 'image-pushed');
    bindRegistryScope(imagePushedFn, config);
    const acquireSlotFn = fn('AcquireSlotFunction', 'acquire-slot');
    const releaseSlotFn = fn('ReleaseSlotFunction', 'release-slot');
    const recordFailureFn = fn('RecordBuildFailureFunction', 'record-build-failure');
    bindRegistryScope(recordFailureFn, config);
    const resolveSettledFn = fn('ResolveSettledRebuildFunction', 'resolve-settled-rebuild');
    for (const f of [imagePushedFn, acquireSlotFn, releaseSlotFn, recordFailureFn, resolveSettledFn]) grantTableData(this.table, this.key, f);

    this.remoteBuilds = RemoteBuilds.forConfig(this, { config, table: this.table, tableKey: this.key, deadLetterQueue: this.deadLetterQueue, environment, rebuildStateMachineArn: this.formatArn({ service: 'states', resource: 'stateMachine', resourceName: this.rebuildWorkflowName, arnFormat: ArnFormat.COLON_RESOURCE_NAME }) });
    this.rebuildImage = this.buildRebuildWorkflow(config, { acquireSlotFn, releaseSlotFn, recordFailureFn, resolveSettledFn });
    this.imagePushed = this.buildImagePushedWorkflow(imagePushedFn, config);
    // The semaphore wakes parked rebuilds with their task tokens. The ARN is built from the fixed name: a reference
    // to the state machine would make it depend on the functions that it invokes, a cycle.
    const rebuildArn = this.formatArn({ service: 'states', resource: 'stateMachine', resourceName: this.rebuildWorkflowName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    for (const f of [acquireSlotFn, releaseSlotFn]) {
      f.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], resources: [rebuildArn] }));
    }
    // A superseded campaign's failed build hands its image over to the root's current campaign: a new rebuild.
    recordFailureFn.addEnvironment('REBUILD_STATE_MACHINE_ARN', rebuildArn);
    recordFailureFn.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [rebuildArn] }));

    const ruleTarget = (machine: sfn.IStateMachine): targets.SfnStateMachine =>
      new targets.SfnStateMachine(machine, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(24) });

    new events.Rule(this, 'EcrPushRule', {
      description: 'Successful ECR image pushes of the configured repositories start image-pushed',
      eventPattern: {
        source: ['aws.ecr'],
        detailType: ['ECR Image Action'],
        detail: { 'action-type': ['PUSH'], result: ['SUCCESS'], 'repository-name': repositoryFilter(config.repositories) },
      },
      targets: [ruleTarget(this.imagePushed)],
    });

    // Aborted, timed-out or failed rebuilds cannot release their slot themselves: this rule does it for them.
    const rebuildEndedRule = new events.Rule(this, 'RebuildEndedRule', {
      description: 'Releases the concurrency slot and records the failure of a rebuild that ended without reaching its own release step',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { status: ['FAILED', 'ABORTED', 'TIMED_OUT'], stateMachineArn: [this.rebuildImage.stateMachineArn] },
      },
      targets: [
        new targets.LambdaFunction(releaseSlotFn, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 8 }),
        // …and cannot record their failure either: the member fails with the reason, its subtree is skipped.
        new targets.LambdaFunction(recordFailureFn, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 8 }),
      ],
    });
    // A rebuild parked on a spoke build in another region: Step Functions does not stop that build, the rule does.
    this.remoteBuilds?.stopBuildsOfEndedExecutions(rebuildEndedRule);

    const findingWorkflow = new FindingWorkflow(this, FINDING_WORKFLOW_ID, { table: this.table, tableKey: this.key, topic: this.alertsTopic, deadLetterQueue: this.deadLetterQueue, config, rebuildStateMachine: this.rebuildImage, functionFactory: fn });
    new RescanWorkflow(this, RESCAN_WORKFLOW_ID, { table: this.table, tableKey: this.key, topic: this.alertsTopic, deadLetterQueue: this.deadLetterQueue, config, rebuildStateMachine: this.rebuildImage, maxScanAgeDays: config.rescan.maxScanAgeDays });
    new ScanCompletedWorkflow(this, SCAN_COMPLETED_WORKFLOW_ID, { table: this.table, tableKey: this.key, topic: this.alertsTopic, deadLetterQueue: this.deadLetterQueue, functionFactory: fn, config });

    const hubEventBus = config.organization ? new HubEventBus(this, 'HubEventBus', { organization: config.organization, workflows: { imagePushed: this.imagePushed, findingReceived: findingWorkflow.stateMachine, deadLetterQueue: this.deadLetterQueue, repositories: config.repositories } }) : undefined;
    if (hubEventBus) this.remoteBuilds?.routeBuildEvents(hubEventBus.eventBus);

    // Last: alarms and the dashboard cover every queue, workflow and function defined above.
    new PatchlineObservability(this, 'Observability', { config, key: this.key });
  }

  /**
   * image-pushed (Express): learn the declared parent (Lambda) → validate and decide (Lambda) → one rebuild-image
   * execution per child, named deterministically.
   */
  private buildImagePushedWorkflow(decideFn: PatchlineFunction, config: PatchlineConfig): sfn.StateMachine {
    const deadLetter = deadLetterState(this, 'ImagePushed', this.deadLetterQueue);
    // First, so a child learned from this push is in the lineage; a failure is recorded in $.learned and the cascade
    // goes on. Only an invalid event is dead-lettered (DecideRebuilds would refuse it too).
    const discovery = new LineageDiscovery(this, LINEAGE_DISCOVERY_ID, { config, table: this.table, tableKey: this.key, deadLetterQueue: this.deadLetterQueue, ...config.discovery });
    const learn = new tasks.LambdaInvoke(this, 'LearnLineage', {
      lambdaFunction: discovery.function,
      payloadResponseOnly: true,
      resultPath: '$.learned',
      retryOnServiceExceptions: true,
    });
    // Lineage writers take turns (a write lease): a push that waited out its budget behind a long import tries again.
    // At most 5 attempts of ≤10 s waiting plus ≤30 s of delays (2, 4, 8, 16 s, full jitter), well inside the 5-minute
    // Express timeout.
    learn.addRetry({ errors: [...LINEAGE_WRITER_RETRY_ERRORS], interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 4, maxDelay: Duration.seconds(30), jitterStrategy: sfn.JitterType.FULL });
    learn.addCatch(deadLetter, { errors: ['InvalidEventError'], resultPath: '$.error' });
    const learnFailed = new sfn.Pass(this, 'LearnLineageFailed');
    learn.addCatch(learnFailed, { errors: ['States.ALL'], resultPath: '$.learned' });
    const decide = new tasks.LambdaInvoke(this, 'DecideRebuilds', {
      lambdaFunction: decideFn,
      payloadResponseOnly: true,
      resultPath: '$.decision',
      retryOnServiceExceptions: true,
    });
    decide.addCatch(deadLetter, { errors: ['States.ALL'], resultPath: '$.error' });

    const startAll = startRebuilds(this, 'StartRebuilds', { stateMachine: this.rebuildImage, itemsPath: '$.decision.starts', startId: 'StartRebuild', alreadyStartedId: 'AlreadyStarted' });
    learnFailed.next(decide);

    const logGroup = new logs.LogGroup(this, 'ImagePushedLogs', { retention: logs.RetentionDays.THREE_MONTHS });
    return new sfn.StateMachine(this, WorkflowId.IMAGE_PUSHED, {
      stateMachineType: sfn.StateMachineType.EXPRESS,
      definitionBody: sfn.DefinitionBody.fromChainable(learn.next(decide.next(startAll))),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      timeout: Duration.minutes(5),
    });
  }

  /**
   * rebuild-image (Standard): a slot of the concurrency cap (task token) → mark building → CodeBuild StartBuild.sync
   * with BASE_IMAGE pinned by digest → release → record. The slot is released on every path.
   */
  private buildRebuildWorkflow(
    config: PatchlineConfig,
    fns: { acquireSlotFn: PatchlineFunction; releaseSlotFn: PatchlineFunction; recordFailureFn: PatchlineFunction; resolveSettledFn: PatchlineFunction },
  ): sfn.StateMachine {
    const memberKey = {
      [TableKeys.PARTITION_KEY]: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.format(`${KeyPrefix.CAMPAIGN}{}`, sfn.JsonPath.stringAt('$.campaignId'))),
      [TableKeys.SORT_KEY]: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.format('M#{}', sfn.JsonPath.stringAt('$.image'))),
    };

    const acquire = new tasks.LambdaInvoke(this, 'AcquireSlot', {
      lambdaFunction: fns.acquireSlotFn,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      payload: sfn.TaskInput.fromObject({
        taskToken: sfn.JsonPath.taskToken,
        holder: sfn.JsonPath.executionName,
        priority: sfn.JsonPath.numberAt('$.priority'),
      }),
      resultPath: sfn.JsonPath.DISCARD,
      taskTimeout: sfn.Timeout.duration(Duration.hours(24)),
    });

    const release = (id: string): tasks.LambdaInvoke =>
      new tasks.LambdaInvoke(this, id, {
        lambdaFunction: fns.releaseSlotFn,
        payload: sfn.TaskInput.fromObject({ holder: sfn.JsonPath.executionName }),
        payloadResponseOnly: true,
        resultPath: sfn.JsonPath.DISCARD,
        retryOnServiceExceptions: true,
      });

    const markBuilding = new tasks.DynamoUpdateItem(this, 'MarkBuilding', {
      table: this.table,
      key: memberKey,
      updateExpression: 'SET #state = :building, baseImage = :base, updatedAt = :now, #history = list_append(if_not_exists(#history, :empty), :entry)',
      conditionExpression: '#state = :pending',
      expressionAttributeNames: { '#state': 'state', '#history': 'history' },
      expressionAttributeValues: {
        ':empty': tasks.DynamoAttributeValue.fromList([]),
        ':entry': tasks.DynamoAttributeValue.fromList([
          tasks.DynamoAttributeValue.fromMap({
            state: tasks.DynamoAttributeValue.fromString('building'),
            at: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$$.State.EnteredTime')),
            detail: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.format('from {}', sfn.JsonPath.stringAt('$.baseImage'))),
          }),
        ]),
        ':building': tasks.DynamoAttributeValue.fromString('building'),
        ':pending': tasks.DynamoAttributeValue.fromString('pending'),
        ':base': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.baseImage')),
        ':now': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$$.State.EnteredTime')),
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
    const markerKey = {
      [TableKeys.PARTITION_KEY]: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.format(`${KeyPrefix.IMAGE}{}`, sfn.JsonPath.stringAt('$.image'))),
      [TableKeys.SORT_KEY]: tasks.DynamoAttributeValue.fromString(BUILDING_MARKER_SORT_KEY),
    };
    const putMarker = new tasks.DynamoPutItem(this, 'MarkImageBuilding', {
      table: this.table,
      item: { ...markerKey, campaignId: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.campaignId')) },
      resultPath: sfn.JsonPath.DISCARD,
    });

    // The same StartBuild twice: in the hub, and in the spoke that owns the image through its hub-access role (Step
    // Functions' cross-account task credentials; the request carries the role).
    const startBuildState = (id: string, credentials?: Record<string, string>): sfn.CustomState =>
      new sfn.CustomState(this, id, {
        stateJson: {
          Type: 'Task',
          Resource: `arn:${this.partition}:states:::codebuild:startBuild.sync`,
          ...(credentials && { Credentials: credentials }),
          Parameters: {
            'ProjectName.$': '$.project',
            EnvironmentVariablesOverride: [
              { Name: 'BASE_IMAGE', Type: 'PLAINTEXT', 'Value.$': '$.baseImage' },
              { Name: 'PATCHLINE_PARENT_IMAGES', Type: 'PLAINTEXT', 'Value.$': 'States.JsonToString($.parentImages)' },
              { Name: 'PATCHLINE_CAMPAIGN', Type: 'PLAINTEXT', 'Value.$': '$.campaignId' },
              { Name: 'PATCHLINE_IMAGE', Type: 'PLAINTEXT', 'Value.$': '$.image' },
            ],
          },
          ResultSelector: { 'buildId.$': '$.Build.Id', 'status.$': '$.Build.BuildStatus' },
          ResultPath: '$.build',
        },
      });
    const startBuild = startBuildState('StartBuild');
    const startBuildInSpoke = startBuildState('StartBuildInSpoke', { 'RoleArn.$': '$.buildRoleArn' });
    for (const task of [startBuild, startBuildInSpoke]) {
      task.addRetry({
        errors: CODEBUILD_THROTTLING_ERRORS,
        interval: Duration.seconds(15),
        backoffRate: 2,
        maxAttempts: 8,
        maxDelay: Duration.minutes(5),
        jitterStrategy: sfn.JitterType.FULL,
      });
    }

    const recordFailure = new tasks.LambdaInvoke(this, 'RecordBuildFailure', {
      lambdaFunction: fns.recordFailureFn,
      payload: sfn.TaskInput.fromObject({
        campaignId: sfn.JsonPath.stringAt('$.campaignId'),
        image: sfn.JsonPath.stringAt('$.image'),
        error: sfn.JsonPath.objectAt('$.error'),
      }),
      payloadResponseOnly: true,
      resultPath: sfn.JsonPath.DISCARD,
      retryOnServiceExceptions: true,
    });
    const failed = new sfn.Fail(this, 'BuildFailed', { error: 'BuildFailed', cause: 'the rebuild failed; its subtree was skipped' });
    const afterFailure = release('ReleaseSlotAfterFailure').next(recordFailure).next(failed);
    for (const task of [startBuild, startBuildInSpoke]) task.addCatch(afterFailure, { errors: ['States.ALL'], resultPath: '$.error' });
    const startRemoteBuild = this.remoteBuilds && this.startRemoteBuildState(this.remoteBuilds, afterFailure);

    const recordBuilt = new tasks.DynamoUpdateItem(this, 'RecordBuilt', {
      table: this.table,
      key: memberKey,
      updateExpression: 'SET buildId = :build, finishedAt = :now',
      expressionAttributeValues: {
        ':build': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.build.buildId')),
        ':now': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$$.State.EnteredTime')),
      },
      resultPath: sfn.JsonPath.DISCARD,
    });

    // A member that is no longer pending (superseded, skipped, a replay) gives its slot back and ends quietly.
    const notPending = release('ReleaseSlotNotPending').next(new sfn.Succeed(this, 'AlreadyHandled'));
    markBuilding.addCatch(notPending, { errors: ['DynamoDB.ConditionalCheckFailedException'], resultPath: '$.error' });

    // A child of a pushed root waits out the campaign's settle window (a Wait costs nothing while it waits), then
    // re-reads the root's latest digest: pushes inside the window coalesce into this one build, none is lost.
    const resolveSettled = new tasks.LambdaInvoke(this, 'ResolveSettledBase', {
      lambdaFunction: fns.resolveSettledFn,
      payloadResponseOnly: true,
      retryOnServiceExceptions: true,
    });
    const settleWindow = new sfn.Wait(this, 'SettleWindow', { time: sfn.WaitTime.timestampPath('$.settle.until') });
    const settling = new sfn.Choice(this, 'SettleWindowOpen')
      .when(sfn.Condition.isPresent('$.settle'), settleWindow.next(resolveSettled).next(acquire))
      .otherwise(acquire);

    const definition = settling;
    acquire
      .next(markBuilding)
      .next(putMarker)
      .next(this.buildAccountChoice(startBuild, startBuildInSpoke, startRemoteBuild));
    const afterBuild = release('ReleaseSlot');
    startBuildInSpoke.next(afterBuild);
    startRemoteBuild?.next(afterBuild);
    startBuild
      .next(afterBuild)
      .next(recordBuilt)
      .next(new sfn.Succeed(this, 'Rebuilt'));

    const machine = new sfn.StateMachine(this, WorkflowId.REBUILD_IMAGE, {
      stateMachineName: this.rebuildWorkflowName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      timeout: Duration.hours(30),
      logs: {
        destination: new logs.LogGroup(this, 'RebuildImageLogs', { retention: logs.RetentionDays.THREE_MONTHS }),
        level: sfn.LogLevel.ALL,
        includeExecutionData: true,
      },
    });
    // StartBuild.sync: the configured projects only, plus the managed rule Step Functions uses to learn a build ended.
    const projectArns = config.rebuild.projects.map((p) => this.formatArn({ service: 'codebuild', resource: 'project', resourceName: p }));
    machine.addToRolePolicy(new iam.PolicyStatement({ actions: ['codebuild:StartBuild', 'codebuild:StopBuild', 'codebuild:BatchGetBuilds'], resources: projectArns }));
    machine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [this.formatArn({ service: 'events', resource: 'rule', resourceName: 'StepFunctionsGetEventForCodeBuildStartBuildRule' })],
      }),
    );
    grantSpokeBuilds(machine, config);
    return machine;
  }

  /**
   * Hub, spoke in the hub's region (task credentials), or spoke in another region (start-remote-build): Step Functions'
   * task credentials cross accounts, not regions. The third branch exists only with such a spoke.
   */
  private buildAccountChoice(startBuild: sfn.IChainable, startBuildInSpoke: sfn.IChainable, startRemoteBuild: sfn.IChainable | undefined): sfn.Choice {
    const choice = new sfn.Choice(this, 'BuildAccount');
    if (startRemoteBuild && this.remoteBuilds) {
      const otherRegion = sfn.Condition.and(
        sfn.Condition.isPresent('$.buildRoleArn'),
        sfn.Condition.isPresent('$.buildRegion'),
        sfn.Condition.not(sfn.Condition.stringEquals('$.buildRegion', this.remoteBuilds.hubRegion)),
      );
      choice.when(otherRegion, startRemoteBuild);
    }
    return choice.when(sfn.Condition.isPresent('$.buildRoleArn'), startBuildInSpoke).otherwise(startBuild);
  }

  /**
   * The spoke build in another region: start-remote-build starts it and keeps the task token; remote-build-ended sends
   * `{ buildId, status }` (as the `.sync` tasks' ResultSelector) or fails the task with the build's status. Same
   * throttling Retry (the Lambda rethrows CodeBuild's limit errors under their `CodeBuild.` names), same Catch.
   */
  private startRemoteBuildState(remote: RemoteBuilds, afterFailure: sfn.IChainable): tasks.LambdaInvoke {
    const task = new tasks.LambdaInvoke(this, 'StartRemoteBuild', {
      lambdaFunction: remote.startFunction,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      payload: sfn.TaskInput.fromObject({
        taskToken: sfn.JsonPath.taskToken,
        execution: sfn.JsonPath.executionName,
        project: sfn.JsonPath.stringAt('$.project'),
        image: sfn.JsonPath.stringAt('$.image'),
        baseImage: sfn.JsonPath.stringAt('$.baseImage'),
        parentImages: sfn.JsonPath.listAt('$.parentImages'),
        campaignId: sfn.JsonPath.stringAt('$.campaignId'),
        buildAccount: sfn.JsonPath.stringAt('$.buildAccount'),
        buildRegion: sfn.JsonPath.stringAt('$.buildRegion'),
        buildRoleArn: sfn.JsonPath.stringAt('$.buildRoleArn'),
      }),
      resultPath: '$.build',
      // CodeBuild's default queued (8 h) plus build (1 h) timeouts: a lost end event cannot hold the slot for longer.
      taskTimeout: sfn.Timeout.duration(Duration.hours(9)),
    });
    task.addRetry({ errors: CODEBUILD_THROTTLING_ERRORS, interval: Duration.seconds(15), backoffRate: 2, maxAttempts: 8, maxDelay: Duration.minutes(5), jitterStrategy: sfn.JitterType.FULL });
    task.addCatch(afterFailure, { errors: ['States.ALL'], resultPath: '$.error' });
    return task;
  }
}
