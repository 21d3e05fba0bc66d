import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { KeyPrefix, TableKeys } from './table';

const SORT_KEY = 'TOKEN';
/** A token outlives the longest build CodeBuild runs (36 h queued + running): after that nobody can resume it. */
export const REMOTE_BUILD_TOKEN_TTL_SECONDS = 48 * 3600;

/** A rebuild-image execution parked on a spoke build in another region, waiting for its end. */
export interface RemoteBuildToken {
  /** The build ARN (`arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>`), as the state change event names it. */
  readonly buildArn: string;
  readonly buildId: string;
  readonly taskToken: string;
  readonly image: string;
  readonly campaignId: string;
  readonly startedAt: string;
}

/** Task tokens of remote builds keyed by build ARN, with a TTL (a lost end event leaves nothing behind for good). */
export class RemoteBuildTokenStore {
  private readonly doc: DynamoDBDocumentClient;

  public constructor(private readonly props: { client: DynamoDBClient; tableName: string; ttlSeconds?: number }) {
    this.doc = DynamoDBDocumentClient.from(props.client, { marshallOptions: { removeUndefinedValues: true } });
  }

  public async put(token: RemoteBuildToken, now: Date): Promise<void> {
    const expiresAt = Math.floor(now.getTime() / 1000) + (this.props.ttlSeconds ?? REMOTE_BUILD_TOKEN_TTL_SECONDS);
    await this.doc.send(new PutCommand({ TableName: this.props.tableName, Item: { ...this.key(token.buildArn), ...token, [TableKeys.TTL_ATTRIBUTE]: expiresAt } }));
  }

  /** The token of a build; undefined for a build Patchline did not start (a spoke's own builds are forwarded too) or one already ended. */
  public async get(buildArn: string, now: Date): Promise<RemoteBuildToken | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: this.key(buildArn), ConsistentRead: true }));
    const item = out.Item as (RemoteBuildToken & { expiresAt?: number }) | undefined;
    // TTL deletion is lazy (up to days): an expired item is gone for us.
    if (!item || (item.expiresAt !== undefined && item.expiresAt * 1000 <= now.getTime())) return undefined;
    return { buildArn: item.buildArn, buildId: item.buildId, taskToken: item.taskToken, image: item.image, campaignId: item.campaignId, startedAt: item.startedAt };
  }

  public async delete(buildArn: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.props.tableName, Key: this.key(buildArn) }));
  }

  private key(buildArn: string): Record<string, string> {
    return { [TableKeys.PARTITION_KEY]: `${KeyPrefix.REMOTE_BUILD}${buildArn}`, [TableKeys.SORT_KEY]: SORT_KEY };
  }
}
