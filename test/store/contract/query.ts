import { describe, expect, it } from 'vitest';
import type { AppendRequest, Ledger, QueryFilter } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { withLedger } from './fixtures.js';

const minute = (i: number) => new Date(Date.UTC(2026, 10, 1, 0, i)).toISOString();

/**
 * 60 tool calls over one hour, one a minute, across three streams and two agents; every filter
 * value picks a different, known subset.
 */
function corpus(): AppendRequest[] {
  const batch: AppendRequest[] = [];
  for (let i = 0; i < 60; i++) {
    batch.push({
      stream: `q${i % 3}`,
      agent: { id: i % 2 === 0 ? 'even' : 'odd' },
      kind: i % 4 === 0 ? 'note' : 'tool.call',
      ...(i % 4 === 0 ? {} : { resource: i % 5 === 0 ? 'billing' : 'crm', action: i % 6 === 0 ? 'refund' : 'lookup', outcome: i % 7 === 0 ? 'denied' : 'success' }),
      ts: minute(i),
      data: i % 4 === 0 ? { text: `note ${i}` } : { tool: 'crm.lookup', arguments: { i } },
    } as AppendRequest);
  }
  return batch;
}

/** Which of the corpus's 60 indices an oracle filter keeps. */
function expected(pred: (i: number) => boolean): number[] {
  return [...Array(60).keys()].filter(pred);
}

const isCall = (i: number) => i % 4 !== 0;

/** All pages of a query, as corpus indices (the minute of ts), checking that no event comes twice. */
async function allPages(l: Ledger, filter: QueryFilter, between?: () => Promise<void>): Promise<number[]> {
  const seen: number[] = [];
  const ids = new Set<string>();
  let cursor: string | undefined;
  let pages = 0;
  let last: { ts: string; pos: number } | undefined;
  do {
    const page = await l.query({ ...filter, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) {
      expect(ids.has(e.id), `event ${e.id} came twice`).toBe(false);
      ids.add(e.id);
      // Pages come in time order (position order among equal times), across page boundaries too.
      if (last !== undefined) expect(e.ts > last.ts || (e.ts === last.ts && e.pos > last.pos), `${e.ts}#${e.pos} after ${last.ts}#${last.pos}`).toBe(true);
      last = { ts: e.ts, pos: e.pos };
      seen.push(new Date(e.ts).getUTCMinutes());
    }
    if (filter.limit !== undefined) expect(page.events.length).toBeLessThanOrEqual(filter.limit);
    cursor = page.next;
    pages++;
    if (between !== undefined && cursor !== undefined) await between();
  } while (cursor !== undefined && pages < 1000);
  return seen;
}

export function queryContract(driver: DriverUnderTest): void {
  describe('query filters and paging', () => {
    const window = { since: minute(10), until: minute(40) };
    const inWindow = (i: number) => i >= 10 && i < 40;
    const cases: Array<[string, QueryFilter, (i: number) => boolean]> = [
      ['agent', { agent: 'even' }, (i) => i % 2 === 0],
      ['stream', { stream: 'q1' }, (i) => i % 3 === 1],
      ['kind', { kind: 'note' }, (i) => i % 4 === 0],
      ['resource', { resource: 'billing' }, (i) => isCall(i) && i % 5 === 0],
      ['action', { action: 'refund' }, (i) => isCall(i) && i % 6 === 0],
      ['outcome', { outcome: 'denied' }, (i) => isCall(i) && i % 7 === 0],
    ];

    it('[R-WHAT-WHEN-RESULT] answers each filter alone, and each with a time window (since inclusive, until exclusive), exactly', async () => {
      await withLedger(driver, async (l) => {
        await l.append(corpus());
        for (const [name, filter, pred] of cases) {
          expect(await allPages(l, { ...filter, limit: 1000 }), name).toEqual(expected(pred));
          expect(await allPages(l, { ...filter, ...window, limit: 1000 }), `${name} + window`).toEqual(expected((i) => pred(i) && inWindow(i)));
        }
        expect(await allPages(l, { ...window, limit: 1000 })).toEqual(expected(inWindow));
        expect(await allPages(l, { since: minute(59), limit: 1000 })).toEqual([59]);
        expect(await allPages(l, { until: minute(1), limit: 1000 })).toEqual([0]);
        expect(await allPages(l, { agent: 'even', kind: 'tool.call', outcome: 'success', ...window, limit: 1000 })).toEqual(expected((i) => i % 2 === 0 && isCall(i) && i % 7 !== 0 && inWindow(i)));
        expect((await l.query({ agent: 'nobody', limit: 10 })).events).toEqual([]);
        expect((await l.query({ resource: 'billing', until: minute(0), limit: 10 })).events).toEqual([]);
      });
    });

    it('returns whole stored events with their positions, and says there is more only when there is', async () => {
      await withLedger(driver, async (l) => {
        const receipts = await l.append(corpus());
        const page = await l.query({ stream: 'q2', limit: 5 });
        expect(page.events).toHaveLength(5);
        expect(page.next).toBeDefined();
        for (const e of page.events) {
          const r = receipts.find((x) => x.id === e.id)!;
          expect(e).toMatchObject({ stream: 'q2', seq: r.seq, pos: r.pos, hash: r.hash });
          expect(e).toEqual(await l.getEvent(e.id));
        }
        const exact = await l.query({ stream: 'q2', limit: 20 });
        expect(exact.events).toHaveLength(20);
        expect(exact.next).toBeUndefined();
      });
    });

    it('pages every filter with a cursor, with or without a window, without duplicates or gaps', async () => {
      await withLedger(driver, async (l) => {
        await l.append(corpus());
        for (const [name, filter, pred] of cases) {
          expect(await allPages(l, { ...filter, limit: 4 }), name).toEqual(expected(pred));
          expect(await allPages(l, { ...filter, ...window, limit: 3 }), `${name} + window`).toEqual(expected((i) => pred(i) && inWindow(i)));
        }
        expect(await allPages(l, { limit: 7 })).toEqual(expected(() => true));
      });
    });

    it('answers every filter the same across the boundary between sealed and not yet sealed events, sealed by another handle or not', async () => {
      await withLedger(driver, async (l, also) => {
        const all = corpus();
        await l.append(all.slice(0, 25));
        const other = also(await driver.openAgain(l));
        // Sealed by the other handle: whatever the sealer builds for queries, this handle must see it.
        await other.seal();
        await l.append(all.slice(25, 45));
        await l.seal();
        await other.append(all.slice(45));
        for (const handle of [l, other]) {
          for (const [name, filter, pred] of cases) {
            expect(await allPages(handle, { ...filter, limit: 1000 }), name).toEqual(expected(pred));
            expect(await allPages(handle, { ...filter, since: minute(20), until: minute(50), limit: 2 }), `${name} + window across both`).toEqual(expected((i) => pred(i) && i >= 20 && i < 50));
          }
        }
        const reopened = also(await driver.openAgain(l));
        for (const [name, filter, pred] of cases) expect(await allPages(reopened, { ...filter, limit: 5 }), `${name} after reopen`).toEqual(expected(pred));
      });
    });

    it('pages without duplicates or gaps while appends continue between pages, and later events appear on later pages', async () => {
      await withLedger(driver, async (l, also) => {
        await l.append(corpus().slice(0, 30));
        const other = also(await driver.openAgain(l));
        let next = 30;
        const seen = await allPages(l, { agent: 'even', limit: 4 }, async () => {
          // Another writer keeps recording while the reader pages, always later in time.
          if (next < 60) {
            const more = corpus().slice(next, next + 6);
            next += 6;
            await other.append(more);
          }
        });
        expect(next).toBe(60);
        expect(seen).toEqual(expected((i) => i % 2 === 0));
      });
    });
  });
}
