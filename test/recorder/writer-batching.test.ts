import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openWitness, type Witness } from '../../src/index.js';
import type { PreparedEvent, WitnessError } from '../../src/core/index.js';
import { BatchWriter } from '../../src/recorder/writer.js';
import { openLedger, type AppendReceipt } from '../../src/store/index.js';
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

const STREAM = 'writer-batching-stream';

/** A BatchWriter over a real ledger, counting its commits; `quickForMs` as the writer takes it. */
async function writerOn(file: string, quickForMs: number): Promise<{ writer: BatchWriter; commits: { sizes: number[] }; prepare: (text: string) => PreparedEvent; close: () => Promise<void> }> {
  const ledger = await openLedger(`sqlite:${file}`);
  const commits = { sizes: [] as number[] };
  const errors: WitnessError[] = [];
  const writer = new BatchWriter(
    {
      appendPrepared: (events) => {
        commits.sizes.push(events.length);
        return ledger.appendPrepared(events);
      },
    },
    { quickForMs, onError: (e) => errors.push(e) },
  );
  return {
    writer,
    commits,
    prepare: (text) => ledger.prepare([{ stream: STREAM, agent, kind: 'note', data: { text } }])[0]!,
    close: async () => {
      await writer.drain();
      await ledger.close();
      expect(errors).toEqual([]);
    },
  };
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

  it('commits an awaited write that finds it idle before the event loop turns when quick commits are on, and it is durable when the promise resolves', async () => {
    const file = tempDb(dir);
    const { writer, commits, prepare, close } = await writerOn(file, 0.5);
    try {
      for (let i = 0; i < 3; i++) {
        // Idle: whatever ran before (opening, the last write) is over, and a new turn has begun.
        await new Promise((r) => setImmediate(r));
        let turned = false;
        setImmediate(() => (turned = true));
        const r = await writer.write(prepare(`awaited ${i}`));
        expect(turned).toBe(false);
        expect(committedIds(file, STREAM)).toContain(r!.id);
      }
      expect(commits.sizes).toEqual([1, 1, 1]);
    } finally {
      await close();
    }
  });

  it('with quick commits on, still shares transactions among writes from separate callbacks of one turn once the quick half-millisecond is spent', async () => {
    const file = tempDb(dir);
    const { writer, commits, prepare, close } = await writerOn(file, 0.5);
    try {
      await new Promise((r) => setImmediate(r));
      const pending: Array<Promise<AppendReceipt | undefined>> = [];
      await new Promise<void>((done) => {
        // Forty callbacks in one check phase, each 0.1 ms long: at most the first few fit the
        // window and commit alone; the rest wait for the turn to end and share one transaction.
        for (let i = 0; i < 40; i++) {
          setImmediate(() => {
            spin(0.1);
            pending.push(writer.write(prepare(`callback ${i}`)));
            if (i === 39) done();
          });
        }
      });
      const receipts = await Promise.all(pending);
      expect(commits.sizes.reduce((a, b) => a + b, 0)).toBe(40);
      expect(commits.sizes.length).toBeLessThanOrEqual(10);
      expect(Math.max(...commits.sizes)).toBeGreaterThanOrEqual(30);
      expect(receipts.map((r) => r?.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    } finally {
      await close();
    }
  });

  for (const durability of ['process', 'power'] as const) {
    it(`lets every record of the recorder at durability ${durability} wait for the turn to end, so records from separate callbacks share one transaction`, async () => {
      const file = tempDb(dir);
      const w = await openWitness({ store: `sqlite:${file}`, durability, seal: { enabled: false } });
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
  }

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
