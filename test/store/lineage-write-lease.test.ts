import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createLocalDynamoDbClient, createPatchlineTable } from '../../cli/local/dynamodb-emulator';
import { ImageNode, LineageCycleError, ParentRole, Tier } from '../../lambdas/domain/lineage';
import { DynamoLineageStore, DynamoLineageStoreProps } from '../../lambdas/store/dynamo-lineage-store';
import { LineageBusyError, LineageLeaseLostError } from '../../lambdas/store/lineage-store';
import { LineageWriteLease } from '../../lambdas/store/lineage-write-lease';
import { startTestTable } from '../support/dynamodb';

type Emulator = Awaited<ReturnType<typeof startTestTable>>;
type Item = Record<string, unknown>;

const LEASE_KEY = { pk: 'LEASE#lineage', sk: 'LEASE' };

let emulator: Emulator;
let doc: DynamoDBDocumentClient;
let tables = 0;

beforeAll(async () => {
  emulator = await startTestTable();
  doc = DynamoDBDocumentClient.from(emulator.client);
});

afterAll(async () => {
  await emulator.stop();
});

async function freshTable(): Promise<string> {
  const tableName = `lease-${++tables}`;
  await createPatchlineTable(emulator.client, tableName);
  // dynalite answers CreateTable while the table is still CREATING, even with createTableMs 0.
  while ((await emulator.client.send(new DescribeTableCommand({ TableName: tableName }))).Table?.TableStatus !== 'ACTIVE') {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return tableName;
}

/** One store per writer, as separate Lambdas or a CLI would each have their own. */
function writer(tableName: string, props: Partial<DynamoLineageStoreProps> = {}): DynamoLineageStore {
  return new DynamoLineageStore({ client: emulator.client, tableName, ...props });
}

const node = (image: string, ...parents: string[]): ImageNode => ({
  image,
  tier: parents.length === 0 ? Tier.BASE : Tier.APPLICATION,
  owner: 'team-a',
  parents: parents.map((p) => ({ image: p, role: ParentRole.RUNTIME })),
});

async function scanAll(tableName: string): Promise<Item[]> {
  const items: Item[] = [];
  let ExclusiveStartKey: Item | undefined;
  do {
    const page = await doc.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey }));
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

const fieldsOf = (item: Item): string =>
  JSON.stringify([item.tier, item.owner ?? null, ((item.parents as Item[] | undefined) ?? []).map((p) => [p.image, p.role]), (item.build as Item | undefined)?.project ?? null]);

/**
 * The stored closure items next to the closure computed here, independently of the store, from the stored image items
 * alone (shortest path up from each image, each carrying the image's fields). Equal when the table is consistent.
 */
async function closureCheck(tableName: string): Promise<{ stored: string[]; expected: string[]; images: Map<string, Item> }> {
  const items = await scanAll(tableName);
  const images = new Map(items.filter((i) => String(i.pk).startsWith('IMG#') && i.sk === 'NODE').map((i) => [String(i.image), i]));
  const expected: string[] = [];
  for (const [image, item] of images) {
    const depth = new Map<string, number>();
    let frontier = [image];
    for (let level = 1; frontier.length > 0; level++) {
      const next: string[] = [];
      for (const current of frontier) {
        for (const parent of ((images.get(current)?.parents as Item[] | undefined) ?? []).map((p) => String(p.image))) {
          if (parent !== image && !depth.has(parent)) {
            depth.set(parent, level);
            next.push(parent);
          }
        }
      }
      frontier = next;
    }
    for (const [ancestor, d] of depth) expected.push(`DESC#${ancestor} ${String(d).padStart(3, '0')}#${image} ${fieldsOf(item)}`);
  }
  const stored = items.filter((i) => String(i.pk).startsWith('DESC#')).map((i) => `${String(i.pk)} ${String(i.sk)} ${fieldsOf(i)}`);
  return { stored: stored.sort(), expected: expected.sort(), images };
}

async function leaseItem(tableName: string): Promise<Item | undefined> {
  return (await doc.send(new GetCommand({ TableName: tableName, Key: LEASE_KEY, ConsistentRead: true }))).Item;
}

describe('Class: DynamoLineageStore (concurrent writers)', () => {
  describe('Method: putImages', () => {
    it('refuses the second of two concurrent writes that only together close a cycle, naming it, and keeps the index consistent', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('platform/x'), node('platform/y'), node('apps/below-x', 'platform/x'), node('apps/below-y', 'platform/y')]);

      // Each alone is valid; both together make platform/x and platform/y each other's parent.
      const outcomes = await Promise.allSettled([
        writer(tableName).putImages([node('platform/x', 'platform/y')]),
        writer(tableName).putImages([node('platform/y', 'platform/x')]),
      ]);

      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const refused = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')!;
      expect(refused.reason).toBeInstanceOf(LineageCycleError);
      expect((refused.reason as LineageCycleError).cycle).toEqual(expect.arrayContaining(['platform/x', 'platform/y']));
      expect((refused.reason as Error).message).toMatch(/lineage cycle refused: .*platform\/[xy].*platform\/[xy]/);
      const { stored, expected, images } = await closureCheck(tableName);
      expect(stored).toEqual(expected);
      // Exactly one of the two edges was stored.
      const edges = ['platform/x', 'platform/y'].filter((i) => ((images.get(i)!.parents as Item[]) ?? []).length > 0);
      expect(edges).toHaveLength(1);
      expect((await leaseItem(tableName))?.leaseExpiresAt).toBe(0);
    });

    it('leaves the closure of the final image items after many concurrent learn-style single-image puts', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/os')]);
      // 12 images, each put twice with a different parent (always a lower-numbered image, so never a cycle), all at once.
      const candidates = (i: number): [string, string] => [i === 0 ? 'base/os' : `svc/${i - 1}`, i < 2 ? 'base/os' : `svc/${Math.floor(i / 2) - 1}`];
      const puts = Array.from({ length: 12 }, (_, i) => candidates(i).map((parent) => node(`svc/${i}`, parent))).flat();

      const results = await Promise.allSettled(puts.map((put) => writer(tableName, { lease: { acquireTimeoutMs: 60_000 } }).putImages([put])));

      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const { stored, expected, images } = await closureCheck(tableName);
      expect(stored).toEqual(expected);
      expect(stored.length).toBeGreaterThanOrEqual(12);
      for (let i = 0; i < 12; i++) {
        expect(candidates(i)).toContain(String((images.get(`svc/${i}`)!.parents as Item[])[0].image));
      }
    });

    it('takes over the expired lease of a crashed writer without waiting, and repairs the half-written index first', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a'), node('apps/b', 'base/a'), node('apps/c', 'apps/b')]);
      // A writer crashed half-way: its lease never released, a closure item put for an image it never wrote, one deleted.
      await doc.send(new PutCommand({ TableName: tableName, Item: { ...LEASE_KEY, owner: 'learn-lineage@crashed#1', leaseExpiresAt: Date.now() - 1_000 } }));
      await doc.send(new PutCommand({ TableName: tableName, Item: { pk: 'DESC#base/a', sk: '001#apps/ghost', ancestor: 'base/a', depth: 1, image: 'apps/ghost', tier: 'application', parents: [] } }));
      await doc.send(new DeleteCommand({ TableName: tableName, Key: { pk: 'DESC#base/a', sk: '002#apps/c' } }));

      const started = Date.now();
      await writer(tableName, { lease: { acquireTimeoutMs: 5_000 } }).putImages([node('apps/d', 'apps/c')]);

      expect(Date.now() - started).toBeLessThan(2_000);
      const { stored, expected } = await closureCheck(tableName);
      expect(stored).toEqual(expected);
      expect(stored).toContainEqual(expect.stringMatching(/^DESC#base\/a 002#apps\/c /));
      expect(stored).not.toContainEqual(expect.stringContaining('apps/ghost'));
      expect(await leaseItem(tableName)).toMatchObject({ leaseExpiresAt: 0, owner: expect.not.stringContaining('crashed') });
    });

    it('stops a writer whose lease was taken over mid-write, and the next writer repairs what it left', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/root')]);
      const chain = Array.from({ length: 30 }, (_, i) => node(`chain/${i}`, i === 0 ? 'base/root' : `chain/${i - 1}`));
      let clock = Date.now();
      let takeover: Promise<unknown> | undefined;
      // The stalled writer's own client: its lease renewal goes out only once the takeover has landed.
      const client = createLocalDynamoDbClient(emulator.endpoint);
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'UpdateItemCommand') await takeover;
          return next(args);
        },
        { step: 'initialize' },
      );
      const stalled = new DynamoLineageStore({ client, tableName, writeConcurrency: 1, lease: { leaseMs: 1_000, now: () => clock } });

      const error = await stalled
        .putImages(chain, {
          onProgress: (done) => {
            if (done !== 25) return;
            // After its first batch the writer stalls past its lease, and another writer takes the lease over.
            clock += 2_000;
            takeover = doc.send(new PutCommand({ TableName: tableName, Item: { ...LEASE_KEY, owner: 'other#1', leaseExpiresAt: Date.now() + 60_000 } }));
          },
        })
        .catch((e: unknown) => e);
      client.destroy();

      expect(error).toBeInstanceOf(LineageLeaseLostError);
      expect((await closureCheck(tableName)).stored.length).toBeGreaterThan(0);
      // It left a repair for whoever writes next, on the lease it no longer holds.
      expect(await leaseItem(tableName)).toMatchObject({ owner: 'other#1', repairNeeded: true });
      await doc.send(new UpdateCommand({ TableName: tableName, Key: LEASE_KEY, UpdateExpression: 'SET leaseExpiresAt = :zero', ExpressionAttributeValues: { ':zero': 0 } }));

      await writer(tableName).putImages([node('apps/next', 'base/root')]);

      const { stored, expected, images } = await closureCheck(tableName);
      expect(images.has('chain/29')).toBe(false);
      expect(stored).toEqual(expected);
    });

    it('fails with LineageBusyError naming the holder when the lease stays held past the wait budget, and writes nothing', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a')]);
      const holder = await LineageWriteLease.acquire(doc, tableName, { writer: 'patchline lineage import' });
      const before = await scanAll(tableName);

      const started = Date.now();
      const error = await writer(tableName, { lease: { acquireTimeoutMs: 300 } }).putImages([node('apps/b', 'base/a')]).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(LineageBusyError);
      expect(error).toMatchObject({ name: 'LineageBusyError', code: 'LINEAGE_BUSY', holder: holder.owner });
      expect((error as Error).message).toMatch(/^another lineage writer \(patchline lineage import#[0-9a-f]{8}\) holds the lineage write lease until \d{4}-.*; waited \d+ ms and wrote nothing/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(await scanAll(tableName)).toEqual(before);
      expect(await holder.release(false)).toBe(true);
    });

    it('fails on a lease duration or wait budget that is not a positive integer', () => {
      expect(() => writer('t', { lease: { leaseMs: 0 } })).toThrow('lease.leaseMs must be a positive integer (milliseconds), got 0');
      expect(() => writer('t', { lease: { acquireTimeoutMs: 1.5 } })).toThrow('lease.acquireTimeoutMs must be a positive integer (milliseconds), got 1.5');
    });
  });

  describe('Method: descendants', () => {
    it('reads without the lease while a writer holds it', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a'), node('apps/b', 'base/a')]);
      const holder = await LineageWriteLease.acquire(doc, tableName);
      expect((await writer(tableName).descendants('base/a')).map((d) => d.image)).toEqual(['apps/b']);
      await holder.release(false);
    });
  });
});

describe('Class: LineageWriteLease', () => {
  describe('Method: acquire', () => {
    it('takes a lease that expires while waiting for it, and reports the unreleased one', async () => {
      const tableName = await freshTable();
      const crashed = await LineageWriteLease.acquire(doc, tableName, { leaseMs: 200 });

      const started = Date.now();
      const next = await LineageWriteLease.acquire(doc, tableName, { acquireTimeoutMs: 5_000 });

      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      expect(next.unclean).toEqual({ previousOwner: crashed.owner, reason: 'lease-expired' });
      expect(await next.release(false)).toBe(true);
      const after = await LineageWriteLease.acquire(doc, tableName);
      expect(after.unclean).toBeUndefined(); // released cleanly: nothing to repair
      await after.release(false);
    });

    it('gives each acquisition its own owner, so two writers in one process still take turns', async () => {
      const tableName = await freshTable();
      const first = await LineageWriteLease.acquire(doc, tableName, { writer: 'same' });
      await expect(LineageWriteLease.acquire(doc, tableName, { writer: 'same', acquireTimeoutMs: 100 })).rejects.toBeInstanceOf(LineageBusyError);
      await first.release(false);
    });
  });

  describe('Method: keepAlive', () => {
    it('renews the lease of a long write so that nobody takes it over', async () => {
      const tableName = await freshTable();
      const long = await LineageWriteLease.acquire(doc, tableName, { leaseMs: 150 });
      let writing = true;
      const write = (async () => {
        while (writing) {
          await long.keepAlive();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();

      // Waits three times the lease duration: only renewals keep it out.
      await expect(LineageWriteLease.acquire(doc, tableName, { acquireTimeoutMs: 450 })).rejects.toBeInstanceOf(LineageBusyError);
      writing = false;
      await write;
      expect(await long.release(false)).toBe(true);
    });

    it('fails with LineageLeaseLostError once another writer took the lease over, and the loser flags a repair', async () => {
      const tableName = await freshTable();
      const stalled = await LineageWriteLease.acquire(doc, tableName, { leaseMs: 100 });
      await new Promise((resolve) => setTimeout(resolve, 150));
      const taker = await LineageWriteLease.acquire(doc, tableName);

      await expect(stalled.keepAlive()).rejects.toBeInstanceOf(LineageLeaseLostError);
      expect(await stalled.release(false)).toBe(false);
      expect(await taker.release(false)).toBe(true);

      const next = await LineageWriteLease.acquire(doc, tableName);
      expect(next.unclean).toEqual({ previousOwner: taker.owner, reason: 'repair-flagged' });
      await next.release(false);
    });
  });
});
