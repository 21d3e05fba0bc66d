import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { PatchlineConfig } from '../lambdas/domain/config';
import { FunctionFactory } from './finding-workflow';
import { bindRegistryScope } from './spoke-builds';
import { grantTableData } from './table-access';
import { deadLetterState, failIfAlertsUndelivered, publishAlerts } from './workflow-steps';

/** Construct id of the workflow in the stack. */
export const SCAN_COMPLETED_WORKFLOW_ID = 'ScanCompletedWorkflow';

export interface ScanCompletedWorkflowProps {
  /** The Patchline table: campaigns, their rebuilt digests, findings. */
  readonly table: dynamodb.ITableV2;
  /** The table's customer-managed key. */
  readonly tableKey: kms.IKey;
  /** The alerts topic: STILL_VULNERABLE alerts, filtered by owner. */
  readonly topic: sns.ITopic;
  /** Receives refused events whole, and events EventBridge could not deliver. */
  readonly deadLetterQueue: sqs.IQueue;
  /** Creates the scan-completed function with the stack's shared environment. */
  readonly functionFactory: FunctionFactory;
  /** The validated config: its organization keys a spoke's rebuilt images by registry. */
  readonly config: PatchlineConfig;
  /**
   * How long to let Inspector2's finding events for the same scan reach the finding store before checking.
   * @default Duration.seconds(90)
   */
  readonly findingsSettle?: Duration;
}

/**
 * scan-completed (Express): an "Inspector2 Scan" INITIAL_SCAN_COMPLETE → wait for the scan's findings to be recorded
 * (they are separate events, handled by finding-received) → check (Lambda: is this digest a campaign rebuild, are the
 * CVEs that triggered the campaign gone) → publish a STILL_VULNERABLE alert per CVE left, natively to SNS.
 */
export class ScanCompletedWorkflow extends Construct {
  public readonly function: lambda.Function;
  public readonly stateMachine: sfn.StateMachine;
  public readonly rule: events.Rule;

  public constructor(scope: Construct, id: string, props: ScanCompletedWorkflowProps) {
    super(scope, id);
    const settle = props.findingsSettle ?? Duration.seconds(90);
    // Express executions end after five minutes: the wait and the check must fit.
    if (settle.toSeconds() < 0 || settle.toSeconds() > 240) {
      throw new Error(`ScanCompletedWorkflow findingsSettle must be 0 to 240 seconds (received ${settle.toSeconds()})`);
    }
    this.function = props.functionFactory('ScanCompletedFunction', 'scan-completed');
    bindRegistryScope(this.function, props.config);
    grantTableData(props.table, props.tableKey, this.function);

    const deadLetter = deadLetterState(this, 'Scan', props.deadLetterQueue);

    const wait = new sfn.Wait(this, 'FindingsSettle', { time: sfn.WaitTime.duration(settle) });
    const check = new tasks.LambdaInvoke(this, 'CheckRebuiltImage', {
      lambdaFunction: this.function,
      payloadResponseOnly: true,
      resultPath: '$.check',
      retryOnServiceExceptions: true,
    });
    check.addCatch(deadLetter, { errors: ['States.ALL'], resultPath: '$.error' });
    const publishAll = publishAlerts(this, 'PublishStillVulnerableAlerts', {
      topic: props.topic,
      itemsPath: '$.check.alerts',
      publishId: 'PublishStillVulnerable',
      deadLetterQueue: props.deadLetterQueue,
      claims: { table: props.table, tableKey: props.tableKey, dedupSeconds: props.config.alertDedupDays * 86_400 },
      resultPath: '$.alertDelivery',
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.EXPRESS,
      definitionBody: sfn.DefinitionBody.fromChainable(wait.next(check).next(publishAll).next(failIfAlertsUndelivered(this, 'CheckAlertDelivery', ['$.alertDelivery']))),
      tracingEnabled: true,
      logs: { destination: new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS }), level: sfn.LogLevel.ALL, includeExecutionData: true },
      timeout: Duration.minutes(5),
    });

    this.rule = new events.Rule(this, 'InspectorScanRule', {
      description: 'Completed Inspector2 scans of ECR images start scan-completed (a campaign rebuild is verified)',
      eventPattern: { source: ['aws.inspector2'], detailType: ['Inspector2 Scan'], detail: { 'scan-status': ['INITIAL_SCAN_COMPLETE'] } },
      targets: [new targets.SfnStateMachine(this.stateMachine, { deadLetterQueue: props.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(24) })],
    });
  }
}
