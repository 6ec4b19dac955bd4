import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { note, withLedger } from './fixtures.js';

/** Every page of `stream` from `fromSeq`, calling `between` after each page, as (seq, id) pairs. */
async function allPages(l: Ledger, stream: string, limit: number, between: (page: number) => Promise<void> = async () => {}): Promise<{ seqs: number[]; ids: string[]; sizes: number[] }> {
  const seqs: number[] = [];
  const ids: string[] = [];
  const sizes: number[] = [];
  let fromSeq: number | undefined = 0;
  for (let n = 0; fromSeq !== undefined; n++) {
    if (n > 1000) throw new Error('readStreamPage never ended');
    const page = await l.readStreamPage(stream, { fromSeq, limit });
    sizes.push(page.events.length);
    for (const e of page.events) {
      seqs.push(e.seq);
      ids.push(e.id);
    }
    fromSeq = page.nextSeq;
    await between(n);
  }
  return { seqs, ids, sizes };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** readStreamPage: one stream in seq order, a page at a time, served by the (stream, seq) index. */
export function streamPageContract(driver: DriverUnderTest): void {
  describe('[R-WHAT-WHEN-RESULT] readStreamPage', () => {
    it('reads a stream completely in seq order, pages of the limit and a last page without nextSeq, other streams left out', async () => {
      await withLedger(driver, async (l) => {
        const batch = range(25).flatMap((i) => [note('paged', `n${i}`), note('other', `o${i}`)]);
        await l.append(batch);
        const { seqs, ids, sizes } = await allPages(l, 'paged', 10);
        expect(sizes).toEqual([10, 10, 5]);
        expect(seqs).toEqual(range(25));
        expect(new Set(ids).size).toBe(25);
        expect(ids).toEqual((await l.readStream('paged')).map((e) => e.id));
        const one = await l.readStreamPage('paged', { fromSeq: 24, limit: 1 });
        expect(one.events.map((e) => e.seq)).toEqual([24]);
        expect(one.nextSeq).toBeUndefined();
      });
    });

    it('is in seq order, the chain order, even where recorded timestamps run backwards', async () => {
      await withLedger(driver, async (l) => {
        const ts = (m: number) => new Date(Date.UTC(2026, 10, 1, 12, m)).toISOString();
        await l.append(range(6).map((i) => note('clock', `n${i}`, { ts: ts(59 - i * 10) })));
        const page = await l.readStreamPage('clock', { limit: 4 });
        expect(page.events.map((e) => e.seq)).toEqual([0, 1, 2, 3]);
        expect(page.events.map((e) => e.data?.['text'])).toEqual(['n0', 'n1', 'n2', 'n3']);
        expect(page.nextSeq).toBe(4);
        expect((await l.readStreamPage('clock', { fromSeq: 4, limit: 4 })).events.map((e) => e.seq)).toEqual([4, 5]);
      });
    });

    it('pages read while the stream keeps growing are complete and repeat no event, the growth included', async () => {
      await withLedger(driver, async (l) => {
        await l.append(range(12).map((i) => note('growing', `n${i}`)));
        let added = 12;
        const { seqs, ids } = await allPages(l, 'growing', 5, async (page) => {
          // Appends between the reads of a page and the next, by another batch each time.
          if (page < 4) {
            await l.append(range(3).map((i) => note('growing', `late${page}.${i}`)));
            added += 3;
          }
        });
        expect(seqs).toEqual(range(added));
        expect(new Set(ids).size).toBe(added);
      });
    });

    it('reads on past a row missing from the stream (an edit verify reports), every remaining event once', async () => {
      await withLedger(driver, async (l) => {
        const receipts = await l.append(range(12).map((i) => note('holed', `n${i}`)));
        await driver.edit(l, { kind: 'deleteEvent', pos: receipts[6]!.pos });
        const { seqs } = await allPages(l, 'holed', 5);
        expect(seqs).toEqual(range(12).filter((i) => i !== 6));
      });
    });

    it('an unknown stream, and a fromSeq past the end, are an empty page without nextSeq; the default limit is 200', async () => {
      await withLedger(driver, async (l) => {
        expect(await l.readStreamPage('nothing-here')).toEqual({ events: [] });
        await l.append(range(201).map((i) => note('long', `n${i}`)));
        const first = await l.readStreamPage('long');
        expect(first.events).toHaveLength(200);
        expect(first.nextSeq).toBe(200);
        expect(await l.readStreamPage('long', { fromSeq: 201 })).toEqual({ events: [] });
        expect((await l.readStreamPage('long', { fromSeq: 10, limit: 10_000 })).events).toHaveLength(191);
      });
    });

    it('refuses a fromSeq or limit that is not an integer in range, and an empty stream name, as invalid_argument', async () => {
      await withLedger(driver, async (l) => {
        await l.append([note('s', 'one')]);
        const bad: Array<[string, { fromSeq?: number; limit?: number }]> = [
          ['s', { fromSeq: -1 }],
          ['s', { fromSeq: 1.5 }],
          ['s', { fromSeq: Number.NaN }],
          ['s', { fromSeq: 2 ** 53 }],
          ['s', { limit: 0 }],
          ['s', { limit: 10_001 }],
          ['s', { limit: 2.5 }],
          ['s', { limit: Number.POSITIVE_INFINITY }],
          ['', {}],
        ];
        for (const [stream, page] of bad) {
          await expect(l.readStreamPage(stream, page), JSON.stringify({ stream, page })).rejects.toMatchObject({ code: 'invalid_argument' });
        }
        await expect(l.readStreamPage('s', { fromSeq: '1' as unknown as number })).rejects.toMatchObject({ code: 'invalid_argument' });
      });
    });
  });
}
