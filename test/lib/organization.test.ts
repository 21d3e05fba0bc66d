import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'fs';
import { join } from 'path';
import { matchesEventPattern } from '../../cli/local/event-pattern';
import { OrganizationConfig, parseConfig, PatchlineConfig } from '../../lambdas/domain/config';
import { HUB_EVENT_BUS_NAME, HubEventBus, hubEventBusArn } from '../../lib/hub-event-bus';
import { PatchlineStack } from '../../lib/patchline-stack';
import { defineSpokeStacks, hubAccessRoleName, PatchlineSpokeStack, PatchlineSpokeStackProps, SpokeRuleId } from '../../lib/spoke-stack';
import { DELETE_SAMPLE, digestOf, projectConfig, PUSH_SAMPLE, REPO_ROOT, sampleEvent } from '../support/template';

const FINDING_SAMPLE = 'docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json';
const SCAN_SAMPLE = 'docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-scan-INITIAL_SCAN_COMPLETE-ecr.json';
const BUILD_STATE_SAMPLE = 'aws-lambda-go__events__testdata__codebuild-state-change.json';
const BUILD_PHASE_SAMPLE = 'aws-lambda-go__events__testdata__codebuild-phase-change.json';
const ECR_SCAN_SAMPLE = 'awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__ecr-eventbridge.md__ecr-image-scan-basic.json';

const exampleConfig = (): PatchlineConfig => parseConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'examples/organization.config.json'), 'utf8')));
const ORG_ID = 'o-a1b2c3d4e5';

/** Events as a spoke emits them: the real samples, with repository/project names the spoke is configured for. */
function pushOf(repository: string, action = PUSH_SAMPLE): Record<string, unknown> {
  const event = structuredClone(sampleEvent(action));
  // The documented sample's digest has 60 hex digits; a real one has 64.
  event.detail = { ...(event.detail as object), 'repository-name': repository, 'image-digest': digestOf(repository) };
  return event;
}
function findingOf(repository: string): Record<string, unknown> {
  const event = structuredClone(sampleEvent(FINDING_SAMPLE));
  const resources = (event.detail as { resources: Array<{ details: { awsEcrContainerImage: { repositoryName: string } } }> }).resources;
  for (const r of resources) r.details.awsEcrContainerImage.repositoryName = repository;
  return event;
}
function buildOf(project: string, sample = BUILD_STATE_SAMPLE): Record<string, unknown> {
  const event = structuredClone(sampleEvent(sample));
  event.detail = { ...(event.detail as object), 'project-name': project };
  return event;
}

function spoke(overrides: Partial<PatchlineSpokeStackProps> = {}): Template {
  const app = new App();
  const stack = new PatchlineSpokeStack(app, 'Spoke', {
    env: { account: '222222222222', region: 'us-east-1' },
    hubAccount: '111111111111',
    hubRegion: 'eu-west-1',
    repositories: ['apps/payments*', 'apps/ledger'],
    projects: ['apps-payments*'],
    ...overrides,
  });
  return Template.fromStack(stack);
}

function hubBusTemplate(organization: OrganizationConfig): Template {
  const stack = new Stack(new App(), 'Hub', { env: { account: '111111111111', region: 'eu-west-1' } });
  new HubEventBus(stack, 'HubEventBus', { organization });
  return Template.fromStack(stack);
}

const ORGANIZATION: OrganizationConfig = {
  hub: { account: '111111111111', region: 'eu-west-1' },
  spokes: [
    { account: '222222222222', region: 'eu-west-1' },
    { account: '333333333333', region: 'eu-west-1' },
    { account: '333333333333', region: 'us-east-1' },
  ],
};

describe('Class: HubEventBus', () => {
  it('admits exactly the configured spoke accounts, each once, to events:PutEvents', () => {
    const template = hubBusTemplate(ORGANIZATION);
    template.hasResourceProperties('AWS::Events::EventBus', { Name: HUB_EVENT_BUS_NAME });
    const policies = Object.values(template.findResources('AWS::Events::EventBusPolicy'));
    expect(policies).toHaveLength(1);
    const statement = policies[0].Properties.Statement;
    expect(statement.Action).toBe('events:PutEvents');
    expect(statement.Condition).toBeUndefined();
    const accounts = (statement.Principal.AWS as unknown[]).map((p) => /iam::(\d{12}):root/.exec(JSON.stringify(p))?.[1]);
    expect(accounts).toEqual(['222222222222', '333333333333']);
  });

  it('admits the organization, and only it, when organizationId is set', () => {
    const template = hubBusTemplate({ ...ORGANIZATION, organizationId: ORG_ID });
    template.resourceCountIs('AWS::Events::EventBusPolicy', 1);
    template.hasResourceProperties('AWS::Events::EventBusPolicy', {
      Statement: { Action: 'events:PutEvents', Effect: 'Allow', Principal: { AWS: '*' }, Condition: { StringEquals: { 'aws:PrincipalOrgID': ORG_ID } } },
    });
  });

  it('fails on an organization with no spokes', () => {
    expect(() => hubBusTemplate({ ...ORGANIZATION, spokes: [] })).toThrow(/organization.spokes is empty/);
  });
});

describe('Class: PatchlineStack (organization)', () => {
  const synth = (config: PatchlineConfig): Template =>
    Template.fromStack(new PatchlineStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Patchline', { config, env: { account: '111111111111', region: 'eu-west-1' } }));

  it('creates the hub bus when the config has an organization, and none for the default config', () => {
    synth(exampleConfig()).resourceCountIs('AWS::Events::EventBus', 1);
    synth(projectConfig()).resourceCountIs('AWS::Events::EventBus', 0);
  });
});

describe('Class: PatchlineSpokeStack', () => {
  const template = spoke();
  const rules = template.findResources('AWS::Events::Rule');
  const patterns = Object.values(rules).map((r) => r.Properties.EventPattern as Record<string, unknown>);
  const forwarded = (event: unknown): number => patterns.filter((p) => matchesEventPattern(p, event)).length;

  it('has exactly three rules, each forwarding to the hub bus with a role and a dead-letter queue', () => {
    expect(patterns).toHaveLength(3);
    for (const rule of Object.values(rules)) {
      expect(rule.Properties.Targets).toEqual([expect.objectContaining({ RoleArn: expect.anything(), DeadLetterConfig: expect.objectContaining({ Arn: expect.anything() }) })]);
      // The ARN is partition-agnostic (Fn::Join with AWS::Partition): compare everything after the partition.
      expect(JSON.stringify(rule.Properties.Targets[0].Arn)).toContain(hubEventBusArn({ account: '111111111111', region: 'eu-west-1' }).replace('arn:aws', ''));
    }
  });

  it('lets the forwarding role put events on the hub bus only', () => {
    const forwardPolicies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) => JSON.stringify(p).includes('events:PutEvents'));
    expect(forwardPolicies).toHaveLength(1);
    const statements = forwardPolicies[0].Properties.PolicyDocument.Statement;
    expect(statements).toEqual([expect.objectContaining({ Action: 'events:PutEvents', Effect: 'Allow' })]);
    expect(JSON.stringify(statements[0].Resource)).toMatch(/:events:eu-west-1:111111111111:event-bus\/patchline-hub"/);
  });

  it('forwards a successful ECR push of a configured repository, by exactly one rule', () => {
    expect(forwarded(pushOf('apps/payments-api'))).toBe(1);
    expect(forwarded(pushOf('apps/ledger'))).toBe(1);
  });

  it('forwards an Inspector2 finding on a configured repository, by exactly one rule', () => {
    expect(forwarded(findingOf('apps/payments-api'))).toBe(1);
  });

  it('forwards a build state change of a configured project, by exactly one rule', () => {
    expect(forwarded(buildOf('apps-payments-api'))).toBe(1);
  });

  it('refuses a DELETE, a push of another repository and a finding or build outside the configuration', () => {
    expect(forwarded(pushOf('apps/payments-api', DELETE_SAMPLE))).toBe(0);
    expect(forwarded(pushOf('apps/orders-api'))).toBe(0);
    expect(forwarded(pushOf('apps/ledger-v2'))).toBe(0);
    expect(forwarded(findingOf('inspector2'))).toBe(0);
    expect(forwarded(buildOf('apps-orders-api'))).toBe(0);
  });

  it('refuses other event types: build phase changes, Inspector2 scans, ECR basic scans', () => {
    expect(forwarded(buildOf('apps-payments-api', BUILD_PHASE_SAMPLE))).toBe(0);
    expect(forwarded(sampleEvent(SCAN_SAMPLE))).toBe(0);
    const ecrScan = structuredClone(sampleEvent(ECR_SCAN_SAMPLE));
    ecrScan.detail = { ...(ecrScan.detail as object), 'repository-name': 'apps/payments-api' };
    expect(forwarded(ecrScan)).toBe(0);
  });

  it('names its rules by the event they forward', () => {
    expect(Object.keys(rules).map((id) => Object.values(SpokeRuleId).find((r) => id.startsWith(r)))).toEqual(Object.values(SpokeRuleId));
  });
});

describe('Class: PatchlineSpokeStack (hub access role)', () => {
  const roleOf = (template: Template): Record<string, any> =>
    Object.values(template.findResources('AWS::IAM::Role', { Properties: { RoleName: hubAccessRoleName('us-east-1') } }))[0];

  const principalArn = (suffix: string): unknown => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::111111111111:role/${suffix}`]] });

  it('is trusted by the hub account only through the rebuild workflow, learn-lineage and registry-rescan roles and, outside the hub region, the start- and stop-remote-build function roles', () => {
    const role = roleOf(spoke());
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { AWS: expect.objectContaining({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::111111111111:root']] }) },
        Condition: {
          ArnLike: {
            'aws:PrincipalArn': [
              principalArn('Patchline-RebuildImageWorkflowRole*'),
              principalArn('Patchline-StartRemoteBuildFunctionRole*'),
              principalArn('Patchline-StopRemoteBuildFunctionRole*'),
              principalArn('Patchline-LineageDiscoveryFunctionRole*'),
              principalArn('Patchline-RegistryRescanFunctionRole*'),
            ],
          },
        },
      },
    ]);
  });

  it('admits only the rebuild workflow, learn-lineage and registry-rescan roles in a spoke of the hub region (Step Functions task credentials reach it)', () => {
    const sameRegion = Object.values(spoke({ env: { account: '222222222222', region: 'eu-west-1' } }).findResources('AWS::IAM::Role', { Properties: { RoleName: hubAccessRoleName('eu-west-1') } }))[0] as Record<string, any>;
    expect(sameRegion.Properties.AssumeRolePolicyDocument.Statement[0].Condition).toEqual({
      ArnLike: { 'aws:PrincipalArn': [principalArn('Patchline-RebuildImageWorkflowRole*'), principalArn('Patchline-LineageDiscoveryFunctionRole*'), principalArn('Patchline-RegistryRescanFunctionRole*')] },
    });
  });

  it('admits every hub role, the remote-build ones included, in a spoke of unknown region (StackSets): it may be outside the hub region', () => {
    const stack = new PatchlineSpokeStack(new App(), 'Spoke', { hubAccount: '111111111111', hubRegion: 'eu-west-1', repositories: ['apps/payments*'], projects: ['apps-payments*'] });
    const role = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Role', { Properties: { RoleName: Match.anyValue() } }))[0] as Record<string, any>;
    expect(role.Properties.AssumeRolePolicyDocument.Statement[0].Condition).toEqual({
      ArnLike: {
        'aws:PrincipalArn': [
          principalArn('Patchline-RebuildImageWorkflowRole*'),
          principalArn('Patchline-StartRemoteBuildFunctionRole*'),
          principalArn('Patchline-StopRemoteBuildFunctionRole*'),
          principalArn('Patchline-LineageDiscoveryFunctionRole*'),
          principalArn('Patchline-RegistryRescanFunctionRole*'),
        ],
      },
    });
  });

  it('also requires the organization when organizationId is set, and honours an explicit principal', () => {
    const role = roleOf(spoke({ organizationId: ORG_ID, hubPrincipalArn: 'arn:aws:iam::111111111111:role/hub-rebuild' }));
    expect(role.Properties.AssumeRolePolicyDocument.Statement[0].Condition).toEqual({
      ArnLike: { 'aws:PrincipalArn': 'arn:aws:iam::111111111111:role/hub-rebuild' },
      StringEquals: { 'aws:PrincipalOrgID': ORG_ID },
    });
  });

  it('allows builds of the configured projects and reads of the configured repositories only', () => {
    const policies = Object.values(spoke().findResources('AWS::IAM::Policy')).filter((p) => JSON.stringify(p).includes('codebuild:StartBuild'));
    expect(policies).toHaveLength(1);
    const statements = policies[0].Properties.PolicyDocument.Statement as Array<{ Action: string[] | string; Resource: unknown; Sid: string }>;
    const resourcesOf = (sid: string): string[] => {
      const r = statements.find((s) => s.Sid === sid)!.Resource;
      return (Array.isArray(r) ? r : [r]).map((x) => JSON.stringify(x));
    };
    expect(resourcesOf('RebuildConfiguredProjects')).toEqual([expect.stringContaining(':codebuild:us-east-1:222222222222:project/apps-payments*')]);
    expect(resourcesOf('ReadConfiguredRepositories')).toEqual([
      expect.stringContaining(':ecr:us-east-1:222222222222:repository/apps/payments*'),
      expect.stringContaining(':ecr:us-east-1:222222222222:repository/apps/ledger'),
    ]);
    // Sorted: the order CDK writes actions in depends on the app's feature flags.
    expect(([] as string[]).concat(statements.find((s) => s.Sid === 'ReadConfiguredRepositories')!.Action).sort()).toEqual([
      'ecr:BatchGetImage',
      'ecr:DescribeImages',
      'ecr:GetDownloadUrlForLayer',
      'ecr:ListImages',
      'ecr:ListTagsForResource',
    ]);
    // inspector2:ListFindings has no resource type: it is the one and only action granted on *.
    expect(statements.filter((s) => s.Resource === '*')).toEqual([expect.objectContaining({ Action: 'inspector2:ListFindings' })]);
  });

  it('grants registry-rescan\'s basic scans only on the configured repositories, and its listing of repository names on repository/*', () => {
    const statements = Object.values(spoke().findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: string[] | string; Resource: unknown; Sid?: string }>);
    const granting = (action: string): Array<{ Sid?: string; Resource: unknown }> => statements.filter((s) => ([] as string[]).concat(s.Action).includes(action));
    expect(granting('ecr:StartImageScan').map((s) => s.Sid)).toEqual(['ScanConfiguredRepositories']);
    expect(granting('ecr:StartImageScan')[0]).toMatchObject({ Action: 'ecr:StartImageScan' });
    expect(([] as unknown[]).concat(granting('ecr:StartImageScan')[0].Resource).map((r) => JSON.stringify(r))).toEqual([
      expect.stringContaining(':ecr:us-east-1:222222222222:repository/apps/payments*"'),
      expect.stringContaining(':ecr:us-east-1:222222222222:repository/apps/ledger"'),
    ]);
    // DescribeRepositories without names is authorized on repository/* only: the one action there.
    expect(granting('ecr:DescribeRepositories').map((s) => s.Sid)).toEqual(['ListRepositories']);
    const onAll = statements.filter((s) => JSON.stringify(s.Resource).includes(':repository/*"'));
    expect(onAll).toEqual([expect.objectContaining({ Sid: 'ListRepositories', Action: 'ecr:DescribeRepositories' })]);
    expect(JSON.stringify(onAll[0].Resource)).toContain(':ecr:us-east-1:222222222222:repository/*"');
  });

  it('grants what learn-lineage reads (config blobs, repository tags) only on the configured repositories', () => {
    const statements = Object.values(spoke().findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: string[] | string; Resource: unknown; Sid?: string }>);
    for (const action of ['ecr:GetDownloadUrlForLayer', 'ecr:ListTagsForResource']) {
      const granting = statements.filter((s) => ([] as string[]).concat(s.Action).includes(action));
      expect(granting.map((s) => s.Sid)).toEqual(['ReadConfiguredRepositories']);
      expect(([] as unknown[]).concat(granting[0].Resource).map((r) => JSON.stringify(r))).toEqual([
        expect.stringContaining(':ecr:us-east-1:222222222222:repository/apps/payments*"'),
        expect.stringContaining(':ecr:us-east-1:222222222222:repository/apps/ledger"'),
      ]);
    }
  });

  it('grants codebuild:StopBuild only on the configured projects (stop-remote-build stops builds of its ended rebuilds there)', () => {
    const statements = Object.values(spoke().findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: string[] | string; Resource: unknown; Sid?: string }>);
    const stopping = statements.filter((s) => ([] as string[]).concat(s.Action).includes('codebuild:StopBuild'));
    expect(stopping.map((s) => s.Sid)).toEqual(['RebuildConfiguredProjects']);
    const resources = ([] as unknown[]).concat(stopping[0].Resource).map((r) => JSON.stringify(r));
    expect(resources).toEqual([expect.stringContaining(':codebuild:us-east-1:222222222222:project/apps-payments*')]);
  });

  it('fails on a hub account that is not 12 digits, and refuses a bare * repository or project', () => {
    expect(() => spoke({ hubAccount: '1111' })).toThrow(/hubAccount must be a 12-digit account id, got "1111"/);
    expect(() => spoke({ repositories: ['*'] })).toThrow(/must name repositories\/projects or prefixes/);
    expect(() => spoke({ projects: [] })).toThrow(/projects is empty/);
  });
});

describe('Function: defineSpokeStacks', () => {
  it('defines one spoke stack per configured spoke, in its own account and region', () => {
    const stacks = defineSpokeStacks(new App(), exampleConfig());
    expect(stacks.map((s) => [s.stackName, s.account, s.region])).toEqual([
      ['PatchlineSpoke-222222222222-eu-west-1', '222222222222', 'eu-west-1'],
      ['PatchlineSpoke-333333333333-us-east-1', '333333333333', 'us-east-1'],
    ]);
    const orders = Template.fromStack(stacks[1]);
    const push = Object.values(orders.findResources('AWS::Events::Rule')).find((r) => JSON.stringify(r).includes('ECR Image Action'))!;
    expect(matchesEventPattern(push.Properties.EventPattern, pushOf('apps/orders-api'))).toBe(true);
    expect(matchesEventPattern(push.Properties.EventPattern, pushOf('apps/payments-api'))).toBe(false);
  });

  it('defines none for the default single-account config', () => {
    expect(defineSpokeStacks(new App(), projectConfig())).toEqual([]);
  });
});
