import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { RescanWorkflow, RescanWorkflowProps } from '../../lib/rescan-workflow';
import { projectConfig } from '../support/template';

function synth(overrides: Partial<RescanWorkflowProps> = {}): Template {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
  const key = new kms.Key(stack, 'Key');
  const table = new dynamodb.TableV2(stack, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
  new RescanWorkflow(stack, 'Rescan', {
    table,
    tableKey: key,
    topic: new sns.Topic(stack, 'Topic'),
    deadLetterQueue: new sqs.Queue(stack, 'Dlq'),
    config: projectConfig(),
    rebuildStateMachine: sfn.StateMachine.fromStateMachineName(stack, 'Rebuild', 'rebuild'),
    ...overrides,
  });
  return Template.fromStack(stack);
}

describe('Class: RescanWorkflow', () => {
  it('is a Standard state machine started by EventBridge Scheduler on rescan.schedule, with a dead-letter queue', () => {
    const template = synth();
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineType: 'STANDARD' });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: projectConfig().rescan.schedule,
      Target: Match.objectLike({ DeadLetterConfig: Match.objectLike({ Arn: Match.anyValue() }), Input: JSON.stringify({ nextToken: '' }) }),
    });
  });

  it('scopes ECR to the configured repositories', () => {
    synth().hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'ScanConfiguredRepositories', Action: ['ecr:DescribeImages', 'ecr:StartImageScan'] })]) },
    });
  });

  it('runs the per-repository step as a Distributed Map when asked', () => {
    const definition = JSON.stringify(synth({ distributed: true }).findResources('AWS::StepFunctions::StateMachine'));
    expect(definition).toContain('DISTRIBUTED');
    expect(JSON.stringify(synth().findResources('AWS::StepFunctions::StateMachine'))).not.toContain('DISTRIBUTED');
  });

  it('fails on a maxScanAgeDays that is not a whole number of days', () => {
    expect(() => synth({ maxScanAgeDays: 0 })).toThrow(/maxScanAgeDays/);
  });
});
