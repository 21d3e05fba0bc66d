import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AddressInfo } from 'net';
import { TableKeys } from '../../lambdas/store/table';

/**
 * dynalite, in process, on a loopback port, spoken to by the real AWS SDK. Chosen over DynamoDB Local for start-up
 * time (tens of milliseconds, no JVM) and because Patchline's stores use no transactions; see docs/architecture.md.
 */
export interface DynamoDbEmulator {
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  /** Number of requests the SDK has sent (every retry counted), for benchmarks. */
  requestCount(): number;
  stop(): Promise<void>;
}

export async function startDynamoDbEmulator(): Promise<DynamoDbEmulator> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dynalite = require('dynalite') as (options: Record<string, unknown>) => import('http').Server;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createLocalDynamoDbClient(endpoint);
  let requests = 0;
  client.middlewareStack.add(
    (next) => async (args) => {
      requests += 1;
      return next(args);
    },
    { step: 'finalizeRequest', name: 'patchlineRequestCounter' },
  );
  return {
    endpoint,
    client,
    requestCount: () => requests,
    stop: async () => {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function createLocalDynamoDbClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
  });
}

/** Creates the Patchline table with the same keys and index as the CDK construct. */
export async function createPatchlineTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TableKeys.PARTITION_KEY, AttributeType: 'S' },
        { AttributeName: TableKeys.SORT_KEY, AttributeType: 'S' },
        { AttributeName: TableKeys.GSI1_PARTITION_KEY, AttributeType: 'S' },
        { AttributeName: TableKeys.GSI1_SORT_KEY, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: TableKeys.PARTITION_KEY, KeyType: 'HASH' },
        { AttributeName: TableKeys.SORT_KEY, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: TableKeys.GSI1,
          KeySchema: [
            { AttributeName: TableKeys.GSI1_PARTITION_KEY, KeyType: 'HASH' },
            { AttributeName: TableKeys.GSI1_SORT_KEY, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
  // dynalite answers CreateTable while the table is still CREATING: wait until it is usable.
  for (let attempt = 0; attempt < 200; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`table ${tableName} did not become ACTIVE`);
}
