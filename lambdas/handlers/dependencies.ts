import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient, SendTaskFailureCommand, SendTaskSuccessCommand, TaskDoesNotExist, TaskTimedOut, InvalidToken } from '@aws-sdk/client-sfn';
import type { RebuildRequest } from '../domain/campaign';
import type { PatchlineMetric } from '../domain/patchline-metric';
import type { Policy } from '../domain/policy';
import { PowertoolsMetricsSink } from '../aws/powertools-metrics';
import { stepFunctionsRebuildStarter } from '../aws/step-functions-rebuilds';
import { CampaignStore } from '../store/campaign-store';
import { DynamoLineageStore } from '../store/dynamo-lineage-store';
import type { AlertDedupStore, ExceptionStore, FindingStore } from '../store/finding-store';
import { LineageStore } from '../store/lineage-store';
import { SemaphoreStore } from '../store/semaphore-store';
import { traced } from '../aws/traced-client';

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
  /** Patchline's own metrics (docs/observability.md): Powertools EMF in Lambda, a recording sink locally; @default none */
  readonly metrics?: MetricsSink;
  /** Starts rebuild-image executions from a handler (record-build-failure hands a superseded build over); @default none */
  readonly rebuilds?: RebuildStarter;
}

/** Starts a rebuild-image execution by its deterministic name; false when that name was started before. */
export interface RebuildStarter {
  /** Where internal images are pinned (`<account>.dkr.ecr.<region>…`). */
  readonly account: string;
  readonly region: string;
  start(name: string, input: RebuildRequest): Promise<boolean>;
}

/** Where handlers count what the dashboard charts. Dimensions are name → value (`{ Severity: 'HIGH' }`). */
export interface MetricsSink {
  count(name: PatchlineMetric, value: number, dimensions?: Readonly<Record<string, string>>): void;
  seconds(name: PatchlineMetric, value: number, dimensions?: Readonly<Record<string, string>>): void;
  /** Publishes what this invocation recorded; called once per invocation, after the handler (publishingMetrics). */
  flush(): void;
}

/** The Lambda entry point of a handler: its metrics are published when it returns or throws. */
export function publishingMetrics<R>(deps: Pick<HandlerDependencies, 'metrics'>, handler: (event: unknown) => Promise<R>): (event: unknown) => Promise<R> {
  return async (event) => {
    try {
      return await handler(event);
    } finally {
      deps.metrics?.flush();
    }
  };
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

/** The semaphore that caps concurrent rebuilds (one per table). */
export const REBUILD_SEMAPHORE = 'rebuild';

/** The stores every handler works on, over one table; `concurrency` caps the rebuild semaphore. */
export function tableStores(props: { client: DynamoDBClient; tableName: string; concurrency: number }): Pick<HandlerDependencies, 'lineage' | 'campaigns' | 'semaphore'> {
  const { client, tableName } = props;
  return {
    lineage: new DynamoLineageStore({ client, tableName }),
    campaigns: new CampaignStore({ client, tableName }),
    semaphore: new SemaphoreStore({ client, tableName, name: REBUILD_SEMAPHORE, cap: props.concurrency }),
  };
}

let fromEnvironment: HandlerDependencies | undefined;

/** The Lambda runtime's dependencies, created once per container from TABLE_NAME, REBUILD_CONCURRENCY, … */
export function dependenciesFromEnvironment(): HandlerDependencies {
  if (!fromEnvironment) {
    const client = traced(new DynamoDBClient({}));
    const tableName = requireEnv('TABLE_NAME');
    fromEnvironment = {
      ...tableStores({ client, tableName, concurrency: Number(requireEnv('REBUILD_CONCURRENCY')) }),
      taskTokens: sfnTaskTokenCallbacks(traced(new SFNClient({}))),
      defaultBuildSeconds: Number(process.env.DEFAULT_BUILD_SECONDS ?? '600'),
      settleWindowSeconds: Number(process.env.SETTLE_WINDOW_SECONDS ?? '0'),
      now: () => new Date(),
      metrics: new PowertoolsMetricsSink(),
      ...(process.env.REBUILD_STATE_MACHINE_ARN && { rebuilds: stepFunctionsRebuildStarter(traced(new SFNClient({})), process.env.REBUILD_STATE_MACHINE_ARN) }),
    };
  }
  return fromEnvironment;
}
