import { readFileSync } from 'fs';
import { join } from 'path';
import {
  BuildDurations,
  DurationModel,
  InvalidDurationOptionsError,
  mulberry32,
  SchedulingPolicy,
  simulateCampaign,
  SimulationError,
  syntheticDurations,
} from '../../bench/campaign-simulator';
import { ImageNode, ImageNotFoundError, LineageGraph, Tier } from '../../lambdas/domain/lineage';
import { parseLineageFile } from '../../lambdas/domain/lineage-file';
import {
  compareWaiters,
  compareWaiterSortKeys,
  criticalPathPriorities,
  decodeWaiterSortKey,
  encodeWaiterSortKey,
  estimateBuildSeconds,
  ExecutionStateKind,
  executionHistoryEvents,
  executionTransitions,
  HISTORY_EVENTS_PER_RETRY,
  InvalidEstimateError,
  InvalidWaiterError,
  InvalidWaiterSortKeyError,
  MAX_PRIORITY_SECONDS,
  MAX_WAITER_ID_BYTES,
  pickNextWaiter,
  REBUILD_EXECUTION_STATES,
  Waiter,
} from '../../lambdas/domain/scheduling';

const LINEAGE_FILE = join(__dirname, '../../../shared/data/lineage/official-images-edges-allfroms.tsv');
const official = LineageGraph.fromImages(parseLineageFile(LINEAGE_FILE, readFileSync(LINEAGE_FILE, 'utf8')));

/** A graph from `child: parents` pairs; images without an entry are roots. */
function graphOf(edges: Record<string, string[]>): LineageGraph {
  const nodes: ImageNode[] = Object.entries(edges).map(([image, parents]) => ({
    image,
    tier: Tier.APPLICATION,
    parents: parents.map((p) => ({ image: p, role: 'runtime' as const })),
  }));
  return LineageGraph.fromImages(nodes);
}

function fixedDurations(seconds: Record<string, number>): BuildDurations {
  return { real: (image) => seconds[image], estimate: (image) => seconds[image] };
}

function randomWaiters(count: number, seed: number): Waiter[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => ({
    // Few distinct priorities and times, so the tie-breaks are exercised too.
    priority: random() < 0.3 ? Math.floor(random() * 5) * 600 : random() * 20_000,
    enqueuedAt: 1_700_000_000_000 + Math.floor(random() * 4) * 1000,
    id: `img-${Math.floor(random() * 1e6).toString(36)}-${i}`,
  }));
}

describe('Function: estimateBuildSeconds', () => {
  it('returns the fallback when nothing was recorded', () => {
    expect(estimateBuildSeconds([], 600)).toBe(600);
  });

  it('averages the last five durations only', () => {
    expect(estimateBuildSeconds([9_000, 100, 200, 300, 400, 500], 600)).toBe(300);
  });

  it('ignores non-finite and negative records and reaches further back for valid ones', () => {
    expect(estimateBuildSeconds([50, Number.NaN, 100, -3, Infinity, 200, 300, 400], 600)).toBe((100 + 200 + 300 + 400 + 50) / 5);
    expect(estimateBuildSeconds([Number.NaN, -1, Number.NEGATIVE_INFINITY], 600)).toBe(600);
  });

  it('fails on a fallback that is not a finite non-negative number', () => {
    expect(() => estimateBuildSeconds([100], -1)).toThrow(InvalidEstimateError);
    expect(() => estimateBuildSeconds([100], Number.NaN)).toThrow(expect.objectContaining({ code: 'INVALID_ESTIMATE' }));
  });
});

describe('Function: criticalPathPriorities', () => {
  it('adds up a chain from the bottom', () => {
    const graph = graphOf({ a: ['root'], b: ['a'], c: ['b'] });
    const priorities = criticalPathPriorities(graph, graph.descendants('root'), (i) => ({ a: 1, b: 10, c: 100 })[i]!);
    expect(Object.fromEntries(priorities)).toEqual({ a: 111, b: 110, c: 100 });
  });

  it('takes the longer branch of a diamond and counts the shared child once', () => {
    const graph = graphOf({ left: ['root'], right: ['root'], join: ['left', 'right'], tail: ['join'] });
    const seconds: Record<string, number> = { left: 10, right: 30, join: 5, tail: 7 };
    const priorities = criticalPathPriorities(graph, graph.descendants('root'), (i) => seconds[i]);
    expect(priorities.get('tail')).toBe(7);
    expect(priorities.get('join')).toBe(12);
    expect(priorities.get('left')).toBe(22);
    expect(priorities.get('right')).toBe(42);
    expect(priorities.has('root')).toBe(false);
  });

  it('ignores children outside the campaign', () => {
    const graph = graphOf({ a: ['root'], b: ['a'], outside: ['a'] });
    const priorities = criticalPathPriorities(graph, new Set(['a', 'b']), (i) => (i === 'outside' ? 1_000 : 1));
    expect(priorities.get('a')).toBe(2);
    expect(priorities.has('outside')).toBe(false);
  });

  it('treats a parent listed twice (runtime and build) as one edge', () => {
    const graph = LineageGraph.fromImages([
      { image: 'a', tier: Tier.BASE, parents: [] },
      { image: 'b', tier: Tier.APPLICATION, parents: [{ image: 'a', role: 'runtime' }, { image: 'a', role: 'build' }] },
    ]);
    expect(criticalPathPriorities(graph, new Set(['a', 'b']), () => 3).get('a')).toBe(6);
  });

  it('matches longestChainBelow with unit estimates on the official-images lineage', () => {
    const members = official.descendants('ubuntu:24.04');
    const priorities = criticalPathPriorities(official, members, () => 1);
    expect(priorities).toEqual(official.longestChainBelow(members));
  });

  it('satisfies own estimate + longest child on the official-images lineage', () => {
    const members = official.descendants('alpine:3.23');
    const estimate = (image: string): number => 60 + (image.length % 17) * 30;
    const priorities = criticalPathPriorities(official, members, estimate);
    expect(priorities.size).toBe(members.size);
    for (const image of members) {
      const below = official.children(image).filter((c) => members.has(c)).map((c) => priorities.get(c)!);
      expect(priorities.get(image)).toBe(estimate(image) + Math.max(0, ...below));
    }
  });

  it('handles a chain of 20,000 images without recursion', () => {
    const nodes: ImageNode[] = [{ image: 'n0', tier: Tier.BASE, parents: [] }];
    for (let i = 1; i <= 20_000; i++) nodes.push({ image: `n${i}`, tier: Tier.APPLICATION, parents: [{ image: `n${i - 1}`, role: 'runtime' }] });
    const graph = LineageGraph.fromImages(nodes);
    const priorities = criticalPathPriorities(graph, graph.descendants('n0'), () => 2);
    expect(priorities.get('n1')).toBe(40_000);
    expect(priorities.get('n20000')).toBe(2);
  });

  it('refuses a member that is not in the lineage', () => {
    const graph = graphOf({ a: ['root'] });
    expect(() => criticalPathPriorities(graph, new Set(['a', 'ghost']), () => 1)).toThrow(ImageNotFoundError);
  });

  it('refuses an estimate that is negative or not finite', () => {
    const graph = graphOf({ a: ['root'], b: ['a'] });
    expect(() => criticalPathPriorities(graph, new Set(['a', 'b']), () => -5)).toThrow(InvalidEstimateError);
    expect(() => criticalPathPriorities(graph, new Set(['a', 'b']), () => Number.NaN)).toThrow(InvalidEstimateError);
  });
});

describe('Function: encodeWaiterSortKey', () => {
  it('round-trips through decodeWaiterSortKey, with the priority kept to the millisecond', () => {
    for (const waiter of randomWaiters(500, 11)) {
      const decoded = decodeWaiterSortKey(encodeWaiterSortKey(waiter.priority, waiter.enqueuedAt, waiter.id));
      expect(decoded.id).toBe(waiter.id);
      expect(decoded.enqueuedAt).toBe(waiter.enqueuedAt);
      expect(decoded.priority).toBeCloseTo(waiter.priority, 3);
    }
  });

  it('keeps ids that contain the separator', () => {
    const decoded = decodeWaiterSortKey(encodeWaiterSortKey(12.5, 7, 'campaign#42#python:3.11'));
    expect(decoded).toEqual({ id: 'campaign#42#python:3.11', priority: 12.5, enqueuedAt: 7 });
  });

  it('sorts ascending in exactly the slot order of compareWaiters and pickNextWaiter', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const waiters = randomWaiters(300, seed);
      const byKey = waiters
        .map((w) => ({ w, key: encodeWaiterSortKey(w.priority, w.enqueuedAt, w.id) }))
        .sort((a, b) => compareWaiterSortKeys(a.key, b.key))
        .map((e) => e.w);
      expect(byKey).toEqual([...waiters].sort(compareWaiters));
      expect(byKey[0]).toBe(pickNextWaiter(waiters));
      // Plain string order agrees too for ASCII ids (what a DynamoDB Query with ScanIndexForward=true returns).
      const plain = waiters.map((w) => encodeWaiterSortKey(w.priority, w.enqueuedAt, w.id)).sort();
      expect(plain.map((k) => decodeWaiterSortKey(k).id)).toEqual(byKey.map((w) => w.id));
    }
  });

  it('puts the highest priority first, then the earliest enqueued', () => {
    const high = encodeWaiterSortKey(3_600, 2_000, 'z');
    const low = encodeWaiterSortKey(60, 1_000, 'a');
    const highLater = encodeWaiterSortKey(3_600, 3_000, 'a');
    expect([low, highLater, high].sort()).toEqual([high, highLater, low]);
  });

  it('refuses priorities, times and ids that do not fit the key', () => {
    expect(() => encodeWaiterSortKey(-1, 0, 'a')).toThrow(InvalidWaiterError);
    expect(() => encodeWaiterSortKey(Number.NaN, 0, 'a')).toThrow(InvalidWaiterError);
    expect(() => encodeWaiterSortKey(MAX_PRIORITY_SECONDS * 2, 0, 'a')).toThrow(InvalidWaiterError);
    expect(() => encodeWaiterSortKey(1, 1.5, 'a')).toThrow(InvalidWaiterError);
    expect(() => encodeWaiterSortKey(1, -1, 'a')).toThrow(InvalidWaiterError);
    expect(() => encodeWaiterSortKey(1, 0, '')).toThrow(InvalidWaiterError);
    expect(() => encodeWaiterSortKey(1, 0, '\u{1F600}'.repeat(MAX_WAITER_ID_BYTES / 4 + 1))).toThrow(InvalidWaiterError);
    expect(encodeWaiterSortKey(1, 0, 'x'.repeat(MAX_WAITER_ID_BYTES))).toHaveLength(32 + MAX_WAITER_ID_BYTES);
    expect(() => encodeWaiterSortKey(1, 0, 'line\nbreak')).toThrow(expect.objectContaining({ code: 'INVALID_WAITER' }));
  });
});

describe('Function: decodeWaiterSortKey', () => {
  it('refuses keys that are not <15 digits>#<15 digits>#<id>', () => {
    for (const key of ['', 'abc', '123#456#x', `${'9'.repeat(15)}#${'0'.repeat(15)}#`, `${'x'.repeat(15)}#${'0'.repeat(15)}#id`]) {
      expect(() => decodeWaiterSortKey(key)).toThrow(InvalidWaiterSortKeyError);
    }
  });

  it('refuses a key whose priority is beyond the allowed range', () => {
    expect(() => decodeWaiterSortKey(`${'0'.repeat(15)}#${'0'.repeat(15)}#id`)).toThrow(
      expect.objectContaining({ code: 'INVALID_WAITER_SORT_KEY', cause: expect.any(InvalidWaiterError) }),
    );
  });
});

describe('Function: compareWaiterSortKeys', () => {
  it('orders by code point like DynamoDB, not by UTF-16 unit', () => {
    const astral = '\u{1F600}';
    const highBmp = '\uFFFD';
    expect(astral < highBmp).toBe(true); // what plain string comparison says
    expect(compareWaiterSortKeys(astral, highBmp)).toBeGreaterThan(0);
    expect(compareWaiterSortKeys('ab', 'abc')).toBeLessThan(0);
    expect(compareWaiterSortKeys('abc', 'abc')).toBe(0);
  });
});

describe('Function: pickNextWaiter', () => {
  it('returns undefined when nobody waits', () => {
    expect(pickNextWaiter([])).toBeUndefined();
  });

  it('picks the highest priority, and the earliest among equals', () => {
    const waiters: Waiter[] = [
      { id: 'short', priority: 120, enqueuedAt: 1 },
      { id: 'long-late', priority: 5_400, enqueuedAt: 9 },
      { id: 'long-early', priority: 5_400, enqueuedAt: 3 },
    ];
    expect(pickNextWaiter(waiters)?.id).toBe('long-early');
  });

  it('refuses a waiter that could not be stored', () => {
    expect(() => pickNextWaiter([{ id: 'a', priority: Number.POSITIVE_INFINITY, enqueuedAt: 0 }])).toThrow(InvalidWaiterError);
  });
});

describe('Constant: REBUILD_EXECUTION_STATES', () => {
  it('acquires a slot before it marks the image building and releases it on every path that got one', () => {
    for (const states of Object.values(REBUILD_EXECUTION_STATES)) {
      const names = states.map((s) => s.name);
      const acquire = names.indexOf('AcquireSlot');
      expect(acquire).toBeGreaterThanOrEqual(0);
      expect(acquire).toBeLessThan(names.indexOf('MarkBuilding'));
      expect(states[acquire].kind).toBe(ExecutionStateKind.TASK_TOKEN);
      expect(names.filter((n) => n.startsWith('ReleaseSlot'))).toHaveLength(1);
      const build = names.indexOf('StartBuild');
      if (build >= 0) expect(names.findIndex((n) => n.startsWith('ReleaseSlot'))).toBeGreaterThan(build);
    }
  });
});

describe('Function: executionHistoryEvents', () => {
  it('adds the per-state events to the execution start and end', () => {
    const one = (kind: ExecutionStateKind): number => executionHistoryEvents([{ name: 'S', kind }]) - executionHistoryEvents([]);
    const { rebuilt } = REBUILD_EXECUTION_STATES;
    expect(executionHistoryEvents(rebuilt)).toBe(executionHistoryEvents([]) + rebuilt.reduce((sum, s) => sum + one(s.kind), 0));
    expect(one(ExecutionStateKind.TASK_SYNC)).toBe(one(ExecutionStateKind.TASK) + 1);
  });

  it('counts every retry budget as spent in the worst case', () => {
    const { rebuilt } = REBUILD_EXECUTION_STATES;
    const retries = rebuilt.reduce((sum, s) => sum + (s.maxRetries ?? 0), 0);
    expect(retries).toBeGreaterThan(0);
    expect(executionHistoryEvents(rebuilt, { worstCaseRetries: true })).toBe(executionHistoryEvents(rebuilt) + retries * HISTORY_EVENTS_PER_RETRY);
  });
});

describe('Function: executionTransitions', () => {
  it('counts one transition per state entered', () => {
    expect(executionTransitions(REBUILD_EXECUTION_STATES.rebuilt)).toBe(REBUILD_EXECUTION_STATES.rebuilt.length);
  });
});

describe('Function: simulateCampaign', () => {
  // root → fast(10) → slow(100) and three quick siblings(10). With 2 slots, waves must build all four level-1 images
  // (20 s) before `slow` may start: 120 s. Critical path starts `fast` first and `slow` at 10 s: 110 s, the bound.
  const graph = graphOf({ fast: ['root'], slow: ['fast'], q1: ['root'], q2: ['root'], q3: ['root'] });
  const durations = fixedDurations({ fast: 10, slow: 100, q1: 10, q2: 10, q3: 10 });

  it('beats level-by-level waves where the waves barrier delays the long chain', () => {
    const critical = simulateCampaign({ graph, root: 'root', cap: 2, policy: SchedulingPolicy.CRITICAL_PATH, durations, crossCheck: true });
    const waves = simulateCampaign({ graph, root: 'root', cap: 2, policy: SchedulingPolicy.WAVES, durations });
    expect(critical.lowerBound).toBe(110);
    expect(critical.makespan).toBe(110);
    expect(waves.makespan).toBe(120);
    expect(critical.makespan).toBeLessThan(waves.makespan);
  });

  it.each(Object.values(SchedulingPolicy))('keeps parents before children and never exceeds the cap (%s)', (policy) => {
    const cap = 7;
    const members = official.descendants('debian:bookworm');
    const run = simulateCampaign({ graph: official, root: 'debian:bookworm', cap, policy, durations: syntheticDurations({ seed: 3 }) });
    expect(run.schedule.size).toBe(members.size);
    for (const image of members) {
      const [start] = run.schedule.get(image)!;
      for (const parent of official.parents(image)) {
        if (members.has(parent.image)) expect(run.schedule.get(parent.image)![1]).toBeLessThanOrEqual(start);
      }
    }
    const events = [...run.schedule.values()].flatMap(([s, e]) => [[s, 1] as const, [e, -1] as const]);
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let running = 0;
    for (const [, delta] of events) {
      running += delta;
      expect(running).toBeLessThanOrEqual(cap);
    }
    expect(run.makespan).toBeGreaterThanOrEqual(run.lowerBound);
  });

  it('hands every slot to the waiter pickNextWaiter would choose', () => {
    expect(() =>
      simulateCampaign({
        graph: official,
        root: 'debian:bookworm',
        cap: 5,
        policy: SchedulingPolicy.CRITICAL_PATH,
        durations: syntheticDurations({ seed: 5 }),
        crossCheck: true,
      }),
    ).not.toThrow();
  });

  it.each([
    [DurationModel.LOGNORMAL, 60, 3600],
    [DurationModel.FLOOR_HEAVY, 120, 1800],
  ] as const)('draws deterministic %s durations within [%d, %d] s with estimates within 30%% of the real ones', (model, min, max) => {
    const a = syntheticDurations({ seed: 2, model });
    const b = syntheticDurations({ seed: 2, model });
    const other = syntheticDurations({ seed: 3, model });
    let differ = 0;
    for (const image of official.descendants('alpine:3.22')) {
      expect(a.real(image)).toBe(b.real(image));
      expect(a.estimate(image)).toBe(b.estimate(image));
      expect(a.real(image)).toBeGreaterThanOrEqual(min);
      expect(a.real(image)).toBeLessThanOrEqual(max);
      expect(Math.abs(a.estimate(image) / a.real(image) - 1)).toBeLessThanOrEqual(0.3);
      if (other.real(image) !== a.real(image)) differ += 1;
    }
    expect(differ).toBeGreaterThan(0);
  });

  it('draws lognormal durations around the 6-minute median, with a tail of long builds', () => {
    const durations = syntheticDurations({ seed: 1 });
    const reals = [...official.descendants('ubuntu:24.04')].map((image) => durations.real(image)).sort((x, y) => x - y);
    const quantile = (q: number): number => reals[Math.floor(q * (reals.length - 1))];
    // ln N(ln 360, 0.9): median 360 s, 10th percentile ~114 s, 95th ~1,580 s; 1,757 draws land close to them.
    expect(quantile(0.5)).toBeGreaterThan(300);
    expect(quantile(0.5)).toBeLessThan(430);
    expect(quantile(0.1)).toBeGreaterThan(85);
    expect(quantile(0.1)).toBeLessThan(150);
    expect(quantile(0.95)).toBeGreaterThan(1200);
    expect(quantile(0.95)).toBeLessThan(2100);
  });

  it('refuses duration options that make no sense', () => {
    expect(() => syntheticDurations({ minSeconds: 0 })).toThrow(InvalidDurationOptionsError);
    expect(() => syntheticDurations({ minSeconds: 600, maxSeconds: 60 })).toThrow(/0 < min <= max/);
    expect(() => syntheticDurations({ model: 'gaussian' as never })).toThrow(/model must be one of lognormal, floor-heavy/);
  });

  it('refuses a cap that is not a positive integer', () => {
    expect(() => simulateCampaign({ graph, root: 'root', cap: 0, policy: SchedulingPolicy.FIFO, durations })).toThrow(SimulationError);
  });
});
