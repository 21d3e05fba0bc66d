import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { TableKeys } from '../lambdas/store/table';

/** The item APIs the stores call (lambdas/store): no table management, no streams, no PartiQL. */
export const TABLE_DATA_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:Scan',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
] as const;

/**
 * What DynamoDB needs from a caller of a table encrypted with a customer-managed key, spelled out: CDK's
 * `grantReadWriteData` grants `kms:ReEncrypt*` and `kms:GenerateDataKey*`, which also cover key-pair generation.
 */
export const TABLE_KEY_ACTIONS = [
  'kms:Decrypt',
  'kms:Encrypt',
  'kms:DescribeKey',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
] as const;

/**
 * Grants item read/write on the Patchline table and its one index (by name, not `index/*`), and use of its key.
 * The least-privilege replacement for `table.grantReadWriteData(grantee)`.
 */
export function grantTableData(table: dynamodb.ITableV2, key: kms.IKey, grantee: iam.IGrantable): iam.Grant {
  const grant = iam.Grant.addToPrincipal({
    grantee,
    actions: [...TABLE_DATA_ACTIONS],
    resourceArns: [table.tableArn, `${table.tableArn}/index/${TableKeys.GSI1}`],
  });
  iam.Grant.addToPrincipal({ grantee, actions: [...TABLE_KEY_ACTIONS], resourceArns: [key.keyArn] });
  return grant;
}
