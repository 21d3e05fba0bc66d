import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'fs';
import { join } from 'path';
import { AlertKind } from '../../lambdas/domain/alert';
import { PatchlineConfig } from '../../lambdas/domain/config';
import { AlarmKind, PatchlineMetric, PatchlineObservability } from '../../lib/observability';
import { readConfigFile } from '../../lib/patchline-app';
import { PatchlineStack } from '../../lib/patchline-stack';

type Json = Record<string, unknown>;
interface CfnResource {
  readonly Type: string;
  readonly Properties: Json;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

const CONFIG = readConfigFile(join(__dirname, '../../patchline.config.json'));

function synthesize(config: PatchlineConfig = CONFIG): Template {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(new PatchlineStack(app, 'Patchline', { config, env: { account: '123456789012', region: 'us-east-1' } }));
}

function ofType(template: Template, type: string): Array<[string, CfnResource]> {
  return Object.entries(template.toJSON().Resources as Record<string, CfnResource>).filter(([, r]) => r.Type === type);
}

describe('Class: PatchlineStack', () => {
  const template = synthesize();
  const [[keyId]] = ofType(template, 'AWS::KMS::Key');
  const keyArn = { 'Fn::GetAtt': [keyId, 'Arn'] };

  describe('encryption', () => {
    it('has exactly one customer-managed key, rotated and retained', () => {
      template.resourceCountIs('AWS::KMS::Key', 1);
      template.hasResource('AWS::KMS::Key', { Properties: { EnableKeyRotation: true }, DeletionPolicy: 'Retain' });
    });

    it('encrypts every topic and every queue with the customer-managed key', () => {
      const topics = ofType(template, 'AWS::SNS::Topic');
      const queues = ofType(template, 'AWS::SQS::Queue');
      expect(topics.length).toBeGreaterThanOrEqual(2); // alerts and ops
      expect(queues.length).toBeGreaterThanOrEqual(1);
      for (const [, r] of [...topics, ...queues]) expect(r.Properties.KmsMasterKeyId).toEqual(keyArn);
    });

    it('lets the delivering services use the key only on behalf of this account', () => {
      const [[, key]] = ofType(template, 'AWS::KMS::Key');
      const statements = (key.Properties.KeyPolicy as { Statement: Json[] }).Statement;
      const services = statements.filter((s) => (s.Principal as Json | undefined)?.Service !== undefined);
      expect(services.map((s) => (s.Principal as Json).Service).sort()).toEqual(['cloudwatch.amazonaws.com', 'events.amazonaws.com', 'sns.amazonaws.com']);
      for (const statement of services) {
        expect(statement.Action).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
        expect(statement.Condition).toEqual({ StringEquals: { 'aws:SourceAccount': '123456789012' } });
      }
    });

    it('encrypts the table with the customer-managed key', () => {
      template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
        Replicas: [Match.objectLike({ SSESpecification: { KMSMasterKeyId: keyArn } })],
      });
    });
  });

  describe('SSL-only access', () => {
    const denyInsecure = (resourceRef: unknown): Json =>
      Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } }, Resource: resourceRef }) as unknown as Json;

    it('gives every queue a policy that denies requests without TLS', () => {
      for (const [id] of ofType(template, 'AWS::SQS::Queue')) {
        template.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: id }],
          PolicyDocument: { Statement: Match.arrayWith([denyInsecure({ 'Fn::GetAtt': [id, 'Arn'] })]) },
        });
      }
    });

    it('gives every topic a policy that denies requests without TLS', () => {
      for (const [id] of ofType(template, 'AWS::SNS::Topic')) {
        template.hasResourceProperties('AWS::SNS::TopicPolicy', {
          Topics: [{ Ref: id }],
          PolicyDocument: { Statement: Match.arrayWith([denyInsecure({ Ref: id })]) },
        });
      }
    });
  });

  describe('durability', () => {
    it('keeps the table: point-in-time recovery, deletion protection, retained on stack deletion and replacement', () => {
      template.hasResource('AWS::DynamoDB::GlobalTable', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: {
          Replicas: [Match.objectLike({ DeletionProtectionEnabled: true, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
        },
      });
    });

    it('keeps the dead-letter queue (the only copy of what failed) on stack deletion', () => {
      const queues = ofType(template, 'AWS::SQS::Queue').filter(([id]) => id.startsWith('DeadLetterQueue'));
      expect(queues).toHaveLength(1);
      expect(queues[0][1]).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    });

    it('gives every EventBridge rule target a dead-letter queue and a retry policy', () => {
      const rules = ofType(template, 'AWS::Events::Rule');
      expect(rules.length).toBeGreaterThanOrEqual(2);
      for (const [id, rule] of rules) {
        for (const target of rule.Properties.Targets as Json[]) {
          expect({ id, dlq: (target.DeadLetterConfig as Json | undefined)?.Arn !== undefined, retry: target.RetryPolicy !== undefined }).toEqual({ id, dlq: true, retry: true });
        }
      }
    });

    it('gives every function a dead-letter queue for asynchronous invocations', () => {
      const functions = ofType(template, 'AWS::Lambda::Function');
      expect(functions.length).toBeGreaterThanOrEqual(4);
      for (const [id, fn] of functions) expect({ id, dlq: (fn.Properties.DeadLetterConfig as Json | undefined)?.TargetArn }).toEqual({ id, dlq: expect.anything() });
    });

    it('sets a retention on every log group, and every function and workflow logs to one of them', () => {
      const groups = ofType(template, 'AWS::Logs::LogGroup');
      for (const [id, group] of groups) expect({ id, retention: group.Properties.RetentionInDays }).toEqual({ id, retention: expect.any(Number) });
      const groupIds = new Set(groups.map(([id]) => id));
      for (const [id, fn] of ofType(template, 'AWS::Lambda::Function')) {
        const ref = ((fn.Properties.LoggingConfig as Json | undefined)?.LogGroup as { Ref?: string } | undefined)?.Ref;
        expect({ id, explicitGroup: ref !== undefined && groupIds.has(ref) }).toEqual({ id, explicitGroup: true });
      }
      for (const [id, machine] of ofType(template, 'AWS::StepFunctions::StateMachine')) {
        const config = machine.Properties.LoggingConfiguration as { Level?: string; Destinations?: Array<{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [string, string] } } }> };
        // ALL, except a high-volume workflow that logs ERROR under an acknowledged cdk-nag SF1 (see cdk-nag.test.ts).
        expect({ id, level: config?.Level }).toEqual({ id, level: id.startsWith('FindingReceivedWorkflow') ? expect.stringMatching(/^(ALL|ERROR)$/) : 'ALL' });
        expect({ id, includeExecutionData: (config as { IncludeExecutionData?: boolean }).IncludeExecutionData }).toEqual({ id, includeExecutionData: true });
        expect(groupIds.has(config.Destinations![0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0])).toBe(true);
      }
    });
  });

  describe('alarms', () => {
    const alarms = ofType(template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const [[opsTopicId]] = ofType(template, 'AWS::SNS::Topic').filter(([id]) => id.startsWith('ObservabilityOpsTopic'));
    const alarmOn = (namespace: string, metricName: string, dimensions?: unknown): Json[] =>
      alarms.filter((a) => a.Namespace === namespace && a.MetricName === metricName && (dimensions === undefined || JSON.stringify(a.Dimensions ?? []) === JSON.stringify(dimensions)));

    it('alarms when any message is waiting in a dead-letter queue', () => {
      for (const [id] of ofType(template, 'AWS::SQS::Queue')) {
        const [alarm] = alarmOn('AWS/SQS', 'ApproximateNumberOfMessagesVisible', [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id, 'QueueName'] } }]);
        expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching' });
      }
    });

    it('alarms on failed and on throttled executions of every state machine', () => {
      const machines = ofType(template, 'AWS::StepFunctions::StateMachine');
      expect(machines.length).toBeGreaterThanOrEqual(2);
      for (const [id] of machines) {
        const dimensions = [{ Name: 'StateMachineArn', Value: { Ref: id } }];
        expect({ id, failed: alarmOn('AWS/States', 'ExecutionsFailed', dimensions).length, throttled: alarmOn('AWS/States', 'ExecutionThrottled', dimensions).length }).toEqual({
          id,
          failed: 1,
          throttled: 1,
        });
      }
    });

    it('alarms on throttles of every function', () => {
      for (const [id] of ofType(template, 'AWS::Lambda::Function')) {
        expect({ id, alarms: alarmOn('AWS/Lambda', 'Throttles', [{ Name: 'FunctionName', Value: { Ref: id } }]).length }).toEqual({ id, alarms: 1 });
      }
    });

    it('alarms on failed CodeBuild builds (account-wide when the projects are prefixes)', () => {
      expect(CONFIG.rebuild.projects.every((p) => p.endsWith('*'))).toBe(true);
      expect(alarmOn('AWS/CodeBuild', 'FailedBuilds', [])).toHaveLength(1);
    });

    it('alarms on alerts SNS refused for good, every kind of release-alert-claim\'s AlertsUndelivered summed', () => {
      const undelivered = alarms.filter((a) => JSON.stringify(a.Metrics ?? []).includes(PatchlineMetric.ALERTS_UNDELIVERED));
      expect(undelivered).toHaveLength(1);
      const [alarm] = undelivered;
      expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching', AlarmActions: [{ Ref: opsTopicId }] });
      expect(alarm.AlarmDescription).toMatch(/docs\/runbook\.md#alertsundelivered$/);
      const metrics = alarm.Metrics as Array<{ Id: string; Expression?: string; ReturnData?: boolean; MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: unknown[] }; Stat: string } }>;
      const kinds = Object.values(AlertKind);
      expect(metrics.find((m) => m.Expression)).toMatchObject({ Expression: `SUM([${kinds.map((_, i) => `k${i}`).join(', ')}])` });
      expect(metrics.filter((m) => m.MetricStat).map((m) => m.MetricStat)).toEqual(
        kinds.map((kind) => ({
          Metric: {
            Namespace: 'Patchline',
            MetricName: PatchlineMetric.ALERTS_UNDELIVERED,
            Dimensions: expect.arrayContaining([
              { Name: 'service', Value: 'patchline-release-alert-claim' },
              { Name: 'Kind', Value: kind },
            ]),
          },
          Period: 300,
          Stat: 'Sum',
        })),
      );
    });

    it('sends every alarm to the ops topic, with its runbook section', () => {
      expect(alarms.length).toBeGreaterThan(0);
      for (const alarm of alarms) {
        expect(alarm.AlarmActions).toEqual([{ Ref: opsTopicId }]);
        expect(alarm.AlarmDescription).toMatch(/docs\/runbook\.md#[a-z]+$/);
      }
    });
  });

  describe('dashboard', () => {
    const [[, dashboard]] = ofType(template, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);

    it.each([
      ['campaigns running', 'Campaigns running', PatchlineMetric.CAMPAIGNS_RUNNING],
      ['campaigns failed', 'Campaigns started / failed', PatchlineMetric.CAMPAIGNS_FAILED],
      ['critical findings by owner', 'Open CRITICAL findings by owner', PatchlineMetric.OPEN_FINDINGS],
      ['high findings by owner', 'Open HIGH findings by owner', PatchlineMetric.OPEN_FINDINGS],
      ['time to remediate', 'Time to remediate', PatchlineMetric.TIME_TO_REMEDIATE],
      ['alerts sent', 'Alerts sent by kind', PatchlineMetric.ALERTS_SENT],
      ['alerts undelivered', 'Alerts undelivered by kind', PatchlineMetric.ALERTS_UNDELIVERED],
    ])('shows %s from the Patchline namespace', (_what, title, metric) => {
      expect(body).toContain(title);
      expect(body).toContain(`Namespace=\\\\\\"Patchline\\\\\\" MetricName=\\\\\\"${metric}\\\\\\"`);
    });
  });
});

describe('Class: PatchlineObservability', () => {
  it('subscribes config.ops.email to the ops topic', () => {
    const template = synthesize({ ...CONFIG, ops: { email: 'oncall@example.com' } });
    const [[opsTopicId]] = ofType(template, 'AWS::SNS::Topic').filter(([id]) => id.startsWith('ObservabilityOpsTopic'));
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com', TopicArn: { Ref: opsTopicId } });
  });

  it('subscribes nobody to the ops topic when config.ops is absent', () => {
    const template = synthesize();
    const [[opsTopicId]] = ofType(template, 'AWS::SNS::Topic').filter(([id]) => id.startsWith('ObservabilityOpsTopic'));
    expect(ofType(template, 'AWS::SNS::Subscription').filter(([, s]) => JSON.stringify(s.Properties.TopicArn) === JSON.stringify({ Ref: opsTopicId }))).toEqual([]);
  });

  describe('spoke registries the rescan could not reach', () => {
    const organization = synthesize(readConfigFile(join(__dirname, '../../examples/organization.config.json')));
    const spokesUnreachable = (template: Template): Json[] =>
      ofType(template, 'AWS::CloudWatch::Alarm')
        .map(([, a]) => a.Properties)
        .filter((a) => a.MetricName === PatchlineMetric.RESCAN_SPOKES_UNREACHABLE);
    const dashboardBody = (template: Template): string => JSON.stringify(ofType(template, 'AWS::CloudWatch::Dashboard')[0][1].Properties.DashboardBody);

    it('alarms on registry-rescan\'s RescanSpokesUnreachable when the config has spokes', () => {
      const [[opsTopicId]] = ofType(organization, 'AWS::SNS::Topic').filter(([id]) => id.startsWith('ObservabilityOpsTopic'));
      const alarms = spokesUnreachable(organization);
      expect(alarms).toHaveLength(1);
      expect(alarms[0]).toMatchObject({
        Namespace: 'Patchline',
        Dimensions: [{ Name: 'service', Value: 'patchline-registry-rescan' }],
        Statistic: 'Sum',
        Period: 300,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: opsTopicId }],
      });
      expect(alarms[0].AlarmDescription).toMatch(/docs\/runbook\.md#rescanspokesunreachable$/);
    });

    it('charts RescanSpokesUnreachable when the config has spokes', () => {
      const body = dashboardBody(organization);
      expect(body).toContain('Spoke registries unreachable (rescan)');
      expect(body).toContain(`Namespace=\\\\\\"Patchline\\\\\\" MetricName=\\\\\\"${PatchlineMetric.RESCAN_SPOKES_UNREACHABLE}\\\\\\"`);
    });

    it('neither alarms on nor charts it without an organization', () => {
      const single = synthesize();
      expect(CONFIG.organization).toBeUndefined();
      expect(spokesUnreachable(single)).toEqual([]);
      expect(dashboardBody(single)).not.toContain(PatchlineMetric.RESCAN_SPOKES_UNREACHABLE);
    });
  });

  it('gives each exactly named CodeBuild project its own FailedBuilds alarm', () => {
    const template = synthesize({ ...CONFIG, rebuild: { ...CONFIG.rebuild, projects: ['enterprise-python-311'] } });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/CodeBuild',
      MetricName: 'FailedBuilds',
      Dimensions: [{ Name: 'ProjectName', Value: 'enterprise-python-311' }],
    });
    expect(ofType(template, 'AWS::CloudWatch::Alarm').filter(([, a]) => a.Properties.MetricName === 'FailedBuilds')).toHaveLength(1);
  });

  it('fails on an ops email that is not an address', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new PatchlineStack(app, 'Patchline', { config: CONFIG, env: { account: '123456789012', region: 'us-east-1' } });
    expect(() => new PatchlineObservability(stack, 'Second', { config: { ...CONFIG, ops: { email: 'oncall' } }, key: stack.key })).toThrow(
      'PatchlineObservability: ops.email must be an email address (received "oncall")',
    );
  });

  it('has a runbook section for every alarm kind, at the anchor each alarm description links to', () => {
    const runbook = readFileSync(join(__dirname, '../../docs/runbook.md'), 'utf8');
    for (const kind of Object.values(AlarmKind)) expect(runbook).toMatch(new RegExp(`^## ${kind}$`, 'm'));
  });
});
