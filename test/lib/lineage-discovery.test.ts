import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { TemplateResolver } from '../../cli/local/synthesized-template';
import { parseConfig } from '../../lambdas/domain/config';
import { flattenCfnReference } from '../../lib/nag-acknowledgements';
import { ECR_DISCOVERY_ACTIONS, LineageDiscovery, LineageDiscoveryProps } from '../../lib/lineage-discovery';
import { PatchlineStack, WorkflowId } from '../../lib/patchline-stack';
import { projectConfig } from '../support/template';

type State = { Type: string; Next?: string; ResultPath?: string; Catch?: Array<{ ErrorEquals: string[]; Next: string; ResultPath?: string }> };

describe('Class: LineageDiscovery', () => {
  const config = projectConfig();
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PatchlineStack(app, 'Test', { config, env: { account: '123456789012', region: 'eu-west-1' } });
  const template = Template.fromStack(stack);

  it('runs LearnLineage first in image-pushed, keeping the event, and goes on to DecideRebuilds when it fails', () => {
    const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
    const [, machine] = Object.entries(json.Resources).find(([id, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && id.startsWith(WorkflowId.IMAGE_PUSHED))!;
    const definition = JSON.parse(String(new TemplateResolver(json as never, 'table').resolve(machine.Properties!.DefinitionString))) as { StartAt: string; States: Record<string, State> };
    expect(definition.StartAt).toBe('LearnLineage');
    const learn = definition.States.LearnLineage;
    expect(learn).toMatchObject({ Type: 'Task', Next: 'DecideRebuilds', ResultPath: '$.learned' });
    expect(learn.Catch).toEqual([
      { ErrorEquals: ['InvalidEventError'], Next: 'ImagePushedDeadLetter', ResultPath: '$.error' },
      { ErrorEquals: ['States.ALL'], Next: 'LearnLineageFailed', ResultPath: '$.learned' },
    ]);
    expect(definition.States.LearnLineageFailed).toMatchObject({ Type: 'Pass', Next: 'DecideRebuilds' });
  });

  it('retries LearnLineage with backoff and jitter while another lineage writer holds the write lease', () => {
    const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
    const [, machine] = Object.entries(json.Resources).find(([id, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && id.startsWith(WorkflowId.IMAGE_PUSHED))!;
    const definition = JSON.parse(String(new TemplateResolver(json as never, 'table').resolve(machine.Properties!.DefinitionString))) as { States: Record<string, State> };
    const retry = (definition.States.LearnLineage as { Retry?: Array<Record<string, unknown>> }).Retry ?? [];
    expect(retry).toContainEqual({
      ErrorEquals: ['LineageBusyError', 'LineageLeaseLostError'],
      IntervalSeconds: 2,
      BackoffRate: 2,
      MaxAttempts: 4,
      MaxDelaySeconds: 30,
      JitterStrategy: 'FULL',
    });
  });

  it('grants the ECR reads on the configured repositories only', () => {
    const ecrStatements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) =>
      (p.Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>).filter((s) => [s.Action].flat().some((a) => ECR_DISCOVERY_ACTIONS.includes(a as never))),
    );
    expect(ecrStatements).toHaveLength(1);
    expect([ecrStatements[0].Resource].flat().map(flattenCfnReference)).toEqual(config.repositories.map((r) => `arn:<AWS::Partition>:ecr:eu-west-1:123456789012:repository/${r}`));
  });

  it('gives the function its tag keys and the configured owners and projects', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ OWNER_TAG_KEY: 'owner', BUILD_PROJECT_TAG_KEY: 'build-project', KNOWN_OWNERS: Object.keys(config.owners).join(','), BUILD_PROJECTS: config.rebuild.projects.join(',') }) },
    });
  });

  describe('validation', () => {
    const props = (s: Stack, extra: Partial<LineageDiscoveryProps> = {}): LineageDiscoveryProps => {
      const key = new kms.Key(s, 'K');
      return {
        config,
        table: new dynamodb.TableV2(s, 'T', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } }),
        tableKey: key,
        deadLetterQueue: new sqs.Queue(s, 'Q'),
        ...extra,
      };
    };

    it('fails on a tag key ECR would not accept', () => {
      const s = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'S');
      expect(() => new LineageDiscovery(s, 'D', props(s, { ownerTagKey: 'owner;drop' }))).toThrow(/ownerTagKey must be an ECR tag key .*"owner;drop"/);
    });

    it('fails when the repositories are a bare "*"', () => {
      const s = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'S');
      const everything = parseConfig({ ...JSON.parse(JSON.stringify(config)), repositories: ['*'] });
      expect(() => new LineageDiscovery(s, 'D', props(s, { config: everything }))).toThrow(/must name repositories or prefixes/);
    });
  });
});
