import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { matchesEventPattern } from '../../cli/local/event-pattern';
import { CfnTemplate, TemplateResolver } from '../../cli/local/synthesized-template';
import { REBUILD_EXECUTION_STATES } from '../../lambdas/domain/scheduling';
import { PatchlineStack, repositoryFilter } from '../../lib/patchline-stack';
import { readFileSync } from 'fs';
import { join } from 'path';
import { parseConfig } from '../../lambdas/domain/config';
import { DELETE_SAMPLE, PUSH_SAMPLE, projectConfig, REPO_ROOT, sampleEvent } from '../support/template';

describe('Class: PatchlineStack', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PatchlineStack(app, 'Test', { config: projectConfig(), env: { account: '123456789012', region: 'eu-west-1' } });
  const template = Template.fromStack(stack);
  const rules = template.findResources('AWS::Events::Rule');
  const pushRule = Object.values(rules).find((r) => JSON.stringify(r.Properties.EventPattern).includes('ECR Image Action'))!;

  it('creates one on-demand table with PITR, deletion protection, a CMK and the lineage index', () => {
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
    template.hasResource('AWS::DynamoDB::GlobalTable', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
        GlobalSecondaryIndexes: [Match.objectLike({ IndexName: 'gsi1' })],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: 'KMS' }),
        Replicas: [Match.objectLike({ DeletionProtectionEnabled: true, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
      }),
    });
  });

  it('encrypts the dead-letter queue and the alerts topic with a rotating customer-managed key', () => {
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    template.hasResourceProperties('AWS::SQS::Queue', { KmsMasterKeyId: Match.anyValue(), MessageRetentionPeriod: 1209600 });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });

  it('subscribes each owner with a filter policy on its own owner id', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'platform-team@example.com',
      FilterPolicy: { owner: ['platform-team'] },
    });
  });

  it('runs image-pushed as Express and rebuild-image as Standard', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineType: 'EXPRESS' });
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineType: 'STANDARD', StateMachineName: 'Test-rebuild-image' });
  });

  it('targets image-pushed from the ECR push rule with a dead-letter queue and retries', () => {
    expect(pushRule.Properties.Targets).toEqual([
      expect.objectContaining({ DeadLetterConfig: expect.anything(), RetryPolicy: expect.objectContaining({ MaximumRetryAttempts: 8 }) }),
    ]);
  });

  it('matches the real ECR push sample and rejects a DELETE and a FAILED push', () => {
    const pattern = pushRule.Properties.EventPattern as Record<string, unknown>;
    const push = sampleEvent(PUSH_SAMPLE);
    (push.detail as Record<string, unknown>)['repository-name'] = 'apps/my-repository-name';
    expect(matchesEventPattern(pattern, push)).toBe(true);
    const del = sampleEvent(DELETE_SAMPLE);
    (del.detail as Record<string, unknown>)['repository-name'] = 'apps/my-repository-name';
    expect(matchesEventPattern(pattern, del)).toBe(false);
    const failed = structuredClone(push);
    (failed.detail as Record<string, unknown>).result = 'FAILURE';
    expect(matchesEventPattern(pattern, failed)).toBe(false);
  });

  it('refuses pushes of repositories outside the configured ones', () => {
    const push = sampleEvent(PUSH_SAMPLE); // my-repository-name is not under enterprise/, apps/, builders/, vendor/
    expect(matchesEventPattern(pushRule.Properties.EventPattern, push)).toBe(false);
  });

  it('pins StartBuild to the configured projects and passes BASE_IMAGE as an override', () => {
    const definition = JSON.stringify(template.findResources('AWS::StepFunctions::StateMachine'));
    expect(definition).toContain('codebuild:startBuild.sync');
    expect(definition).toContain('BASE_IMAGE');
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: ['codebuild:StartBuild', 'codebuild:StopBuild', 'codebuild:BatchGetBuilds'] }),
        ]),
      },
    });
  });

  it('keeps the scheduling model in step with the rebuild-image states', () => {
    const statesOf = (t: Template): string[] => {
      const machines = t.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineType: 'STANDARD' } });
      const resolver = new TemplateResolver(t.toJSON() as CfnTemplate, 'table');
      return Object.keys((JSON.parse(String(resolver.resolve(Object.values(machines)[0].Properties.DefinitionString))) as { States: Record<string, unknown> }).States);
    };
    const modelled = new Set(Object.values(REBUILD_EXECUTION_STATES).flat().map((s) => s.name));
    // StartRemoteBuild exists only with a spoke outside the hub region (the example organization has one).
    const organization = parseConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'examples/organization.config.json'), 'utf8')));
    const withRemote = Template.fromStack(new PatchlineStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Patchline', { config: organization, env: { account: '111111111111', region: 'eu-west-1' } }));
    expect(new Set(statesOf(withRemote))).toEqual(modelled);
    expect(new Set([...statesOf(template), 'StartRemoteBuild'])).toEqual(modelled);
  });

  describe('Function: repositoryFilter', () => {
    it('turns a trailing * into an EventBridge prefix filter', () => {
      expect(repositoryFilter(['apps/*', 'enterprise/python-311'])).toEqual([{ prefix: 'apps/' }, 'enterprise/python-311']);
    });
  });
});
