import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { KeyPrefix, TableKeys } from './table';

const SORT_KEY = 'TOKEN';
/** The execution → build lookup (`RBLD#<execution name>` / `EXECUTION`): execution names never contain `:`, ARNs do. */
const EXECUTION_SORT_KEY = 'EXECUTION';
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
  /** The rebuild-image execution parked on the build (absent on tokens stored before the lookup existed). */
  readonly execution?: string;
}

/** Where a remote build runs and through which role: what stopping it takes once its execution is gone. */
export interface RemoteBuildLocation {
  /** The rebuild-image execution name (the holder release-slot sees). */
  readonly execution: string;
  readonly account: string;
  readonly region: string;
  /** The spoke's `PatchlineHubAccess-<region>` role the build was started through. */
  readonly roleArn: string;
}

/** The remote build of an execution, found by its name when the execution ends without the build's end. */
export interface RemoteBuildOfExecution extends RemoteBuildLocation {
  readonly buildArn: string;
  readonly buildId: string;
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

  /**
   * Keeps the token; with `location`, first the execution → build lookup with the same TTL: should the token's write
   * fail, the execution fails and its end still finds the build to stop.
   */
  public async put(token: RemoteBuildToken, now: Date, location?: RemoteBuildLocation): Promise<void> {
    const expiresAt = Math.floor(now.getTime() / 1000) + (this.props.ttlSeconds ?? REMOTE_BUILD_TOKEN_TTL_SECONDS);
    if (location) {
      const build: RemoteBuildOfExecution = { ...location, buildArn: token.buildArn, buildId: token.buildId, image: token.image, campaignId: token.campaignId, startedAt: token.startedAt };
      await this.doc.send(new PutCommand({ TableName: this.props.tableName, Item: { ...this.executionKey(location.execution), ...build, [TableKeys.TTL_ATTRIBUTE]: expiresAt } }));
    }
    const item = { ...this.key(token.buildArn), ...token, ...(location && { execution: location.execution }), [TableKeys.TTL_ATTRIBUTE]: expiresAt };
    await this.doc.send(new PutCommand({ TableName: this.props.tableName, Item: item }));
  }

  /** The token of a build; undefined for a build Patchline did not start (a spoke's own builds are forwarded too) or one already ended. */
  public async get(buildArn: string, now: Date): Promise<RemoteBuildToken | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: this.key(buildArn), ConsistentRead: true }));
    const item = out.Item as (RemoteBuildToken & { expiresAt?: number }) | undefined;
    // TTL deletion is lazy (up to days): an expired item is gone for us.
    if (!item || (item.expiresAt !== undefined && item.expiresAt * 1000 <= now.getTime())) return undefined;
    return {
      buildArn: item.buildArn,
      buildId: item.buildId,
      taskToken: item.taskToken,
      image: item.image,
      campaignId: item.campaignId,
      startedAt: item.startedAt,
      ...(item.execution !== undefined && { execution: item.execution }),
    };
  }

  /** The remote build an execution started and that has not ended yet (as far as the hub has heard); else undefined. */
  public async forExecution(execution: string, now: Date): Promise<RemoteBuildOfExecution | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: this.executionKey(execution), ConsistentRead: true }));
    const item = out.Item as (RemoteBuildOfExecution & { expiresAt?: number }) | undefined;
    if (!item || (item.expiresAt !== undefined && item.expiresAt * 1000 <= now.getTime())) return undefined;
    const { execution: name, account, region, roleArn, buildArn, buildId, image, campaignId, startedAt } = item;
    return { execution: name, account, region, roleArn, buildArn, buildId, image, campaignId, startedAt };
  }

  /** Deletes the token of a build and, given its execution, then the execution's lookup (a leftover expires by TTL). */
  public async delete(buildArn: string, execution?: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.props.tableName, Key: this.key(buildArn) }));
    if (execution !== undefined) await this.deleteExecution(execution);
  }

  /** Deletes an execution's lookup only (its build was stopped, or has ended). */
  public async deleteExecution(execution: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.props.tableName, Key: this.executionKey(execution) }));
  }

  private key(buildArn: string): Record<string, string> {
    return { [TableKeys.PARTITION_KEY]: `${KeyPrefix.REMOTE_BUILD}${buildArn}`, [TableKeys.SORT_KEY]: SORT_KEY };
  }

  private executionKey(execution: string): Record<string, string> {
    return { [TableKeys.PARTITION_KEY]: `${KeyPrefix.REMOTE_BUILD}${execution}`, [TableKeys.SORT_KEY]: EXECUTION_SORT_KEY };
  }
}
