import { DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { mkdirSync } from 'fs';
import type { AddressInfo } from 'net';
import { join } from 'path';
import { CampaignStore } from '../lambdas/store/campaign-store';
import { DynamoLineageStore } from '../lambdas/store/dynamo-lineage-store';
import { createLocalDynamoDbClient, createPatchlineTable } from './local/dynamodb-emulator';

export const STATE_DIR = '.patchline';
const EMBEDDED_TABLE = 'patchline';

export interface StoreSession {
  readonly lineage: DynamoLineageStore;
  readonly campaigns: CampaignStore;
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly where: string;
  close(): Promise<void>;
}

/**
 * The CLI's store: by default an embedded dynalite persisted under .patchline/db (no AWS needed); with `--table NAME`
 * the real DynamoDB table of a deployment, through the default AWS credentials.
 */
export async function openStore(options: { table?: string; stateDir?: string }): Promise<StoreSession> {
  if (options.table) {
    const client = new DynamoDBClient({});
    return session(client, options.table, `DynamoDB table ${options.table}`, async () => client.destroy());
  }
  const dir = join(options.stateDir ?? STATE_DIR, 'db');
  mkdirSync(dir, { recursive: true });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dynalite = require('dynalite') as (o: Record<string, unknown>) => import('http').Server;
  const server = dynalite({ path: dir, createTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const client = createLocalDynamoDbClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    await client.send(new DescribeTableCommand({ TableName: EMBEDDED_TABLE }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    await createPatchlineTable(client, EMBEDDED_TABLE);
  }
  return session(client, EMBEDDED_TABLE, `embedded store ${dir}`, async () => {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

function session(client: DynamoDBClient, tableName: string, where: string, close: () => Promise<void>): StoreSession {
  return {
    lineage: new DynamoLineageStore({ client, tableName }),
    campaigns: new CampaignStore({ client, tableName }),
    client,
    tableName,
    where,
    close,
  };
}
