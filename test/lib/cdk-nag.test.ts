import { App } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { acknowledgeNagFindings, flattenCfnReference } from '../../lib/nag-acknowledgements';
import { definePatchlineApp, PatchlineAppResult, readConfigFile } from '../../lib/patchline-app';
import { PatchlineStack } from '../../lib/patchline-stack';
import { defineSpokeStacks } from '../../lib/spoke-stack';

const CONFIG_FILE = join(__dirname, '../../patchline.config.json');

interface Violation {
  readonly rule: string;
  readonly severity: string;
  readonly path: string;
}

/** Synthesizes the app as `cdk synth` does (validation on, bundling skipped) and returns cdk-nag's violations. */
function synthesizeWithNag(customize?: (result: PatchlineAppResult) => void, configFile = CONFIG_FILE): { violations: Violation[]; result: PatchlineAppResult } {
  const outdir = mkdtempSync(join(tmpdir(), 'patchline-nag-'));
  try {
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    // As bin/app.ts: the hub (in its configured environment when there is an organization) and any spoke stacks.
    const config = readConfigFile(configFile);
    const result = definePatchlineApp(app, config, config.organization?.hub ?? { account: '123456789012', region: 'us-east-1' });
    defineSpokeStacks(app, config);
    customize?.(result);
    try {
      app.synth();
      return { violations: [], result };
    } catch (error) {
      // A validation failure leaves its report in the cloud assembly; anything else is a real error.
      if (!existsSync(join(outdir, 'validation-report.json'))) throw error;
      const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
        pluginReports: Array<{ violations: Array<{ ruleName: string; severity: string; violatingConstructs: Array<{ constructPath: string }> }> }>;
      };
      const violations = report.pluginReports.flatMap((p) =>
        p.violations.flatMap((v) => v.violatingConstructs.map((c) => ({ rule: v.ruleName, severity: v.severity, path: c.constructPath }))),
      );
      return { violations, result };
    }
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

describe('Function: definePatchlineApp', () => {
  describe('cdk-nag AwsSolutions pack', () => {
    let clean: ReturnType<typeof synthesizeWithNag>;
    beforeAll(() => {
      clean = synthesizeWithNag();
    });

    it('synthesizes with no unacknowledged error or warning', () => {
      expect(clean.violations).toEqual([]);
    });

    it('synthesizes the multi-account example (hub and spokes) with no unacknowledged error or warning', () => {
      expect(synthesizeWithNag(undefined, join(__dirname, '../../examples/organization.config.json')).violations).toEqual([]);
    });

    it('acknowledges each finding on one named resource with a written reason', () => {
      expect(clean.result.acknowledgements.length).toBeGreaterThan(0);
      for (const ack of clean.result.acknowledgements) {
        expect(ack.path).toMatch(/^Patchline\/.+\/Resource$/);
        expect(ack.id).toMatch(/^AwsSolutions-[A-Z]+\d+/);
        // The reason names the resource and says why, in words.
        expect(ack.reason.startsWith(`${ack.path}: `)).toBe(true);
        expect(ack.reason.length - ack.path.length).toBeGreaterThan(40);
      }
    });

    it('acknowledges no managed-policy, SQS, SNS, DynamoDB or KMS finding: those are fixed, not suppressed', () => {
      const ids = clean.result.acknowledgements.map((a) => a.id);
      expect(ids.filter((id) => /^AwsSolutions-(IAM4|SQS|SNS|DDB|KMS)/.test(id))).toEqual([]);
    });

    it('acknowledges logging below ALL only on the high-volume finding-received workflow', () => {
      const sf1 = clean.result.acknowledgements.filter((a) => a.id.startsWith('AwsSolutions-SF'));
      expect(sf1.map((a) => a.path).filter((p) => p !== 'Patchline/FindingReceivedWorkflow/StateMachine/Resource')).toEqual([]);
    });

    it('fails synthesis when a role is granted an action on every resource outside the allow-list', () => {
      const { violations } = synthesizeWithNag(({ stack }) => {
        const role = new iam.Role(stack, 'ReviewProbeRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
        role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
      });
      expect(violations).toContainEqual({ rule: 'AwsSolutions-IAM5[Resource::*]', severity: 'error', path: 'Patchline/ReviewProbeRole/DefaultPolicy/Resource' });
    });

    it('fails synthesis on a service-wide wildcard action even on a scoped resource', () => {
      const { violations } = synthesizeWithNag(({ stack }) => {
        stack.imagePushed.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:*'], resources: [stack.deadLetterQueue.queueArn] }));
      });
      expect(violations.map((v) => v.rule)).toContain('AwsSolutions-IAM5[Action::sqs:*]');
    });
  });
});

describe('Function: acknowledgeNagFindings', () => {
  const config = readConfigFile(CONFIG_FILE);
  const stackWith = (customize: (stack: PatchlineStack) => void): PatchlineStack => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new PatchlineStack(app, 'Patchline', { config, env: { account: '123456789012', region: 'us-east-1' } });
    customize(stack);
    return stack;
  };
  const acksOn = (stack: PatchlineStack, path: string): string[] =>
    acknowledgeNagFindings(stack, config)
      .filter((a) => a.path === path)
      .map((a) => a.id);
  const WORKFLOW_POLICY = 'Patchline/ImagePushedWorkflow/Role/DefaultPolicy/Resource';

  it('acknowledges the X-Ray and log-delivery "*" of a workflow role', () => {
    expect(acksOn(stackWith(() => undefined), WORKFLOW_POLICY)).toContain('AwsSolutions-IAM5[Resource::*]');
  });

  it('refuses to acknowledge "*" once the same policy grants an action outside the allow-list', () => {
    const stack = stackWith((s) => s.imagePushed.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] })));
    expect(acksOn(stack, WORKFLOW_POLICY)).not.toContain('AwsSolutions-IAM5[Resource::*]');
  });

  it('refuses to acknowledge a KMS wildcard that is not scoped to the stack key', () => {
    const stack = stackWith((s) => s.imagePushed.addToRolePolicy(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey*'], resources: ['arn:aws:kms:us-east-1:111111111111:key/other'] })));
    expect(acksOn(stack, WORKFLOW_POLICY)).not.toContain('AwsSolutions-IAM5[Action::kms:GenerateDataKey*]');
  });

  it('acknowledges a configured CodeBuild prefix when the account and region are not known at synthesis', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new PatchlineStack(app, 'Patchline', { config });
    const ids = acknowledgeNagFindings(stack, config)
      .filter((a) => a.path === 'Patchline/RebuildImageWorkflow/Role/DefaultPolicy/Resource')
      .map((a) => a.id);
    expect(ids).toContain('AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:codebuild:<AWS::Region>:<AWS::AccountId>:project/apps-*]');
  });

  it('refuses to acknowledge a CodeBuild prefix that the config does not name', () => {
    const stack = stackWith((s) =>
      s.rebuildImage.addToRolePolicy(new iam.PolicyStatement({ actions: ['codebuild:StartBuild'], resources: ['arn:aws:codebuild:us-east-1:123456789012:project/other-*'] })),
    );
    const ids = acksOn(stack, 'Patchline/RebuildImageWorkflow/Role/DefaultPolicy/Resource');
    expect(ids).toContain('AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:codebuild:us-east-1:123456789012:project/apps-*]');
    expect(ids).not.toContain('AwsSolutions-IAM5[Resource::arn:aws:codebuild:us-east-1:123456789012:project/other-*]');
  });
});

describe('Function: flattenCfnReference', () => {
  it('prints intrinsics the way cdk-nag names findings', () => {
    expect(flattenCfnReference({ 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Fn123', 'Arn'] }, ':*']] })).toBe('<Fn123.Arn>:*');
    expect(flattenCfnReference({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::b/*']] })).toBe('arn:<AWS::Partition>:s3:::b/*');
    expect(flattenCfnReference('*')).toBe('*');
  });
});
