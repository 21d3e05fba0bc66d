import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createLocalDynamoDbClient, createPatchlineTable } from '../../cli/local/dynamodb-emulator';
import { learnFromPush, PushFacts } from '../../lambdas/domain/learned-lineage';
import { ImageNode, LineageCycleError, ParentRole, Tier } from '../../lambdas/domain/lineage';
import { DynamoLineageStore, DynamoLineageStoreProps } from '../../lambdas/store/dynamo-lineage-store';
import { ImageKeyTooLongError, ImageUpdate, LineageBusyError, LineageLeaseLostError, TooManyParentsError } from '../../lambdas/store/lineage-store';
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

  describe('Method: updateImage', () => {
    /** learn-lineage's decision for a push: the declared base learned as runtime parent, and/or the owner from repository tags. */
    const learning = (facts: Omit<PushFacts, 'image' | 'tags'> & { owner?: string }, calls: Array<ImageNode | undefined> = []): ((image: string) => ImageUpdate) =>
      (image) => (current) => {
        calls.push(current);
        const learned = learnFromPush(current, { image, ...(facts.parent ? { parent: facts.parent } : {}), tags: { ...(facts.owner ? { owner: facts.owner } : {}), notes: [] } });
        decisions.push({ image, parent: facts.parent, change: learned.change, previousParent: learned.previousParent });
        return learned.write ? learned.node : undefined;
      };
    let decisions: Array<{ image: string; parent?: string; change: string | null; previousParent?: string }>;
    beforeEach(() => {
      decisions = [];
    });
    const unowned = (image: string, ...parents: string[]): ImageNode => ({ image, tier: Tier.APPLICATION, parents: parents.map((p) => ({ image: p, role: ParentRole.RUNTIME })) });

    /** A writer whose lease put waits for `gate`, so that another writer's whole update lands between its first read and its lease. */
    function gatedWriter(tableName: string, gate: Promise<unknown>): { store: DynamoLineageStore; client: ReturnType<typeof createLocalDynamoDbClient> } {
      const client = createLocalDynamoDbClient(emulator.endpoint);
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'PutItemCommand') await gate;
          return next(args);
        },
        { step: 'initialize' },
      );
      return { store: new DynamoLineageStore({ client, tableName, lease: { acquireTimeoutMs: 30_000 } }), client };
    }

    it('keeps both facts of concurrent learn-style updates of one image: the parent learned by one, the owner taken by the other', async () => {
      const tableName = await freshTable();
      const images = Array.from({ length: 8 }, (_, i) => `apps/svc-${i}`);
      await writer(tableName).putImages([node('base/a'), node('base/b'), ...images.map((i) => unowned(i, 'base/a'))]);
      const learnsParent = learning({ parent: 'base/b' });
      const takesOwner = learning({ owner: 'team-x' });

      const results = await Promise.allSettled(
        images.flatMap((image) => [learnsParent(image), takesOwner(image)].map((update) => writer(tableName, { lease: { acquireTimeoutMs: 60_000 } }).updateImage(image, update))),
      );

      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const { stored, expected } = await closureCheck(tableName);
      expect(stored).toEqual(expected);
      for (const image of images) {
        expect(await writer(tableName).getImage(image)).toEqual({ image, tier: Tier.APPLICATION, owner: 'team-x', parents: [{ image: 'base/b', role: ParentRole.RUNTIME }] });
      }
      expect((await writer(tableName).descendants('base/b')).map((d) => d.image).sort()).toEqual(images);
      expect(await writer(tableName).descendants('base/a')).toEqual([]);
    });

    it('calls the update with the node as stored under the lease: the second of two re-parentings sees the first and says it re-parented from it', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a'), node('base/b'), node('base/c'), unowned('apps/x', 'base/a'), unowned('apps/below-x', 'apps/x')]);
      let openGate!: () => void;
      const { store: second, client } = gatedWriter(tableName, new Promise<void>((resolve) => (openGate = resolve)));
      const secondCalls: Array<ImageNode | undefined> = [];

      const pending = second.updateImage('apps/x', learning({ parent: 'base/c' }, secondCalls)('apps/x'));
      while (secondCalls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // The first read is done and the lease put held: the other push's whole update lands now.
      const first = await writer(tableName).updateImage('apps/x', learning({ parent: 'base/b' })('apps/x'));
      openGate();
      const result = await pending;
      client.destroy();

      expect(first.node?.parents).toEqual([{ image: 'base/b', role: ParentRole.RUNTIME }]);
      expect(secondCalls).toEqual([unowned('apps/x', 'base/a'), unowned('apps/x', 'base/b')]);
      // Each update is called on its strongly consistent first read, then on the node read under the lease.
      expect(decisions).toEqual([
        { image: 'apps/x', parent: 'base/c', change: 'reparented', previousParent: 'base/a' },
        { image: 'apps/x', parent: 'base/b', change: 'reparented', previousParent: 'base/a' },
        { image: 'apps/x', parent: 'base/b', change: 'reparented', previousParent: 'base/a' },
        { image: 'apps/x', parent: 'base/c', change: 'reparented', previousParent: 'base/b' },
      ]);
      expect(result).toMatchObject({ node: unowned('apps/x', 'base/c'), written: { imagesWritten: 1 } });
      const { stored, expected } = await closureCheck(tableName);
      expect(stored).toEqual(expected);
      expect((await writer(tableName).descendants('base/c')).map((d) => d.image)).toEqual(['apps/x', 'apps/below-x']);
      expect(await writer(tableName).descendants('base/b')).toEqual([]);
      expect((await leaseItem(tableName))?.leaseExpiresAt).toBe(0);
    });

    it('writes nothing when the node read under the lease already holds the change, and releases the lease', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a'), node('base/b'), unowned('apps/x', 'base/a')]);
      let openGate!: () => void;
      const { store: second, client } = gatedWriter(tableName, new Promise<void>((resolve) => (openGate = resolve)));
      const secondCalls: Array<ImageNode | undefined> = [];

      const pending = second.updateImage('apps/x', learning({ parent: 'base/b' }, secondCalls)('apps/x'));
      while (secondCalls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      await writer(tableName).updateImage('apps/x', learning({ parent: 'base/b' })('apps/x'));
      const before = await scanAll(tableName);
      openGate();
      const result = await pending;
      client.destroy();

      expect(secondCalls).toEqual([unowned('apps/x', 'base/a'), unowned('apps/x', 'base/b')]);
      expect(decisions.map((d) => d.change)).toEqual(['reparented', 'reparented', 'reparented', 'unchanged']);
      expect(result).toEqual({ node: unowned('apps/x', 'base/b') });
      const after = await scanAll(tableName);
      const withoutLease = (items: Item[]): Item[] => items.filter((i) => i.pk !== LEASE_KEY.pk);
      expect(withoutLease(after)).toEqual(withoutLease(before));
      expect((await leaseItem(tableName))?.leaseExpiresAt).toBe(0);
    });

    it('settles an update that changes nothing with one strongly consistent read, without the lease', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a'), unowned('apps/x', 'base/a')]);
      const leaseBefore = await leaseItem(tableName);
      const client = createLocalDynamoDbClient(emulator.endpoint);
      const sent: Array<{ command: string; consistent: unknown }> = [];
      client.middlewareStack.add(
        (next, context) => async (args) => {
          sent.push({ command: String(context.commandName), consistent: (args.input as { ConsistentRead?: boolean }).ConsistentRead });
          return next(args);
        },
        { step: 'initialize' },
      );

      const result = await new DynamoLineageStore({ client, tableName }).updateImage('apps/x', learning({ parent: 'base/a' })('apps/x'));
      client.destroy();

      expect(result).toEqual({ node: unowned('apps/x', 'base/a') });
      expect(sent).toEqual([{ command: 'GetItemCommand', consistent: true }]);
      expect(await leaseItem(tableName)).toEqual(leaseBefore);
    });

    it('adds an image the lineage does not hold, with an external parent it names', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a')]);
      const result = await writer(tableName).updateImage('apps/new', (current) => (current ? undefined : unowned('apps/new', 'python:3.12')));
      expect(result).toMatchObject({ node: unowned('apps/new', 'python:3.12'), written: { imagesWritten: 2, externalsAdded: ['python:3.12'] } });
      expect((await writer(tableName).getImage('python:3.12'))?.tier).toBe(Tier.EXTERNAL);
      const { stored, expected } = await closureCheck(tableName);
      expect(stored).toEqual(expected);
    });

    it('refuses an update that closes a cycle, naming it, writes nothing and releases the lease', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a'), unowned('apps/x', 'base/a')]);
      const before = await scanAll(tableName);
      const error = await writer(tableName).updateImage('base/a', learning({ parent: 'apps/x' })('base/a')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LineageCycleError);
      expect((error as Error).message).toMatch(/lineage cycle refused: .*base\/a.*apps\/x/);
      const withoutLease = (items: Item[]): Item[] => items.filter((i) => i.pk !== LEASE_KEY.pk);
      expect(withoutLease(await scanAll(tableName))).toEqual(withoutLease(before));
      expect(await leaseItem(tableName)).toMatchObject({ leaseExpiresAt: 0 });
      expect((await leaseItem(tableName))?.repairNeeded).toBeUndefined();
    });

    it('refuses an update that returns another image\'s node, or too many parents, and writes nothing', async () => {
      const tableName = await freshTable();
      await writer(tableName).putImages([node('base/a'), unowned('apps/x', 'base/a')]);
      const before = await scanAll(tableName);
      await expect(writer(tableName).updateImage('apps/x', () => unowned('apps/y', 'base/a'))).rejects.toThrow(
        'the update of image "apps/x" returned the node of "apps/y"; it must return the node of the image it updates',
      );
      const many = Array.from({ length: 65 }, (_, i) => `base/p${i}`);
      await expect(writer(tableName).updateImage('apps/x', () => unowned('apps/x', ...many))).rejects.toBeInstanceOf(TooManyParentsError);
      await expect(writer(tableName).updateImage('x'.repeat(1_001), () => undefined)).rejects.toBeInstanceOf(ImageKeyTooLongError);
      const withoutLease = (items: Item[]): Item[] => items.filter((i) => i.pk !== LEASE_KEY.pk);
      expect(withoutLease(await scanAll(tableName))).toEqual(withoutLease(before));
      expect(await leaseItem(tableName)).toMatchObject({ leaseExpiresAt: 0 });
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
