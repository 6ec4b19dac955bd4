import { describe, expect, it } from 'vitest';
import { OrderedQueue } from '../../src/gateway/ordered-queue.js';

describe('OrderedQueue', () => {
  it('runs tasks in the order they were pushed, each after the previous one settled, async ones included', async () => {
    const errors: unknown[] = [];
    const q = new OrderedQueue((e) => errors.push(e));
    const seen: string[] = [];
    q.push(async () => {
      await new Promise((r) => setTimeout(r, 20));
      seen.push('slow');
    });
    q.push(() => {
      seen.push('sync');
    });
    q.push(async () => {
      seen.push('fast');
    });
    expect(q.busy).toBe(true);
    await q.drained();
    expect(seen).toEqual(['slow', 'sync', 'fast']);
    expect(q.busy).toBe(false);
    expect(errors).toEqual([]);
  });

  it('reports a task that throws or rejects and still runs the tasks behind it', async () => {
    const errors: string[] = [];
    const q = new OrderedQueue((e) => errors.push(String(e)));
    const seen: number[] = [];
    q.push(() => {
      throw new Error('one');
    });
    q.push(async () => {
      await Promise.resolve();
      throw new Error('two');
    });
    q.push(() => {
      seen.push(3);
    });
    await q.drained();
    expect(errors).toEqual(['Error: one', 'Error: two']);
    expect(seen).toEqual([3]);
  });

  it('keeps the order even when the error handler itself throws', async () => {
    const q = new OrderedQueue(() => {
      throw new Error('handler');
    });
    const seen: number[] = [];
    q.push(() => {
      throw new Error('task');
    });
    q.push(() => {
      seen.push(2);
    });
    await q.drained();
    expect(seen).toEqual([2]);
  });
});
