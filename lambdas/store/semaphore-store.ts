import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { encodeWaiterSortKey } from '../domain/scheduling';
import { KeyPrefix } from './table';

export interface Waiter {
  /** The holder id the slot is granted to (the rebuild execution's name). */
  readonly holder: string;
  /** Step Functions task token of the parked execution. */
  readonly taskToken: string;
  readonly priority: number;
  readonly enqueuedAt: number;
}

export interface SemaphoreState {
  readonly inUse: number;
  readonly holders: string[];
  readonly waiters: number;
}

export class SlotHandOffError extends Error {
  public readonly code = 'SLOT_HAND_OFF_FAILED';
  public constructor(holder: string, options?: { cause?: unknown }) {
    super(`could not hand a slot to ${holder}`, options);
    this.name = 'SlotHandOffError';
  }
}

const COUNTER = 'COUNTER';
const WAITER = 'W#';
const POINTER = 'WH#';

/**
 * A counting semaphore in DynamoDB with a priority queue of parked Step Functions executions.
 *
 * Every acquirer queues, then pumps: while a slot is free, the highest-priority waiter is claimed (conditional delete)
 * and granted (conditional increment), then woken with its task token. Release decrements, then pumps. Because both
 * sides pump after their own write, no waiter is left parked while a slot is free (see docs/architecture.md), and the
 * conditional increment never lets `inUse` pass the cap. No transactions are needed, so dynalite can run it locally.
 */
export class SemaphoreStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly pk: string;

  public constructor(private readonly props: { client: DynamoDBClient; tableName: string; name: string; cap: number }) {
    this.doc = DynamoDBDocumentClient.from(props.client, { marshallOptions: { removeUndefinedValues: true } });
    this.pk = `${KeyPrefix.SEMAPHORE}${props.name}`;
  }

  /** Queues `waiter` and pumps; `wake` is called for every waiter granted a slot (possibly this one). */
  public async acquire(waiter: Waiter, wake: (waiter: Waiter) => Promise<boolean>): Promise<void> {
    const sk = this.waiterKey(waiter);
    // The pointer lets release() find a parked holder's entry without scanning the queue.
    await this.doc.send(new PutCommand({ TableName: this.props.tableName, Item: { pk: this.pk, sk: `${POINTER}${waiter.holder}`, waiterSk: sk } }));
    await this.doc.send(new PutCommand({ TableName: this.props.tableName, Item: { pk: this.pk, sk, ...waiter } }));
    await this.pump(wake);
  }

  /**
   * Releases `holder`'s slot (idempotent: a second release of the same holder changes nothing) and pumps.
   * Returns whether a slot was actually released.
   */
  public async release(holder: string, wake: (waiter: Waiter) => Promise<boolean>): Promise<boolean> {
    const released = await this.giveBack(holder);
    // A holder that never got its slot may still be queued (aborted while parked): drop its waiter entry.
    await this.dropWaiter(holder);
    await this.pump(wake);
    return released;
  }

  public async state(): Promise<SemaphoreState> {
    const counter = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: { pk: this.pk, sk: COUNTER }, ConsistentRead: true }));
    const waiters = await this.doc.send(
      new QueryCommand({
        TableName: this.props.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :w)',
        ExpressionAttributeValues: { ':pk': this.pk, ':w': WAITER },
        Select: 'COUNT',
        ConsistentRead: true,
      }),
    );
    return {
      inUse: Number(counter.Item?.inUse ?? 0),
      holders: [...((counter.Item?.holders as Set<string> | undefined) ?? [])].sort(),
      waiters: waiters.Count ?? 0,
    };
  }

  private waiterKey(waiter: Pick<Waiter, 'priority' | 'enqueuedAt' | 'holder'>): string {
    return `${WAITER}${encodeWaiterSortKey(waiter.priority, waiter.enqueuedAt, waiter.holder)}`;
  }

  private async pump(wake: (waiter: Waiter) => Promise<boolean>): Promise<void> {
    for (let round = 0; round < 10_000; round++) {
      const counter = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: { pk: this.pk, sk: COUNTER }, ConsistentRead: true }));
      if (Number(counter.Item?.inUse ?? 0) >= this.props.cap) return;
      const top = await this.doc.send(
        new QueryCommand({
          TableName: this.props.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :w)',
          ExpressionAttributeValues: { ':pk': this.pk, ':w': WAITER },
          ConsistentRead: true,
          Limit: 1,
        }),
      );
      const item = top.Items?.[0];
      if (!item) return;
      const waiter: Waiter = { holder: item.holder, taskToken: item.taskToken, priority: item.priority, enqueuedAt: item.enqueuedAt };
      if (!(await this.claim(item.sk as string))) continue; // another pump claimed it
      if (!(await this.grant(waiter.holder))) {
        // Full again (a racing acquirer won): put the waiter back and look again, so no release is missed meanwhile.
        await this.doc.send(new PutCommand({ TableName: this.props.tableName, Item: item }));
        continue;
      }
      let woken = false;
      try {
        woken = await wake(waiter);
      } catch {
        woken = false;
      }
      if (!woken) {
        // The execution is gone (aborted, timed out): give the slot back and go on with the next waiter.
        await this.giveBack(waiter.holder);
      }
    }
  }

  /** Takes `holder`'s slot back; false (nothing changed) when it holds none, so a second release is harmless. */
  private async giveBack(holder: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.props.tableName,
          Key: { pk: this.pk, sk: COUNTER },
          UpdateExpression: 'ADD inUse :minus DELETE holders :h',
          ConditionExpression: 'contains(holders, :holder)',
          ExpressionAttributeValues: { ':minus': -1, ':h': new Set([holder]), ':holder': holder },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  private async claim(sk: string): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({ TableName: this.props.tableName, Key: { pk: this.pk, sk }, ConditionExpression: 'attribute_exists(pk)' }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  private async grant(holder: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.props.tableName,
          Key: { pk: this.pk, sk: COUNTER },
          UpdateExpression: 'ADD inUse :one, holders :h',
          ConditionExpression: '(attribute_not_exists(inUse) OR inUse < :cap) AND NOT contains(holders, :holder)',
          ExpressionAttributeValues: { ':one': 1, ':h': new Set([holder]), ':cap': this.props.cap, ':holder': holder },
        }),
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // Granting is idempotent: a holder that already has its slot (a retried invocation) is simply woken again.
      const counter = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: { pk: this.pk, sk: COUNTER }, ConsistentRead: true }));
      return ((counter.Item?.holders as Set<string> | undefined) ?? new Set()).has(holder);
    }
  }

  private async dropWaiter(holder: string): Promise<void> {
    const pointer = await this.doc.send(
      new DeleteCommand({ TableName: this.props.tableName, Key: { pk: this.pk, sk: `${POINTER}${holder}` }, ReturnValues: 'ALL_OLD' }),
    );
    const waiterSk = pointer.Attributes?.waiterSk as string | undefined;
    if (waiterSk) await this.doc.send(new DeleteCommand({ TableName: this.props.tableName, Key: { pk: this.pk, sk: waiterSk } }));
  }
}
