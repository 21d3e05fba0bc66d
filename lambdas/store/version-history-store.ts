import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ImageVersion } from './lineage-store';
import { KeyPrefix, TableKeys } from './table';

/** The versions of an image, newest first: what drift counts a built-from digest against. */
export interface VersionHistory {
  versions(image: string, limit?: number): Promise<ImageVersion[]>;
}

/**
 * Version items (`IMG#<image>` / `V#<digest>`) read through gsi1 (`IMG#<image>` / `V#<pushedAt>#<digest>`), the index
 * DynamoLineageStore.currentVersion reads: one Query, in push order, with no item read per version.
 */
export class DynamoVersionHistoryStore implements VersionHistory {
  private readonly doc: DynamoDBDocumentClient;

  public constructor(private readonly props: { readonly client: DynamoDBClient; readonly tableName: string }) {
    this.doc = DynamoDBDocumentClient.from(props.client);
  }

  public async versions(image: string, limit = 100): Promise<ImageVersion[]> {
    const out: ImageVersion[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.props.tableName,
          IndexName: TableKeys.GSI1,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :v)',
          ExpressionAttributeNames: { '#pk': TableKeys.GSI1_PARTITION_KEY, '#sk': TableKeys.GSI1_SORT_KEY },
          ExpressionAttributeValues: { ':pk': KeyPrefix.IMAGE + image, ':v': KeyPrefix.VERSION },
          ScanIndexForward: false,
          Limit: limit - out.length,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        out.push({
          image: String(item.image),
          digest: String(item.digest),
          tags: item.tags instanceof Set ? [...(item.tags as Set<string>)].sort() : [],
          pushedAt: String(item.pushedAt),
          ...(item.parentDigests !== undefined && { parentDigests: item.parentDigests as Record<string, string> }),
        });
      }
      start = page.LastEvaluatedKey;
    } while (start && out.length < limit);
    return out;
  }
}
