import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  QueryCommandInput,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { DuplicateImageError, ImageNode, ImageNotFoundError, LineageGraph, ParentEdge, Tier } from '../domain/lineage';
import {
  DescendantRecord,
  ImageKeyTooLongError,
  ImageUpdate,
  ImageVersion,
  ImageVersionSchema,
  InvalidImageVersionError,
  LineageLeaseLostError,
  LineageStore,
  LineageWriteIncompleteError,
  MAX_IMAGE_KEY_BYTES,
  MAX_PARENTS,
  PutImagesOptions,
  PutImagesResult,
  TooManyParentsError,
  UpdateImageResult,
} from './lineage-store';
import { KeyPrefix, TableKeys } from './table';
import { LineageLeaseOptions, LineageWriteLease } from './lineage-write-lease';

/** Closure sort keys hold the depth as 3 digits, so one Query returns descendants nearest first. */
export const MAX_LINEAGE_DEPTH = 999;

export class LineageTooDeepError extends Error {
  public readonly code = 'LINEAGE_TOO_DEEP';
  public constructor(public readonly image: string, depth: number) {
    super(`image ${JSON.stringify(image)} is ${depth} levels below an ancestor; at most ${MAX_LINEAGE_DEPTH} are supported`);
    this.name = 'LineageTooDeepError';
  }
}

export interface DynamoLineageStoreProps {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /**
   * Items per Query page for children, descendants and ancestors.
   * @default - DynamoDB's own page (1 MB), the fewest requests
   */
  readonly queryPageSize?: number;
  /**
   * BatchWriteItem requests in flight at once during putImages and deleteImage.
   * @default 4
   */
  readonly writeConcurrency?: number;
  /**
   * Attempts for a batch whose items DynamoDB returns as unprocessed (throttling), with exponential backoff.
   * @default 8
   */
  readonly maxBatchAttempts?: number;
  /**
   * The write lease that serializes putImages and deleteImage across processes: its duration, how long a writer waits
   * for it, and the writer's name.
   * @default - 30 s leases, 10 s of waiting, the process as the writer
   */
  readonly lease?: LineageLeaseOptions;
}

const BATCH_WRITE_LIMIT = 25;
const BATCH_GET_LIMIT = 100;
const NO_IMAGE = '\u0000';

type Item = Record<string, unknown>;
type WriteRequest = { PutRequest: { Item: Item } } | { DeleteRequest: { Key: Item } };

/**
 * The lineage in the single Patchline table.
 *
 * - image: `IMG#<image>` / `NODE`.
 * - version: `IMG#<image>` / `V#<digest>`, indexed on gsi1 by `IMG#<image>` / `V#<pushedAt>#<digest>`, so the current
 *   version is one Query, and out-of-order push events cannot make an older version current.
 * - closure: one item per (ancestor, descendant) pair, `DESC#<ancestor>` / `<depth:3>#<descendant>` (shortest path),
 *   carrying the descendant's tier, owner, parents and build, so `descendants` is one paginated Query and `children` the
 *   same Query on `001#`. gsi1 mirrors each pair as `ANC#<descendant>` / `<depth:3>#<ancestor>` for `ancestors`.
 *   (`ancestors` and `currentVersion` read gsi1, so on DynamoDB they are eventually consistent.)
 *
 * Writers hold the lineage write lease (`LineageWriteLease`) from before they read until after they write, so two
 * writers never interleave: the second reads what the first wrote and validates the union (a cycle that only both
 * changes together close is refused). Under the lease a writer loads the whole lineage (a paginated scan), applies the
 * change in memory, and writes only the difference, closure items before image items: if a write fails half-way, the
 * stored images still describe the old lineage. A write that did not end cleanly (its writer crashed, stalled past its
 * lease, or failed after it had started writing) is flagged on the lease, and the next writer first repairs the
 * closure items from the image items, which are the truth. Readers take no lease.
 */
export class DynamoLineageStore implements LineageStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly queryPageSize?: number;
  private readonly writeConcurrency: number;
  private readonly maxBatchAttempts: number;
  private readonly leaseOptions: LineageLeaseOptions;

  public constructor(props: DynamoLineageStoreProps) {
    if (props.queryPageSize !== undefined && !(Number.isInteger(props.queryPageSize) && props.queryPageSize >= 1)) {
      throw new RangeError(`queryPageSize must be a positive integer, got ${props.queryPageSize}`);
    }
    if (props.writeConcurrency !== undefined && !(Number.isInteger(props.writeConcurrency) && props.writeConcurrency >= 1)) {
      throw new RangeError(`writeConcurrency must be a positive integer, got ${props.writeConcurrency}`);
    }
    for (const field of ['leaseMs', 'acquireTimeoutMs'] as const) {
      const value = props.lease?.[field];
      if (value !== undefined && !(Number.isInteger(value) && value >= 1)) throw new RangeError(`lease.${field} must be a positive integer (milliseconds), got ${value}`);
    }
    this.doc = DynamoDBDocumentClient.from(props.client, { marshallOptions: { removeUndefinedValues: true } });
    this.tableName = props.tableName;
    this.queryPageSize = props.queryPageSize;
    this.writeConcurrency = props.writeConcurrency ?? 4;
    this.maxBatchAttempts = props.maxBatchAttempts ?? 8;
    this.leaseOptions = props.lease ?? {};
  }

  public async putImages(nodes: readonly ImageNode[], options: PutImagesOptions = {}): Promise<PutImagesResult> {
    const incoming = new Map<string, ImageNode>();
    for (const node of nodes) {
      if (incoming.has(node.image)) throw new DuplicateImageError(node.image, 'in the same putImages call');
      validateNode(node);
      incoming.set(node.image, node);
    }
    return this.underLease(async (session) => {
      const { graph: before, stored } = await this.loadForWrite(session);
      const merged = new Map<string, ImageNode>();
      for (const node of before.images()) merged.set(node.image, node);
      for (const node of incoming.values()) merged.set(node.image, node);
      // Validates the final lineage (cycles included) before a single write: a refused batch changes nothing.
      const after = LineageGraph.fromImages(merged.values());
      const externalsAdded = [...after.images()].filter((n) => !before.has(n.image) && !incoming.has(n.image)).map((n) => n.image);
      return this.applyDifference(before, after, stored, externalsAdded, options, session);
    });
  }

  /**
   * One strongly consistent GetItem first: an update that changes nothing is settled there, without the lease or the
   * scan (a push of an image already known as declared costs one read). Otherwise the update is called again with the
   * node read under the lease, and only that call decides what is written.
   */
  public async updateImage(image: string, update: ImageUpdate): Promise<UpdateImageResult> {
    validateKey(image);
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: nodeKey(image), ConsistentRead: true }));
    const seen = Item ? toImageNode(Item) : undefined;
    if (!updateChanges(image, seen, update(seen))) return { node: seen };
    return this.underLease(async (session) => {
      const { graph: before, stored } = await this.loadForWrite(session);
      // An image known only as someone's parent whose item an interrupted write left unwritten has no stored node.
      const current = stored.has(image) ? before.get(image) : undefined;
      const next = update(current);
      if (!updateChanges(image, current, next)) return { node: current };
      validateNode(next);
      const merged = new Map<string, ImageNode>();
      for (const node of before.images()) merged.set(node.image, node);
      merged.set(image, next);
      // Validates the final lineage (cycles included) before a single write, exactly as putImages does.
      const after = LineageGraph.fromImages(merged.values());
      const externalsAdded = [...after.images()].filter((n) => !before.has(n.image) && n.image !== image).map((n) => n.image);
      return { node: next, written: await this.applyDifference(before, after, stored, externalsAdded, {}, session) };
    });
  }

  public async getImage(image: string): Promise<ImageNode | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: nodeKey(image) }));
    return Item ? toImageNode(Item) : undefined;
  }

  public async deleteImage(image: string): Promise<void> {
    await this.underLease(async (session) => {
      const { graph: before, stored } = await this.loadForWrite(session);
      if (!before.has(image)) throw new ImageNotFoundError(image);
      const after = LineageGraph.fromImages(before.images());
      after.remove(image);
      await this.applyDifference(before, after, stored, [], {}, session);
    });
  }

  public async children(image: string): Promise<DescendantRecord[]> {
    return this.queryClosure({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :depth)',
      ExpressionAttributeNames: { '#pk': TableKeys.PARTITION_KEY, '#sk': TableKeys.SORT_KEY },
      ExpressionAttributeValues: { ':pk': KeyPrefix.DESCENDANTS + image, ':depth': `${padDepth(1)}#` },
    });
  }

  public async descendants(image: string): Promise<DescendantRecord[]> {
    return this.queryClosure({
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': TableKeys.PARTITION_KEY },
      ExpressionAttributeValues: { ':pk': KeyPrefix.DESCENDANTS + image },
    });
  }

  public async ancestors(image: string): Promise<DescendantRecord[]> {
    const pairs: Array<{ image: string; depth: number }> = [];
    for await (const item of this.paginate({
      IndexName: TableKeys.GSI1,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': TableKeys.GSI1_PARTITION_KEY, '#a': 'ancestor', '#d': 'depth' },
      ExpressionAttributeValues: { ':pk': KeyPrefix.ANCESTORS + image },
      ProjectionExpression: '#a, #d',
    })) {
      pairs.push({ image: String(item.ancestor), depth: Number(item.depth) });
    }
    // The ancestor's own fields live on its image item; closure items only carry the descendant's.
    const nodes = await this.batchGetNodes(pairs.map((p) => p.image));
    return pairs.flatMap((p) => {
      const node = nodes.get(p.image);
      return node ? [{ ...node, depth: p.depth }] : [];
    });
  }

  public async loadGraph(): Promise<LineageGraph> {
    return (await this.loadStored()).graph;
  }

  /**
   * Runs a write under the lineage write lease and releases it, flagging a repair for the next writer when the write
   * failed after it had started writing, or when the lease was taken over meanwhile.
   */
  private async underLease<T>(write: (session: WriteSession) => Promise<T>): Promise<T> {
    const lease = await LineageWriteLease.acquire(this.doc, this.tableName, this.leaseOptions);
    const session: WriteSession = { lease, dirty: lease.unclean !== undefined };
    let result: T;
    try {
      result = await write(session);
    } catch (error) {
      // Best effort: the write's own error is the one to report; an unreleased lease expires and flags the repair.
      await session.lease.release(session.dirty).catch(() => false);
      throw error;
    }
    if (!(await session.lease.release(false))) throw new LineageLeaseLostError(session.lease.owner);
    return result;
  }

  /** The lineage for a writer holding the lease, after repairing the closure items if the last write ended unclean. */
  private async loadForWrite(session: WriteSession): Promise<{ graph: LineageGraph; stored: ReadonlySet<string> }> {
    if (!session.lease.unclean) return this.loadStored(session.lease);
    const loaded = await this.loadStored(session.lease, true);
    await this.batchWrite(planRepair(loaded.graph, loaded.closure), () => undefined, session.lease);
    session.dirty = false;
    return loaded;
  }

  /**
   * The lineage, and which of its images have an item (an interrupted write may have left a parent without one); with
   * `withClosure`, the stored closure items too (the same scan: it reads every item either way).
   */
  private async loadStored(lease?: LineageWriteLease, withClosure = false): Promise<{ graph: LineageGraph; stored: ReadonlySet<string>; closure: Item[] }> {
    const nodes: ImageNode[] = [];
    const closure: Item[] = [];
    let ExclusiveStartKey: Item | undefined;
    do {
      await lease?.keepAlive();
      const page = await this.doc.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: withClosure ? '(#sk = :node AND begins_with(#pk, :img)) OR begins_with(#pk, :desc)' : '#sk = :node AND begins_with(#pk, :img)',
          ExpressionAttributeNames: { '#pk': TableKeys.PARTITION_KEY, '#sk': TableKeys.SORT_KEY },
          ExpressionAttributeValues: { ':node': KeyPrefix.NODE, ':img': KeyPrefix.IMAGE, ...(withClosure ? { ':desc': KeyPrefix.DESCENDANTS } : {}) },
          // Under the lease the read must see the last writer's items: it released the lease just before.
          ConsistentRead: lease !== undefined,
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) {
        if (String(item[TableKeys.PARTITION_KEY]).startsWith(KeyPrefix.DESCENDANTS)) closure.push(item);
        else nodes.push(toImageNode(item));
      }
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return { graph: LineageGraph.fromImages(nodes), stored: new Set(nodes.map((n) => n.image)), closure };
  }

  public async putVersion(version: ImageVersion): Promise<{ created: boolean }> {
    const parsed = ImageVersionSchema.safeParse(version);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidImageVersionError(`image version ${issue.path.join('.') || '(top level)'}: ${issue.message}`, { cause: parsed.error });
    }
    const v = parsed.data;
    validateKey(v.image);
    const names: Record<string, string> = {
      '#image': 'image',
      '#digest': 'digest',
      '#pushedAt': 'pushedAt',
      '#g1pk': TableKeys.GSI1_PARTITION_KEY,
      '#g1sk': TableKeys.GSI1_SORT_KEY,
    };
    const values: Record<string, unknown> = {
      ':image': v.image,
      ':digest': v.digest,
      ':pushedAt': v.pushedAt,
      ':g1pk': KeyPrefix.IMAGE + v.image,
      ':g1sk': `${KeyPrefix.VERSION}${new Date(v.pushedAt).toISOString()}#${v.digest}`,
    };
    // A re-sent push keeps the first pushedAt and parent digests; only new tags are merged in.
    const set = ['#image = :image', '#digest = :digest', ...['pushedAt', 'g1pk', 'g1sk'].map((n) => `#${n} = if_not_exists(#${n}, :${n})`)];
    if (v.parentDigests) {
      names['#parentDigests'] = 'parentDigests';
      values[':parentDigests'] = v.parentDigests;
      set.push('#parentDigests = if_not_exists(#parentDigests, :parentDigests)');
    }
    let expression = `SET ${set.join(', ')}`;
    if (v.tags.length > 0) {
      names['#tags'] = 'tags';
      values[':tags'] = new Set(v.tags);
      expression += ' ADD #tags :tags';
    }
    const { Attributes } = await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: versionKey(v.image, v.digest),
        UpdateExpression: expression,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_OLD',
      }),
    );
    return { created: Attributes === undefined };
  }

  public async getVersion(image: string, digest: string): Promise<ImageVersion | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: versionKey(image, digest) }));
    return Item ? toImageVersion(Item) : undefined;
  }

  public async currentVersion(image: string): Promise<ImageVersion | undefined> {
    const { Items } = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TableKeys.GSI1,
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :v)',
        ExpressionAttributeNames: { '#pk': TableKeys.GSI1_PARTITION_KEY, '#sk': TableKeys.GSI1_SORT_KEY },
        ExpressionAttributeValues: { ':pk': KeyPrefix.IMAGE + image, ':v': KeyPrefix.VERSION },
        ScanIndexForward: false,
        Limit: 1,
      }),
    );
    return Items && Items.length > 0 ? toImageVersion(Items[0]) : undefined;
  }

  /** Writes what differs between two lineages: closure items first, then image items (see the class comment). */
  private async applyDifference(
    before: LineageGraph,
    after: LineageGraph,
    stored: ReadonlySet<string>,
    externalsAdded: readonly string[],
    options: PutImagesOptions,
    session: WriteSession,
  ): Promise<PutImagesResult> {
    const { closure, images, closureItemsPut, closureItemsDeleted } = planDifference(before, after, stored);
    const total = closure.length + images.length;
    let done = 0;
    let writeRequests = 0;
    const onBatch = (items: number, requests: number): void => {
      done += items;
      writeRequests += requests;
      options.onProgress?.(done, total);
    };
    session.dirty = session.dirty || total > 0;
    await this.batchWrite(closure, onBatch, session.lease);
    await this.batchWrite(images, onBatch, session.lease);
    return { imagesWritten: images.filter((w) => 'PutRequest' in w).length, externalsAdded, closureItemsPut, closureItemsDeleted, writeRequests };
  }

  /** Each batch is sent only while the lease is held (renewed when due), so a stalled writer stops at its next batch. */
  private async batchWrite(writes: readonly WriteRequest[], onBatch: (items: number, requests: number) => void, lease: LineageWriteLease): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < writes.length) {
        const batch = writes.slice(next, next + BATCH_WRITE_LIMIT);
        next += batch.length;
        await lease.keepAlive();
        onBatch(batch.length, await this.writeBatch(batch));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.writeConcurrency, Math.ceil(writes.length / BATCH_WRITE_LIMIT)) }, worker));
  }

  /** One BatchWriteItem, retrying unprocessed items with exponential backoff and jitter; returns the requests sent. */
  private async writeBatch(batch: readonly WriteRequest[]): Promise<number> {
    let pending: WriteRequest[] = [...batch];
    for (let attempt = 1; ; attempt++) {
      const out = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } }));
      pending = (out.UnprocessedItems?.[this.tableName] ?? []) as WriteRequest[];
      if (pending.length === 0) return attempt;
      if (attempt >= this.maxBatchAttempts) throw new LineageWriteIncompleteError(pending.length);
      await sleep(Math.random() * Math.min(2_000, 25 * 2 ** attempt));
    }
  }

  private async batchGetNodes(images: readonly string[]): Promise<Map<string, ImageNode>> {
    const found = new Map<string, ImageNode>();
    for (let i = 0; i < images.length; i += BATCH_GET_LIMIT) {
      let keys: Item[] = images.slice(i, i + BATCH_GET_LIMIT).map(nodeKey);
      for (let attempt = 1; keys.length > 0; attempt++) {
        const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys } } }));
        for (const item of out.Responses?.[this.tableName] ?? []) found.set(String(item.image), toImageNode(item));
        keys = out.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
        if (keys.length > 0) {
          if (attempt >= this.maxBatchAttempts) throw new LineageWriteIncompleteError(keys.length);
          await sleep(Math.random() * Math.min(2_000, 25 * 2 ** attempt));
        }
      }
    }
    return found;
  }

  private async queryClosure(input: Omit<QueryCommandInput, 'TableName'>): Promise<DescendantRecord[]> {
    const records: DescendantRecord[] = [];
    for await (const item of this.paginate(input)) records.push(toDescendantRecord(item));
    return records;
  }

  private async *paginate(input: Omit<QueryCommandInput, 'TableName'>): AsyncGenerator<Item> {
    let ExclusiveStartKey: Item | undefined;
    do {
      const page = await this.doc.send(new QueryCommand({ ...input, TableName: this.tableName, Limit: this.queryPageSize, ExclusiveStartKey }));
      yield* page.Items ?? [];
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }
}

/**
 * A write under the lease. `dirty` while the closure items may disagree with the image items if the write stopped now:
 * from the first write request sent, and from the start when a repair is owed until it is done.
 */
interface WriteSession {
  readonly lease: LineageWriteLease;
  dirty: boolean;
}

/**
 * The closure writes that make the stored closure items exactly the closure of the stored images (the truth after a
 * write that did not end cleanly): stray or stale items deleted, missing or outdated ones put.
 */
function planRepair(graph: LineageGraph, stored: readonly Item[]): WriteRequest[] {
  const expected = new Map<string, Item>();
  for (const node of graph.images()) {
    for (const [ancestor, depth] of shortestAncestors(graph, node.image)) {
      const item = closureItem(ancestor, depth, node);
      expected.set(`${String(item[TableKeys.PARTITION_KEY])}\t${String(item[TableKeys.SORT_KEY])}`, item);
    }
  }
  const writes: WriteRequest[] = [];
  for (const item of stored) {
    const key = `${String(item[TableKeys.PARTITION_KEY])}\t${String(item[TableKeys.SORT_KEY])}`;
    const want = expected.get(key);
    expected.delete(key);
    if (!want) writes.push({ DeleteRequest: { Key: { [TableKeys.PARTITION_KEY]: item[TableKeys.PARTITION_KEY], [TableKeys.SORT_KEY]: item[TableKeys.SORT_KEY] } } });
    else if (recordSignature(toImageNode(item)) !== recordSignature(toImageNode(want))) writes.push({ PutRequest: { Item: want } });
  }
  for (const item of expected.values()) writes.push({ PutRequest: { Item: item } });
  return writes;
}

interface DifferencePlan {
  readonly closure: WriteRequest[];
  readonly images: WriteRequest[];
  readonly closureItemsPut: number;
  readonly closureItemsDeleted: number;
}

/**
 * The writes that turn the stored `before` lineage into `after`. Only images whose ancestors may have changed are
 * visited: those below an image whose parents changed, and images whose own fields changed (their copies in closure
 * items are rewritten).
 */
function planDifference(before: LineageGraph, after: LineageGraph, stored: ReadonlySet<string>): DifferencePlan {
  const changed = new Set<string>();
  const reparented: string[] = [];
  for (const graph of [before, after]) {
    for (const node of graph.images()) {
      if (changed.has(node.image)) continue;
      const old = before.get(node.image);
      const now = after.get(node.image);
      if (recordSignature(old) !== recordSignature(now) || (now && !stored.has(node.image))) changed.add(node.image);
      if (parentsSignature(old) !== parentsSignature(now)) reparented.push(node.image);
    }
  }
  // Walking `after` is enough: an image whose path to an ancestor broke is below the lowest re-parented image on that
  // path, in both lineages; and an image that left the lineage is in `changed`.
  const affected = new Set<string>([...changed, ...below(after, reparented)]);

  // Depths are checked for every image before any item is built, so a refused change costs no memory.
  const ancestry = [...affected].map((image) => {
    const now = after.has(image) ? shortestAncestors(after, image) : new Map<string, number>();
    const deepest = Math.max(0, ...now.values());
    if (deepest > MAX_LINEAGE_DEPTH) throw new LineageTooDeepError(image, deepest);
    return { image, now, old: before.has(image) ? shortestAncestors(before, image) : new Map<string, number>() };
  });

  const closure: WriteRequest[] = [];
  let closureItemsPut = 0;
  let closureItemsDeleted = 0;
  for (const { image, old, now } of ancestry) {
    for (const [ancestor, depth] of old) {
      if (now.get(ancestor) !== depth) {
        closure.push({ DeleteRequest: { Key: closureKey(ancestor, depth, image) } });
        closureItemsDeleted += 1;
      }
    }
    const node = after.get(image);
    if (!node) continue;
    const fieldsChanged = changed.has(image);
    for (const [ancestor, depth] of now) {
      if (fieldsChanged || old.get(ancestor) !== depth) {
        closure.push({ PutRequest: { Item: closureItem(ancestor, depth, node) } });
        closureItemsPut += 1;
      }
    }
  }
  const images: WriteRequest[] = [...changed].map((image) => {
    const node = after.get(image);
    return node ? { PutRequest: { Item: nodeItem(node) } } : { DeleteRequest: { Key: nodeKey(image) } };
  });
  return { closure, images, closureItemsPut, closureItemsDeleted };
}

/** Every image below any of `starts` in `graph` (the starts included when present). */
function below(graph: LineageGraph, starts: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const stack = starts.filter((s) => graph.has(s));
  for (const s of stack) seen.add(s);
  while (stack.length > 0) {
    for (const child of graph.children(stack.pop()!)) {
      if (!seen.has(child)) {
        seen.add(child);
        stack.push(child);
      }
    }
  }
  return seen;
}

/** Each ancestor of `image` with the length of the shortest path up to it (breadth-first, so the first visit is shortest). */
function shortestAncestors(graph: LineageGraph, image: string): Map<string, number> {
  const depth = new Map<string, number>();
  let frontier = [image];
  for (let level = 1; frontier.length > 0; level++) {
    const next: string[] = [];
    for (const current of frontier) {
      for (const parent of graph.parents(current)) {
        if (parent.image !== image && !depth.has(parent.image)) {
          depth.set(parent.image, level);
          next.push(parent.image);
        }
      }
    }
    frontier = next;
  }
  return depth;
}

function recordSignature(node: ImageNode | undefined): string {
  if (!node) return NO_IMAGE;
  return JSON.stringify([node.tier, node.owner ?? null, node.build?.project ?? null, node.parents.map((p) => [p.image, p.role])]);
}

function parentsSignature(node: ImageNode | undefined): string {
  return node ? JSON.stringify(node.parents.map((p) => p.image)) : NO_IMAGE;
}

/** True when an update's result must be written; refuses one that returns another image's node. */
function updateChanges(image: string, current: ImageNode | undefined, next: ImageNode | undefined): next is ImageNode {
  if (next === undefined) return false;
  if (next.image !== image) {
    throw new RangeError(`the update of image ${JSON.stringify(image)} returned the node of ${JSON.stringify(next.image)}; it must return the node of the image it updates`);
  }
  return current === undefined || recordSignature(current) !== recordSignature(next);
}

function validateNode(node: ImageNode): void {
  validateKey(node.image);
  if (node.parents.length > MAX_PARENTS) throw new TooManyParentsError(node.image, node.parents.length);
  for (const parent of node.parents) validateKey(parent.image);
}

function validateKey(image: string): void {
  const bytes = Buffer.byteLength(image, 'utf8');
  if (bytes > MAX_IMAGE_KEY_BYTES) throw new ImageKeyTooLongError(image, bytes);
}

function padDepth(depth: number): string {
  return String(depth).padStart(3, '0');
}

function nodeKey(image: string): Item {
  return { [TableKeys.PARTITION_KEY]: KeyPrefix.IMAGE + image, [TableKeys.SORT_KEY]: KeyPrefix.NODE };
}

function versionKey(image: string, digest: string): Item {
  return { [TableKeys.PARTITION_KEY]: KeyPrefix.IMAGE + image, [TableKeys.SORT_KEY]: KeyPrefix.VERSION + digest };
}

function closureKey(ancestor: string, depth: number, image: string): Item {
  return { [TableKeys.PARTITION_KEY]: KeyPrefix.DESCENDANTS + ancestor, [TableKeys.SORT_KEY]: `${padDepth(depth)}#${image}` };
}

function nodeFields(node: ImageNode): Item {
  return {
    image: node.image,
    tier: node.tier,
    owner: node.owner,
    parents: node.parents.map((p) => ({ image: p.image, role: p.role })),
    build: node.build ? { project: node.build.project } : undefined,
  };
}

function nodeItem(node: ImageNode): Item {
  return { ...nodeKey(node.image), ...nodeFields(node) };
}

function closureItem(ancestor: string, depth: number, node: ImageNode): Item {
  return {
    ...closureKey(ancestor, depth, node.image),
    [TableKeys.GSI1_PARTITION_KEY]: KeyPrefix.ANCESTORS + node.image,
    [TableKeys.GSI1_SORT_KEY]: `${padDepth(depth)}#${ancestor}`,
    ancestor,
    depth,
    ...nodeFields(node),
  };
}

function toImageNode(item: Item): ImageNode {
  const build = item.build as { project: string } | undefined;
  return stripUndefined({
    image: String(item.image),
    tier: item.tier as Tier,
    owner: item.owner as string | undefined,
    parents: ((item.parents as ParentEdge[] | undefined) ?? []).map((p) => ({ image: p.image, role: p.role })),
    build: build ? { project: build.project } : undefined,
  });
}

function toDescendantRecord(item: Item): DescendantRecord {
  return { ...toImageNode(item), depth: Number(item.depth) };
}

function toImageVersion(item: Item): ImageVersion {
  return stripUndefined({
    image: String(item.image),
    digest: String(item.digest),
    tags: item.tags instanceof Set ? [...(item.tags as Set<string>)].sort() : [],
    pushedAt: String(item.pushedAt),
    parentDigests: item.parentDigests as Record<string, string> | undefined,
  });
}

/** Drops keys whose value is undefined, so records compare equal to the nodes they came from. */
function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
