import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { LocalDeadLetterQueue, LocalSns, RecordedCall } from '../../cli/local/local-aws';
import { LocalMetrics } from '../../cli/local/local-metrics';
import { LocalStepFunctions, TaskContext } from '../../cli/local/local-step-functions';
import { CfnTemplate, TemplateResolver } from '../../cli/local/synthesized-template';
import { AlertKind } from '../../lambdas/domain/alert';
import { MetricDimension, PatchlineMetric } from '../../lambdas/domain/patchline-metric';
import { makeReleaseAlertClaimHandler } from '../../lambdas/handlers/release-alert-claim';
import type { PublishableAlert } from '../../lambdas/handlers/publishable-alerts';
import { AlertClaim, AlertDedupStore, alertClaimReceipt } from '../../lambdas/store/finding-store';
import { failIfAlertsUndelivered, publishAlerts } from '../../lib/workflow-steps';
import { startTestTable } from '../support/dynamodb';

type Emulator = Awaited<ReturnType<typeof startTestTable>>;
const NOW = new Date('2024-02-01T00:00:00Z');
const DIGEST = `sha256:${'c'.repeat(64)}`;

/** A stack with one state machine: publishAlerts over `$.alerts`, then failIfAlertsUndelivered. */
function synthesize(): { definition: Record<string, unknown>; arn: string } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Steps', { env: { account: '123456789012', region: 'us-east-1' } });
  const tableKey = new kms.Key(stack, 'Key');
  const table = new dynamodb.TableV2(stack, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING }, encryption: dynamodb.TableEncryptionV2.customerManagedKey(tableKey) });
  const publish = publishAlerts(stack, 'PublishAlerts', {
    topic: new sns.Topic(stack, 'Topic'),
    itemsPath: '$.alerts',
    publishId: 'PublishAlert',
    deadLetterQueue: new sqs.Queue(stack, 'DeadLetterQueue'),
    claims: { table, tableKey, dedupSeconds: 86_400 },
    resultPath: '$.delivery',
  });
  new sfn.StateMachine(stack, 'Machine', { definitionBody: sfn.DefinitionBody.fromChainable(publish.next(failIfAlertsUndelivered(stack, 'CheckAlertDelivery', ['$.delivery']))) });
  const template = Template.fromStack(stack).toJSON() as CfnTemplate;
  const resolver = new TemplateResolver(template, 'patchline-test');
  const machineId = Object.keys(template.Resources).find((id) => template.Resources[id].Type === 'AWS::StepFunctions::StateMachine')!;
  return { definition: JSON.parse(String(resolver.resolve(template.Resources[machineId].Properties!.DefinitionString))), arn: resolver.stateMachineArn(machineId) };
}

function alert(subject: string, claim?: AlertClaim): PublishableAlert {
  const attributes = { owner: 'payments-team', severity: 'HIGH', image: 'apps/payments-api', kind: claim?.kind ?? AlertKind.DIGEST, vulnerability: claim?.vulnerabilityId ?? 'CVE-2024-0000' };
  return { subject, message: `${subject}\n\n--- JSON ---\n{}`, attributes, ...(claim && { claim: alertClaimReceipt(claim, NOW) }) };
}

describe('Function: publishAlerts', () => {
  it('fails on a dedup window that is not a positive whole number of seconds', () => {
    const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Bad');
    const tableKey = new kms.Key(stack, 'Key');
    const table = new dynamodb.TableV2(stack, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
    const props = { topic: new sns.Topic(stack, 'Topic'), itemsPath: '$.alerts', publishId: 'Publish', deadLetterQueue: new sqs.Queue(stack, 'Queue') };
    expect(() => publishAlerts(stack, 'Alerts', { ...props, claims: { table, tableKey, dedupSeconds: 0 } })).toThrow(/claims.dedupSeconds.*received 0/);
  });
});

describe('Function: publishAlerts (synthesized ASL, run locally)', () => {
  const { definition, arn } = synthesize();
  let emulator: Emulator;
  let alertDedup: AlertDedupStore;
  let calls: RecordedCall[];
  let topic: LocalSns;
  let queue: LocalDeadLetterQueue;
  let releases: unknown[];
  /** Subjects SNS refuses every time; any other is published. */
  let refused: Set<string>;
  let releaseFails: boolean;
  let metrics: LocalMetrics;

  beforeAll(async () => {
    emulator = await startTestTable();
    alertDedup = new AlertDedupStore({ client: emulator.client, tableName: emulator.tableName, windowSeconds: 86_400 });
  });
  afterAll(async () => {
    await emulator.stop();
  });
  beforeEach(() => {
    calls = [];
    topic = new LocalSns(calls);
    queue = new LocalDeadLetterQueue(calls);
    releases = [];
    refused = new Set();
    releaseFails = false;
    metrics = new LocalMetrics();
  });

  async function run(alerts: PublishableAlert[]): Promise<{ status: string; error?: { Error: string; Cause: string } }> {
    const release = makeReleaseAlertClaimHandler({ alertDedup, metrics });
    const stepFunctions = new LocalStepFunctions(async (task: TaskContext, input: unknown) => {
      const params = input as Record<string, unknown>;
      if (task.resource.startsWith('arn:aws:lambda:')) {
        releases.push(input);
        if (releaseFails) throw Object.assign(new Error('ProvisionedThroughputExceededException: slow down'), { name: 'ProvisionedThroughputExceededException' });
        return release(JSON.parse(JSON.stringify(input)));
      }
      if (task.resource === 'arn:aws:states:::sqs:sendMessage') return queue.sendMessage(params);
      if (task.resource === 'arn:aws:states:::sns:publish') {
        if (refused.has(String(params.Subject))) topic.refuseWith = 'SNS.InternalErrorException';
        try {
          return topic.publish(params);
        } finally {
          topic.refuseWith = undefined;
        }
      }
      throw new Error(`no stand-in for ${task.resource}`);
    });
    stepFunctions.register({ name: 'Machine', arn, type: 'STANDARD', definition });
    await stepFunctions.startExecution(arn, { alerts });
    await stepFunctions.settled();
    return stepFunctions.allExecutions[0];
  }

  const bodies = (): Array<Record<string, any>> => calls.filter((c) => c.service === 'sqs').map((c) => (c.parameters as { MessageBody: Record<string, any> }).MessageBody);

  it('publishes every alert and succeeds when SNS takes them, giving nothing back', async () => {
    const claim = { digest: DIGEST, vulnerabilityId: 'CVE-2024-1001', kind: AlertKind.REBUILD_STARTED, severity: 'HIGH' as const };
    const execution = await run([alert('first', claim), alert('second')]);
    expect(execution.status).toBe('SUCCEEDED');
    expect(topic.published.map((m) => m.subject)).toEqual(['first', 'second']);
    expect(releases).toEqual([]);
    expect(queue.messages).toEqual([]);
    expect(metrics.recorded).toEqual([]);
  });

  it('dead-letters only the refused alerts, gives back only their claims, publishes the others, and then fails', async () => {
    const kept = { digest: DIGEST, vulnerabilityId: 'CVE-2024-1002', kind: AlertKind.REBUILD_STARTED, severity: 'HIGH' as const };
    const lost = { digest: DIGEST, vulnerabilityId: 'CVE-2024-1003', kind: AlertKind.UPSTREAM_VULNERABLE, severity: 'CRITICAL' as const };
    for (const claim of [kept, lost]) expect(await alertDedup.claim(claim, NOW)).toBe(true);
    refused = new Set(['lost', 'unclaimed']);

    const alerts = [alert('kept', kept), alert('lost', lost), alert('unclaimed')];
    const execution = await run(alerts);

    expect(execution.status).toBe('FAILED');
    expect(execution.error?.Error).toBe('AlertsUndelivered');
    expect(topic.published.map((m) => m.subject)).toEqual(['kept']);
    // Only the refused alerts go to release-alert-claim: the claimed one with its receipt (as collectAlerts wrote it),
    // the unclaimed one with its kind.
    expect(releases).toHaveLength(2);
    expect(releases).toEqual(expect.arrayContaining([alertClaimReceipt(lost, NOW), { claimed: false, kind: AlertKind.DIGEST }]));
    // Each refused alert is counted undelivered once, by kind.
    expect(metrics.total(PatchlineMetric.ALERTS_UNDELIVERED)).toBe(2);
    expect(metrics.total(PatchlineMetric.ALERTS_UNDELIVERED, { [MetricDimension.KIND]: AlertKind.UPSTREAM_VULNERABLE })).toBe(1);
    expect(metrics.total(PatchlineMetric.ALERTS_UNDELIVERED, { [MetricDimension.KIND]: AlertKind.DIGEST })).toBe(1);
    expect(await alertDedup.claim(lost, new Date(NOW.getTime() + 60_000))).toBe(true);
    expect(await alertDedup.claim(kept, new Date(NOW.getTime() + 60_000))).toBe(false);
    const letters = bodies().sort((a, b) => String(a.alert.subject).localeCompare(String(b.alert.subject)));
    expect(letters.map((b) => ({ subject: b.alert.subject, error: b.error, claimReleased: b.claimReleased }))).toEqual([
      { subject: 'lost', error: 'SNS.InternalErrorException', claimReleased: { released: true } },
      { subject: 'unclaimed', error: 'SNS.InternalErrorException', claimReleased: { released: false } },
    ]);
    // Each holds the Publish to replay (without the claim) and the reason.
    expect(letters.map((b) => b.alert)).toEqual(alerts.slice(1).map(({ subject, message, attributes }) => ({ subject, message, attributes })));
    for (const letter of letters) expect(letter.reason).toBe('the alert was not published to SNS after retries: Internal error: the local SNS refuses every Publish');
  });

  it('counts an unclaimed alert SNS refused through release-alert-claim, deleting no claim, and dead-letters it', async () => {
    const other = { digest: DIGEST, vulnerabilityId: 'CVE-2024-0000', kind: AlertKind.DIGEST, severity: 'HIGH' as const };
    // A claim of the same identity as the unclaimed alert stays: the unclaimed alert has nothing to give back.
    expect(await alertDedup.claim(other, NOW)).toBe(true);
    refused = new Set(['unclaimed']);

    const execution = await run([alert('unclaimed'), alert('delivered')]);

    expect(execution.status).toBe('FAILED');
    expect(execution.error?.Error).toBe('AlertsUndelivered');
    expect(topic.published.map((m) => m.subject)).toEqual(['delivered']);
    expect(releases).toEqual([{ claimed: false, kind: AlertKind.DIGEST }]);
    expect(metrics.recorded).toEqual([{ name: PatchlineMetric.ALERTS_UNDELIVERED, unit: 'Count', value: 1, dimensions: { [MetricDimension.KIND]: AlertKind.DIGEST } }]);
    expect(bodies().map((b) => ({ subject: b.alert.subject, claimReleased: b.claimReleased }))).toEqual([{ subject: 'unclaimed', claimReleased: { released: false } }]);
    expect(await alertDedup.claim(other, new Date(NOW.getTime() + 60_000))).toBe(false);
  });

  it('still dead-letters an unclaimed alert when release-alert-claim fails, saying so', async () => {
    refused = new Set(['unclaimed']);
    releaseFails = true;

    const execution = await run([alert('unclaimed')]);

    expect(execution.status).toBe('FAILED');
    expect(releases).toHaveLength(4);
    expect(bodies().map((b) => b.claimReleased)).toEqual([{ released: false, failure: 'ProvisionedThroughputExceededException: slow down' }]);
    expect(metrics.recorded).toEqual([]);
  });

  it('still dead-letters the alert when its claim cannot be given back, saying so', async () => {
    const claim = { digest: DIGEST, vulnerabilityId: 'CVE-2024-1004', kind: AlertKind.VENDOR_VULNERABLE, severity: 'HIGH' as const };
    expect(await alertDedup.claim(claim, NOW)).toBe(true);
    refused = new Set(['lost']);
    releaseFails = true;

    const execution = await run([alert('lost', claim)]);

    expect(execution.status).toBe('FAILED');
    expect(execution.error?.Error).toBe('AlertsUndelivered');
    // The release was retried (three retries) before the alert went to the dead-letter queue without it.
    expect(releases).toHaveLength(4);
    expect(bodies().map((b) => b.claimReleased)).toEqual([{ released: false, failure: 'ProvisionedThroughputExceededException: slow down' }]);
    expect(await alertDedup.claim(claim, new Date(NOW.getTime() + 60_000))).toBe(false);
  });
});
