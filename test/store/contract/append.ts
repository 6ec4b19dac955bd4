import { describe, expect, it } from 'vitest';
import { canonicalize, eventHash, genesisHash, payloadDigest, type StoredEvent } from '../../../src/core/index.js';
import type { AppendRequest } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { agent, event, note, rawRows, verifyAfresh, withLedger } from './fixtures.js';

/** The hash a stored event must have, recomputed from its fields alone (nothing stored is trusted). */
function recomputed(ev: StoredEvent & { pos: number }): { hash: string; digest: string } {
  const { data, salt, hash: _hash, pos: _pos, ...header } = ev;
  return {
    hash: eventHash(Buffer.from(ev.prev, 'hex'), canonicalize(header)).toString('hex'),
    digest: payloadDigest(Buffer.from(salt!, 'hex'), canonicalize(data)).toString('hex'),
  };
}

export function appendContract(driver: DriverUnderTest): void {
  describe('append and receipts', () => {
    it('assigns seq from 0 per stream, links prev to the previous hash (genesis first) and gives gapless global positions', async () => {
      await withLedger(driver, async (l) => {
        const r = await l.append([note('s1', 'a'), note('s2', 'b'), note('s1', 'c')]);
        expect(r.map((x) => [x.stream, x.seq, x.pos])).toEqual([
          ['s1', 0, 0],
          ['s2', 0, 1],
          ['s1', 1, 2],
        ]);
        const s1 = await l.readStream('s1');
        expect(s1[0]!.prev).toBe(genesisHash(l.info.origin, 's1').toString('hex'));
        expect(s1[1]!.prev).toBe(s1[0]!.hash);
        expect(l.info.size).toBe(3);
      });
    });

    it('returns receipts whose id, stream, seq, pos and hash are those of the stored event, and whose hash recomputes from the stored fields', async () => {
      await withLedger(driver, async (l) => {
        const batch: AppendRequest[] = [
          event('r1', 'session.start', {}),
          event('r1', 'tool.call', { tool: 'billing.refund', arguments: { amount: 50 } }, { resource: 'billing', action: 'refund', outcome: 'pending' }),
          note('r2', 'other stream'),
          note('r1', 'unicode é ✓ and "quotes"'),
        ];
        const receipts = await l.append(batch);
        expect(receipts).toHaveLength(4);
        const raw = await rawRows(l);
        for (const [i, r] of receipts.entries()) {
          const stored = (await l.getEvent(r.id))!;
          expect(stored, `event ${r.id}`).toBeDefined();
          expect({ id: stored.id, stream: stored.stream, seq: stored.seq, pos: stored.pos, hash: stored.hash }).toEqual(r);
          expect(stored.data).toEqual((batch[i] as { data: unknown }).data);
          expect(recomputed(stored)).toEqual({ hash: r.hash, digest: stored.payload_digest });
          // The raw row verify reads holds the same bytes.
          const row = raw.find((x) => x.pos === r.pos)!;
          expect({ id: row.id, stream: row.stream, seq: row.seq, hash: Buffer.from(row.hash).toString('hex') }).toEqual({ id: r.id, stream: r.stream, seq: r.seq, hash: r.hash });
        }
        expect(receipts.map((r) => r.pos)).toEqual([0, 1, 2, 3]);
        expect(raw.map((r) => r.pos)).toEqual([0, 1, 2, 3]);
      });
    });

    it('keeps each stream one chain across batches, handles and a reopen', async () => {
      await withLedger(driver, async (l, also) => {
        await l.append([note('chain', '1'), note('chain', '2')]);
        await l.append([note('other', 'x'), note('chain', '3')]);
        const second = also(await driver.openAgain(l));
        await second.append([note('chain', '4')]);
        await l.append([note('chain', '5')]);
        await second.close();
        const reopened = also(await driver.openAgain(l));
        const [last] = await reopened.append([note('chain', '6')]);
        expect(last).toMatchObject({ stream: 'chain', seq: 5, pos: 6 });
        expect(reopened.info.size).toBe(7);
        const chain = await reopened.readStream('chain');
        expect(chain.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4, 5]);
        expect(chain.map((e) => (e.data as { text: string }).text)).toEqual(['1', '2', '3', '4', '5', '6']);
        expect(chain[0]!.prev).toBe(genesisHash(l.info.origin, 'chain').toString('hex'));
        for (let i = 1; i < chain.length; i++) expect(chain[i]!.prev, `seq ${i}`).toBe(chain[i - 1]!.hash);
        const report = await verifyAfresh(driver, l);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 7, streams: 2 });
      });
    });

    it('appends a batch atomically: one invalid event and nothing of the batch is stored', async () => {
      await withLedger(driver, async (l) => {
        await expect(l.append([note('s', 'ok'), { stream: 's', agent, kind: 'note', data: {} } as AppendRequest])).rejects.toMatchObject({ code: 'invalid_event' });
        expect(await l.readStream('s')).toEqual([]);
        expect(l.info.size).toBe(0);
        const [r] = await l.append([note('s', 'after the refusal')]);
        expect(r).toMatchObject({ seq: 0, pos: 0 });
      });
    });

    it('refuses an event id that is already stored, and keeps nothing of that batch', async () => {
      await withLedger(driver, async (l) => {
        const [first] = await l.append([note('d', 'first')]);
        await expect(l.append([note('d', 'innocent'), note('d', 'dup', { id: first!.id })])).rejects.toMatchObject({ code: 'invalid_event' });
        expect((await l.readStream('d')).map((e) => e.seq)).toEqual([0]);
        expect(l.info.size).toBe(1);
      });
    });

    it('prepares without touching storage, and appends what it prepared as one batch', async () => {
      await withLedger(driver, async (l) => {
        const prepared = l.prepare([note('p', 'one'), note('q', 'two'), note('p', 'three')]);
        expect(prepared).toHaveLength(3);
        expect(l.info.size).toBe(0);
        expect(await l.readStream('p')).toEqual([]);
        expect(() => l.prepare([{ stream: 'p', agent, kind: 'note', data: {} } as AppendRequest])).toThrow(expect.objectContaining({ code: 'invalid_event' }));
        const receipts = await l.appendPrepared(prepared);
        expect(receipts.map((r) => [r.stream, r.seq, r.pos])).toEqual([
          ['p', 0, 0],
          ['q', 0, 1],
          ['p', 1, 2],
        ]);
        expect(await l.appendPrepared([])).toEqual([]);
        expect(l.info.size).toBe(3);
      });
    });
    it('scans raw rows in position order, in pages no larger than asked, from any position', async () => {
      await withLedger(driver, async (l) => {
        const receipts = await l.append(Array.from({ length: 11 }, (_, i) => note(`scan${i % 2}`, `${i}`)));
        const pages: number[][] = [];
        for await (const page of l.scan(4, 3)) pages.push(page.map((r) => r.pos));
        expect(pages.every((p) => p.length > 0 && p.length <= 3)).toBe(true);
        expect(pages.flat()).toEqual([4, 5, 6, 7, 8, 9, 10]);
        const all = await rawRows(l);
        expect(all.map((r) => [r.id, r.stream, r.seq, Buffer.from(r.hash).toString('hex')])).toEqual(receipts.map((r) => [r.id, r.stream, r.seq, r.hash]));
        for (const r of all) expect(r.salt === null ? null : Buffer.from(r.salt).length).toBe(32);
        const beyond: unknown[] = [];
        for await (const page of l.scan(11)) beyond.push(...page);
        expect(beyond).toEqual([]);
      });
    });

    it('answers undefined for an unknown event id and an empty list for an unknown stream, without storing anything', async () => {
      await withLedger(driver, async (l) => {
        await l.append([note('known', 'x')]);
        expect(await l.getEvent('01900000-0000-7000-8000-000000000000')).toBeUndefined();
        expect(await l.readStream('unknown')).toEqual([]);
        expect(l.info.size).toBe(1);
      });
    });

    it('refuses every call after close with closed, and a second close is harmless', async () => {
      const l = await driver.open();
      await l.append([note('c', 'before close')]);
      await l.close();
      await l.close();
      for (const call of [() => l.append([note('c', 'after')]), () => l.readStream('c'), () => l.query({}), () => l.seal({ force: true }), () => l.checkpoints()]) {
        await expect(call()).rejects.toMatchObject({ code: 'closed' });
      }
    });
  });

  describe('session end lockout', () => {
    it('[R-SESSION-END] fills session.end with the event count and last hash of its stream, whatever the caller put there', async () => {
      await withLedger(driver, async (l) => {
        await l.append([event('e', 'session.start', {}), note('e', 'work')]);
        const [end] = await l.append([event('e', 'session.end', { reason: 'completed', event_count: 99, last_hash: 'f'.repeat(64) })]);
        const stream = await l.readStream('e');
        expect(stream).toHaveLength(3);
        expect(stream[2]).toMatchObject({ id: end!.id, kind: 'session.end', seq: 2 });
        expect(stream[2]!.data).toMatchObject({ reason: 'completed', event_count: 2, last_hash: stream[1]!.hash });
        expect(recomputed(stream[2]!).digest).toBe(stream[2]!.payload_digest);
        expect((await verifyAfresh(driver, l)).failures).toEqual([]);
      });
    });

    it('refuses with invalid_event an event after session.end in the same batch, a later batch, another handle and after a reopen', async () => {
      await withLedger(driver, async (l, also) => {
        // A second handle that has already seen the stream's head before it ended.
        const other = also(await driver.openAgain(l));
        await other.append([event('x', 'session.start', {})]);
        await expect(l.append([note('x', 'before'), event('x', 'session.end', { reason: 'completed' }), note('x', 'after, same batch')])).rejects.toMatchObject({ code: 'invalid_event' });
        expect(await l.readStream('x')).toHaveLength(1);
        await l.append([event('x', 'session.end', { reason: 'completed' })]);
        await expect(l.append([note('x', 'later batch')])).rejects.toMatchObject({ code: 'invalid_event' });
        await expect(l.append([note('y', 'innocent'), note('x', 'with a batch-mate')])).rejects.toMatchObject({ code: 'invalid_event' });
        await expect(other.append([note('x', 'from the other handle')])).rejects.toMatchObject({ code: 'invalid_event' });
        await expect(l.append([event('x', 'session.end', { reason: 'completed' })])).rejects.toMatchObject({ code: 'invalid_event' });
        const reopened = also(await driver.openAgain(l));
        await expect(reopened.append([note('x', 'after a reopen')])).rejects.toMatchObject({ code: 'invalid_event' });
        expect((await reopened.readStream('x')).map((e) => e.kind)).toEqual(['session.start', 'session.end']);
        expect(await reopened.readStream('y')).toEqual([]);
        const report = await verifyAfresh(driver, l);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 2, openSessions: 0 });
      });
    });
  });
}
