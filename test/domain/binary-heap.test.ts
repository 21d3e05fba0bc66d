import { BinaryHeap } from '../../lambdas/domain/binary-heap';
import { mulberry32 } from '../../bench/campaign-simulator';

describe('Class: BinaryHeap', () => {
  it('pops in the order `before` defines, whatever the order of the pushes', () => {
    const random = mulberry32(7);
    const values = Array.from({ length: 500 }, () => Math.floor(random() * 100));
    const heap = new BinaryHeap<number>((a, b) => a < b);
    for (const v of values) heap.push(v);
    expect(heap.size).toBe(500);
    const out: number[] = [];
    while (heap.size > 0) {
      const next = heap.peek();
      expect(heap.pop()).toBe(next);
      out.push(next!);
    }
    expect(out).toEqual([...values].sort((a, b) => a - b));
  });

  it('returns undefined from an empty heap', () => {
    const heap = new BinaryHeap<string>((a, b) => a < b);
    expect(heap.pop()).toBeUndefined();
    expect(heap.peek()).toBeUndefined();
    heap.push('x');
    expect(heap.pop()).toBe('x');
    expect(heap.size).toBe(0);
  });
});
