import { BinaryHeap } from './binary-heap';
import { formatImageRef, InvalidImageReferenceError, isRepositoryName, parseImageRef } from './image-ref';

export const Tier = {
  BASE: 'base',
  ENTERPRISE: 'enterprise',
  APPLICATION: 'application',
  BUILDER: 'builder',
  COTS: 'cots',
  EXTERNAL: 'external',
} as const;
export type Tier = (typeof Tier)[keyof typeof Tier];
export const TIERS: readonly Tier[] = Object.values(Tier);

/** `runtime`: the final stage's base, whose packages ship in the image. `build`: an earlier stage, a rebuild trigger only. */
export const ParentRole = { RUNTIME: 'runtime', BUILD: 'build' } as const;
export type ParentRole = (typeof ParentRole)[keyof typeof ParentRole];

export interface ParentEdge {
  readonly image: string;
  readonly role: ParentRole;
}

export interface BuildSpec {
  /** CodeBuild project that rebuilds the image. */
  readonly project: string;
}

export interface ImageNode {
  /** The image key: an ECR repository name for internal images, a familiar reference (`python:3.11`) otherwise. */
  readonly image: string;
  readonly tier: Tier;
  readonly owner?: string;
  readonly parents: readonly ParentEdge[];
  readonly build?: BuildSpec;
}

export interface RebuildStep {
  readonly image: string;
  /** Every parent of the image (inside the campaign or not), runtime parent first. */
  readonly parents: readonly string[];
}

export interface RebuildPlan {
  readonly root: string;
  readonly rebuild: readonly RebuildStep[];
}

export class LineageCycleError extends Error {
  public readonly code = 'LINEAGE_CYCLE';
  public constructor(public readonly cycle: readonly string[]) {
    super(`lineage cycle refused: ${cycle.join(' → ')}`);
    this.name = 'LineageCycleError';
  }
}

export class ImageNotFoundError extends Error {
  public readonly code = 'IMAGE_NOT_FOUND';
  public constructor(public readonly image: string) {
    super(`image ${JSON.stringify(image)} is not in the lineage`);
    this.name = 'ImageNotFoundError';
  }
}

export class DuplicateImageError extends Error {
  public readonly code = 'DUPLICATE_IMAGE';
  public constructor(public readonly image: string, where: string) {
    super(`image ${JSON.stringify(image)} is declared twice (${where})`);
    this.name = 'DuplicateImageError';
  }
}

/**
 * The key of an image that is declared in a lineage (its own `image:` field): a bare ECR repository name stays as it
 * is; anything else becomes its familiar reference without digest (`docker.io/library/python:3.11` → `python:3.11`).
 */
export function imageKey(reference: string): string {
  if (isRepositoryName(reference) && !reference.includes(':')) {
    // A bare multi-component name is an ECR repository; a bare single name is too (tags are always explicit elsewhere).
    return reference;
  }
  const ref = parseImageRef(reference);
  if (ref.tag) return formatImageRef({ ...ref, digest: undefined });
  return formatImageRef(ref);
}

/** Internal images are keyed by their bare ECR repository name; external keys always carry a tag or digest. */
export function isInternalImageKey(key: string): boolean {
  return isRepositoryName(key) && !key.includes(':') && !key.includes('@');
}

/**
 * Resolves a parent reference to an image key: `enterprise/python-311:1.4` names the internal repository
 * `enterprise/python-311` when that repository is known; anything else is an external reference.
 */
export function resolveParentKey(reference: string, isInternal: (repository: string) => boolean): string {
  const withoutDigest = reference.split('@')[0];
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  const repository = colon > lastSlash ? withoutDigest.slice(0, colon) : withoutDigest;
  if (isInternal(repository)) {
    parseImageRef(reference); // still validated
    return repository;
  }
  const ref = parseImageRef(reference);
  return formatImageRef(ref.tag ? { ...ref, digest: undefined } : ref);
}

/** The image lineage: a DAG of images and their parents, with a child index kept in step. */
export class LineageGraph {
  private readonly nodes = new Map<string, ImageNode>();
  private readonly childIndex = new Map<string, Set<string>>();

  /** Builds a graph; unknown parents become `external` nodes; a cycle is refused with its path. */
  public static fromImages(images: Iterable<ImageNode>): LineageGraph {
    const graph = new LineageGraph();
    for (const node of images) {
      if (graph.nodes.has(node.image) && graph.nodes.get(node.image)!.tier !== Tier.EXTERNAL) {
        throw new DuplicateImageError(node.image, 'in the same lineage');
      }
      graph.setNode(node);
    }
    graph.addMissingExternals();
    const cycle = graph.findCycle();
    if (cycle) throw new LineageCycleError(cycle);
    return graph;
  }

  public get size(): number {
    return this.nodes.size;
  }

  public has(image: string): boolean {
    return this.nodes.has(image);
  }

  public get(image: string): ImageNode | undefined {
    return this.nodes.get(image);
  }

  public require(image: string): ImageNode {
    const node = this.nodes.get(image);
    if (!node) throw new ImageNotFoundError(image);
    return node;
  }

  public images(): IterableIterator<ImageNode> {
    return this.nodes.values();
  }

  public children(image: string): string[] {
    return [...(this.childIndex.get(image) ?? [])].sort();
  }

  public parents(image: string): readonly ParentEdge[] {
    return this.nodes.get(image)?.parents ?? [];
  }

  /**
   * Adds or replaces an image (re-parenting moves its whole subtree with it: descendants hang off the image, not
   * off its old parents). Refuses a change that would close a cycle and leaves the graph as it was.
   */
  public upsert(node: ImageNode): void {
    const previous = this.nodes.get(node.image);
    this.setNode(node);
    for (const parent of node.parents) {
      if (parent.image === node.image || this.isAncestorOf(node.image, parent.image)) {
        const cycle = this.pathDown(node.image, parent.image);
        if (previous) this.setNode(previous);
        else this.deleteNode(node.image);
        throw new LineageCycleError([...cycle, node.image]);
      }
    }
    this.addMissingExternals();
  }

  /** Removes an image; its children keep it as an (external) parent reference so nothing downstream is lost. */
  public remove(image: string): void {
    this.require(image);
    const hasChildren = (this.childIndex.get(image)?.size ?? 0) > 0;
    this.deleteNode(image);
    if (hasChildren) this.setNode({ image, tier: Tier.EXTERNAL, parents: [] });
  }

  /** Every image below `image`, each once. */
  public descendants(image: string): Set<string> {
    const seen = new Set<string>();
    const stack = [image];
    while (stack.length > 0) {
      for (const child of this.childIndex.get(stack.pop()!) ?? []) {
        if (!seen.has(child)) {
          seen.add(child);
          stack.push(child);
        }
      }
    }
    return seen;
  }

  /** Every image above `image`, each once. */
  public ancestors(image: string): Set<string> {
    const seen = new Set<string>();
    const stack = [image];
    while (stack.length > 0) {
      for (const parent of this.parents(stack.pop()!)) {
        if (!seen.has(parent.image)) {
          seen.add(parent.image);
          stack.push(parent.image);
        }
      }
    }
    return seen;
  }

  /**
   * Every image downstream of `root`, each after all of its parents that are in the plan. Among images that are
   * ready at the same time, the one with the longest chain of rebuilds below it comes first (critical path).
   */
  public planRebuild(root: string): RebuildPlan {
    this.require(root);
    const members = this.descendants(root);
    const chain = this.longestChainBelow(members);
    const waiting = new Map<string, number>();
    for (const image of members) {
      waiting.set(image, this.parents(image).filter((p) => members.has(p.image)).length);
    }
    // The planner's ready set: longest remaining chain first, then by name, so planning 10,000 images is O(n log n).
    const ready = new BinaryHeap<string>((a, b) => (chain.get(b)! - chain.get(a)! || (a < b ? -1 : a > b ? 1 : 0)) < 0);
    for (const child of this.childIndex.get(root) ?? []) {
      if (waiting.get(child) === 0) ready.push(child);
    }
    const rebuild: RebuildStep[] = [];
    while (ready.size > 0) {
      const image = ready.pop()!;
      rebuild.push({ image, parents: this.parents(image).map((p) => p.image) });
      for (const child of this.childIndex.get(image) ?? []) {
        const left = waiting.get(child)! - 1;
        waiting.set(child, left);
        if (left === 0) ready.push(child);
      }
    }
    return { root, rebuild };
  }

  /** Number of images on the longest path from each member down to a leaf of the member set (itself included). */
  public longestChainBelow(members: ReadonlySet<string>): Map<string, number> {
    const memo = new Map<string, number>();
    const visit = (start: string): void => {
      // Iterative post-order: deep lineages must not overflow the stack.
      const stack: Array<[string, boolean]> = [[start, false]];
      while (stack.length > 0) {
        const [image, expanded] = stack.pop()!;
        if (memo.has(image)) continue;
        const kids = [...(this.childIndex.get(image) ?? [])].filter((c) => members.has(c));
        if (expanded) {
          memo.set(image, 1 + Math.max(0, ...kids.map((k) => memo.get(k)!)));
        } else {
          stack.push([image, true]);
          for (const kid of kids) if (!memo.has(kid)) stack.push([kid, false]);
        }
      }
    };
    for (const image of members) visit(image);
    return memo;
  }

  /** A cycle as a closed path (first image repeated at the end), or undefined. */
  public findCycle(): string[] | undefined {
    const WHITE = 0;
    const GREY = 1;
    const BLACK = 2;
    const colour = new Map<string, number>();
    for (const start of this.nodes.keys()) {
      if ((colour.get(start) ?? WHITE) !== WHITE) continue;
      const path: string[] = [];
      const stack: Array<{ image: string; kids: string[]; next: number }> = [];
      const enter = (image: string): void => {
        colour.set(image, GREY);
        path.push(image);
        stack.push({ image, kids: [...(this.childIndex.get(image) ?? [])], next: 0 });
      };
      enter(start);
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        if (top.next < top.kids.length) {
          const kid = top.kids[top.next++];
          const c = colour.get(kid) ?? WHITE;
          if (c === GREY) return [...path.slice(path.indexOf(kid)), kid];
          if (c === WHITE) enter(kid);
        } else {
          colour.set(top.image, BLACK);
          path.pop();
          stack.pop();
        }
      }
    }
    return undefined;
  }

  private isAncestorOf(ancestor: string, image: string): boolean {
    return this.ancestors(image).has(ancestor);
  }

  /** A path of children from `from` down to `to` (both included). */
  private pathDown(from: string, to: string): string[] {
    const previous = new Map<string, string>();
    const queue = [from];
    while (queue.length > 0) {
      const image = queue.shift()!;
      if (image === to) break;
      for (const child of this.childIndex.get(image) ?? []) {
        if (!previous.has(child)) {
          previous.set(child, image);
          queue.push(child);
        }
      }
    }
    const path = [to];
    while (path[0] !== from && previous.has(path[0])) path.unshift(previous.get(path[0])!);
    return path;
  }

  private setNode(node: ImageNode): void {
    this.deleteNode(node.image, true);
    this.nodes.set(node.image, node);
    for (const parent of node.parents) {
      let kids = this.childIndex.get(parent.image);
      if (!kids) this.childIndex.set(parent.image, (kids = new Set()));
      kids.add(node.image);
    }
  }

  private deleteNode(image: string, keepChildIndex = false): void {
    const old = this.nodes.get(image);
    if (!old) return;
    for (const parent of old.parents) this.childIndex.get(parent.image)?.delete(image);
    this.nodes.delete(image);
    if (!keepChildIndex && (this.childIndex.get(image)?.size ?? 0) === 0) this.childIndex.delete(image);
  }

  private addMissingExternals(): void {
    for (const parent of this.childIndex.keys()) {
      if (!this.nodes.has(parent) && (this.childIndex.get(parent)?.size ?? 0) > 0) {
        this.nodes.set(parent, { image: parent, tier: Tier.EXTERNAL, parents: [] });
      }
    }
  }
}

export { InvalidImageReferenceError };
