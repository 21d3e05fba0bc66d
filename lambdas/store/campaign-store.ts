import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { CampaignStatus, CampaignTrigger, MemberState, RootCampaignPointer } from '../domain/campaign';
import { ESTIMATE_HISTORY_WINDOW } from '../domain/scheduling';
import { queryAll } from './paginated-query';
import { KeyPrefix, TableKeys } from './table';

export interface CampaignRecord {
  readonly campaignId: string;
  readonly rootImage: string;
  readonly rootDigest: string;
  readonly trigger: CampaignTrigger;
  /** What started it, in words: the pushed tag, the CVE, the upstream move. */
  readonly reason: string;
  readonly startedAt: string;
  readonly memberCount: number;
  readonly vulnerabilityIds?: readonly string[];
  /** Absent means running. */
  readonly status?: CampaignStatus;
  /** The campaign that took over its unbuilt members. */
  readonly supersededBy?: string;
  /** Digests of the root that coalesced into it during its settle window, in arrival order. */
  readonly coalescedDigests?: readonly string[];
}

export interface MemberRecord {
  readonly campaignId: string;
  readonly image: string;
  readonly state: MemberState;
  readonly priority: number;
  /** The parents that carry the campaign down to this image. */
  readonly parents: readonly string[];
  readonly digest?: string;
  readonly baseImage?: string;
  readonly buildId?: string;
  readonly reason?: string;
  readonly updatedAt: string;
  readonly history?: ReadonlyArray<{ state: MemberState; at: string; detail?: string }>;
  /** A remote build stopped because its rebuild execution ended without it (aborted, timed out, failed). */
  readonly stoppedBuild?: { readonly buildId: string; readonly reason: string; readonly at: string };
}

const META = 'META';
const MEMBER = 'M#';
const BUILDING = 'BUILDING';
/** On the root image: the campaign its pushes feed (settle window, supersede). */
const ROOT_CAMPAIGN = 'CAMPAIGN';
/** On an image: its recent rebuild durations (critical-path estimates). */
const BUILD_DURATIONS = 'BUILD_DURATIONS';
/** On an image: which campaign rebuilt a digest (the rescan of that digest verifies the campaign's CVEs). */
const BUILT_DIGEST = 'BUILT#';
/** Durations kept per image: twice what an estimate reads, so a few invalid records do not empty it. */
export const KEPT_BUILD_DURATIONS = ESTIMATE_HISTORY_WINDOW * 2;

export function campaignKey(campaignId: string): string {
  return `${KeyPrefix.CAMPAIGN}${campaignId}`;
}

export function memberSortKey(image: string): string {
  return `${MEMBER}${image}`;
}

/** Campaigns and their members, in the single table (pk=CMP#<id>; sk=META | M#<image>). */
export class CampaignStore {
  private readonly doc: DynamoDBDocumentClient;

  public constructor(private readonly props: { client: DynamoDBClient; tableName: string }) {
    this.doc = DynamoDBDocumentClient.from(props.client, { marshallOptions: { removeUndefinedValues: true } });
  }

  /**
   * Creates a campaign with all its members pending. Returns false, writing nothing, when the campaign already
   * exists: a replayed push or finding must not reset a running campaign.
   */
  public async create(campaign: CampaignRecord, members: ReadonlyArray<Pick<MemberRecord, 'image' | 'priority' | 'parents'>>): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.props.tableName,
          Item: {
            [TableKeys.PARTITION_KEY]: campaignKey(campaign.campaignId),
            [TableKeys.SORT_KEY]: META,
            [TableKeys.GSI1_PARTITION_KEY]: 'CAMPAIGNS',
            [TableKeys.GSI1_SORT_KEY]: `${campaign.startedAt}#${campaign.campaignId}`,
            ...campaign,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
    const now = campaign.startedAt;
    const items = members.map((m) => ({
      PutRequest: {
        Item: {
          [TableKeys.PARTITION_KEY]: campaignKey(campaign.campaignId),
          [TableKeys.SORT_KEY]: memberSortKey(m.image),
          campaignId: campaign.campaignId,
          image: m.image,
          state: MemberState.PENDING,
          priority: m.priority,
          parents: m.parents,
          updatedAt: now,
          history: [{ state: MemberState.PENDING, at: now }],
        },
      },
    }));
    await this.batchWrite(items);
    return true;
  }

  public async get(campaignId: string): Promise<CampaignRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: { pk: campaignKey(campaignId), sk: META } }));
    return out.Item ? stripKeys<CampaignRecord>(out.Item) : undefined;
  }

  public async members(campaignId: string): Promise<MemberRecord[]> {
    const items = await queryAll(this.doc, {
      TableName: this.props.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :m)',
      ExpressionAttributeValues: { ':pk': campaignKey(campaignId), ':m': MEMBER },
    });
    return items.map((item) => stripKeys<MemberRecord>(item));
  }

  /** Member records of `images` in one campaign (BatchGet, 100 keys a request). */
  public async memberStates(campaignId: string, images: readonly string[]): Promise<Map<string, MemberRecord>> {
    const found = new Map<string, MemberRecord>();
    const unique = [...new Set(images)];
    for (let i = 0; i < unique.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = unique.slice(i, i + 100).map((image) => ({ pk: campaignKey(campaignId), sk: memberSortKey(image) }));
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.props.tableName]: { Keys: keys } } }));
        for (const item of out.Responses?.[this.props.tableName] ?? []) {
          const member = stripKeys<MemberRecord>(item);
          found.set(member.image, member);
        }
        keys = out.UnprocessedKeys?.[this.props.tableName]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return found;
  }

  /**
   * Moves a member to a new state when it is in one of `from`; returns false (and changes nothing) otherwise, so two
   * racing events cannot both move it.
   */
  public async transition(
    campaignId: string,
    image: string,
    from: readonly MemberState[],
    to: MemberState,
    fields: Partial<Pick<MemberRecord, 'digest' | 'baseImage' | 'buildId' | 'reason'>> = {},
    at = new Date().toISOString(),
  ): Promise<boolean> {
    const names: Record<string, string> = { '#state': 'state', '#updatedAt': 'updatedAt', '#history': 'history' };
    const values: Record<string, unknown> = {
      ':to': to,
      ':at': at,
      ':entry': [{ state: to, at, ...(fields.reason ? { detail: fields.reason } : {}) }],
    };
    const sets = ['#state = :to', '#updatedAt = :at', '#history = list_append(if_not_exists(#history, :empty), :entry)'];
    values[':empty'] = [];
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      names[`#${key}`] = key;
      values[`:${key}`] = value;
      sets.push(`#${key} = :${key}`);
    }
    const fromValues = from.map((state, i) => {
      values[`:from${i}`] = state;
      return `:from${i}`;
    });
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.props.tableName,
          Key: { pk: campaignKey(campaignId), sk: memberSortKey(image) },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: `attribute_exists(pk) AND #state IN (${fromValues.join(', ')})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** The campaign whose rebuild of `image` is in flight: its next push belongs to that campaign. */
  public async buildingCampaign(image: string): Promise<string | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.props.tableName, Key: { pk: `${KeyPrefix.IMAGE}${image}`, sk: BUILDING } }),
    );
    return out.Item?.campaignId as string | undefined;
  }

  public async clearBuilding(image: string, campaignId: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.props.tableName,
          Key: { pk: `${KeyPrefix.IMAGE}${image}`, sk: BUILDING },
          UpdateExpression: 'REMOVE campaignId',
          ConditionExpression: 'campaignId = :c',
          ExpressionAttributeValues: { ':c': campaignId },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** The campaign a root image's pushes currently feed, if any. */
  public async rootPointer(rootImage: string): Promise<RootCampaignPointer | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.props.tableName, Key: { pk: `${KeyPrefix.IMAGE}${rootImage}`, sk: ROOT_CAMPAIGN }, ConsistentRead: true }),
    );
    return out.Item ? stripKeys<RootCampaignPointer>(out.Item) : undefined;
  }

  /**
   * Points the root at a new campaign, unless another push moved the pointer since `expected` was read (false: read
   * again and re-decide). Optimistic, so two racing pushes of different digests cannot both open a campaign unseen.
   */
  public async claimRoot(pointer: RootCampaignPointer, expected: RootCampaignPointer | undefined): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.props.tableName,
          Item: { pk: `${KeyPrefix.IMAGE}${pointer.rootImage}`, sk: ROOT_CAMPAIGN, ...pointer },
          ConditionExpression: expected ? 'campaignId = :c AND rootDigest = :d' : 'attribute_not_exists(pk)',
          ...(expected && { ExpressionAttributeValues: { ':c': expected.campaignId, ':d': expected.rootDigest } }),
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * A push inside the open settle window: the root's campaign now starts from `digest`. False when the window closed
   * (or the pointer moved) meanwhile. The campaign record follows; its waiting rebuilds read it when the window closes.
   */
  public async coalesce(pointer: RootCampaignPointer, digest: string, pushedAt: string, now: Date): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.props.tableName,
          Key: { pk: `${KeyPrefix.IMAGE}${pointer.rootImage}`, sk: ROOT_CAMPAIGN },
          UpdateExpression: 'SET rootDigest = :d, pushedAt = :p',
          ConditionExpression: 'campaignId = :c AND rootDigest = :old AND settlesAt > :now',
          ExpressionAttributeValues: { ':d': digest, ':p': pushedAt, ':c': pointer.campaignId, ':old': pointer.rootDigest, ':now': now.toISOString() },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
    await this.doc.send(
      new UpdateCommand({
        TableName: this.props.tableName,
        Key: { pk: campaignKey(pointer.campaignId), sk: META },
        UpdateExpression: 'SET rootDigest = :d, coalescedDigests = list_append(if_not_exists(coalescedDigests, :empty), :ds)',
        // Never a META without the campaign: the caller creates the campaign first.
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':d': digest, ':ds': [digest], ':empty': [] },
      }),
    );
    return true;
  }

  /**
   * Marks `campaignId` superseded by `by` and moves its pending members to superseded (idempotent). Building members
   * are left alone: their builds finish in the old campaign. Returns the members superseded now.
   */
  public async supersede(campaignId: string, by: string, reason: string, at = new Date().toISOString()): Promise<string[]> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.props.tableName,
          Key: { pk: campaignKey(campaignId), sk: META },
          UpdateExpression: 'SET #status = :s, supersededBy = :by, finishedAt = if_not_exists(finishedAt, :at)',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':s': CampaignStatus.SUPERSEDED, ':by': by, ':at': at },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return [];
      throw error;
    }
    const moved: string[] = [];
    for (const member of await this.members(campaignId)) {
      if (member.state !== MemberState.PENDING) continue;
      if (await this.transition(campaignId, member.image, [MemberState.PENDING], MemberState.SUPERSEDED, { reason }, at)) moved.push(member.image);
    }
    return moved;
  }

  /**
   * Notes on a member that its remote build was stopped, and why: `stoppedBuild`, and a history entry in the member's
   * current state (the stop moves no state: the execution's own end does). False when the member does not exist.
   */
  public async recordStoppedBuild(campaignId: string, image: string, stopped: { buildId: string; reason: string }, at: string): Promise<boolean> {
    const key = { pk: campaignKey(campaignId), sk: memberSortKey(image) };
    for (let attempt = 0; ; attempt++) {
      const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: key, ConsistentRead: true }));
      const state = out.Item?.state as MemberState | undefined;
      if (state === undefined) return false;
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.props.tableName,
            Key: key,
            UpdateExpression: 'SET #stopped = :stopped, #history = list_append(if_not_exists(#history, :empty), :entry)',
            // The entry names the state read above: a racing transition makes it wrong, so the note is read again.
            ConditionExpression: '#state = :state',
            ExpressionAttributeNames: { '#stopped': 'stoppedBuild', '#history': 'history', '#state': 'state' },
            ExpressionAttributeValues: { ':stopped': { ...stopped, at }, ':empty': [], ':entry': [{ state, at, detail: stopped.reason }], ':state': state },
          }),
        );
        return true;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException) || attempt >= 2) throw error;
      }
    }
  }

  /** Records which campaign rebuilt `digest` of `image`. */
  public async recordBuiltDigest(image: string, digest: string, campaignId: string, at: string): Promise<void> {
    await this.doc.send(
      new PutCommand({ TableName: this.props.tableName, Item: { pk: `${KeyPrefix.IMAGE}${image}`, sk: `${BUILT_DIGEST}${digest}`, image, digest, campaignId, builtAt: at } }),
    );
  }

  /** The campaign that rebuilt `digest` of `image`, when a campaign did. */
  public async builtBy(image: string, digest: string): Promise<{ campaignId: string; builtAt: string } | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: { pk: `${KeyPrefix.IMAGE}${image}`, sk: `${BUILT_DIGEST}${digest}` } }));
    return out.Item ? { campaignId: out.Item.campaignId as string, builtAt: out.Item.builtAt as string } : undefined;
  }

  /** Appends a rebuild duration to the image's record, keeping the last KEPT_BUILD_DURATIONS. */
  public async recordBuildDuration(image: string, seconds: number): Promise<void> {
    const key = { pk: `${KeyPrefix.IMAGE}${image}`, sk: BUILD_DURATIONS };
    for (let attempt = 0; attempt < 5; attempt++) {
      const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: key, ConsistentRead: true }));
      const previous = (out.Item?.durations as number[] | undefined) ?? [];
      const revision = Number(out.Item?.revision ?? 0);
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.props.tableName,
            Item: { ...key, image, durations: [...previous, seconds].slice(-KEPT_BUILD_DURATIONS), revision: revision + 1 },
            // Two builds of one image ending together must not drop one another's duration.
            ConditionExpression: out.Item ? 'revision = :r' : 'attribute_not_exists(pk)',
            ...(out.Item && { ExpressionAttributeValues: { ':r': revision } }),
          }),
        );
        return;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
  }

  /** Recorded rebuild durations (seconds, oldest first) of each image that has any (BatchGet, 100 keys a request). */
  public async buildDurations(images: readonly string[]): Promise<Map<string, number[]>> {
    const found = new Map<string, number[]>();
    const unique = [...new Set(images)];
    for (let i = 0; i < unique.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = unique.slice(i, i + 100).map((image) => ({ pk: `${KeyPrefix.IMAGE}${image}`, sk: BUILD_DURATIONS }));
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.props.tableName]: { Keys: keys } } }));
        for (const item of out.Responses?.[this.props.tableName] ?? []) found.set(item.image as string, (item.durations as number[]) ?? []);
        keys = out.UnprocessedKeys?.[this.props.tableName]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return found;
  }

  public async list(limit = 50): Promise<CampaignRecord[]> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.props.tableName,
        IndexName: TableKeys.GSI1,
        KeyConditionExpression: 'gsi1pk = :p',
        ExpressionAttributeValues: { ':p': 'CAMPAIGNS' },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map((item) => stripKeys<CampaignRecord>(item));
  }

  private async batchWrite(requests: Record<string, unknown>[]): Promise<void> {
    for (let i = 0; i < requests.length; i += 25) {
      let pending: Record<string, unknown>[] | undefined = requests.slice(i, i + 25);
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const out = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.props.tableName]: pending as never } }));
        pending = out.UnprocessedItems?.[this.props.tableName] as Record<string, unknown>[] | undefined;
      }
    }
  }
}

/** The BUILDING marker's key, shared with the state machine's native DynamoDB task that writes it. */
export const BUILDING_MARKER_SORT_KEY = BUILDING;

async function backoff(attempt: number): Promise<void> {
  const delay = Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random() / 2);
  await new Promise((resolve) => setTimeout(resolve, delay));
}

function stripKeys<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...rest } = item;
  return rest as T;
}
