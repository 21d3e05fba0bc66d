import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { KeyPrefix, TableKeys } from '../lambdas/store/table';

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

/** All release-alert-claim does in the table: a conditional delete of one alert dedup record. */
export const ALERT_CLAIM_RELEASE_ACTIONS = ['dynamodb:DeleteItem'] as const;

/**
 * The key use of a conditional delete on the encrypted table (the condition reads the item), and of Lambda's
 * dead-letter delivery to the queue encrypted with the same key: no Encrypt or ReEncrypt.
 */
export const ALERT_CLAIM_RELEASE_KEY_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey'] as const;

/**
 * Grants `dynamodb:DeleteItem` on the table only (no index, no read or write), and only on items whose partition key
 * is an alert dedup record's (`dynamodb:LeadingKeys` = `ALERT#…`): the function that gives back an undelivered alert's
 * claim cannot touch lineage, campaigns or findings.
 */
export function grantAlertClaimRelease(table: dynamodb.ITableV2, key: kms.IKey, grantee: iam.IGrantable): iam.Grant {
  const grant = iam.Grant.addToPrincipal({
    grantee,
    actions: [...ALERT_CLAIM_RELEASE_ACTIONS],
    resourceArns: [table.tableArn],
    conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${KeyPrefix.ALERT}*`] } },
  });
  iam.Grant.addToPrincipal({ grantee, actions: [...ALERT_CLAIM_RELEASE_KEY_ACTIONS], resourceArns: [key.keyArn] });
  return grant;
}
