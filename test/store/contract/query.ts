import { describe, expect, it } from 'vitest';
import type { AppendRequest, KindScanRequest, KindScanRow, Ledger, QueryFilter } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { rawRows, withLedger } from './fixtures.js';

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

/** Every page of a scanKind, each continuing after the last row of the one before; checks order and page sizes. */
async function allKindPages(l: Ledger, request: KindScanRequest, between?: () => Promise<void>): Promise<KindScanRow[]> {
  const out: KindScanRow[] = [];
  let after: KindScanRequest['after'];
  for (let pages = 0; pages < 1000; pages++) {
    const rows = await l.scanKind({ ...request, ...(after === undefined ? {} : { after }) });
    expect(rows.length).toBeLessThanOrEqual(request.limit ?? 5000);
    for (const r of rows) {
      const last = out[out.length - 1];
      if (last !== undefined) expect(r.ts > last.ts || (r.ts === last.ts && r.pos > last.pos), `${r.ts}#${r.pos} after ${last.ts}#${last.pos}`).toBe(true);
      out.push(r);
    }
    if (rows.length < (request.limit ?? 5000)) return out;
    after = { ts: rows[rows.length - 1]!.ts, pos: rows[rows.length - 1]!.pos };
    if (between !== undefined) await between();
  }
  throw new Error('scanKind never ended');
}

/** What query finds for the same kind, agent and window, as the lean rows scanKind should give. */
async function queryAsRows(l: Ledger, filter: QueryFilter, header: 'always' | 'purged'): Promise<KindScanRow[]> {
  const out: KindScanRow[] = [];
  let cursor: string | undefined;
  do {
    const page = await l.query({ ...filter, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) {
      const { data, salt: _salt, hash: _hash, pos, ...head } = e;
      out.push({ pos, id: e.id, ts: e.ts, agent: e.agent.id, data: data === null ? null : JSON.stringify(data), header: header === 'always' || data === null ? JSON.stringify(head) : null });
    }
    cursor = page.next;
  } while (cursor !== undefined);
  return out;
}

/** Rows with their texts parsed, so key order cannot matter (scanKind's texts are the stored JCS; queryAsRows re-serialises). */
function parsedRows(rows: KindScanRow[]): unknown[] {
  return rows.map((r) => ({ ...r, header: r.header === null ? null : (JSON.parse(r.header) as unknown), data: r.data === null ? null : (JSON.parse(r.data) as unknown) }));
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

  describe('scanKind: one kind, lean, in pages', () => {
    it('[R-POLICY-BACKTEST] finds exactly the events query finds for a kind, an agent and a window, paged after the last row, across the sealed and unsealed events', async () => {
      await withLedger(driver, async (l, also) => {
        const all = corpus();
        await l.append(all.slice(0, 25));
        await l.seal();
        // Some events after the seal, so a driver with a query index filled on sealing reads its tail too.
        await l.append(all.slice(25));
        const reader = also(await driver.openAgain(l, driver.readonly ? { readonly: true } : {}));
        for (const handle of [l, reader]) {
          for (const request of [
            { kind: 'tool.call' },
            { kind: 'note' },
            { kind: 'tool.call', agent: 'odd' },
            { kind: 'tool.call', since: minute(10), until: minute(40) },
            { kind: 'note', agent: 'even', since: minute(20) },
            { kind: 'nothing' },
          ] satisfies KindScanRequest[]) {
            const want = parsedRows(await queryAsRows(handle, request, 'purged'));
            for (const limit of [1, 4, 7, 5000]) expect(parsedRows(await allKindPages(handle, { ...request, limit })), `${JSON.stringify(request)} by ${limit}`).toEqual(want);
            expect(parsedRows(await allKindPages(handle, { ...request, limit: 6, header: 'always' })), `${JSON.stringify(request)} with headers`).toEqual(
              parsedRows(await queryAsRows(handle, request, 'always')),
            );
          }
        }
        // The header text is the stored one, byte for byte (what verify hashes).
        const raw = new Map((await rawRows(l)).map((r) => [r.id, r.header]));
        for (const r of await allKindPages(l, { kind: 'tool.call', header: 'always' })) expect(r.header).toBe(raw.get(r.id));
      });
    });

    it('carries the header of an event whose payload is gone even when headers were not asked for, and pages on while appends continue', async () => {
      await withLedger(driver, async (l, also) => {
        const receipts = await l.append(corpus().slice(0, 30));
        await l.seal();
        const gone = receipts.find((r, i) => i % 4 !== 0)!;
        await driver.edit(l, { kind: 'guardedPurge', pos: gone.pos });
        const rows = await allKindPages(l, { kind: 'tool.call', limit: 5 });
        const purged = rows.find((r) => r.id === gone.id)!;
        expect(purged.data).toBeNull();
        expect(JSON.parse(purged.header!)).toMatchObject({ id: gone.id, kind: 'tool.call' });
        expect(rows.filter((r) => r.header !== null).map((r) => r.id)).toEqual([gone.id]);
        const other = also(await driver.openAgain(l));
        let next = 30;
        const seen = await allKindPages(l, { kind: 'tool.call', agent: 'even', limit: 1 }, async () => {
          if (next < 60) {
            await other.append(corpus().slice(next, next + 6));
            next += 6;
          }
        });
        expect(next).toBe(60);
        expect(seen.map((r) => new Date(r.ts).getUTCMinutes())).toEqual(expected((i) => i % 2 === 0 && isCall(i)));
      });
    });
  });
}
