import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient, SendTaskFailureCommand, SendTaskSuccessCommand, TaskDoesNotExist, TaskTimedOut, InvalidToken } from '@aws-sdk/client-sfn';
import type { Policy } from '../domain/policy';
import { CampaignStore } from '../store/campaign-store';
import { DynamoLineageStore } from '../store/dynamo-lineage-store';
import type { AlertDedupStore, ExceptionStore, FindingStore } from '../store/finding-store';
import { LineageStore } from '../store/lineage-store';
import { SemaphoreStore } from '../store/semaphore-store';

/** What the handlers act through: the stores, task-token callbacks and settings. Built from the environment in AWS, in process locally. */
export interface HandlerDependencies {
  readonly lineage: LineageStore;
  readonly campaigns: CampaignStore;
  readonly semaphore: SemaphoreStore;
  readonly taskTokens: TaskTokenCallbacks;
  readonly defaultBuildSeconds: number;
  /** Pushes of one root image inside this many seconds coalesce into one campaign; @default 0 (none). */
  readonly settleWindowSeconds?: number;
  readonly now: () => Date;
  /** finding-received only: findings with their history, approved exceptions, alert dedup, the vulnerability policy. */
  readonly findings?: FindingStore;
  readonly exceptions?: ExceptionStore;
  readonly alertDedup?: AlertDedupStore;
  readonly findingPolicy?: Policy;
}

export interface TaskTokenCallbacks {
  /** Resumes a parked execution; false when it no longer waits (aborted, timed out). */
  succeed(taskToken: string, output: unknown): Promise<boolean>;
  fail(taskToken: string, error: string, cause: string): Promise<boolean>;
}

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

export function sfnTaskTokenCallbacks(client: SFNClient): TaskTokenCallbacks {
  const gone = (error: unknown): boolean => error instanceof TaskDoesNotExist || error instanceof TaskTimedOut || error instanceof InvalidToken;
  return {
    succeed: async (taskToken, output) => {
      try {
        await client.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
        return true;
      } catch (error) {
        if (gone(error)) return false;
        throw error;
      }
    },
    fail: async (taskToken, error, cause) => {
      try {
        await client.send(new SendTaskFailureCommand({ taskToken, error, cause: cause.slice(0, 32_000) }));
        return true;
      } catch (err) {
        if (gone(err)) return false;
        throw err;
      }
    },
  };
}

let fromEnvironment: HandlerDependencies | undefined;

/** The Lambda runtime's dependencies, created once per container from TABLE_NAME, REBUILD_CONCURRENCY, … */
export function dependenciesFromEnvironment(): HandlerDependencies {
  if (!fromEnvironment) {
    const client = new DynamoDBClient({});
    const tableName = requireEnv('TABLE_NAME');
    fromEnvironment = {
      lineage: new DynamoLineageStore({ client, tableName }),
      campaigns: new CampaignStore({ client, tableName }),
      semaphore: new SemaphoreStore({ client, tableName, name: 'rebuild', cap: Number(requireEnv('REBUILD_CONCURRENCY')) }),
      taskTokens: sfnTaskTokenCallbacks(new SFNClient({})),
      defaultBuildSeconds: Number(process.env.DEFAULT_BUILD_SECONDS ?? '600'),
      settleWindowSeconds: Number(process.env.SETTLE_WINDOW_SECONDS ?? '0'),
      now: () => new Date(),
    };
  }
  return fromEnvironment;
}
