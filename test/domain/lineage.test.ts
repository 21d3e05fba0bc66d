import { readFileSync } from 'fs';
import { join } from 'path';
import { ImageNode, imageKey, LineageCycleError, LineageGraph, resolveParentKey } from '../../lambdas/domain/lineage';
import { LineageFileError, parseLineageFile } from '../../lambdas/domain/lineage-file';
import { SHARED_DATA } from '../support/template';

const n = (image: string, ...parents: string[]): ImageNode => ({ image, tier: 'application', parents: parents.map((p) => ({ image: p, role: 'runtime' as const })) });

/** Every image appears once, after all of its parents that are in the plan. */
function expectValidOrder(graph: LineageGraph, root: string): string[] {
  const plan = graph.planRebuild(root);
  const order = plan.rebuild.map((s) => s.image);
  const position = new Map(order.map((image, i) => [image, i]));
  expect(position.size).toBe(order.length);
  for (const image of order) {
    for (const parent of graph.parents(image)) {
      if (position.has(parent.image)) expect(position.get(parent.image)!).toBeLessThan(position.get(image)!);
    }
  }
  return order;
}

describe('Class: LineageGraph', () => {
  describe('Method: planRebuild', () => {
    it('rebuilds the shared child of a diamond once, after both parents', () => {
      const graph = LineageGraph.fromImages([n('os'), n('left', 'os'), n('right', 'os'), n('app', 'left', 'right')]);
      expect(expectValidOrder(graph, 'os')).toEqual(['left', 'right', 'app']);
      expect(graph.planRebuild('os').rebuild[2]).toEqual({ image: 'app', parents: ['left', 'right'] });
    });

    const tsv = join(SHARED_DATA, 'lineage', 'official-images-edges-allfroms.tsv');
    const graph = LineageGraph.fromImages(parseLineageFile(tsv, readFileSync(tsv, 'utf8')));
    // An independent closure over the raw TSV lines, not over the graph under test.
    const kids = new Map<string, Set<string>>();
    for (const line of readFileSync(tsv, 'utf8').split('\n').filter(Boolean)) {
      const [child, parent] = line.split('\t');
      if (!kids.has(parent)) kids.set(parent, new Set());
      kids.get(parent)!.add(child);
    }
    const closure = (root: string): Set<string> => {
      const seen = new Set<string>();
      const stack = [root];
      while (stack.length) for (const k of kids.get(stack.pop()!) ?? []) if (!seen.has(k)) (seen.add(k), stack.push(k));
      return seen;
    };
    const roots = [...kids.keys()].map((r) => [r, closure(r).size] as const).sort((a, b) => b[1] - a[1]).slice(0, 3);

    it.each(roots)('plans exactly the closure of %s (%d images) on the official-images graph, in a valid order', (root, size) => {
      const order = expectValidOrder(graph, imageKey(root));
      expect(order).toHaveLength(size);
      expect(new Set(order)).toEqual(closure(root));
    });
  });

  describe('Method: fromImages', () => {
    it('refuses a cycle and names it', () => {
      expect(() => LineageGraph.fromImages([n('a', 'c'), n('b', 'a'), n('c', 'b')])).toThrow(LineageCycleError);
      expect(() => LineageGraph.fromImages([n('a', 'c'), n('b', 'a'), n('c', 'b')])).toThrow(/a → b → c → a|b → c → a → b|c → a → b → c/);
    });

    it('makes unknown parents external nodes', () => {
      const graph = LineageGraph.fromImages([n('app', 'python:3.11')]);
      expect(graph.get('python:3.11')).toEqual({ image: 'python:3.11', tier: 'external', parents: [] });
    });
  });

  describe('Method: upsert', () => {
    it('moves the whole subtree when an image is re-parented', () => {
      const graph = LineageGraph.fromImages([n('os1'), n('os2'), n('mid', 'os1'), n('leaf', 'mid')]);
      graph.upsert(n('mid', 'os2'));
      expect([...graph.descendants('os1')]).toEqual([]);
      expect([...graph.descendants('os2')].sort()).toEqual(['leaf', 'mid']);
    });

    it('refuses a re-parenting that closes a cycle and leaves the graph as it was', () => {
      const graph = LineageGraph.fromImages([n('os'), n('mid', 'os'), n('leaf', 'mid')]);
      expect(() => graph.upsert(n('os', 'leaf'))).toThrow(LineageCycleError);
      expect(graph.parents('os')).toEqual([]);
      expect([...graph.descendants('os')].sort()).toEqual(['leaf', 'mid']);
    });
  });
});

describe('Function: resolveParentKey', () => {
  it('maps a tagged reference to a known internal repository, anything else to its familiar form', () => {
    const internal = (r: string) => r === 'enterprise/python-311';
    expect(resolveParentKey('enterprise/python-311:1.4', internal)).toBe('enterprise/python-311');
    expect(resolveParentKey('docker.io/library/python:3.11', internal)).toBe('python:3.11');
  });
});

describe('Function: parseLineageFile', () => {
  it('reads the example lineage', () => {
    const nodes = parseLineageFile('lineage.yaml', readFileSync(join(__dirname, '..', '..', 'examples', 'lineage.yaml'), 'utf8'));
    expect(nodes.find((x) => x.image === 'apps/payments-api')).toEqual(
      expect.objectContaining({ tier: 'application', owner: 'payments-team', parents: [{ image: 'enterprise/python-311', role: 'runtime' }] }),
    );
  });

  it.each([
    ['images:\n  - image: a/b\n  - image: a/b\n', /declared twice/],
    ['images:\n  - image: a/b\n    tier: galaxy\n', /images\.0\.tier/],
    ['images:\n  - image: "a/b"\n    parents: ["Not A Ref"]\n', /images\.0\.parents\.0/],
    ['images: [', /not valid YAML/],
  ])('refuses a bad lineage file (%#)', (text, message) => {
    expect(() => parseLineageFile('bad.yaml', text)).toThrow(LineageFileError);
    expect(() => parseLineageFile('bad.yaml', text)).toThrow(message);
  });

  it('names the line of a bad TSV edge', () => {
    expect(() => parseLineageFile('edges.tsv', 'a:1\tb:1\nc:1\n')).toThrow('edges.tsv:2');
  });
});
