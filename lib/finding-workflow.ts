import { Duration, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { PatchlineConfig } from '../lambdas/domain/config';
import { bindRegistryScope } from './spoke-builds';
import { policyFromConfig } from '../lambdas/handlers/finding-received';
import { PatchlineFunction } from './patchline-function';
import { grantTableData } from './table-access';
import { deadLetterState, failIfAlertsUndelivered, publishAlerts, startRebuilds } from './workflow-steps';

/** Construct id of the workflow in the stack: the local runtime and the tests find its resources under it. */
export const FINDING_WORKFLOW_ID = 'FindingReceivedWorkflow';

export { ALERT_ATTRIBUTES } from './workflow-steps';

/** Creates a Lambda function for a handler of lambdas/handlers (the stack's shared factory). */
export type FunctionFactory = (id: string, handler: string) => lambda.Function;

export interface FindingWorkflowProps {
  /** The Patchline table: findings, exceptions, alert dedup records, lineage, campaigns. */
  readonly table: dynamodb.ITableV2;
  /** The table's customer-managed key: the function reads and writes encrypted items. */
  readonly tableKey: kms.IKey;
  /** The alerts topic; each owner's subscription filters on the `owner` message attribute. */
  readonly topic: sns.ITopic;
  /** Receives the original event and the reason of every event the workflow refuses, and undeliverable events. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The validated patchline.config.json: the severity threshold, fix requirement and alert dedup window. */
  readonly config: PatchlineConfig;
  /** The rebuild-image state machine that a finding's rebuild campaign starts. */
  readonly rebuildStateMachine: sfn.IStateMachine;
  /**
   * Creates the finding-received function (with the stack's shared environment).
   * @default - a PatchlineFunction in this construct with TABLE_NAME and the rebuild settings of `config`
   */
  readonly functionFactory?: FunctionFactory;
}

/**
 * finding-received (Express): Inspector2 findings and basic-scan results → decide (Lambda: parse, store, origin,
 * policy, dedup) → publish each alert natively to SNS with its filter attributes → start the rebuild executions the
 * decision names (deterministic names: a replay starts nothing twice). Refused events go to the dead-letter queue whole.
 */
export class FindingWorkflow extends Construct {
  public readonly function: lambda.Function;
  public readonly stateMachine: sfn.StateMachine;
  public readonly inspectorFindingRule: events.Rule;
  public readonly basicScanRule: events.Rule;

  public constructor(scope: Construct, id: string, props: FindingWorkflowProps) {
    super(scope, id);
    const days = props.config.alertDedupDays;
    if (!Token.isUnresolved(days) && !(Number.isInteger(days) && days >= 1 && days <= 365)) {
      throw new Error(`FindingWorkflow config.alertDedupDays must be a whole number of days from 1 to 365 (received ${days})`);
    }

    this.function =
      props.functionFactory?.('FindingReceivedFunction', 'finding-received') ??
      new PatchlineFunction(this, 'Function', {
        handler: 'finding-received',
        deadLetterQueue: props.deadLetterQueue,
        environment: {
          TABLE_NAME: props.table.tableName,
          REBUILD_CONCURRENCY: String(props.config.rebuild.concurrency),
          DEFAULT_BUILD_SECONDS: String(props.config.rebuild.defaultBuildSeconds),
        },
      });
    this.function.addEnvironment('FINDING_POLICY', JSON.stringify(policyFromConfig(props.config)));
    this.function.addEnvironment('ALERT_DEDUP_SECONDS', String(days * 86_400));
    bindRegistryScope(this.function, props.config);
    grantTableData(props.table, props.tableKey, this.function);

    this.stateMachine = this.buildStateMachine(props);

    const target = new targets.SfnStateMachine(this.stateMachine, { deadLetterQueue: props.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(24) });
    // No repository filter: a finding on a mirrored external base (not one of the configured repositories) is evidence
    // for origin attribution; findings on images outside the lineage are recorded and alert nobody.
    this.inspectorFindingRule = new events.Rule(this, 'InspectorFindingRule', {
      description: 'Inspector2 package-vulnerability findings on ECR images (opened, suppressed, closed) start finding-received',
      eventPattern: {
        source: ['aws.inspector2'],
        detailType: ['Inspector2 Finding'],
        detail: {
          type: ['PACKAGE_VULNERABILITY'],
          status: ['ACTIVE', 'SUPPRESSED', 'CLOSED'],
          resources: { type: ['AWS_ECR_CONTAINER_IMAGE'] },
        },
      },
      targets: [target],
    });
    this.basicScanRule = new events.Rule(this, 'EcrImageScanRule', {
      description: 'Completed ECR basic scans start finding-received (counts only: recorded for the gate)',
      eventPattern: { source: ['aws.ecr'], detailType: ['ECR Image Scan'], detail: { 'scan-status': ['COMPLETE'] } },
      targets: [target],
    });
  }

  private buildStateMachine(props: FindingWorkflowProps): sfn.StateMachine {
    const deadLetter = deadLetterState(this, 'Finding', props.deadLetterQueue);

    const decide = new tasks.LambdaInvoke(this, 'DecideFinding', {
      lambdaFunction: this.function,
      payloadResponseOnly: true,
      resultPath: '$.decision',
      retryOnServiceExceptions: true,
    });
    decide.addCatch(deadLetter, { errors: ['States.ALL'], resultPath: '$.error' });

    const publishAll = publishAlerts(this, 'PublishAlerts', {
      topic: props.topic,
      itemsPath: '$.decision.alerts',
      publishId: 'PublishAlert',
      deadLetterQueue: props.deadLetterQueue,
      claims: { table: props.table, tableKey: props.tableKey, dedupSeconds: props.config.alertDedupDays * 86_400 },
      resultPath: '$.alertDelivery',
    });
    const startAll = startRebuilds(this, 'StartFindingRebuilds', {
      stateMachine: props.rebuildStateMachine,
      itemsPath: '$.decision.starts',
      startId: 'StartFindingRebuild',
      alreadyStartedId: 'RebuildAlreadyStarted',
    });

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS });
    return new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.EXPRESS,
      // The rebuilds start even when an alert was dead-lettered; the execution then ends failed (AlertsUndelivered).
      definitionBody: sfn.DefinitionBody.fromChainable(decide.next(publishAll).next(startAll).next(failIfAlertsUndelivered(this, 'CheckAlertDelivery', ['$.alertDelivery']))),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ERROR, includeExecutionData: true },
      timeout: Duration.minutes(5),
    });
  }
}
