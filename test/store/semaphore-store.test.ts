import { SemaphoreStore, Waiter } from '../../lambdas/store/semaphore-store';
import { startTestTable } from '../support/dynamodb';

describe('Class: SemaphoreStore', () => {
  let table: Awaited<ReturnType<typeof startTestTable>>;
  beforeAll(async () => {
    table = await startTestTable();
  });
  afterAll(async () => table.stop());

  const store = (name: string, cap: number) => new SemaphoreStore({ client: table.client, tableName: table.tableName, name, cap });
  const waiter = (holder: string, priority: number, enqueuedAt = 1): Waiter => ({ holder, taskToken: `token-${holder}`, priority, enqueuedAt });

  describe('Method: acquire', () => {
    it('grants up to the cap, then serves waiters highest priority first as slots are released', async () => {
      const semaphore = store('order', 2);
      const woken: string[] = [];
      const wake = async (w: Waiter) => (woken.push(w.holder), true);
      await semaphore.acquire(waiter('a', 10), wake);
      await semaphore.acquire(waiter('b', 10), wake);
      await semaphore.acquire(waiter('low', 5), wake);
      await semaphore.acquire(waiter('high', 500), wake);
      expect(woken).toEqual(['a', 'b']);
      expect(await semaphore.state()).toEqual({ inUse: 2, holders: ['a', 'b'], waiters: 2 });
      await semaphore.release('a', wake);
      expect(woken).toEqual(['a', 'b', 'high']);
      await semaphore.release('b', wake);
      await semaphore.release('high', wake);
      await semaphore.release('low', wake);
      expect(woken).toEqual(['a', 'b', 'high', 'low']);
      expect(await semaphore.state()).toEqual({ inUse: 0, holders: [], waiters: 0 });
    });
  });

  describe('Method: release', () => {
    it('is idempotent: a second release of the same holder frees nothing', async () => {
      const semaphore = store('idempotent', 1);
      const wake = async () => true;
      await semaphore.acquire(waiter('a', 1), wake);
      expect(await semaphore.release('a', wake)).toBe(true);
      expect(await semaphore.release('a', wake)).toBe(false);
      expect(await semaphore.state()).toEqual({ inUse: 0, holders: [], waiters: 0 });
    });

    it('drops the queue entry of a holder released while still parked (aborted before its slot came)', async () => {
      const semaphore = store('aborted', 1);
      const wake = async () => true;
      await semaphore.acquire(waiter('a', 1), wake);
      await semaphore.acquire(waiter('parked', 1), wake);
      expect(await semaphore.release('parked', wake)).toBe(false);
      expect(await semaphore.state()).toEqual({ inUse: 1, holders: ['a'], waiters: 0 });
    });

    it('gives back the slot of a waiter that can no longer be woken and serves the next one', async () => {
      const semaphore = store('gone', 1);
      const woken: string[] = [];
      await semaphore.acquire(waiter('a', 1), async () => true);
      await semaphore.acquire(waiter('gone', 9), async () => true);
      await semaphore.acquire(waiter('next', 1, 2), async () => true);
      await semaphore.release('a', async (w) => (woken.push(w.holder), w.holder !== 'gone'));
      expect(woken).toEqual(['gone', 'next']);
      expect(await semaphore.state()).toEqual({ inUse: 1, holders: ['next'], waiters: 0 });
    });
  });

  it('never exceeds the cap under concurrent acquires and releases', async () => {
    const semaphore = store('concurrent', 3);
    let inUse = 0;
    let peak = 0;
    const holders = Array.from({ length: 24 }, (_, i) => `h${i}`);
    const granted = new Map<string, () => void>();
    const wake = async (w: Waiter) => {
      inUse += 1;
      peak = Math.max(peak, inUse);
      granted.get(w.holder)?.();
      return true;
    };
    await Promise.all(
      holders.map(async (holder, i) => {
        const slot = new Promise<void>((resolve) => granted.set(holder, resolve));
        await semaphore.acquire(waiter(holder, i % 5, i), wake);
        await slot;
        inUse -= 1;
        await semaphore.release(holder, wake);
      }),
    );
    expect(peak).toBeLessThanOrEqual(3);
    expect(await semaphore.state()).toEqual({ inUse: 0, holders: [], waiters: 0 });
  });
});
