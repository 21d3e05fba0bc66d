import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'fs';
import { join } from 'path';
import { flattenCfnReference, RESOURCE_WILDCARD_ACTIONS } from '../../lib/nag-acknowledgements';
import { readConfigFile } from '../../lib/patchline-app';
import { PatchlineStack } from '../../lib/patchline-stack';
import { defineSpokeStacks } from '../../lib/spoke-stack';

type Json = Record<string, unknown>;

interface Statement {
  readonly Effect?: string;
  readonly Action?: string | string[];
  readonly Resource?: unknown;
  readonly Principal?: unknown;
}

interface PolicyDocumentAt {
  /** Logical id of the resource and where in it the document sits. */
  readonly where: string;
  /** Identity policies grant on `Resource`; in a resource policy `Resource` is the resource itself. */
  readonly identity: boolean;
  readonly kind: string;
  readonly statements: Statement[];
}

/** Every policy document of a template: identity (roles, policies) and resource policies (key, queue, topic, bus). */
function policyDocuments(resources: Record<string, Json>): PolicyDocumentAt[] {
  const found: PolicyDocumentAt[] = [];
  const add = (where: string, kind: string, identity: boolean, document: unknown): void => {
    const statements = ((document as { Statement?: Statement[] } | undefined)?.Statement ?? []) as Statement[];
    found.push({ where, kind, identity, statements });
  };
  for (const [id, resource] of Object.entries(resources)) {
    const props = (resource.Properties ?? {}) as Json;
    switch (resource.Type) {
      case 'AWS::IAM::Policy':
      case 'AWS::IAM::ManagedPolicy':
        add(id, String(resource.Type), true, props.PolicyDocument);
        break;
      case 'AWS::IAM::Role':
        for (const [i, policy] of ((props.Policies ?? []) as Json[]).entries()) add(`${id}.Policies[${i}]`, 'AWS::IAM::Role', true, policy.PolicyDocument);
        break;
      case 'AWS::KMS::Key':
        add(id, 'AWS::KMS::Key', false, props.KeyPolicy);
        break;
      case 'AWS::SQS::QueuePolicy':
      case 'AWS::SNS::TopicPolicy':
        add(id, String(resource.Type), false, props.PolicyDocument);
        break;
      case 'AWS::Events::EventBusPolicy':
        add(id, 'AWS::Events::EventBusPolicy', false, props.Statement === undefined ? undefined : { Statement: [props.Statement] });
        break;
    }
  }
  return found;
}

const list = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** The AWS default key policy statement: the account root may use `kms:*`, so IAM policies (not the key) decide. */
function isKeyAdminDelegation(document: PolicyDocumentAt, statement: Statement): boolean {
  if (document.kind !== 'AWS::KMS::Key') return false;
  const principal = flattenCfnReference((statement.Principal as { AWS?: unknown } | undefined)?.AWS);
  return list(statement.Action).join() === 'kms:*' && /^arn:<AWS::Partition>:iam::(\d{12}|<AWS::AccountId>):root$/.test(principal);
}

/** Least-privilege violations of a template: wildcard actions, and `Resource: "*"` outside the allow-list. */
function iamViolations(resources: Record<string, Json>): string[] {
  const violations: string[] = [];
  for (const document of policyDocuments(resources)) {
    for (const statement of document.statements) {
      if (statement.Effect !== 'Allow') continue; // SSL-only Deny statements use sqs:* / sns:* on purpose
      const actions = list(statement.Action).map(String);
      for (const action of actions) {
        if ((action === '*' || /^[a-z0-9-]+:\*$/.test(action)) && !isKeyAdminDelegation(document, statement)) {
          violations.push(`${document.where}: wildcard action ${action}`);
        }
      }
      if (!document.identity) continue;
      if (list(statement.Resource).includes('*')) {
        for (const action of actions.filter((a) => !(a in RESOURCE_WILDCARD_ACTIONS))) violations.push(`${document.where}: ${action} on Resource "*"`);
      }
    }
  }
  return violations;
}

function synthesizedResources(configFile: string): Record<string, Json> {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PatchlineStack(app, 'Patchline', { config: readConfigFile(join(__dirname, '../..', configFile)), env: { account: '123456789012', region: 'us-east-1' } });
  return Template.fromStack(stack).toJSON().Resources as Record<string, Json>;
}

/** The single-account config and the hub of the multi-account example (it adds the hub event bus and its policy). */
const CONFIG_FILES = ['patchline.config.json', 'examples/organization.config.json'];

describe.each(CONFIG_FILES)('Class: PatchlineStack (IAM, synthesized from %s)', (configFile) => {
  const resources = synthesizedResources(configFile);

  it('grants no wildcard action and no "*" resource outside the allow-list', () => {
    expect(iamViolations(resources)).toEqual([]);
  });

  it('examines every role, policy and resource policy of the template', () => {
    const documents = policyDocuments(resources);
    const policies = Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Policy').length;
    expect(documents.filter((d) => d.kind === 'AWS::IAM::Policy')).toHaveLength(policies);
    expect(documents.some((d) => d.kind === 'AWS::KMS::Key')).toBe(true);
    expect(documents.some((d) => d.kind === 'AWS::SQS::QueuePolicy')).toBe(true);
    expect(documents.some((d) => d.kind === 'AWS::SNS::TopicPolicy')).toBe(true);
  });

  it('attaches no AWS managed policy to any role', () => {
    const roles = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::IAM::Role');
    expect(roles.length).toBeGreaterThan(0);
    expect(roles.filter(([, r]) => ((r.Properties as Json).ManagedPolicyArns as unknown[] | undefined)?.length).map(([id]) => id)).toEqual([]);
  });

  it('scopes the functions\u2019 table access to the table and its named index', () => {
    const tableResources = new Set<string>();
    for (const document of policyDocuments(resources)) {
      for (const statement of document.statements) {
        if (list(statement.Action).some((a) => String(a).startsWith('dynamodb:'))) list(statement.Resource).forEach((r) => tableResources.add(flattenCfnReference(r)));
      }
    }
    expect([...tableResources].filter((r) => r.includes('*'))).toEqual([]);
  });

  it('lets release-alert-claim delete alert dedup records and do nothing else in the table', () => {
    const policies = Object.entries(resources).filter(([id, r]) => r.Type === 'AWS::IAM::Policy' && id.startsWith('ReleaseAlertClaimFunctionRole'));
    expect(policies).toHaveLength(1);
    const statements = ((policies[0][1].Properties as Json).PolicyDocument as { Statement: Array<Statement & { Condition?: unknown }> }).Statement;
    const table = statements.filter((s) => list(s.Action).some((a) => String(a).startsWith('dynamodb:')));
    expect(table.map((s) => ({ actions: list(s.Action), resources: list(s.Resource).map(flattenCfnReference), condition: s.Condition }))).toEqual([
      { actions: ['dynamodb:DeleteItem'], resources: [expect.stringMatching(/^<Table[0-9A-F]+\.Arn>$/)], condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ALERT#*'] } } },
    ]);
    const key = statements.filter((s) => list(s.Action).some((a) => String(a).startsWith('kms:')));
    expect(key.flatMap((s) => list(s.Action)).sort()).toEqual(['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey']);
  });

});

describe('Class: PatchlineSpokeStack (IAM, synthesized from examples/organization.config.json)', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const spokes = defineSpokeStacks(app, readConfigFile(join(__dirname, '../../examples/organization.config.json')));

  it('grants no wildcard action and no "*" resource outside the allow-list in any spoke', () => {
    expect(spokes.length).toBeGreaterThan(0);
    for (const spoke of spokes) {
      expect({ spoke: spoke.stackName, violations: iamViolations(Template.fromStack(spoke).toJSON().Resources as Record<string, Json>) }).toEqual({ spoke: spoke.stackName, violations: [] });
    }
  });
});

describe('RESOURCE_WILDCARD_ACTIONS', () => {
  it('lists every allow-listed "*" action in docs/iam.md with its reason', () => {
    const doc = readFileSync(join(__dirname, '../../docs/iam.md'), 'utf8');
    for (const action of Object.keys(RESOURCE_WILDCARD_ACTIONS)) expect(doc).toMatch(new RegExp(`^\\| \`${action.replace(/[*]/g, '\\*')}\` \\| \\S`, 'm'));
  });
});

describe('Function: iamViolations', () => {
  const policy = (statement: Statement, type = 'AWS::IAM::Policy'): Record<string, Json> => ({
    Probe: { Type: type, Properties: type === 'AWS::KMS::Key' ? { KeyPolicy: { Statement: [statement] } } : { PolicyDocument: { Statement: [statement] } } },
  });

  it('fails on Action "*"', () => {
    expect(iamViolations(policy({ Effect: 'Allow', Action: '*', Resource: 'arn:aws:s3:::b' }))).toEqual(['Probe: wildcard action *']);
  });

  it('fails on a service-wide wildcard action', () => {
    expect(iamViolations(policy({ Effect: 'Allow', Action: ['dynamodb:*'], Resource: 'arn:aws:dynamodb:us-east-1:123456789012:table/t' }))).toEqual(['Probe: wildcard action dynamodb:*']);
  });

  it('fails on Resource "*" for an action AWS can scope', () => {
    expect(iamViolations(policy({ Effect: 'Allow', Action: ['xray:PutTraceSegments', 'sns:Publish'], Resource: '*' }))).toEqual(['Probe: sns:Publish on Resource "*"']);
  });

  it('accepts Resource "*" for the allow-listed actions', () => {
    expect(iamViolations(policy({ Effect: 'Allow', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' }))).toEqual([]);
  });

  it('ignores Deny statements (the SSL-only policies)', () => {
    expect(iamViolations(policy({ Effect: 'Deny', Action: 'sqs:*', Resource: 'arn:aws:sqs:us-east-1:123456789012:q' }, 'AWS::SQS::QueuePolicy'))).toEqual([]);
  });

  it('accepts kms:* only for the account root in a key policy', () => {
    const root = { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::123456789012:root']] } };
    expect(iamViolations(policy({ Effect: 'Allow', Action: 'kms:*', Principal: root, Resource: '*' }, 'AWS::KMS::Key'))).toEqual([]);
    expect(iamViolations(policy({ Effect: 'Allow', Action: 'kms:*', Principal: { AWS: 'arn:aws:iam::123456789012:role/app' }, Resource: '*' }, 'AWS::KMS::Key'))).toEqual([
      'Probe: wildcard action kms:*',
    ]);
  });
});
