import { DynamoDBDocumentClient, QueryCommand, QueryCommandInput } from '@aws-sdk/lib-dynamodb';

/**
 * Every item a Query returns, page after page, stopping once `limit` items are in hand (each page asks for no more
 * than are still wanted, so the last page does not over-read).
 */
export async function queryAll(
  doc: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey' | 'Limit'>,
  limit = Number.POSITIVE_INFINITY,
): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const wanted = limit - items.length;
    const page = await doc.send(
      new QueryCommand({ ...input, ExclusiveStartKey: start, ...(Number.isFinite(wanted) ? { Limit: Math.min(wanted, 1_000) } : {}) }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start && items.length < limit);
  return items;
}
