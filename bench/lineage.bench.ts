// Lineage store against dynalite with the real AWS SDK: requests and wall time of planning a rebuild from
// `descendants()` (one paginated Query) next to a naive one-Query-per-image walk, and of importing 10,000 images.
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { readFileSync } from 'fs';
import { join } from 'path';
import { performance } from 'perf_hooks';
import { createPatchlineTable, DynamoDbEmulator, startDynamoDbEmulator } from '../cli/local/dynamodb-emulator';
import { parseLineageFile } from '../lambdas/domain/lineage-file';
import { ImageNode, LineageGraph, ParentRole, RebuildPlan, Tier } from '../lambdas/domain/lineage';
import { DynamoLineageStore } from '../lambdas/store/dynamo-lineage-store';
import { learnFromPush, PushFacts, TaggedFields } from '../lambdas/domain/learned-lineage';
import { DescendantRecord, LineageStore } from '../lambdas/store/lineage-store';
import { reportBenchmark } from './report';

const OFFICIAL_EDGES = join(__dirname, '../../shared/data/lineage/official-images-edges-allfroms.tsv');
const SYNTHETIC_ROOT = 'synthetic/root';
const SYNTHETIC_SIZE = 10_000;
/** Items per Query page, fixed so the O(pages) bound, ceil(items / page) + 2, can be checked. */
const PAGE_SIZE = 1_000;

interface PlanMeasurement {
  scenario: string;
  root: string;
  descendants: number;
  store: { requests: number; ms: number; pageBound: number };
  naive: { requests: number; ms: number };
  requestRatio: number;
}

interface ImportMeasurement {
  scenario: string;
  images: number;
  ms: number;
  requests: number;
  writeRequests: number;
  closureItemsPut: number;
  closureItemsDeleted: number;
}

async function main(): Promise<void> {
  const officialNodes = parseLineageFile(OFFICIAL_EDGES, readFileSync(OFFICIAL_EDGES, 'utf8'));
  const official = LineageGraph.fromImages(officialNodes);
  const roots = rootsByClosure(official);
  const synthetic = syntheticLineage(official, roots, SYNTHETIC_SIZE);
  const syntheticGraph = LineageGraph.fromImages(synthetic);

  const emulator = await startDynamoDbEmulator();
  try {
    const officialStore = await freshStore(emulator, 'lineage-official');
    const syntheticStore = await freshStore(emulator, 'lineage-synthetic');
    const imports = [
      await measureImport(emulator, officialStore, 'import official graph (all FROMs)', officialNodes),
      await measureImport(emulator, syntheticStore, `import ${SYNTHETIC_SIZE.toLocaleString('en')} images`, synthetic),
    ];
    const plans = [
      await measurePlan(emulator, officialStore, official, 'plan: largest official root', roots[0]),
      await measurePlan(emulator, syntheticStore, syntheticGraph, 'plan: synthetic root', SYNTHETIC_ROOT),
    ];
    // Moving the largest copied subtree under another parent: the closure difference only, not a re-import.
    const moved = synthetic.find((n) => n.image === `copy1/${roots[0]}`)!;
    imports.push(
      await measureImport(emulator, syntheticStore, `re-parent ${official.descendants(roots[0]).size + 1}-image subtree`, [
        { ...moved, parents: [{ image: `copy2/${roots[1]}`, role: ParentRole.RUNTIME }] },
      ]),
    );
    // What learn-lineage sends for a push that teaches one new child: the per-push cost of a lineage write.
    const learned = (parent: string): ImageNode[] => [{ image: `learned/${parent}`, tier: Tier.APPLICATION, owner: 'team-learn', parents: [{ image: parent, role: ParentRole.RUNTIME }] }];
    imports.push(
      await measureImport(emulator, officialStore, 'single-image put (official graph)', learned(roots[0])),
      await measureImport(emulator, syntheticStore, `single-image put (${SYNTHETIC_SIZE.toLocaleString('en')} images)`, learned(SYNTHETIC_ROOT)),
    );

    // learn-lineage's store requests for one push, the way it read and wrote before updateImage and the way it does now.
    const learns: LearnMeasurement[] = [];
    for (const [store, where, parent] of [
      [officialStore, 'official graph', roots[0]],
      [syntheticStore, `${SYNTHETIC_SIZE.toLocaleString('en')} images`, SYNTHETIC_ROOT],
    ] as const) {
      const tags: TaggedFields = { owner: 'team-learn', project: 'learn-project', notes: [] };
      learns.push(
        await measureLearn(emulator, `learn a new image, before: getImage + putImages (${where})`, () => learnBefore(store, { image: `learn-before/${parent}`, parent }, tags)),
        await measureLearn(emulator, `learn a new image: updateImage, tags read between (${where})`, () => learnNow(store, { image: `learn-now/${parent}`, parent }, tags)),
        await measureLearn(emulator, `re-parent an owned image, before (${where})`, () => learnBefore(store, { image: `learn-before/${parent}`, parent: 'python:3.12' }, tags)),
        await measureLearn(emulator, `re-parent an owned image: updateImage (${where})`, () => learnNow(store, { image: `learn-now/${parent}`, parent: 'python:3.12' }, tags)),
        await measureLearn(emulator, `push that changes nothing, before (${where})`, () => learnBefore(store, { image: `learn-before/${parent}`, parent: 'python:3.12' }, tags)),
        await measureLearn(emulator, `push that changes nothing: updateImage (${where})`, () => learnNow(store, { image: `learn-now/${parent}`, parent: 'python:3.12' }, tags)),
      );
    }

    const synth = plans[1];
    const targets = {
      storeRequestsWithinPageBound: plans.every((p) => p.store.requests <= p.store.pageBound),
      tenfoldFewerRequestsAt10k: synth.requestRatio >= 10,
      import10kUnder10s: imports[1].ms < 10_000,
    };
    const rows: Array<Record<string, string | number>> = [
      ...plans.map((p) => ({
        scenario: p.scenario,
        images: p.descendants,
        requests: p.store.requests,
        'bound ceil(n/page)+2': p.store.pageBound,
        ms: p.store.ms,
        'naive requests': p.naive.requests,
        'naive ms': p.naive.ms,
        'fewer requests': `${p.requestRatio.toFixed(0)}×`,
      })),
      ...imports.map((i) => ({
        scenario: i.scenario,
        images: i.images,
        requests: i.requests,
        'bound ceil(n/page)+2': '-',
        ms: i.ms,
        'naive requests': '-',
        'naive ms': '-',
        'fewer requests': `${i.closureItemsPut} closure put, ${i.closureItemsDeleted} deleted`,
      })),
      ...learns.map((l) => ({ scenario: l.scenario, images: 1, requests: l.requests, 'bound ceil(n/page)+2': '-', ms: l.ms, 'naive requests': '-', 'naive ms': '-', 'fewer requests': l.sent.join(' ') })),
    ];
    reportBenchmark('lineage', rows, {
      backend: 'dynalite (in process, loopback) spoken to by @aws-sdk/client-dynamodb; requests counted by SDK middleware, retries included',
      queryPageSize: PAGE_SIZE,
      writeLease:
        'every putImages, and every updateImage that changes its image, takes and releases the lineage write lease: 2 requests (conditional PutItem, UpdateItem) on top of the scan and the writes, ' +
        'plus one UpdateItem per renewal (a write running longer than 10 s)',
      synthetic:
        `${SYNTHETIC_SIZE} images: ${SYNTHETIC_ROOT} above renamed copies of the largest official closures ` +
        `(${roots.slice(0, 3).join(', ')}), the last one cut`,
      plans,
      imports,
      learns,
      targets,
    });
    if (!Object.values(targets).every(Boolean)) {
      console.error(`targets missed: ${JSON.stringify(targets)}`);
      process.exitCode = 1;
    }
  } finally {
    await emulator.stop();
  }
}

async function freshStore(emulator: DynamoDbEmulator, tableName: string): Promise<DynamoLineageStore> {
  await createPatchlineTable(emulator.client, tableName);
  // dynalite answers CreateTable while the table is still CREATING.
  while ((await emulator.client.send(new DescribeTableCommand({ TableName: tableName }))).Table?.TableStatus !== 'ACTIVE') {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return new DynamoLineageStore({ client: emulator.client, tableName, queryPageSize: PAGE_SIZE });
}

async function measureImport(
  emulator: DynamoDbEmulator,
  store: DynamoLineageStore,
  scenario: string,
  nodes: readonly ImageNode[],
): Promise<ImportMeasurement> {
  const before = emulator.requestCount();
  const started = performance.now();
  const result = await store.putImages(nodes);
  return {
    scenario,
    images: nodes.length,
    ms: Math.round(performance.now() - started),
    requests: emulator.requestCount() - before,
    writeRequests: result.writeRequests,
    closureItemsPut: result.closureItemsPut,
    closureItemsDeleted: result.closureItemsDeleted,
  };
}

interface LearnMeasurement {
  scenario: string;
  requests: number;
  ms: number;
  /** The requests, in order, by command (`GetItem`, `PutItem` …), so a difference between two paths shows where it is. */
  sent: string[];
}

/** The commands the benchmark's client sent, in order (recorded by a middleware added in measureLearn). */
const sentCommands: string[] = [];

async function measureLearn(emulator: DynamoDbEmulator, scenario: string, learn: () => Promise<void>): Promise<LearnMeasurement> {
  if (!emulator.client.middlewareStack.identify().some((m) => m.startsWith('benchSentCommands'))) {
    emulator.client.middlewareStack.add(
      (next, context) => async (args) => {
        sentCommands.push(String(context.commandName).replace(/Command$/, ''));
        return next(args);
      },
      { step: 'initialize', name: 'benchSentCommands' },
    );
  }
  const [before, logged] = [emulator.requestCount(), sentCommands.length];
  const started = performance.now();
  await learn();
  return { scenario, requests: emulator.requestCount() - before, ms: Math.round(performance.now() - started), sent: sentCommands.slice(logged) };
}

/** learn-lineage before updateImage: the node read before the lease, the node built from it put under the lease. */
async function learnBefore(store: LineageStore, facts: PushFacts, tags: TaggedFields): Promise<void> {
  const current = await store.getImage(facts.image);
  let learned = learnFromPush(current, facts);
  if (learned.needsTags) learned = learnFromPush(current, { ...facts, tags });
  if (learned.write && learned.node) await store.putImages([learned.node]);
}

/** learn-lineage now: decided on the node read under the lease; a node that needs the repository tags asks once more. */
async function learnNow(store: LineageStore, facts: PushFacts, tags: TaggedFields): Promise<void> {
  let needsTags = false;
  const update = (withTags?: TaggedFields) => (current: ImageNode | undefined): ImageNode | undefined => {
    const learned = learnFromPush(current, { ...facts, ...(withTags ? { tags: withTags } : {}) });
    needsTags = learned.needsTags;
    return learned.write ? learned.node : undefined;
  };
  await store.updateImage(facts.image, update());
  if (needsTags) await store.updateImage(facts.image, update(tags));
}

async function measurePlan(
  emulator: DynamoDbEmulator,
  store: DynamoLineageStore,
  graph: LineageGraph,
  scenario: string,
  root: string,
): Promise<PlanMeasurement> {
  const expected = graph.planRebuild(root);

  let before = emulator.requestCount();
  let started = performance.now();
  const plan = planFrom(root, await store.descendants(root));
  const storeMs = performance.now() - started;
  const storeRequests = emulator.requestCount() - before;
  assertSamePlan(scenario, plan, expected);

  before = emulator.requestCount();
  started = performance.now();
  const naivePlan = planFrom(root, await naiveDescendants(store, root));
  const naiveMs = performance.now() - started;
  const naiveRequests = emulator.requestCount() - before;
  assertSamePlan(`${scenario} (naive)`, naivePlan, expected);

  return {
    scenario,
    root,
    descendants: plan.rebuild.length,
    store: { requests: storeRequests, ms: Math.round(storeMs), pageBound: Math.ceil(plan.rebuild.length / PAGE_SIZE) + 2 },
    naive: { requests: naiveRequests, ms: Math.round(naiveMs) },
    requestRatio: naiveRequests / storeRequests,
  };
}

/** The baseline: breadth first, one children Query per image (leaves included, to learn they have none). */
async function naiveDescendants(store: DynamoLineageStore, root: string): Promise<DescendantRecord[]> {
  const found = new Map<string, DescendantRecord>();
  let frontier = [root];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const image of frontier) {
      for (const child of await store.children(image)) {
        if (!found.has(child.image)) {
          found.set(child.image, child);
          next.push(child.image);
        }
      }
    }
    frontier = next;
  }
  return [...found.values()];
}

/** The records carry every parent, so the subgraph below the root orders exactly as the whole lineage would. */
function planFrom(root: string, records: readonly DescendantRecord[]): RebuildPlan {
  return LineageGraph.fromImages(records.map(({ depth: _depth, ...node }) => node)).planRebuild(root);
}

function assertSamePlan(scenario: string, actual: RebuildPlan, expected: RebuildPlan): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${scenario}: the plan made from the store differs from the in-memory plan`);
  }
}

function rootsByClosure(graph: LineageGraph): string[] {
  return [...graph.images()]
    .filter((n) => n.parents.length === 0)
    .map((n) => ({ image: n.image, size: graph.descendants(n.image).size }))
    .sort((a, b) => b.size - a.size || (a.image < b.image ? -1 : 1))
    .map((n) => n.image);
}

/**
 * `size` images: one root above renamed copies of the largest official closures, taken in turn. The last copy is cut
 * in breadth-first order, so every image in it keeps at least one parent.
 */
function syntheticLineage(graph: LineageGraph, roots: readonly string[], size: number): ImageNode[] {
  const out: ImageNode[] = [{ image: SYNTHETIC_ROOT, tier: Tier.BASE, owner: 'platform', parents: [], build: { project: 'synthetic-root' } }];
  for (let copy = 1; out.length < size; copy++) {
    const source = roots[(copy - 1) % 3];
    const prefix = `copy${copy}/`;
    const order = [source, ...breadthFirst(graph, source)].slice(0, size - out.length);
    const members = new Set(order);
    for (const image of order) {
      const node = graph.require(image);
      const parents =
        image === source
          ? [{ image: SYNTHETIC_ROOT, role: ParentRole.RUNTIME }]
          : node.parents.filter((p) => members.has(p.image)).map((p) => ({ image: prefix + p.image, role: p.role }));
      out.push({ image: prefix + image, tier: image === source ? Tier.ENTERPRISE : Tier.APPLICATION, owner: `team-${copy}`, parents });
    }
  }
  return out;
}

function breadthFirst(graph: LineageGraph, root: string): string[] {
  const seen = new Set<string>([root]);
  const order: string[] = [];
  for (let frontier = [root]; frontier.length > 0; ) {
    const next: string[] = [];
    for (const image of frontier) {
      for (const child of graph.children(image)) {
        if (!seen.has(child)) {
          seen.add(child);
          order.push(child);
          next.push(child);
        }
      }
    }
    frontier = next;
  }
  return order;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
