import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { isDigest } from '../domain/image-ref';
import { LearnedSource, LineageChange, OwnerSource } from '../domain/learned-lineage';
import { KeyPrefix, TableKeys } from './table';

/** Sort key of an image's discovery record, beside its `NODE` item: the lineage scan reads `NODE` items only. */
export const DISCOVERY_SORT_KEY = 'LEARNED';

const BATCH_GET_LIMIT = 100;

/** What the last push that declared a base taught the lineage. */
export const LearnedRecordSchema = z.object({
  digest: z.string().refine(isDigest, 'not a digest'),
  at: z.iso.datetime({ offset: true }),
  source: z.enum(Object.values(LearnedSource) as [LearnedSource, ...LearnedSource[]]),
  change: z.enum(Object.values(LineageChange) as [LineageChange, ...LineageChange[]]),
  parent: z.string().min(1).max(1_000),
  baseName: z.string().max(512).optional(),
  baseDigest: z.string().refine(isDigest, 'not a digest').optional(),
  previousParent: z.string().max(1_000).optional(),
});
export type LearnedRecord = z.infer<typeof LearnedRecordSchema>;

/** An owner or build project taken from the repository's tags. */
export const TaggedRecordSchema = z.object({
  at: z.iso.datetime({ offset: true }),
  source: z.enum(Object.values(OwnerSource) as [OwnerSource, ...OwnerSource[]]),
  owner: z.string().max(64).optional(),
  project: z.string().max(255).optional(),
  /** Tags that were present but refused (invalid or unconfigured values). */
  notes: z.array(z.string().max(300)).max(10),
});
export type TaggedRecord = z.infer<typeof TaggedRecordSchema>;

/** A push whose declaration was refused (hostile annotation, a cycle, a blob that did not match its digest). */
export const RefusedRecordSchema = z.object({
  digest: z.string().refine(isDigest, 'not a digest'),
  at: z.iso.datetime({ offset: true }),
  code: z.string().max(64),
  reason: z.string().max(1_000),
});
export type RefusedRecord = z.infer<typeof RefusedRecordSchema>;

export interface DiscoveryRecord {
  readonly image: string;
  readonly learned?: LearnedRecord;
  readonly tagged?: TaggedRecord;
  readonly refused?: RefusedRecord;
}

export interface DiscoveryStoreProps {
  readonly client: DynamoDBClient;
  readonly tableName: string;
}

/**
 * Where each image's lineage was learned from (`IMG#<image>` / `LEARNED`): the last declaration taken, the last tags
 * read, the last refusal. Each part is its own attribute, so a refusal never hides what was learned before.
 */
export class DiscoveryStore {
  private readonly doc: DynamoDBDocumentClient;
  public constructor(private readonly props: DiscoveryStoreProps) {
    this.doc = DynamoDBDocumentClient.from(props.client, { marshallOptions: { removeUndefinedValues: true } });
  }

  public async recordLearned(image: string, record: LearnedRecord): Promise<void> {
    await this.set(image, 'learned', LearnedRecordSchema.parse(record));
  }

  public async recordTagged(image: string, record: TaggedRecord): Promise<void> {
    await this.set(image, 'tagged', TaggedRecordSchema.parse(record));
  }

  public async recordRefused(image: string, record: RefusedRecord): Promise<void> {
    await this.set(image, 'refused', RefusedRecordSchema.parse({ ...record, reason: record.reason.slice(0, 1_000) }));
  }

  public async get(image: string): Promise<DiscoveryRecord | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: key(image) }));
    return Item ? toRecord(Item) : undefined;
  }

  /** The records of many images, in batches of 100 (images without one are absent from the map). */
  public async getMany(images: readonly string[]): Promise<Map<string, DiscoveryRecord>> {
    const found = new Map<string, DiscoveryRecord>();
    for (let i = 0; i < images.length; i += BATCH_GET_LIMIT) {
      let keys: Record<string, unknown>[] = images.slice(i, i + BATCH_GET_LIMIT).map(key);
      for (let attempt = 1; keys.length > 0 && attempt <= 8; attempt++) {
        const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.props.tableName]: { Keys: keys } } }));
        for (const item of out.Responses?.[this.props.tableName] ?? []) {
          const record = toRecord(item);
          found.set(record.image, record);
        }
        keys = out.UnprocessedKeys?.[this.props.tableName]?.Keys ?? [];
      }
    }
    return found;
  }

  private async set(image: string, attribute: 'learned' | 'tagged' | 'refused', value: unknown): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.props.tableName,
        Key: key(image),
        UpdateExpression: 'SET #image = :image, #part = :value',
        ExpressionAttributeNames: { '#image': 'image', '#part': attribute },
        ExpressionAttributeValues: { ':image': image, ':value': value },
      }),
    );
  }
}

function key(image: string): Record<string, string> {
  return { [TableKeys.PARTITION_KEY]: KeyPrefix.IMAGE + image, [TableKeys.SORT_KEY]: DISCOVERY_SORT_KEY };
}

/** Stored parts are re-validated on the way out: an item edited by hand shows as absent, not as a crash. */
function toRecord(item: Record<string, unknown>): DiscoveryRecord {
  const learned = LearnedRecordSchema.safeParse(item.learned);
  const tagged = TaggedRecordSchema.safeParse(item.tagged);
  const refused = RefusedRecordSchema.safeParse(item.refused);
  return {
    image: String(item.image),
    ...(learned.success ? { learned: learned.data } : {}),
    ...(tagged.success ? { tagged: tagged.data } : {}),
    ...(refused.success ? { refused: refused.data } : {}),
  };
}
