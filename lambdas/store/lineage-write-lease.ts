import { randomUUID } from 'crypto';
import { hostname } from 'os';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LineageBusyError, LineageLeaseLostError } from './lineage-store';
import { KeyPrefix, TableKeys } from './table';

export interface LineageLeaseOptions {
  /**
   * How long a lease lasts unless renewed; a crashed writer blocks others for at most this long.
   * @default 30_000 (a learn-lineage Lambda's timeout)
   */
  readonly leaseMs?: number;
  /**
   * How long a writer waits for a lease held by another before it fails with LineageBusyError.
   * @default 10_000
   */
  readonly acquireTimeoutMs?: number;
  /**
   * Who writes, for the busy message of the writers that wait (a unique suffix is added per lease).
   * @default - the Lambda function name or `patchline`, the host and the process id
   */
  readonly writer?: string;
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

/** Why a writer must repair the lineage index before its own change: the last write did not end cleanly. */
export interface UncleanHandover {
  /**
   * The writer before: its lease expired unreleased (it crashed or stalled), or a repair was flagged (a write failed
   * half-way, or a writer lost its lease during its write).
   */
  readonly previousOwner: string;
  readonly reason: 'lease-expired' | 'repair-flagged';
}

const LEASE_KEY = { [TableKeys.PARTITION_KEY]: `${KeyPrefix.LEASE}lineage`, [TableKeys.SORT_KEY]: 'LEASE' };

/**
 * The lineage write lease: one item, taken with a conditional put (released, or expired), renewed while the write
 * goes on, released (conditionally on its owner) when the write ends. Readers never look at it.
 *
 * The item stays after release (`leaseExpiresAt` 0), so the next writer learns from the put's old image, at no extra
 * request, whether the write before it ended cleanly: a lease that expired unreleased, or one released with
 * `repairNeeded` (the write failed half-way, or its lease was lost), means the index may disagree with the images.
 *
 * Clocks: expiry is compared with the acquiring writer's clock, so clocks must agree to well within a lease (NTP does).
 */
export class LineageWriteLease {
  public static async acquire(doc: DynamoDBDocumentClient, tableName: string, options: LineageLeaseOptions = {}): Promise<LineageWriteLease> {
    const now = options.now ?? Date.now;
    const leaseMs = options.leaseMs ?? 30_000;
    const acquireTimeoutMs = options.acquireTimeoutMs ?? 10_000;
    const owner = `${options.writer ?? defaultWriter()}#${randomUUID().slice(0, 8)}`;
    const started = now();
    for (let attempt = 1; ; attempt++) {
      const at = now();
      try {
        const { Attributes } = await doc.send(
          new PutCommand({
            TableName: tableName,
            Item: { ...LEASE_KEY, owner, acquiredAt: new Date(at).toISOString(), leaseExpiresAt: at + leaseMs },
            ConditionExpression: 'attribute_not_exists(#pk) OR #expires < :now',
            ExpressionAttributeNames: { '#pk': TableKeys.PARTITION_KEY, '#expires': 'leaseExpiresAt' },
            ExpressionAttributeValues: { ':now': at },
            ReturnValues: 'ALL_OLD',
          }),
        );
        return new LineageWriteLease(doc, tableName, owner, leaseMs, now, at, uncleanHandover(Attributes));
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const waited = now() - started;
        if (waited >= acquireTimeoutMs) {
          // Read only now, for the message: waiting costs one conditional put per attempt.
          const { Item } = await doc.send(new GetCommand({ TableName: tableName, Key: LEASE_KEY, ConsistentRead: true }));
          const held = Item !== undefined && Number(Item.leaseExpiresAt) > 0; // a release can land after the last attempt
          throw new LineageBusyError(Item?.owner as string | undefined, held ? new Date(Number(Item.leaseExpiresAt)).toISOString() : undefined, waited, { cause: error });
        }
        // Exponential backoff with full jitter, never past the budget.
        await sleep(Math.min(acquireTimeoutMs - waited, Math.random() * Math.min(1_000, 20 * 2 ** attempt)));
      }
    }
  }

  private renewedAt: number;
  private renewal?: Promise<void>;

  private constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    public readonly owner: string,
    private readonly leaseMs: number,
    private readonly now: () => number,
    acquiredAt: number,
    /** Set when the write before this one did not end cleanly: the lineage index must be repaired first. */
    public readonly unclean: UncleanHandover | undefined,
  ) {
    this.renewedAt = acquiredAt;
  }

  /**
   * Called before each request of the write: renews the lease once a third of it has passed. The renewal is
   * conditional on the owner, so a writer that stalled past its lease goes on only if nobody took the lease meanwhile
   * (then nobody wrote), and otherwise stops at its next request with LineageLeaseLostError.
   */
  public async keepAlive(): Promise<void> {
    if (this.now() - this.renewedAt < this.leaseMs / 3) return;
    this.renewal ??= this.renew().finally(() => {
      this.renewal = undefined;
    });
    await this.renewal;
  }

  /**
   * Releases the lease if it is still this writer's; false when another writer had taken it over. `repairNeeded` (a
   * write that failed, or was cut off, after it had started writing) is left for the next writer, even on a lease
   * that is no longer this writer's.
   */
  public async release(repairNeeded: boolean): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: LEASE_KEY,
          UpdateExpression: `SET #expires = :released${repairNeeded ? ', #repair = :true' : ''}`,
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner', '#expires': 'leaseExpiresAt', ...(repairNeeded ? { '#repair': 'repairNeeded' } : {}) },
          ExpressionAttributeValues: { ':owner': this.owner, ':released': 0, ...(repairNeeded ? { ':true': true } : {}) },
        }),
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    // Taken over: this writer's last requests may have landed after the new holder read the lineage.
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: LEASE_KEY,
        UpdateExpression: 'SET #repair = :true',
        ExpressionAttributeNames: { '#repair': 'repairNeeded' },
        ExpressionAttributeValues: { ':true': true },
      }),
    );
    return false;
  }

  private async renew(): Promise<void> {
    const at = this.now();
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: LEASE_KEY,
          UpdateExpression: 'SET #expires = :expires',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner', '#expires': 'leaseExpiresAt' },
          ExpressionAttributeValues: { ':owner': this.owner, ':expires': at + this.leaseMs },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new LineageLeaseLostError(this.owner, { cause: error });
      throw error;
    }
    this.renewedAt = at;
  }
}

function uncleanHandover(previous: Record<string, unknown> | undefined): UncleanHandover | undefined {
  if (!previous) return undefined;
  const previousOwner = String(previous.owner);
  if (Number(previous.leaseExpiresAt) !== 0) return { previousOwner, reason: 'lease-expired' };
  return previous.repairNeeded === true ? { previousOwner, reason: 'repair-flagged' } : undefined;
}

function defaultWriter(): string {
  return `${process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'patchline'}@${hostname()}:${process.pid}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
