import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'fs';
import { join } from 'path';
import { matchesEventPattern } from '../../cli/local/event-pattern';
import { CfnTemplate, TemplateResolver } from '../../cli/local/synthesized-template';
import { parseConfig, PatchlineConfig } from '../../lambdas/domain/config';
import { REGISTRY_SCOPE_ENV } from '../../lambdas/domain/registry-scope';
import { HUB_EVENT_BUS_NAME } from '../../lib/hub-event-bus';
import { PatchlineStack } from '../../lib/patchline-stack';
import { defineSpokeStacks } from '../../lib/spoke-stack';
import { DELETE_SAMPLE, digestOf, projectConfig, PUSH_SAMPLE, REPO_ROOT, sampleEvent } from '../support/template';

const FINDING_SAMPLE = 'docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json';
const HUB_ENV = { account: '111111111111', region: 'eu-west-1' };

function exampleRaw(): { organization: { spokes: Array<{ region: string }> } } {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'examples/organization.config.json'), 'utf8')) as { organization: { spokes: Array<{ region: string }> } };
}
const exampleConfig = (): PatchlineConfig => parseConfig(exampleRaw());
/** Both team accounts in the hub region. */
function sameRegionConfig(): PatchlineConfig {
  const raw = exampleRaw();
  raw.organization.spokes[1].region = HUB_ENV.region;
  return parseConfig(raw);
}

function hub(config: PatchlineConfig): { template: Template; stack: PatchlineStack } {
  const stack = new PatchlineStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Patchline', { config, env: HUB_ENV });
  return { template: Template.fromStack(stack), stack };
}

type States = Record<string, Record<string, unknown>>;
function rebuildStates(template: Template): States {
  const machines = template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineType: 'STANDARD' } });
  const resolver = new TemplateResolver(template.toJSON() as CfnTemplate, 'table');
  return (JSON.parse(String(resolver.resolve(Object.values(machines)[0].Properties.DefinitionString))) as { States: States }).States;
}

/** Every sts:AssumeRole statement of the template (with `sid`, only that statement), with its resources. */
function assumeRoleResources(template: Template, sid?: string): unknown[] {
  const policies = Object.values(template.findResources('AWS::IAM::Policy')) as Array<{ Properties: { PolicyDocument: { Statement: Array<{ Action: unknown; Resource: unknown; Sid?: string }> } } }>;
  return policies
    .flatMap((p) => p.Properties.PolicyDocument.Statement)
    .filter((s) => ([] as unknown[]).concat(s.Action).includes('sts:AssumeRole') && (sid === undefined || s.Sid === sid))
    .map((s) => s.Resource);
}

describe('Class: PatchlineStack (rebuilds in spoke accounts)', () => {
  const { template, stack } = hub(exampleConfig());

  it('chooses between the hub StartBuild and StartBuildInSpoke on the request role, the same call with the task credentials', () => {
    const states = rebuildStates(hub(sameRegionConfig()).template);
    expect(states.MarkImageBuilding.Next).toBe('BuildAccount');
    expect(states.BuildAccount).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.buildRoleArn', IsPresent: true, Next: 'StartBuildInSpoke' }],
      Default: 'StartBuild',
    });
    expect(states.StartRemoteBuild).toBeUndefined();
    expect(states.StartBuildInSpoke.Credentials).toEqual({ 'RoleArn.$': '$.buildRoleArn' });
    expect(states.StartBuild.Credentials).toBeUndefined();
    const { Credentials: _credentials, ...spokeTask } = states.StartBuildInSpoke;
    expect(spokeTask).toEqual(states.StartBuild);
  });

  it('takes a spoke in another region through StartRemoteBuild: a Lambda parked on its task token, with the same retries and catch', () => {
    const states = rebuildStates(template);
    expect((states.BuildAccount.Choices as unknown[])[0]).toEqual({
      And: [
        { Variable: '$.buildRoleArn', IsPresent: true },
        { Variable: '$.buildRegion', IsPresent: true },
        { Not: { Variable: '$.buildRegion', StringEquals: HUB_ENV.region } },
      ],
      Next: 'StartRemoteBuild',
    });
    expect((states.BuildAccount.Choices as unknown[]).slice(1)).toEqual([{ Variable: '$.buildRoleArn', IsPresent: true, Next: 'StartBuildInSpoke' }]);
    const remote = states.StartRemoteBuild as { Resource: string; Parameters: { Payload: Record<string, unknown>; FunctionName: unknown }; ResultPath: string; Next: string; TimeoutSeconds: number; Retry: Array<{ ErrorEquals: string[] }>; Catch: unknown };
    expect(remote.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(JSON.stringify(remote.Parameters.FunctionName)).toContain('StartRemoteBuildFunction');
    expect(remote.Parameters.Payload).toEqual({
      'taskToken.$': '$$.Task.Token',
      'execution.$': '$$.Execution.Name',
      'project.$': '$.project',
      'image.$': '$.image',
      'baseImage.$': '$.baseImage',
      'parentImages.$': '$.parentImages',
      'campaignId.$': '$.campaignId',
      'buildAccount.$': '$.buildAccount',
      'buildRegion.$': '$.buildRegion',
      'buildRoleArn.$': '$.buildRoleArn',
    });
    // Same result shape, same next state, same failure path as the .sync StartBuild tasks.
    expect(remote.ResultPath).toBe(states.StartBuild.ResultPath);
    expect(remote.Next).toBe(states.StartBuild.Next);
    expect(remote.Catch).toEqual(states.StartBuild.Catch);
    expect(remote.Retry).toEqual(expect.arrayContaining((states.StartBuild.Retry as unknown[]).map((r) => expect.objectContaining(r as object))));
    expect(remote.TimeoutSeconds).toBe(9 * 3600);
  });

  it('lets the rebuild workflow role assume exactly the roles of the spokes in the hub region, start- and stop-remote-build exactly the others', () => {
    expect(assumeRoleResources(template, 'BuildInSpokeAccounts')).toEqual(['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1']);
    expect(assumeRoleResources(template, 'BuildInRemoteSpokes')).toEqual(['arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1']);
    expect(assumeRoleResources(template, 'StopBuildsInRemoteSpokes')).toEqual(['arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1']);
    // The fourth and fifth are learn-lineage's ReadSpokeRegistries and registry-rescan's RescanSpokeRegistries (below).
    expect(assumeRoleResources(template)).toHaveLength(5);
    const stopFn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('StopRemoteBuildFunction'))![1] as { Properties: { Role: { 'Fn::GetAtt': string[] } } };
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: stopFn.Properties.Role['Fn::GetAtt'][0] }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'StopBuildsInRemoteSpokes', Action: 'sts:AssumeRole', Resource: 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1' })]) },
    });
    const startFn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('StartRemoteBuildFunction'))![1] as { Properties: { Role: { 'Fn::GetAtt': string[] } } };
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: startFn.Properties.Role['Fn::GetAtt'][0] }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'BuildInRemoteSpokes', Action: 'sts:AssumeRole', Resource: 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1' })]) },
    });
    expect(assumeRoleResources(hub(sameRegionConfig()).template, 'BuildInSpokeAccounts')).toEqual([
      ['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1', 'arn:aws:iam::333333333333:role/PatchlineHubAccess-eu-west-1'],
    ]);
    expect(assumeRoleResources(hub(sameRegionConfig()).template)).toHaveLength(3);
    const roleOfMachine = (template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineType: 'STANDARD' } }) as Record<string, { Properties: { RoleArn: { 'Fn::GetAtt': string[] } } }>);
    const roleId = Object.values(roleOfMachine)[0].Properties.RoleArn['Fn::GetAtt'][0];
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: roleId }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sts:AssumeRole', Resource: 'arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1' })]) },
    });
  });

  it('grants no sts:AssumeRole and sets no registry scope for the default single-account config', () => {
    const single = hub(projectConfig()).template;
    expect(assumeRoleResources(single)).toEqual([]);
    const functions = Object.values(single.findResources('AWS::Lambda::Function')) as Array<{ Properties: { Environment?: { Variables?: Record<string, unknown> } } }>;
    for (const f of functions) expect(f.Properties.Environment?.Variables?.[REGISTRY_SCOPE_ENV]).toBeUndefined();
  });

  it('gives image-pushed the hub and spokes as its registry scope', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [REGISTRY_SCOPE_ENV]: JSON.stringify({
            hub: HUB_ENV,
            spokes: [
              { account: '222222222222', region: 'eu-west-1' },
              { account: '333333333333', region: 'us-east-1' },
            ],
          }),
        }),
      },
    });
  });

  it('is trusted by the spoke roles: the workflow role CloudFormation names <stack>-<logical id>-… matches their PrincipalArn pattern', () => {
    const machines = template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineType: 'STANDARD' } }) as Record<string, { Properties: { RoleArn: { 'Fn::GetAtt': string[] } } }>;
    const roleId = Object.values(machines)[0].Properties.RoleArn['Fn::GetAtt'][0];
    const spokeTemplate = Template.fromStack(defineSpokeStacks(new App(), exampleConfig(), stack.stackName)[0]);
    const trust = Object.values(spokeTemplate.findResources('AWS::IAM::Role', { Properties: { RoleName: 'PatchlineHubAccess-eu-west-1' } }))[0] as {
      Properties: { AssumeRolePolicyDocument: { Statement: Array<{ Condition: { ArnLike: Record<string, unknown> } }> } };
    };
    const pattern = JSON.stringify(trust.Properties.AssumeRolePolicyDocument.Statement[0].Condition.ArnLike['aws:PrincipalArn']);
    const prefix = /role\/([^*]+)\*/.exec(pattern)![1];
    // The generated name is at most 64 characters: stack name and logical id are not truncated for a short stack name.
    expect(`${stack.stackName}-${roleId}-ABCDEFGHIJKL`.length).toBeLessThanOrEqual(64);
    expect(`${stack.stackName}-${roleId}-ABCDEFGHIJKL`.startsWith(prefix)).toBe(true);
  });

  it.each([
    ['start-remote-build', 'StartRemoteBuildFunction'],
    ['stop-remote-build', 'StopRemoteBuildFunction'],
  ])('has the spoke role outside the hub region trust the %s function role by its CloudFormation name prefix', (_handler, functionId) => {
    const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith(functionId))![1] as { Properties: { Role: { 'Fn::GetAtt': string[] } } };
    const roleId = fn.Properties.Role['Fn::GetAtt'][0];
    const remoteSpoke = defineSpokeStacks(new App(), exampleConfig(), stack.stackName).find((s) => s.region === 'us-east-1')!;
    const trust = Object.values(Template.fromStack(remoteSpoke).findResources('AWS::IAM::Role', { Properties: { RoleName: 'PatchlineHubAccess-us-east-1' } }))[0] as {
      Properties: { AssumeRolePolicyDocument: { Statement: Array<{ Condition: { ArnLike: Record<string, unknown[]> } }> } };
    };
    const prefixes = trust.Properties.AssumeRolePolicyDocument.Statement[0].Condition.ArnLike['aws:PrincipalArn'].map((p) => /role\/([^*]+)\*/.exec(JSON.stringify(p))![1]);
    const generated = `${stack.stackName}-${roleId}-ABCDEFGHIJKL`;
    expect(generated.length).toBeLessThanOrEqual(64);
    expect(prefixes.filter((p) => generated.startsWith(p))).toEqual([`${stack.stackName}-${functionId}Role`]);
  });

  it('lets learn-lineage assume exactly the hub-access roles of every configured spoke, whatever their region', () => {
    const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('LineageDiscoveryFunction'))![1] as { Properties: { Role: { 'Fn::GetAtt': string[] } } };
    expect(assumeRoleResources(template, 'ReadSpokeRegistries')).toEqual([['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1', 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1']]);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: fn.Properties.Role['Fn::GetAtt'][0] }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Sid: 'ReadSpokeRegistries', Action: 'sts:AssumeRole', Resource: ['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1', 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1'] }),
        ]),
      },
    });
    expect(assumeRoleResources(hub(sameRegionConfig()).template, 'ReadSpokeRegistries')).toEqual([
      ['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1', 'arn:aws:iam::333333333333:role/PatchlineHubAccess-eu-west-1'],
    ]);
  });

  it('has every spoke role, in the hub region or not, trust the learn-lineage function role by its CloudFormation name prefix', () => {
    const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('LineageDiscoveryFunction'))![1] as { Properties: { Role: { 'Fn::GetAtt': string[] } } };
    const generated = `${stack.stackName}-${fn.Properties.Role['Fn::GetAtt'][0]}-ABCDEFGHIJKL`;
    expect(generated.length).toBeLessThanOrEqual(64);
    const spokes = defineSpokeStacks(new App(), exampleConfig(), stack.stackName);
    expect(spokes.map((s) => s.region)).toEqual(['eu-west-1', 'us-east-1']);
    for (const spoke of spokes) {
      const trust = Object.values(Template.fromStack(spoke).findResources('AWS::IAM::Role', { Properties: { RoleName: `PatchlineHubAccess-${spoke.region}` } }))[0] as {
        Properties: { AssumeRolePolicyDocument: { Statement: Array<{ Condition: { ArnLike: Record<string, unknown[]> } }> } };
      };
      const prefixes = trust.Properties.AssumeRolePolicyDocument.Statement[0].Condition.ArnLike['aws:PrincipalArn'].map((p) => /role\/([^*]+)\*/.exec(JSON.stringify(p))![1]);
      expect(prefixes.filter((p) => generated.startsWith(p))).toEqual([`${stack.stackName}-LineageDiscoveryFunctionRole`]);
    }
  });

  it('lets registry-rescan assume exactly the hub-access roles of every configured spoke, and no role without an organization', () => {
    const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('RegistryRescanFunction'))![1] as { Properties: { Role: { 'Fn::GetAtt': string[] } } };
    const spokeRoles = ['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1', 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1'];
    expect(assumeRoleResources(template, 'RescanSpokeRegistries')).toEqual([spokeRoles]);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: fn.Properties.Role['Fn::GetAtt'][0] }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'RescanSpokeRegistries', Action: 'sts:AssumeRole', Resource: spokeRoles })]) },
    });
    // Its only AssumeRole statement.
    const own = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: fn.Properties.Role['Fn::GetAtt'][0] }] } });
    expect(JSON.stringify(own).match(/sts:AssumeRole/g)).toHaveLength(1);
    expect(assumeRoleResources(hub(sameRegionConfig()).template, 'RescanSpokeRegistries')).toEqual([
      ['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1', 'arn:aws:iam::333333333333:role/PatchlineHubAccess-eu-west-1'],
    ]);
    const single = { ...exampleConfig(), organization: undefined };
    expect(assumeRoleResources(hub(single).template, 'RescanSpokeRegistries')).toEqual([]);
    // And the spokes it sweeps, with the repositories configured for each, in its environment.
    const env = (fn.Properties as unknown as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    expect(JSON.parse(String(env.SPOKE_REPOSITORIES))).toEqual([
      { account: '222222222222', region: 'eu-west-1', repositories: ['apps/payments*'] },
      { account: '333333333333', region: 'us-east-1', repositories: ['apps/orders*'] },
    ]);
  });

  it('has every spoke role trust the registry-rescan function role by its CloudFormation name prefix', () => {
    const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('RegistryRescanFunction'))![1] as { Properties: { Role: { 'Fn::GetAtt': string[] } } };
    const generated = `${stack.stackName}-${fn.Properties.Role['Fn::GetAtt'][0]}-ABCDEFGHIJKL`;
    // At most 64 characters: CloudFormation does not truncate the logical id, so the prefix holds.
    expect(generated.length).toBeLessThanOrEqual(64);
    for (const spoke of defineSpokeStacks(new App(), exampleConfig(), stack.stackName)) {
      const trust = Object.values(Template.fromStack(spoke).findResources('AWS::IAM::Role', { Properties: { RoleName: `PatchlineHubAccess-${spoke.region}` } }))[0] as {
        Properties: { AssumeRolePolicyDocument: { Statement: Array<{ Condition: { ArnLike: Record<string, unknown[]> } }> } };
      };
      const prefixes = trust.Properties.AssumeRolePolicyDocument.Statement[0].Condition.ArnLike['aws:PrincipalArn'].map((p) => /role\/([^*]+)\*/.exec(JSON.stringify(p))![1]);
      expect(prefixes.filter((p) => generated.startsWith(p))).toEqual([`${stack.stackName}-RegistryRescanFunctionRole`]);
    }
  });

  it('sends the ended rebuilds\u2019 status changes to stop-remote-build too, beside release-slot and record-build-failure, with a DLQ and retries', () => {
    const stopFn = Object.keys(template.findResources('AWS::Lambda::Function')).find((id) => id.startsWith('StopRemoteBuildFunction'))!;
    const releaseFn = Object.keys(template.findResources('AWS::Lambda::Function')).find((id) => id.startsWith('ReleaseSlotFunction'))!;
    const recordFailureFn = Object.keys(template.findResources('AWS::Lambda::Function')).find((id) => id.startsWith('RecordBuildFailureFunction'))!;
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as Array<{ Properties: { EventPattern: Record<string, unknown>; Targets: Array<{ Arn: unknown; DeadLetterConfig?: unknown; RetryPolicy?: unknown }> } }>;
    const ended = rules.filter((r) => JSON.stringify(r.Properties.EventPattern).includes('Step Functions Execution Status Change'));
    expect(ended).toHaveLength(1);
    expect(ended[0].Properties.EventPattern.detail).toEqual(expect.objectContaining({ status: ['FAILED', 'ABORTED', 'TIMED_OUT'] }));
    expect(ended[0].Properties.Targets.map((t) => t.Arn)).toEqual([{ 'Fn::GetAtt': [releaseFn, 'Arn'] }, { 'Fn::GetAtt': [recordFailureFn, 'Arn'] }, { 'Fn::GetAtt': [stopFn, 'Arn'] }]);
    expect(ended[0].Properties.Targets[2]).toEqual(expect.objectContaining({ DeadLetterConfig: expect.anything(), RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 8 } }));
    // Only with a spoke outside the hub region: elsewhere there is no remote build to stop.
    expect(Object.keys(hub(sameRegionConfig()).template.findResources('AWS::Lambda::Function')).some((id) => id.startsWith('StopRemoteBuildFunction'))).toBe(false);
  });
});

describe('Class: HubEventBus (workflow rules)', () => {
  const { template } = hub(exampleConfig());
  const rules = template.toJSON().Resources as Record<string, { Type: string; Properties: { EventBusName?: unknown; EventPattern: Record<string, unknown>; Targets: Array<{ Arn: unknown; DeadLetterConfig?: unknown }> } }>;
  const busId = Object.entries(rules).find(([, r]) => r.Type === 'AWS::Events::EventBus')![0];
  const onHubBus = Object.entries(rules).filter(([, r]) => r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties.EventBusName) === JSON.stringify({ Ref: busId }));
  const named = (prefix: string): { EventPattern: Record<string, unknown>; Targets: Array<{ Arn: unknown; DeadLetterConfig?: unknown }> } =>
    onHubBus.find(([id]) => id.startsWith(prefix))![1].Properties;
  const spokePush = (repository: string, account = '222222222222'): Record<string, unknown> => {
    const event = structuredClone(sampleEvent(PUSH_SAMPLE));
    event.account = account;
    event.detail = { ...(event.detail as object), 'repository-name': repository, 'image-digest': digestOf(repository) };
    return event;
  };

  it('puts exactly two workflow rules on the hub bus (plus the remote build end rule), each starting a workflow with the dead-letter queue', () => {
    expect(template.toJSON().Resources[busId].Properties.Name).toBe(HUB_EVENT_BUS_NAME);
    expect(onHubBus.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(['HubCodeBuildEndedRule', 'HubEventBusHubEcrPushRule', 'HubEventBusHubInspectorFindingRule']);
    for (const [, rule] of onHubBus.filter(([id]) => id.startsWith('HubEventBus'))) {
      expect(rule.Properties.Targets).toHaveLength(1);
      expect(JSON.stringify(rule.Properties.Targets[0].Arn)).toContain('Workflow');
      expect(rule.Properties.Targets[0].DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [expect.stringMatching(/^DeadLetterQueue/), 'Arn'] } });
    }
    expect(JSON.stringify(named('HubEventBusHubEcrPushRule').Targets[0].Arn)).toContain('ImagePushedWorkflow');
    expect(JSON.stringify(named('HubEventBusHubInspectorFindingRule').Targets[0].Arn)).toContain('FindingReceivedWorkflow');
  });

  it('takes a push of a spoke repository and a finding as the default bus does, and refuses a DELETE or another repository', () => {
    const push = named('HubEventBusHubEcrPushRule').EventPattern;
    expect(matchesEventPattern(push, spokePush('apps/payments-api'))).toBe(true);
    expect(matchesEventPattern(push, spokePush('apps/orders-api', '333333333333'))).toBe(true);
    expect(matchesEventPattern(push, spokePush('enterprise/python-311'))).toBe(false);
    const deleted = structuredClone(sampleEvent(DELETE_SAMPLE));
    deleted.detail = { ...(deleted.detail as object), 'repository-name': 'apps/payments-api' };
    expect(matchesEventPattern(push, deleted)).toBe(false);
    // The finding rule is the default bus's InspectorFindingRule pattern, exactly.
    const defaultFinding = Object.entries(rules).find(([id, r]) => r.Type === 'AWS::Events::Rule' && r.Properties.EventBusName === undefined && id.includes('InspectorFindingRule'))![1];
    expect(named('HubEventBusHubInspectorFindingRule').EventPattern).toEqual(defaultFinding.Properties.EventPattern);
    expect(matchesEventPattern(named('HubEventBusHubInspectorFindingRule').EventPattern, sampleEvent(FINDING_SAMPLE))).toBe(true);
  });

  it('creates no rule on the hub bus and no hub bus for the default single-account config', () => {
    const single = hub(projectConfig()).template;
    single.resourceCountIs('AWS::Events::EventBus', 0);
    for (const rule of Object.values(single.findResources('AWS::Events::Rule'))) expect((rule as { Properties: { EventBusName?: unknown } }).Properties.EventBusName).toBeUndefined();
  });
});
