import { Stack, Token, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PatchlineConfig } from '../lambdas/domain/config';
import { RegistryScope } from '../lambdas/domain/registry-scope';
import { bindRegistryScope } from './spoke-builds';
import { DEFAULT_BUILD_PROJECT_TAG_KEY, DEFAULT_OWNER_TAG_KEY } from '../lambdas/domain/learned-lineage';
import { PatchlineFunction } from './patchline-function';
import { grantTableData } from './table-access';

/** What learn-lineage calls on ECR: the pushed manifest, its config blob, the repository's tags. Nothing else. */
export const ECR_DISCOVERY_ACTIONS = ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:ListTagsForResource'] as const;

/**
 * Construct id of LineageDiscovery, directly in the stack: its function's role (PatchlineFunction puts it beside the
 * function, `<id>Role`) is named `<stack>-LineageDiscoveryFunctionRole<hash>-<suffix>`, which the spokes' hub-access
 * roles trust by prefix. A deeper path would lengthen the logical id and CloudFormation would truncate the name.
 */
export const LINEAGE_DISCOVERY_ID = 'LineageDiscovery';

/** The role-name prefix of the learn-lineage function in hub stack `hubStackName` (for ArnLike trust conditions). */
export function learnLineageRolePrefix(hubStackName: string): string {
  return `${hubStackName}-${LINEAGE_DISCOVERY_ID}FunctionRole`;
}

/**
 * learn-lineage's errors that a retry clears: another lineage writer held the write lease past the wait budget, or
 * this one lost its lease mid-write (the next attempt repairs and converges). Error names as the Lambda reports them.
 */
export const LINEAGE_WRITER_RETRY_ERRORS = ['LineageBusyError', 'LineageLeaseLostError'] as const;

export interface LineageDiscoveryProps {
  readonly config: PatchlineConfig;
  readonly table: dynamodb.ITableV2;
  readonly tableKey: kms.IKey;
  readonly deadLetterQueue: sqs.IQueue;
  /**
   * ECR repository tag holding an image's owner id, read when the lineage names none.
   * @default 'owner'
   */
  readonly ownerTagKey?: string;
  /**
   * ECR repository tag holding the CodeBuild project that rebuilds an image the lineage gives none.
   * @default 'build-project'
   */
  readonly buildProjectTagKey?: string;
}

const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;

/**
 * The learn-lineage function: on every push it reads the image's declared base from ECR and stores it in the lineage.
 * Its ECR access is scoped to the configured repositories (`apps/*` → `repository/apps/*`); a spoke's registry it reads
 * through that spoke's PatchlineHubAccess-<region> role, the only roles it may assume.
 */
export class LineageDiscovery extends Construct {
  public readonly function: PatchlineFunction;

  public constructor(scope: Construct, id: string, props: LineageDiscoveryProps) {
    super(scope, id);
    for (const [field, value] of [['ownerTagKey', props.ownerTagKey], ['buildProjectTagKey', props.buildProjectTagKey]] as const) {
      if (value !== undefined && !Token.isUnresolved(value) && !TAG_KEY.test(value)) {
        throw new Error(`LineageDiscovery: ${field} must be an ECR tag key (1-128 letters, digits, spaces and _.:/=+-@), got ${JSON.stringify(value)}`);
      }
    }
    if (props.config.repositories.includes('*')) {
      // A bare * would let the function read every repository of the account.
      throw new Error('LineageDiscovery: config.repositories must name repositories or prefixes, got "*"');
    }
    this.function = new PatchlineFunction(this, 'Function', {
      handler: 'learn-lineage',
      deadLetterQueue: props.deadLetterQueue,
      environment: {
        TABLE_NAME: props.table.tableName,
        OWNER_TAG_KEY: props.ownerTagKey ?? DEFAULT_OWNER_TAG_KEY,
        BUILD_PROJECT_TAG_KEY: props.buildProjectTagKey ?? DEFAULT_BUILD_PROJECT_TAG_KEY,
        KNOWN_OWNERS: Object.keys(props.config.owners).join(','),
        BUILD_PROJECTS: props.config.rebuild.projects.join(','),
      },
    });
    bindRegistryScope(this.function, props.config);
    grantTableData(props.table, props.tableKey, this.function);
    this.grantRepositoryRead(props.config.repositories);
    this.grantSpokeRegistryRead(props.config);
  }

  /** sts:AssumeRole on exactly the configured spokes' hub-access roles (their policies scope the ECR reads there). */
  private grantSpokeRegistryRead(config: PatchlineConfig): void {
    const roles = RegistryScope.forOrganization(config.organization).hubAccessRoleArns();
    if (roles.length === 0) return;
    this.function.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadSpokeRegistries', actions: ['sts:AssumeRole'], resources: roles }));
  }

  private grantRepositoryRead(repositories: readonly string[]): void {
    const stack = Stack.of(this);
    const arns = repositories.map((r) => stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: r }));
    this.function.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadConfiguredRepositories', actions: [...ECR_DISCOVERY_ACTIONS], resources: arns }));
    // cdk-nag renders the partition as <AWS::Partition> and an explicit env's account/region literally.
    const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
    const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
    const policy = this.function.role!.node.findChild('DefaultPolicy').node.defaultChild!;
    for (const prefix of repositories.filter((r) => r.endsWith('*'))) {
      const id = `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:${region}:${account}:repository/${prefix}]`;
      Validations.of(policy).acknowledge({
        id,
        reason: `${policy.node.path}: repositories in patchline.config.json names the ECR repository prefix ${prefix}: the operator scoped it; learn-lineage reads only manifests, config blobs and tags there.`,
      });
    }
  }
}
