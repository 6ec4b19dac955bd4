import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openWitness, type Witness } from '../../src/index.js';
import type { PreparedEvent } from '../../src/core/index.js';
import type { AppendReceipt } from '../../src/store/index.js';
import { driverOf } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-writer-batching-');
const agent = { id: 'batching-bot' };

/** Counts the transactions the recorder hands its (real) driver; each call is one commit. */
function countCommits(w: Witness): { sizes: number[] } {
  const driver = driverOf(w);
  const append = driver.appendPrepared.bind(driver);
  const seen = { sizes: [] as number[] };
  driver.appendPrepared = (events: readonly PreparedEvent[]): Promise<AppendReceipt[]> => {
    seen.sizes.push(events.length);
    return append(events);
  };
  return seen;
}

/** Events of `stream` as another connection sees them: what is committed, not what is cached. */
function committedIds(file: string, stream: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT id FROM events WHERE stream = ? ORDER BY seq').all(stream) as Array<{ id: string }>).map((r) => r.id);
  } finally {
    db.close();
  }
}

/** Busy-waits `ms`, so a callback takes real time on the event loop. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('the batching writer', () => {
  it('commits records made in one synchronous run without awaiting in a few transactions, each promise resolving with its receipt in call order', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, seal: { enabled: false } });
    try {
      const s = await w.session({ agent });
      const commits = countCommits(w);
      const pending = Array.from({ length: 2500 }, (_, i) => s.note(`burst ${i}`));
      const receipts = await Promise.all(pending);
      expect(commits.sizes).toEqual([1000, 1000, 500]);
      expect(receipts.map((r) => r?.seq)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
      expect(committedIds(file, s.id).slice(1)).toEqual(receipts.map((r) => r!.id));
    } finally {
      await w.close();
    }
  });

  it('commits an awaited record that finds the writer idle before the event loop turns, and it is durable when the promise resolves', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, durability: 'process', seal: { enabled: false } });
    try {
      const s = await w.session({ agent });
      const commits = countCommits(w);
      for (let i = 0; i < 3; i++) {
        // Idle: whatever ran before (opening, the last record) is over, and a new turn has begun.
        await new Promise((r) => setImmediate(r));
        let turned = false;
        setImmediate(() => (turned = true));
        const r = await s.note(`awaited ${i}`);
        expect(turned).toBe(false);
        expect(committedIds(file, s.id)).toContain(r!.id);
      }
      expect(commits.sizes).toEqual([1, 1, 1]);
    } finally {
      await w.close();
    }
  });

  it('still shares transactions among records from separate callbacks of one turn once the quick half-millisecond is spent', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, durability: 'process', seal: { enabled: false } });
    try {
      const s = await w.session({ agent });
      // Leave the turn in which the session started, so the next one begins with a fresh window.
      await new Promise((r) => setImmediate(r));
      const commits = countCommits(w);
      const pending: Array<Promise<AppendReceipt | undefined>> = [];
      await new Promise<void>((done) => {
        // Forty callbacks in one check phase, each 0.1 ms long: at most the first few fit the
        // window and commit alone; the rest wait for the turn to end and share one transaction.
        for (let i = 0; i < 40; i++) {
          setImmediate(() => {
            spin(0.1);
            pending.push(s.note(`callback ${i}`));
            if (i === 39) done();
          });
        }
      });
      const receipts = await Promise.all(pending);
      expect(commits.sizes.reduce((a, b) => a + b, 0)).toBe(40);
      expect(commits.sizes.length).toBeLessThanOrEqual(10);
      expect(Math.max(...commits.sizes)).toBeGreaterThanOrEqual(30);
      expect(receipts.map((r) => r?.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    } finally {
      await w.close();
    }
  });

  it('at durability power lets every record wait for the turn to end, so records from separate callbacks share one fsync', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, durability: 'power', seal: { enabled: false } });
    try {
      const s = await w.session({ agent });
      await new Promise((r) => setImmediate(r));
      const commits = countCommits(w);
      const pending: Array<Promise<AppendReceipt | undefined>> = [];
      await new Promise<void>((done) => {
        for (let i = 0; i < 20; i++) {
          setImmediate(() => {
            pending.push(s.note(`callback ${i}`));
            if (i === 19) done();
          });
        }
      });
      await Promise.all(pending);
      expect(commits.sizes).toEqual([20]);
    } finally {
      await w.close();
    }
  });

  it('commits on close every record still queued, quick or not, in call order', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, seal: { enabled: false } });
    const s = await w.session({ agent });
    const receipts: Array<AppendReceipt | undefined> = [];
    for (let i = 0; i < 30; i++) void s.note(`left ${i}`).then((r) => receipts.push(r));
    await w.close();
    const ids = committedIds(file, s.id);
    expect(ids).toHaveLength(31);
    expect(receipts.map((r) => r?.id)).toEqual(ids.slice(1));
  });
});
