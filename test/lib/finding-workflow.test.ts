import { readdirSync } from 'fs';
import { join } from 'path';
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { matchesEventPattern } from '../../cli/local/event-pattern';
import { ALERT_ATTRIBUTES, FINDING_WORKFLOW_ID, FindingWorkflow } from '../../lib/finding-workflow';
import { PATCHLINE_HANDLER_METADATA } from '../../lib/patchline-function';
import { PatchlineStack } from '../../lib/patchline-stack';
import { RELEASE_ALERT_CLAIM_FUNCTION_ID } from '../../lib/workflow-steps';
import { FINDING_SAMPLE_2021, FINDING_SAMPLE_2024, findingEvent, SCAN_SAMPLE_DOCS, SCAN_SAMPLE_LAMBDA_GO } from '../support/finding-events';
import { projectConfig, SHARED_DATA, sampleEvent } from '../support/template';

const SAMPLES = readdirSync(join(SHARED_DATA, 'events')).filter((f) => f.endsWith('.json'));

describe('Class: FindingWorkflow', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PatchlineStack(app, 'Test', { config: projectConfig(), env: { account: '123456789012', region: 'eu-west-1' } });
  const template = Template.fromStack(stack);
  const rules = Object.entries(template.findResources('AWS::Events::Rule')).map(([id, r]) => ({ id, pattern: r.Properties.EventPattern as Record<string, unknown>, resource: r }));
  const ruleOf = (prefix: string) => rules.find((r) => r.id.startsWith(`${FINDING_WORKFLOW_ID}${prefix}`))!;
  const inspectorRule = ruleOf('InspectorFindingRule');
  const scanRule = ruleOf('EcrImageScanRule');
  const machines = template.findResources('AWS::StepFunctions::StateMachine');
  const [machineId, machine] = Object.entries(machines).find(([id]) => id.startsWith(`${FINDING_WORKFLOW_ID}StateMachine`))!;
  const definition = JSON.stringify(machine.Properties.DefinitionString);

  it('matches the Inspector2 rule to exactly the two real Inspector2 finding samples, and no other sample', () => {
    expect(SAMPLES.length).toBeGreaterThanOrEqual(15);
    const matched = SAMPLES.filter((name) => matchesEventPattern(inspectorRule.pattern, sampleEvent(name)));
    expect(matched.sort()).toEqual([FINDING_SAMPLE_2021, FINDING_SAMPLE_2024].sort());
  });

  it('matches the basic-scan rule to exactly the two real "ECR Image Scan" samples', () => {
    const matched = SAMPLES.filter((name) => matchesEventPattern(scanRule.pattern, sampleEvent(name)));
    expect(matched.sort()).toEqual([SCAN_SAMPLE_DOCS, SCAN_SAMPLE_LAMBDA_GO].sort());
  });

  it('routes a finding sample to finding-received only, never to another Patchline rule', () => {
    for (const name of [FINDING_SAMPLE_2021, FINDING_SAMPLE_2024]) {
      expect(rules.filter((r) => matchesEventPattern(r.pattern, sampleEvent(name))).map((r) => r.id)).toEqual([inspectorRule.id]);
    }
  });

  it.each([
    ['refuses a finding on a Lambda function', (e: Record<string, any>) => (e.detail.resources[0].type = 'AWS_LAMBDA_FUNCTION')],
    ['refuses a network-reachability finding', (e: Record<string, any>) => (e.detail.type = 'NETWORK_REACHABILITY')],
    ['refuses an unknown status', (e: Record<string, any>) => (e.detail.status = 'OPEN')],
    ['refuses another source', (e: Record<string, any>) => (e.source = 'my.app')],
    ['refuses an "Inspector2 Scan" event', (e: Record<string, any>) => (e['detail-type'] = 'Inspector2 Scan')],
  ])('%s', (_name, mutate) => {
    const event = findingEvent({ repository: 'apps/payments-api' });
    expect(matchesEventPattern(inspectorRule.pattern, event)).toBe(true);
    mutate(event);
    expect(matchesEventPattern(inspectorRule.pattern, event)).toBe(false);
  });

  it('matches every status change: ACTIVE, SUPPRESSED and CLOSED', () => {
    for (const status of ['ACTIVE', 'SUPPRESSED', 'CLOSED']) {
      expect(matchesEventPattern(inspectorRule.pattern, findingEvent({ repository: 'apps/payments-api', status }))).toBe(true);
    }
  });

  it('targets the Express workflow from both rules with a dead-letter queue and retries', () => {
    for (const rule of [inspectorRule, scanRule]) {
      expect(rule.resource.Properties.Targets).toHaveLength(1);
      const target = rule.resource.Properties.Targets[0];
      expect(target.Arn).toEqual({ Ref: machineId });
      expect(target.DeadLetterConfig.Arn['Fn::GetAtt'][0]).toMatch(/^DeadLetterQueue/);
      expect(target.RetryPolicy).toEqual({ MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 86400 });
    }
    expect(machine.Properties.StateMachineType).toBe('EXPRESS');
  });

  it('publishes alerts natively to SNS with the owner, severity, image, kind and vulnerability attributes', () => {
    expect(definition).toContain(':states:::sns:publish');
    for (const name of ALERT_ATTRIBUTES) expect(definition).toContain(`\\"${name}\\":{\\"DataType\\":\\"String\\",\\"StringValue.$\\":\\"$.attributes.${name}\\"}`);
    expect(definition).toContain('\\"ItemsPath\\":\\"$.decision.alerts\\"');
  });

  it('catches an alert Publish that fails after its retries, and ends failed only after the rebuilds were started', () => {
    expect(definition).toMatch(/\\"Catch\\":\[\{\\"ErrorEquals\\":\[\\"States.ALL\\"\],\\"ResultPath\\":\\"\$.error\\",\\"Next\\":\\"PublishAlertClaimed\\"\}\]/);
    expect(definition).toContain('\\"InputPath\\":\\"$.claim\\"');
    expect(definition).toContain('\\"PublishAlerts\\":{\\"Type\\":\\"Map\\",\\"ResultPath\\":\\"$.alertDelivery\\"');
    expect(definition).toContain('\\"ResultSelector\\":{\\"undelivered.$\\":\\"States.ArrayContains($, \'UNDELIVERED\')\\"}');
    expect(definition).toContain('\\"PublishAlertUndelivered\\":{\\"Type\\":\\"Pass\\",\\"Result\\":\\"UNDELIVERED\\",\\"End\\":true}');
    expect(definition).toMatch(/\\"StartFindingRebuilds\\":\{[^]*?\\"Next\\":\\"CheckAlertDelivery\\"/);
    expect(definition).toContain('\\"AlertsUndelivered\\":{\\"Type\\":\\"Fail\\",\\"Error\\":\\"AlertsUndelivered\\"');
  });

  it('has one release-alert-claim function for every workflow that publishes alerts, with the dedup window', () => {
    const releasers = Object.values(template.findResources('AWS::Lambda::Function')).filter((f) => f.Metadata?.[PATCHLINE_HANDLER_METADATA] === 'release-alert-claim');
    expect(releasers).toHaveLength(1);
    expect(releasers[0].Properties.Environment.Variables).toEqual(expect.objectContaining({ ALERT_DEDUP_SECONDS: String(projectConfig().alertDedupDays * 86_400) }));
    const publishing = Object.values(machines).map((m) => JSON.stringify(m.Properties.DefinitionString)).filter((d) => d.includes(':states:::sns:publish'));
    expect(publishing).toHaveLength(3);
    for (const d of publishing) expect(d).toContain(`${stack.getLogicalId(stack.node.findChild(RELEASE_ALERT_CLAIM_FUNCTION_ID).node.defaultChild as CfnResource)}`);
  });

  it('starts rebuild-image per decided start and treats ExecutionAlreadyExists as done', () => {
    expect(definition).toContain(':states:::states:startExecution');
    expect(definition).toContain('\\"ItemsPath\\":\\"$.decision.starts\\"');
    expect(definition).toContain('StepFunctions.ExecutionAlreadyExistsException');
  });

  it('dead-letters the original event and the reason when the decision fails', () => {
    expect(definition).toMatch(/\\"Catch\\":\[\{\\"ErrorEquals\\":\[\\"States.ALL\\"\],\\"ResultPath\\":\\"\$.error\\",\\"Next\\":\\"FindingDeadLetter\\"\}\]/);
    expect(definition).toContain('\\"event.$\\":\\"$$.Execution.Input\\"');
    expect(definition).toContain('\\"reason.$\\":\\"$.error.Cause\\"');
  });

  it('gives the function the policy of the config and the dedup window', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          FINDING_POLICY: JSON.stringify({ severityThreshold: 'HIGH', requireFixAvailable: true, exceptions: [], trustedBases: [] }),
          ALERT_DEDUP_SECONDS: String(7 * 86_400),
          POWERTOOLS_SERVICE_NAME: 'patchline-finding-received',
        }),
      },
    });
  });

  it('fails on an alert dedup window outside 1-365 days', () => {
    const bare = new Stack(new App(), 'Bare');
    const key = new kms.Key(bare, 'Key');
    const props = {
      table: new dynamodb.TableV2(bare, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } }),
      tableKey: key,
      topic: new sns.Topic(bare, 'Topic'),
      deadLetterQueue: new sqs.Queue(bare, 'Queue'),
      rebuildStateMachine: new sfn.StateMachine(bare, 'Rebuild', { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(bare, 'Pass')) }),
    };
    expect(() => new FindingWorkflow(bare, 'Findings', { ...props, config: { ...projectConfig(), alertDedupDays: 0 } })).toThrow(/alertDedupDays.*received 0/);
  });
});
