import { readFileSync } from 'fs';
import { join } from 'path';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { createLocalDynamoDbClient, createPatchlineTable } from '../../cli/local/dynamodb-emulator';
import { parseLineageFile } from '../../lambdas/domain/lineage-file';
import { DuplicateImageError, ImageNode, ImageNotFoundError, LineageCycleError, LineageGraph, ParentRole, Tier } from '../../lambdas/domain/lineage';
import { DynamoLineageStore, MAX_LINEAGE_DEPTH } from '../../lambdas/store/dynamo-lineage-store';
import {
  DescendantRecord,
  ImageKeyTooLongError,
  InvalidImageVersionError,
  LineageWriteIncompleteError,
  MAX_PARENTS,
  TooManyParentsError,
} from '../../lambdas/store/lineage-store';
import { startTestTable } from '../support/dynamodb';

const OFFICIAL_EDGES = join(__dirname, '../../../shared/data/lineage/official-images-edges-allfroms.tsv');

type Emulator = Awaited<ReturnType<typeof startTestTable>>;
type Item = Record<string, unknown>;

let emulator: Emulator;
let tables = 0;

beforeAll(async () => {
  emulator = await startTestTable();
});

afterAll(async () => {
  await emulator.stop();
});

/** A store on a table of its own, so each test starts from an empty lineage. */
async function freshStore(queryPageSize?: number): Promise<{ store: DynamoLineageStore; tableName: string }> {
  const tableName = `lineage-${++tables}`;
  await createPatchlineTable(emulator.client, tableName);
  // dynalite answers CreateTable while the table is still CREATING, even with createTableMs 0.
  while ((await emulator.client.send(new DescribeTableCommand({ TableName: tableName }))).Table?.TableStatus !== 'ACTIVE') {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { store: new DynamoLineageStore({ client: emulator.client, tableName, queryPageSize }), tableName };
}

/** Every lineage item of the table; the write lease item (kept after release) is left out. */
async function scanTable(tableName: string): Promise<Item[]> {
  const doc = DynamoDBDocumentClient.from(emulator.client);
  const items: Item[] = [];
  let ExclusiveStartKey: Item | undefined;
  do {
    const page = await doc.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey }));
    items.push(...(page.Items ?? []).filter((item) => !String(item.pk).startsWith('LEASE#')));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items.sort((a, b) => (`${a.pk}\t${a.sk}` < `${b.pk}\t${b.sk}` ? -1 : 1));
}

/** Shortest distance from `root` down to each image below it, walked downwards (the store walks upwards). */
function depthsBelow(graph: LineageGraph, root: string): Map<string, number> {
  const depth = new Map<string, number>();
  let frontier = [root];
  for (let level = 1; frontier.length > 0; level++) {
    const next: string[] = [];
    for (const image of frontier) {
      for (const child of graph.children(image)) {
        if (!depth.has(child)) {
          depth.set(child, level);
          next.push(child);
        }
      }
    }
    frontier = next;
  }
  return depth;
}

function fields(node: { tier: string; owner?: string; parents: readonly { image: string; role: string }[]; build?: { project: string } }): string {
  return JSON.stringify([node.tier, node.owner ?? null, node.parents.map((p) => [p.image, p.role]), node.build?.project ?? null]);
}

/** The stored images and every closure item (keys, depth, copied fields) are exactly what `expected` implies. */
async function expectStoreMatches(store: DynamoLineageStore, tableName: string, expected: LineageGraph): Promise<void> {
  const describe = (images: Iterable<ImageNode>): string[] => [...images].map((n) => `${n.image}\t${fields(n)}`).sort();
  expect(describe((await store.loadGraph()).images())).toEqual(describe(expected.images()));
  // Every image has its own item too: loadGraph alone would hide a missing parent by adding it as external.
  const items = await scanTable(tableName);
  const imageItems = items.filter((item) => item.sk === 'NODE').map((item) => item as unknown as ImageNode);
  expect(imageItems.map((item) => `IMG#${item.image}`)).toEqual(imageItems.map((item) => (item as unknown as Item).pk));
  expect(describe(imageItems)).toEqual(describe(expected.images()));

  const wanted: string[] = [];
  for (const ancestor of expected.images()) {
    for (const [image, depth] of depthsBelow(expected, ancestor.image)) {
      wanted.push(`${ancestor.image}\t${image}\t${depth}\t${fields(expected.require(image))}`);
    }
  }
  const stored = items
    .filter((item) => String(item.pk).startsWith('DESC#'))
    .map((item) => {
      const ancestor = String(item.pk).slice('DESC#'.length);
      const depth = Number(item.depth);
      expect(item.sk).toBe(`${String(depth).padStart(3, '0')}#${item.image}`);
      expect(item.gsi1pk).toBe(`ANC#${item.image}`);
      expect(item.gsi1sk).toBe(`${String(depth).padStart(3, '0')}#${ancestor}`);
      return `${ancestor}\t${item.image}\t${depth}\t${fields(item as unknown as ImageNode)}`;
    });
  expect(stored.sort()).toEqual(wanted.sort());
}

const names = (records: readonly DescendantRecord[]): string[] => records.map((r) => r.image).sort();

/**
 * base:1 ─► enterprise/os ─► enterprise/python ─► app/api ◄── enterprise/java (a diamond: app/api has two parents)
 *                        └─► enterprise/java ──────┘   app/worker ◄─ enterprise/python, builder/go (build role)
 * app/shortcut has base:1 as a parent directly and through enterprise/os (shortest depth 1).
 */
function diamondLineage(): ImageNode[] {
  return [
    {
      image: 'enterprise/os',
      tier: Tier.ENTERPRISE,
      owner: 'platform',
      parents: [{ image: 'base:1', role: ParentRole.RUNTIME }],
      build: { project: 'os' },
    },
    { image: 'enterprise/python', tier: Tier.ENTERPRISE, owner: 'platform', parents: [{ image: 'enterprise/os', role: ParentRole.RUNTIME }] },
    { image: 'enterprise/java', tier: Tier.ENTERPRISE, owner: 'platform', parents: [{ image: 'enterprise/os', role: ParentRole.RUNTIME }] },
    {
      image: 'app/api',
      tier: Tier.APPLICATION,
      owner: 'team-a',
      parents: [
        { image: 'enterprise/python', role: ParentRole.RUNTIME },
        { image: 'enterprise/java', role: ParentRole.BUILD },
      ],
      build: { project: 'api' },
    },
    {
      image: 'app/worker',
      tier: Tier.APPLICATION,
      owner: 'team-b',
      parents: [
        { image: 'enterprise/python', role: ParentRole.RUNTIME },
        { image: 'builder/go:1.22', role: ParentRole.BUILD },
      ],
    },
    {
      image: 'app/shortcut',
      tier: Tier.APPLICATION,
      parents: [
        { image: 'enterprise/os', role: ParentRole.RUNTIME },
        { image: 'base:1', role: ParentRole.BUILD },
      ],
    },
  ];
}

describe('Class: DynamoLineageStore', () => {
  describe('Method: constructor', () => {
    it('refuses a query page size that is not a positive integer', () => {
      expect(() => new DynamoLineageStore({ client: emulator.client, tableName: 't', queryPageSize: 0 })).toThrow(RangeError);
    });
  });

  describe('Method: putImages', () => {
    it('stores a multi-parent lineage whose descendants and children equal the in-memory graph for every image', async () => {
      const { store, tableName } = await freshStore();
      const expected = LineageGraph.fromImages(diamondLineage());
      const result = await store.putImages(diamondLineage());

      expect([...result.externalsAdded].sort()).toEqual(['base:1', 'builder/go:1.22']);
      expect(result.imagesWritten).toBe(expected.size);
      await expectStoreMatches(store, tableName, expected);
      for (const node of expected.images()) {
        const descendants = await store.descendants(node.image);
        expect(names(descendants)).toEqual([...expected.descendants(node.image)].sort());
        expect(new Set(names(descendants)).size).toBe(descendants.length);
        const depths = depthsBelow(expected, node.image);
        for (const record of descendants) {
          expect(record.depth).toBe(depths.get(record.image));
          const { depth, ...rest } = record;
          expect(depth).toBeGreaterThan(0);
          expect(rest).toEqual(expected.require(record.image));
        }
        expect(names(await store.children(node.image))).toEqual(expected.children(node.image));
      }
      // app/shortcut is both a child and a grandchild of base:1: it is stored once, at its shortest depth.
      expect((await store.descendants('base:1')).filter((r) => r.image === 'app/shortcut').map((r) => r.depth)).toEqual([1]);
    });

    it('returns descendants nearest first, so a plan can be made from them without reading the images', async () => {
      const { store } = await freshStore();
      await store.putImages(diamondLineage());
      const records = await store.descendants('base:1');
      expect(records.map((r) => r.depth)).toEqual([...records.map((r) => r.depth)].sort((a, b) => a - b));
      const fromRecords = LineageGraph.fromImages(records.map(({ depth: _depth, ...node }) => node)).planRebuild('base:1');
      expect(fromRecords).toEqual(LineageGraph.fromImages(diamondLineage()).planRebuild('base:1'));
    });

    it('moves the whole subtree when an image is re-parented', async () => {
      const { store, tableName } = await freshStore();
      const lineage: ImageNode[] = [
        { image: 'enterprise/mid', tier: Tier.ENTERPRISE, parents: [{ image: 'old-base:1', role: ParentRole.RUNTIME }] },
        { image: 'app/leaf', tier: Tier.APPLICATION, parents: [{ image: 'enterprise/mid', role: ParentRole.RUNTIME }] },
        { image: 'app/leaf-2', tier: Tier.APPLICATION, parents: [{ image: 'app/leaf', role: ParentRole.RUNTIME }] },
        { image: 'enterprise/other', tier: Tier.ENTERPRISE, parents: [{ image: 'new-base:2', role: ParentRole.RUNTIME }] },
      ];
      await store.putImages(lineage);
      expect(names(await store.descendants('old-base:1'))).toEqual(['app/leaf', 'app/leaf-2', 'enterprise/mid']);

      const moved: ImageNode = { ...lineage[0], parents: [{ image: 'enterprise/other', role: ParentRole.RUNTIME }] };
      const result = await store.putImages([moved]);
      const expected = LineageGraph.fromImages(lineage);
      expected.upsert(moved);

      expect(result.imagesWritten).toBe(1);
      expect(await store.descendants('old-base:1')).toEqual([]);
      expect(names(await store.descendants('new-base:2'))).toEqual(['app/leaf', 'app/leaf-2', 'enterprise/mid', 'enterprise/other']);
      expect(names(await store.descendants('enterprise/other'))).toEqual(['app/leaf', 'app/leaf-2', 'enterprise/mid']);
      expect((await store.ancestors('app/leaf-2')).map((r) => [r.image, r.depth])).toEqual([
        ['app/leaf', 1],
        ['enterprise/mid', 2],
        ['enterprise/other', 3],
        ['new-base:2', 4],
      ]);
      await expectStoreMatches(store, tableName, expected);
    });

    it('rewrites the copies in closure items when an image changes owner, tier or build', async () => {
      const { store, tableName } = await freshStore();
      await store.putImages(diamondLineage());
      const python = diamondLineage()[1];
      const changed: ImageNode = { ...python, owner: 'python-team', build: { project: 'python' } };
      const result = await store.putImages([changed]);

      // enterprise/python has two ancestors (enterprise/os, base:1): its two closure copies are rewritten, nothing else.
      expect(result.closureItemsPut).toBe(2);
      expect(result.closureItemsDeleted).toBe(0);
      const copy = (await store.descendants('base:1')).find((r) => r.image === 'enterprise/python');
      expect(copy).toEqual({ ...changed, depth: 2 });
      const expected = LineageGraph.fromImages(diamondLineage());
      expected.upsert(changed);
      await expectStoreMatches(store, tableName, expected);
    });

    it('writes nothing when the same lineage is imported again', async () => {
      const { store } = await freshStore();
      await store.putImages(diamondLineage());
      const before = emulator.requestCount();
      const result = await store.putImages(diamondLineage());
      expect(result).toEqual({ imagesWritten: 0, externalsAdded: [], closureItemsPut: 0, closureItemsDeleted: 0, writeRequests: 0 });
      expect(emulator.requestCount() - before).toBe(3); // the lease taken, the scan that loads the lineage, the lease released
    });

    it('reports progress up to the number of writes', async () => {
      const { store } = await freshStore();
      const progress: Array<[number, number]> = [];
      await store.putImages(diamondLineage(), { onProgress: (done, total) => progress.push([done, total]) });
      const [done, total] = progress[progress.length - 1];
      expect(done).toBe(total);
      expect(total).toBeGreaterThan(LineageGraph.fromImages(diamondLineage()).size);
    });

    it('refuses a cycle with its path and leaves the stored lineage unchanged', async () => {
      const { store, tableName } = await freshStore();
      await store.putImages(diamondLineage());
      const before = await scanTable(tableName);
      const closing: ImageNode = { image: 'enterprise/os', tier: Tier.ENTERPRISE, parents: [{ image: 'app/api', role: ParentRole.RUNTIME }] };

      const added: ImageNode = { image: 'app/new', tier: Tier.APPLICATION, parents: [{ image: 'base:1', role: ParentRole.RUNTIME }] };
      const refused = store.putImages([added, closing]);
      await expect(refused).rejects.toBeInstanceOf(LineageCycleError);
      const error = (await refused.catch((e: unknown) => e)) as LineageCycleError;
      expect(error.code).toBe('LINEAGE_CYCLE');
      expect(error.cycle[0]).toBe(error.cycle[error.cycle.length - 1]);
      expect(error.cycle).toEqual(expect.arrayContaining(['enterprise/os', 'app/api']));
      expect(await scanTable(tableName)).toEqual(before);
    });

    it('accepts a batch that only looks cyclic when its images are applied one by one', async () => {
      const { store, tableName } = await freshStore();
      const lineage: ImageNode[] = [
        { image: 'team/a', tier: Tier.APPLICATION, parents: [{ image: 'team/b', role: ParentRole.RUNTIME }] },
        { image: 'team/b', tier: Tier.APPLICATION, parents: [{ image: 'base:1', role: ParentRole.RUNTIME }] },
      ];
      await store.putImages(lineage);
      // Swapped: team/b now under team/a. Applied alone, the first change would close a cycle with the stored team/a.
      const swapped: ImageNode[] = [
        { image: 'team/b', tier: Tier.APPLICATION, parents: [{ image: 'team/a', role: ParentRole.RUNTIME }] },
        { image: 'team/a', tier: Tier.APPLICATION, parents: [{ image: 'base:1', role: ParentRole.RUNTIME }] },
      ];
      await store.putImages(swapped);
      await expectStoreMatches(store, tableName, LineageGraph.fromImages([...swapped, { image: 'base:1', tier: Tier.EXTERNAL, parents: [] }]));
      expect(names(await store.descendants('team/a'))).toEqual(['team/b']);
    });

    it.each([2, 9, 12])('completes a change interrupted at write request %i when the same change is run again', async (failAt) => {
      const { store, tableName } = await freshStore();
      const leaves = (from: number, count: number, owner: string): ImageNode[] =>
        Array.from({ length: count }, (_, i) => ({
          image: `app/leaf-${from + i}`,
          tier: Tier.APPLICATION,
          owner,
          parents: [{ image: 'enterprise/mid', role: ParentRole.RUNTIME }],
        }));
      const mid: ImageNode = { image: 'enterprise/mid', tier: Tier.ENTERPRISE, parents: [{ image: 'base:1', role: ParentRole.RUNTIME }] };
      await store.putImages([mid, ...leaves(0, 60, 'team-a')]);
      // Re-parent the subtree, change 30 owners, add 30 images under it and one new external parent: 12 write requests.
      const change = [{ ...mid, parents: [{ image: 'base:2', role: ParentRole.RUNTIME }] }, ...leaves(0, 30, 'team-b'), ...leaves(60, 30, 'team-c')];

      const failing = createLocalDynamoDbClient(emulator.endpoint);
      let writes = 0;
      failing.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'BatchWriteItemCommand' && ++writes === failAt) throw new Error('connection reset');
          return next(args);
        },
        { step: 'build', name: 'failOneWrite' },
      );
      const interrupted = new DynamoLineageStore({ client: failing, tableName, writeConcurrency: 1 });
      await expect(interrupted.putImages(change)).rejects.toThrow('connection reset');
      failing.destroy();

      const result = await store.putImages(change);
      expect(result.writeRequests).toBeGreaterThan(0);
      const expected = LineageGraph.fromImages([mid, ...leaves(0, 60, 'team-a')]);
      for (const node of change) expected.upsert(node);
      await expectStoreMatches(store, tableName, expected);
    });

    it('refuses an image declared twice in one call', async () => {
      const { store, tableName } = await freshStore();
      const node = diamondLineage()[0];
      await expect(store.putImages([node, { ...node, owner: 'someone-else' }])).rejects.toBeInstanceOf(DuplicateImageError);
      expect(await scanTable(tableName)).toEqual([]);
    });

    it('refuses an image key longer than DynamoDB keys allow, for an image or a parent', async () => {
      const { store, tableName } = await freshStore();
      const long = `team/${'x'.repeat(1_000)}`;
      await expect(store.putImages([{ image: long, tier: Tier.APPLICATION, parents: [] }])).rejects.toMatchObject({
        name: 'ImageKeyTooLongError',
        code: 'IMAGE_KEY_TOO_LONG',
      });
      await expect(
        store.putImages([{ image: 'team/ok', tier: Tier.APPLICATION, parents: [{ image: long, role: ParentRole.RUNTIME }] }]),
      ).rejects.toBeInstanceOf(ImageKeyTooLongError);
      expect(await scanTable(tableName)).toEqual([]);
    });

    it('refuses more parents than an item can safely carry', async () => {
      const { store } = await freshStore();
      const parents = Array.from({ length: MAX_PARENTS + 1 }, (_, i) => ({ image: `base/p${i}`, role: ParentRole.BUILD }));
      await expect(store.putImages([{ image: 'team/many', tier: Tier.APPLICATION, parents }])).rejects.toBeInstanceOf(TooManyParentsError);
    });

    it('refuses a lineage deeper than closure sort keys can order, before writing anything', async () => {
      const { store, tableName } = await freshStore();
      const chain: ImageNode[] = Array.from({ length: MAX_LINEAGE_DEPTH + 1 }, (_, i) => ({
        image: `chain/level-${i + 1}`,
        tier: Tier.APPLICATION,
        parents: [{ image: i === 0 ? 'chain/top:1' : `chain/level-${i}`, role: ParentRole.RUNTIME }],
      }));
      await expect(store.putImages(chain)).rejects.toMatchObject({
        name: 'LineageTooDeepError',
        code: 'LINEAGE_TOO_DEEP',
        image: `chain/level-${MAX_LINEAGE_DEPTH + 1}`,
      });
      expect(await scanTable(tableName)).toEqual([]);
    });

    it('imports the official images graph: the largest closures come back exact, in O(pages) requests', async () => {
      const pageSize = 200;
      const { store, tableName } = await freshStore(pageSize);
      const nodes = parseLineageFile(OFFICIAL_EDGES, readFileSync(OFFICIAL_EDGES, 'utf8'));
      const expected = LineageGraph.fromImages(nodes);
      await store.putImages(nodes);
      await expectStoreMatches(store, tableName, expected);

      const largest = [...expected.images()]
        .filter((n) => n.parents.length === 0)
        .map((n) => ({ root: n.image, size: expected.descendants(n.image).size }))
        .sort((a, b) => b.size - a.size)
        .slice(0, 3);
      expect(largest[0].size).toBeGreaterThan(1_000);
      for (const { root, size } of largest) {
        const before = emulator.requestCount();
        const records = await store.descendants(root);
        const requests = emulator.requestCount() - before;
        expect(names(records)).toEqual([...expected.descendants(root)].sort());
        expect(records).toHaveLength(size);
        expect(requests).toBeLessThanOrEqual(Math.ceil(size / pageSize) + 2);
        expect(LineageGraph.fromImages(records.map(({ depth: _depth, ...node }) => node)).planRebuild(root)).toEqual(expected.planRebuild(root));
      }
    });
  });

  describe('Method: deleteImage', () => {
    it('deletes a leaf: no ancestor lists it any more', async () => {
      const { store, tableName } = await freshStore();
      await store.putImages(diamondLineage());
      await store.deleteImage('app/worker');
      const expected = LineageGraph.fromImages(diamondLineage());
      expected.remove('app/worker');
      expect(await store.getImage('app/worker')).toBeUndefined();
      expect(names(await store.descendants('base:1'))).not.toContain('app/worker');
      await expectStoreMatches(store, tableName, expected);
    });

    it('keeps an image with children as an external parent, cut off from its former ancestors', async () => {
      const { store, tableName } = await freshStore();
      await store.putImages(diamondLineage());
      await store.deleteImage('enterprise/python');
      const expected = LineageGraph.fromImages(diamondLineage());
      expected.remove('enterprise/python');

      expect(await store.getImage('enterprise/python')).toEqual({ image: 'enterprise/python', tier: Tier.EXTERNAL, parents: [] });
      expect(names(await store.descendants('enterprise/python'))).toEqual(['app/api', 'app/worker']);
      expect(names(await store.descendants('base:1'))).toEqual(['app/api', 'app/shortcut', 'enterprise/java', 'enterprise/os']);
      await expectStoreMatches(store, tableName, expected);
    });

    it('fails for an image that is not in the lineage', async () => {
      const { store } = await freshStore();
      await expect(store.deleteImage('team/missing')).rejects.toBeInstanceOf(ImageNotFoundError);
    });
  });

  describe('Method: ancestors', () => {
    it('returns every image above, each once, nearest first, with the ancestor’s own fields', async () => {
      const { store } = await freshStore(2);
      await store.putImages(diamondLineage());
      const expected = LineageGraph.fromImages(diamondLineage());
      const records = await store.ancestors('app/api');
      expect(names(records)).toEqual([...expected.ancestors('app/api')].sort());
      expect(records.map((r) => r.depth)).toEqual([1, 1, 2, 3]);
      for (const { depth: _depth, ...node } of records) expect(node).toEqual(expected.require(node.image));
      expect(await store.ancestors('base:1')).toEqual([]);
    });
  });

  describe('Method: getImage', () => {
    it('returns the stored image, or undefined', async () => {
      const { store } = await freshStore();
      await store.putImages(diamondLineage());
      expect(await store.getImage('app/api')).toEqual(diamondLineage()[3]);
      expect(await store.getImage('app/none')).toBeUndefined();
    });
  });

  describe('Method: putVersion', () => {
    const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

    it('records a version once: a re-sent push is not new, and new tags are merged', async () => {
      const { store } = await freshStore();
      const version = {
        image: 'app/api',
        digest: digest(1),
        tags: ['1.0'],
        pushedAt: '2026-03-01T10:00:00Z',
        parentDigests: { 'enterprise/python': digest(9) },
      };
      expect(await store.putVersion(version)).toEqual({ created: true });
      expect(await store.putVersion(version)).toEqual({ created: false });
      const resent = { ...version, tags: ['latest'], pushedAt: '2026-03-02T10:00:00Z', parentDigests: undefined };
      expect(await store.putVersion(resent)).toEqual({ created: false });
      expect(await store.getVersion('app/api', digest(1))).toEqual({ ...version, tags: ['1.0', 'latest'] });
      expect(await store.getVersion('app/api', digest(2))).toBeUndefined();
    });

    it('makes the latest pushed version current, whatever order the pushes arrive in', async () => {
      const { store } = await freshStore();
      expect(await store.currentVersion('app/api')).toBeUndefined();
      await store.putVersion({ image: 'app/api', digest: digest(2), tags: [], pushedAt: '2026-03-02T10:00:00+00:00' });
      await store.putVersion({ image: 'app/api', digest: digest(1), tags: ['old'], pushedAt: '2026-03-01T10:00:00Z' });
      await store.putVersion({ image: 'app/other', digest: digest(3), tags: [], pushedAt: '2026-03-05T10:00:00Z' });
      expect((await store.currentVersion('app/api'))?.digest).toBe(digest(2));
      await store.putVersion({ image: 'app/api', digest: digest(4), tags: ['new'], pushedAt: '2026-03-03T01:00:00+02:00' });
      expect(await store.currentVersion('app/api')).toEqual({
        image: 'app/api',
        digest: digest(4),
        tags: ['new'],
        pushedAt: '2026-03-03T01:00:00+02:00',
      });
    });

    it('refuses a version whose digest is not a digest', async () => {
      const { store } = await freshStore();
      await expect(store.putVersion({ image: 'app/api', digest: 'latest', tags: [], pushedAt: '2026-03-01T10:00:00Z' })).rejects.toMatchObject({
        name: 'InvalidImageVersionError',
        code: 'INVALID_IMAGE_VERSION',
      });
      await expect(store.putVersion({ image: 'app/api', digest: digest(1), tags: [], pushedAt: 'yesterday' })).rejects.toBeInstanceOf(
        InvalidImageVersionError,
      );
    });
  });
});

describe('Class: DynamoLineageStore (unprocessed batch items)', () => {
  const node: ImageNode = { image: 'team/a', tier: Tier.APPLICATION, parents: [{ image: 'base:1', role: ParentRole.RUNTIME }] };
  // Mocked only here: dynalite never leaves items unprocessed.
  let docMock: ReturnType<typeof mockClient>;

  beforeAll(() => {
    docMock = mockClient(DynamoDBDocumentClient);
  });
  // The write lease: taken on a fresh table, released.
  beforeEach(() => {
    docMock.on(PutCommand).resolves({});
    docMock.on(UpdateCommand).resolves({});
  });
  afterEach(() => docMock.reset());
  afterAll(() => docMock.restore());

  describe('Method: putImages', () => {
    it('retries the items DynamoDB left unprocessed', async () => {
      docMock.on(ScanCommand).resolves({ Items: [] });
      let calls = 0;
      docMock.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => {
        calls += 1;
        // The first request leaves its last item unprocessed, as DynamoDB does when throttled.
        return calls === 1 ? { UnprocessedItems: { t: input.RequestItems.t.slice(-1) } } : {};
      });
      const store = new DynamoLineageStore({ client: emulator.client, tableName: 't' });
      const result = await store.putImages([node]);
      const sent = docMock.commandCalls(BatchWriteCommand).map((c) => c.args[0].input.RequestItems!.t.length);
      expect(result.writeRequests).toBe(sent.length);
      expect(sent).toEqual([1, 1, 2]); // closure (1 item, once more for the retry), then the two images
    });

    it('fails with LineageWriteIncompleteError when items stay unprocessed', async () => {
      docMock.on(ScanCommand).resolves({ Items: [] });
      docMock.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => ({ UnprocessedItems: input.RequestItems }));
      const store = new DynamoLineageStore({ client: emulator.client, tableName: 't', maxBatchAttempts: 3 });
      await expect(store.putImages([node])).rejects.toBeInstanceOf(LineageWriteIncompleteError);
      expect(docMock.commandCalls(BatchWriteCommand)).toHaveLength(3);
      // Written half-way: the lease is released with a repair left for the next writer.
      const [release] = docMock.commandCalls(UpdateCommand).map((c) => c.args[0].input);
      expect(release.UpdateExpression).toBe('SET #expires = :released, #repair = :true');
      expect(release.ExpressionAttributeValues).toMatchObject({ ':released': 0, ':true': true });
    });
  });
});
