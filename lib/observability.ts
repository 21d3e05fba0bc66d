import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct, IConstruct } from 'constructs';
import { AlertKind } from '../lambdas/domain/alert';
import { PatchlineConfig } from '../lambdas/domain/config';

// The metric names and namespace are the handlers' (lambdas/domain/patchline-metric.ts): one definition for both sides.
export { PATCHLINE_METRICS_NAMESPACE, PatchlineMetric } from '../lambdas/domain/patchline-metric';
import { MetricDimension, PATCHLINE_METRICS_NAMESPACE, PatchlineMetric } from '../lambdas/domain/patchline-metric';
import { REGISTRY_RESCAN_FUNCTION_ID, REGISTRY_RESCAN_HANDLER } from './rescan-workflow';
import { RELEASE_ALERT_CLAIM_FUNCTION_ID, RELEASE_ALERT_CLAIM_HANDLER } from './workflow-steps';

/** What each alarm watches: docs/runbook.md has one section per kind. */
export const AlarmKind = {
  DEAD_LETTERS: 'DeadLetters',
  EXECUTIONS_FAILED: 'ExecutionsFailed',
  EXECUTIONS_THROTTLED: 'ExecutionsThrottled',
  FUNCTION_THROTTLED: 'FunctionThrottled',
  BUILDS_FAILED: 'BuildsFailed',
  ALERTS_UNDELIVERED: 'AlertsUndelivered',
  RESCAN_SPOKES_UNREACHABLE: 'RescanSpokesUnreachable',
} as const;
export type AlarmKind = (typeof AlarmKind)[keyof typeof AlarmKind];

export interface PatchlineObservabilityProps {
  /**
   * The validated config: `ops.email` subscribes to the ops topic, `rebuild.projects` scopes the build alarms,
   * `organization.spokes` adds the alarm and widget on spoke registries the rescan could not reach.
   */
  readonly config: PatchlineConfig;
  /** Customer-managed key the ops topic is encrypted with (CloudWatch must be allowed to use it). */
  readonly key: kms.IKey;
  /**
   * Queues whose depth is alarmed (any message is a failure someone must look at).
   * @default - every SQS queue in the stack: Patchline's queues are all dead-letter queues
   */
  readonly deadLetterQueues?: readonly sqs.IQueue[];
  /** @default - every state machine in the stack */
  readonly stateMachines?: readonly sfn.IStateMachine[];
  /** @default - every Lambda function in the stack */
  readonly functions?: readonly lambda.IFunction[];
}

/**
 * Operations view of Patchline: an encrypted ops topic, alarms on dead letters, failed and throttled executions,
 * throttled functions, failed CodeBuild builds, undelivered alerts and (with spokes) spoke registries the rescan could
 * not reach, and a dashboard of campaigns, open findings and alerts.
 * Instantiate it last in the stack: by default it covers every queue, state machine and function defined before it.
 */
export class PatchlineObservability extends Construct {
  public readonly opsTopic: sns.Topic;
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly dashboard: cloudwatch.Dashboard;

  public constructor(scope: Construct, id: string, props: PatchlineObservabilityProps) {
    super(scope, id);
    const email = props.config.ops?.email;
    if (email !== undefined && !Token.isUnresolved(email) && !/^[^\s@]+@[^\s@]+$/.test(email)) {
      throw new Error(`PatchlineObservability: ops.email must be an email address (received ${JSON.stringify(email)})`);
    }
    const stack = Stack.of(this);
    const inStack = <T extends IConstruct>(isT: (c: IConstruct) => c is T): T[] => stack.node.findAll().filter(isT);
    const queues = props.deadLetterQueues ?? inStack((c): c is sqs.Queue => c instanceof sqs.Queue);
    const machines = props.stateMachines ?? inStack((c): c is sfn.StateMachine => c instanceof sfn.StateMachine);
    const functions = props.functions ?? inStack((c): c is lambda.Function => c instanceof lambda.Function);

    this.opsTopic = new sns.Topic(this, 'OpsTopic', { displayName: 'Patchline operations', masterKey: props.key, enforceSSL: true });
    if (email) this.opsTopic.addSubscription(new subscriptions.EmailSubscription(email));
    const notify = new actions.SnsAction(this.opsTopic);

    const alarm = (kind: AlarmKind, subject: IConstruct | string, metric: cloudwatch.IMetric, description: string): void => {
      // The path below the stack keeps ids unique when two constructs hold a child of the same name.
      const name = typeof subject === 'string' ? subject : subject.node.path.slice(stack.node.path.length + 1).replace(/[^A-Za-z0-9]/g, '');
      const created = new cloudwatch.Alarm(this, `${name}${kind}Alarm`, {
        metric,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `${description} Runbook: docs/runbook.md#${kind.toLowerCase()}`,
      });
      created.addAlarmAction(notify);
      this.alarms.push(created);
    };

    const minute = Duration.minutes(1);
    for (const queue of queues) {
      alarm(AlarmKind.DEAD_LETTERS, queue, queue.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: cloudwatch.Stats.MAXIMUM }), 'Messages are waiting in a dead-letter queue: events or invocations Patchline could not process.');
    }
    for (const machine of machines) {
      alarm(AlarmKind.EXECUTIONS_FAILED, machine, machine.metricFailed({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }), 'Executions of a Patchline workflow failed.');
      alarm(AlarmKind.EXECUTIONS_THROTTLED, machine, machine.metricThrottled({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }), 'Step Functions throttled executions of a Patchline workflow.');
    }
    for (const fn of functions) {
      alarm(AlarmKind.FUNCTION_THROTTLED, fn, fn.metricThrottles({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }), 'Lambda throttled invocations of a Patchline function.');
    }
    // Exact project names get their own alarm; a prefix (`apps-*`) cannot be a metric dimension, so prefixes share
    // the account-wide FailedBuilds metric (it also counts builds Patchline did not start: see the runbook).
    const exact = props.config.rebuild.projects.filter((p) => !p.endsWith('*'));
    for (const project of exact) {
      alarm(AlarmKind.BUILDS_FAILED, `Project${pascal(project)}`, codeBuildFailedBuilds({ ProjectName: project }), `CodeBuild builds of ${project} failed.`);
    }
    if (exact.length < props.config.rebuild.projects.length) {
      alarm(AlarmKind.BUILDS_FAILED, 'Account', codeBuildFailedBuilds({}), 'CodeBuild builds failed in this account and region (rebuild projects are configured by prefix).');
    }
    // Where alerts are published, release-alert-claim counts those SNS refused for good.
    if (stack.node.tryFindChild(RELEASE_ALERT_CLAIM_FUNCTION_ID)) {
      alarm(AlarmKind.ALERTS_UNDELIVERED, 'AllKinds', alertsUndelivered(), 'SNS refused alerts after the retries: they are in the dead-letter queue, their claims (if any) given back.');
    }
    // Only a hub with spokes sweeps registries through a role another account may refuse.
    const sweepsSpokes = (props.config.organization?.spokes.length ?? 0) > 0 && stack.node.tryFindChild(REGISTRY_RESCAN_FUNCTION_ID) !== undefined;
    if (sweepsSpokes) {
      alarm(AlarmKind.RESCAN_SPOKES_UNREACHABLE, 'Spokes', rescanSpokesUnreachable(), 'The scheduled rescan could not read a spoke\'s registry (its PatchlineHubAccess role refused): that spoke was not swept.');
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${stack.stackName}-operations`,
      defaultInterval: Duration.days(7),
    });
    const search = (metric: PatchlineMetric, statistic: string, filter = '', period = Duration.hours(1)): cloudwatch.MathExpression =>
      // SEARCH matches the metric whatever its dimensions (Powertools adds `service`), one series per dimension set.
      new cloudwatch.MathExpression({
        expression: `SEARCH('Namespace="${PATCHLINE_METRICS_NAMESPACE}" MetricName="${metric}"${filter}', '${statistic}', ${period.toSeconds()})`,
        usingMetrics: {},
        label: '',
        period,
      });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({ markdown: '# Patchline\nCampaigns, open findings and alerts. Alarms go to the ops topic; each has a runbook section in docs/runbook.md.', width: 24, height: 2 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Campaigns running', left: [search(PatchlineMetric.CAMPAIGNS_RUNNING, 'Maximum')], width: 8 }),
      new cloudwatch.GraphWidget({
        title: 'Campaigns started / failed',
        left: [search(PatchlineMetric.CAMPAIGNS_STARTED, 'Sum'), search(PatchlineMetric.CAMPAIGNS_FAILED, 'Sum'), search(PatchlineMetric.REBUILDS_FAILED, 'Sum')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Workflow executions started / failed',
        left: machines.map((m) => m.metricStarted({ period: Duration.hours(1), label: `${m.node.id} started` })),
        right: machines.map((m) => m.metricFailed({ period: Duration.hours(1), label: `${m.node.id} failed` })),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Open CRITICAL findings by owner', left: [search(PatchlineMetric.OPEN_FINDINGS, 'Maximum', ' Severity="CRITICAL"')], width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Open HIGH findings by owner', left: [search(PatchlineMetric.OPEN_FINDINGS, 'Maximum', ' Severity="HIGH"')], width: 8 }),
      new cloudwatch.GraphWidget({
        title: 'Time to remediate (seconds, p50 / p90)',
        left: [search(PatchlineMetric.TIME_TO_REMEDIATE, 'p50', '', Duration.days(1)), search(PatchlineMetric.TIME_TO_REMEDIATE, 'p90', '', Duration.days(1))],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Alerts sent by kind', left: [search(PatchlineMetric.ALERTS_SENT, 'Sum')], width: 8 }),
      // AlertsSent counts every alert collected for publishing; AlertsSent − AlertsUndelivered is what reached SNS.
      new cloudwatch.GraphWidget({ title: 'Alerts undelivered by kind', left: [search(PatchlineMetric.ALERTS_UNDELIVERED, 'Sum')], width: 8 }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 8 }),
    );
    if (sweepsSpokes) {
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({ title: 'Spoke registries unreachable (rescan)', left: [search(PatchlineMetric.RESCAN_SPOKES_UNREACHABLE, 'Sum')], width: 8 }),
      );
    }
  }
}

/**
 * AlertsUndelivered of every kind, as release-alert-claim emits it (Powertools adds `service`): an alarm cannot SEARCH,
 * so the per-kind series are named and summed (SUM ignores a kind without data).
 */
function alertsUndelivered(): cloudwatch.MathExpression {
  const kinds = Object.values(AlertKind);
  return new cloudwatch.MathExpression({
    expression: `SUM([${kinds.map((_, i) => `k${i}`).join(', ')}])`,
    usingMetrics: Object.fromEntries(
      kinds.map((kind, i) => [
        `k${i}`,
        new cloudwatch.Metric({
          namespace: PATCHLINE_METRICS_NAMESPACE,
          metricName: PatchlineMetric.ALERTS_UNDELIVERED,
          dimensionsMap: { service: `patchline-${RELEASE_ALERT_CLAIM_HANDLER}`, [MetricDimension.KIND]: kind },
          statistic: cloudwatch.Stats.SUM,
          period: Duration.minutes(5),
        }),
      ]),
    ),
    label: 'Alerts undelivered',
    period: Duration.minutes(5),
  });
}

/**
 * RescanSpokesUnreachable as registry-rescan emits it: no dimension besides the `service` Powertools adds, so one
 * series (an alarm cannot SEARCH). The spoke is named in the function's log and the listing page's `unreachable`.
 */
function rescanSpokesUnreachable(): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: PATCHLINE_METRICS_NAMESPACE,
    metricName: PatchlineMetric.RESCAN_SPOKES_UNREACHABLE,
    dimensionsMap: { service: `patchline-${REGISTRY_RESCAN_HANDLER}` },
    statistic: cloudwatch.Stats.SUM,
    period: Duration.minutes(5),
  });
}

function codeBuildFailedBuilds(dimensionsMap: Record<string, string>): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: 'AWS/CodeBuild', metricName: 'FailedBuilds', dimensionsMap, period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM });
}

/** `enterprise-python-311` → `EnterprisePython311`: a stable construct id from a project name. */
function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join('');
}
