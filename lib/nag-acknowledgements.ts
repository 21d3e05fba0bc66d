import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { IConstruct } from 'constructs';
import { PatchlineConfig } from '../lambdas/domain/config';

/**
 * The only actions Patchline may be granted on `Resource: "*"`: AWS defines no resource type for them (Service
 * Authorization Reference), so no narrower ARN exists. docs/iam.md lists each; test/lib/iam.test.ts enforces both.
 */
export const RESOURCE_WILDCARD_ACTIONS: Readonly<Record<string, string>> = {
  'xray:PutTraceSegments': 'X-Ray tracing (Lambda active tracing, Step Functions tracing): segments are not a resource.',
  'xray:PutTelemetryRecords': 'X-Ray daemon telemetry: no resource type.',
  'xray:GetSamplingRules': 'X-Ray sampling rules read by the Step Functions tracer: no resource-level permissions.',
  'xray:GetSamplingTargets': 'X-Ray sampling targets: no resource-level permissions.',
  'logs:CreateLogDelivery': 'Vended-log delivery Step Functions sets up for its execution logs: no resource type.',
  'logs:GetLogDelivery': 'Vended-log delivery: no resource type.',
  'logs:UpdateLogDelivery': 'Vended-log delivery: no resource type.',
  'logs:DeleteLogDelivery': 'Vended-log delivery: no resource type.',
  'logs:ListLogDeliveries': 'Vended-log delivery: no resource type.',
  'logs:PutResourcePolicy': 'Account-level CloudWatch Logs resource policy that lets the delivery write to the log group: no resource type.',
  'logs:DescribeResourcePolicies': 'Account-level CloudWatch Logs resource policies: no resource type.',
  'logs:DescribeLogGroups': 'Step Functions checks the destination log group exists; DescribeLogGroups is authorized on "*" only.',
  'inspector2:ListFindings': 'Inspector2 findings have no resource-level permission for listing; the spoke role filters by repository in the request.',
};

/** The one workflow that logs ERROR rather than ALL, for volume (path below the stack). */
const HIGH_VOLUME_WORKFLOW = 'FindingReceivedWorkflow/StateMachine';

/** KMS wildcards CDK's SQS grants emit (send to an SSE-KMS queue); acknowledged only when scoped to the stack's own key. */
const KEY_ACTION_WILDCARDS = new Set(['kms:GenerateDataKey*', 'kms:ReEncrypt*']);

export interface NagAcknowledgement {
  /** Construct path of the acknowledged resource. */
  readonly path: string;
  /** cdk-nag finding id, e.g. `AwsSolutions-IAM5[Resource::*]`. */
  readonly id: string;
  readonly reason: string;
}

interface PolicyStatementJson {
  readonly Effect?: string;
  readonly Action?: string | string[];
  readonly Resource?: unknown;
}

/**
 * Acknowledges the AwsSolutions findings Patchline accepts, each on the one resource it concerns and with its reason.
 * Rules, not blanket suppressions: a finding is acknowledged only when the resource matches the accepted shape
 * (allow-listed `*` actions, the stack's own key, one function's versions, a configured CodeBuild prefix), so a new
 * wildcard anywhere else still fails synthesis. Returns what it acknowledged, for the tests and the audit trail.
 */
export function acknowledgeNagFindings(stack: Stack, config: PatchlineConfig): NagAcknowledgement[] {
  const acknowledged: NagAcknowledgement[] = [];
  const seen = new Set<string>();
  const ack = (resource: IConstruct, id: string, reason: string): void => {
    if (seen.has(`${resource.node.path} ${id}`)) return;
    seen.add(`${resource.node.path} ${id}`);
    const full = `${resource.node.path}: ${reason}`;
    Validations.of(resource).acknowledge({ id, reason: full });
    acknowledged.push({ path: resource.node.path, id, reason: full });
  };
  const resources = stack.node.findAll().filter((c): c is CfnResource => CfnResource.isCfnResource(c));
  const keyArns = new Set(resources.filter((r) => r instanceof kms.CfnKey).map((k) => `<${stack.getLogicalId(k)}.Arn>`));
  const functionIds = new Set(resources.filter((r) => r instanceof lambda.CfnFunction).map((f) => stack.getLogicalId(f)));
  const projectPrefixes = new Set(config.rebuild.projects.filter((p) => p.endsWith('*')));

  for (const resource of resources) {
    if (resource instanceof lambda.CfnFunction && stack.resolve(resource.runtime) === lambda.Runtime.NODEJS_22_X.name) {
      ack(
        resource,
        'AwsSolutions-L1',
        'pinned to nodejs22.x, a supported LTS runtime: the bundle targets node22 and the handlers are tested on it; moving to nodejs24.x is a deliberate upgrade (bundling target, Powertools support), not a silent one.',
      );
    }
    if (resource instanceof sfn.CfnStateMachine && resource.node.path === `${stack.node.path}/${HIGH_VOLUME_WORKFLOW}/Resource`) {
      const logging = stack.resolve(resource.loggingConfiguration) as { level?: string } | undefined;
      if (logging?.level === sfn.LogLevel.ERROR) {
        ack(
          resource,
          'AwsSolutions-SF1',
          'finding-received runs for every Inspector finding (~10,000 a day) with the whole finding as input: it logs ERROR with execution data, so every failed or refused execution is logged in full, and not the ~12 GB a month of successful ones (docs/cost.md). The other workflows log ALL.',
        );
      }
    }
    if (!(resource instanceof iam.CfnPolicy)) continue;
    // One finding id can come from several statements: it is acknowledged only if every one of them is accepted.
    const verdicts = new Map<string, { accepted: boolean; reason: string }>();
    const judge = (id: string, accepted: boolean, reason: string): void => {
      const previous = verdicts.get(id);
      verdicts.set(id, { accepted: accepted && (previous?.accepted ?? true), reason: previous ? `${previous.reason} ${reason}` : reason });
    };
    const document = stack.resolve(resource.policyDocument) as { Statement?: PolicyStatementJson[] };
    for (const statement of document.Statement ?? []) {
      if (statement.Effect !== 'Allow') continue;
      const actions = toArray(statement.Action);
      const targets = toArray(statement.Resource).map(flattenCfnReference);
      for (const target of targets.filter((t) => t.includes('*'))) {
        const id = `AwsSolutions-IAM5[Resource::${target}]`;
        const versions = /^<(.+)\.Arn>:\*$/.exec(target);
        const project = /:codebuild:(?:[a-z0-9-]*|<AWS::Region>):(?:\d{12}|<AWS::AccountId>):project\/(.+\*)$/.exec(target);
        if (target === '*') {
          judge(id, actions.every((a) => a in RESOURCE_WILDCARD_ACTIONS), `${actions.join(', ')} accept no resource scope (allow-list in docs/iam.md).`);
        } else if (versions) {
          judge(id, functionIds.has(versions[1]) && actions.every((a) => a === 'lambda:InvokeFunction'), `Step Functions LambdaInvoke grants one function (${versions[1]}) and its versions/aliases (":*"), nothing else.`);
        } else if (project) {
          judge(id, projectPrefixes.has(project[1]) && actions.every((a) => a.startsWith('codebuild:')), `rebuild.projects in patchline.config.json names the CodeBuild project prefix ${project[1]}: the operator scoped it.`);
        } else {
          judge(id, false, 'not an accepted wildcard');
        }
      }
      for (const action of actions.filter((a) => a.includes('*'))) {
        const scopedToKey = KEY_ACTION_WILDCARDS.has(action) && targets.length > 0 && targets.every((t) => keyArns.has(t));
        judge(`AwsSolutions-IAM5[Action::${action}]`, scopedToKey, `${action} is emitted by CDK's grant for an SSE-KMS queue and is scoped to Patchline's own key.`);
      }
    }
    for (const [id, verdict] of verdicts) if (verdict.accepted) ack(resource, id, verdict.reason);
  }
  return acknowledged;
}

function toArray(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]) as string[];
}

/** The way cdk-nag prints a resource in a finding id: `<Logical.Arn>`, `<AWS::Partition>`, joins concatenated. */
export function flattenCfnReference(reference: unknown): string {
  if (reference === undefined) return '';
  if (typeof reference === 'string') return reference.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const node = reference as Record<string, unknown>;
  if (node['Fn::Join']) {
    const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
    return items.map(flattenCfnReference).join(delimiter);
  }
  if (node['Fn::Sub']) return flattenCfnReference(node['Fn::Sub']);
  if (node['Fn::GetAtt']) {
    const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenCfnReference(resource)}.${flattenCfnReference(attribute)}>`;
  }
  if (node['Fn::ImportValue']) return flattenCfnReference(node['Fn::ImportValue']);
  if (node.Ref) return `<${flattenCfnReference(node.Ref)}>`;
  return JSON.stringify(reference);
}
