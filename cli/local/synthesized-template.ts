import { App } from 'aws-cdk-lib';
import { PatchlineConfig } from '../../lambdas/domain/config';
import { PatchlineStack } from '../../lib/patchline-stack';

export const LOCAL_ACCOUNT = '123456789012';
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_STACK_NAME = 'Patchline';

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}
export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
}

/**
 * Synthesizes the real stack in process (Lambda bundling skipped: locally the handlers run in this process) and
 * returns its CloudFormation template: the local runtime executes exactly what would be deployed.
 */
export function synthesizeTemplate(config: PatchlineConfig): CfnTemplate {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PatchlineStack(app, LOCAL_STACK_NAME, { config, env: { account: LOCAL_ACCOUNT, region: LOCAL_REGION } });
  const assembly = app.synth({ validateOnSynthesis: false });
  return assembly.getStackByName(stack.stackName).template as CfnTemplate;
}

export class UnresolvableTemplateValueError extends Error {
  public readonly code = 'UNRESOLVABLE_TEMPLATE_VALUE';
  public constructor(what: string) {
    super(`cannot resolve ${what} in the synthesized template locally`);
    this.name = 'UnresolvableTemplateValueError';
  }
}

/**
 * Resolves CloudFormation intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Sub of pseudo parameters) the way a
 * deployment in LOCAL_ACCOUNT/LOCAL_REGION would, so ARNs in state machine definitions validate and can be routed.
 */
export class TemplateResolver {
  public constructor(private readonly template: CfnTemplate, private readonly tableName: string) {}

  public resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [key] = keys;
      const arg = obj[key];
      if (key === 'Ref') return this.ref(arg as string);
      if (key === 'Fn::GetAtt') return this.getAtt(...(arg as [string, string]));
      if (key === 'Fn::Join') {
        const [sep, parts] = arg as [string, unknown[]];
        return (this.resolve(parts) as unknown[]).map(String).join(sep);
      }
      if (key === 'Fn::Select') {
        const [index, list] = arg as [number, unknown];
        return (this.resolve(list) as unknown[])[Number(index)];
      }
      if (key === 'Fn::Split') {
        const [sep, source] = arg as [string, unknown];
        return String(this.resolve(source)).split(sep);
      }
      if (key === 'Fn::Sub' && typeof arg === 'string') return arg.replace(/\$\{([^}]+)\}/g, (_, name: string) => String(this.ref(name)));
    }
    return Object.fromEntries(keys.map((k) => [k, this.resolve(obj[k])]));
  }

  public ref(name: string): string {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': LOCAL_REGION,
      'AWS::AccountId': LOCAL_ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': LOCAL_STACK_NAME,
      'AWS::NoValue': '',
    };
    if (name in pseudo) return pseudo[name];
    const resource = this.template.Resources[name];
    if (!resource) throw new UnresolvableTemplateValueError(`Ref ${name}`);
    switch (resource.Type) {
      case 'AWS::StepFunctions::StateMachine':
        return this.stateMachineArn(name);
      case 'AWS::SQS::Queue':
        return `https://sqs.${LOCAL_REGION}.amazonaws.com/${LOCAL_ACCOUNT}/${name}`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}`;
      case 'AWS::DynamoDB::GlobalTable':
      case 'AWS::DynamoDB::Table':
        return this.tableName;
      default:
        return name;
    }
  }

  public getAtt(name: string, attribute: string): string {
    const resource = this.template.Resources[name];
    if (!resource) throw new UnresolvableTemplateValueError(`Fn::GetAtt ${name}.${attribute}`);
    switch (`${resource.Type}.${attribute}`) {
      case 'AWS::Lambda::Function.Arn':
        return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${name}`;
      case 'AWS::SQS::Queue.Arn':
        return `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}`;
      case 'AWS::SQS::Queue.QueueName':
        return name;
      case 'AWS::SNS::Topic.TopicArn':
        return this.ref(name);
      case 'AWS::StepFunctions::StateMachine.Arn':
        return this.stateMachineArn(name);
      case 'AWS::StepFunctions::StateMachine.Name':
        return this.stateMachineName(name);
      case 'AWS::DynamoDB::GlobalTable.Arn':
      case 'AWS::DynamoDB::Table.Arn':
        return `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/${this.tableName}`;
      default:
        return `arn:aws:local:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}/${attribute}`;
    }
  }

  public stateMachineName(logicalId: string): string {
    const name = this.template.Resources[logicalId]?.Properties?.StateMachineName;
    return name ? String(this.resolve(name)) : logicalId;
  }

  public stateMachineArn(logicalId: string): string {
    return `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${this.stateMachineName(logicalId)}`;
  }
}

/** Logical id of the one resource whose construct path starts with `Stack/<constructId>/`. */
export function findLogicalId(template: CfnTemplate, type: string, constructId: string): string {
  const found = Object.entries(template.Resources).filter(
    ([, r]) => r.Type === type && String(r.Metadata?.['aws:cdk:path'] ?? '').split('/')[1] === constructId,
  );
  if (found.length !== 1) throw new UnresolvableTemplateValueError(`${type} ${constructId} (found ${found.length})`);
  return found[0][0];
}
