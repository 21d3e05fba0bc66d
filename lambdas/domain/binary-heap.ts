/**
 * A binary min-heap under `before` (true when `a` comes out before `b`): O(log n) push and pop. The lineage planner's
 * ready set and the campaign simulator's queues both use it.
 */
export class BinaryHeap<T> {
  private readonly items: T[] = [];

  public constructor(private readonly before: (a: T, b: T) => boolean) {}

  public get size(): number {
    return this.items.length;
  }

  /** The item that `pop` would return, left in place. */
  public peek(): T | undefined {
    return this.items[0];
  }

  public push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.before(items[i], items[up])) break;
      [items[i], items[up]] = [items[up], items[i]];
      i = up;
    }
  }

  /** Removes and returns the first item; undefined when empty. */
  public pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l], items[best])) best = l;
        if (r < items.length && this.before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}
