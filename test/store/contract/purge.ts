import { describe, expect, it } from 'vitest';
import { leafRanges } from '../../../src/core/index.js';
import { eraseSubject, placeHold, releaseHold, runRetention, setRetentionRule, type AppendRequest, type Ledger } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { buildSealed, editedHeader, image, rawRows, verifyAfresh, where, withLedger } from './fixtures.js';

/** A retention.purge record listing exactly `positions`, as the retention run writes one (under the rule `ruled` sets). */
function record(positions: number[], policy = 'retention:all:30d', stream = 'witness.retention', recorder = 'cli'): AppendRequest {
  return {
    stream,
    agent: { id: 'witness-governance' },
    recorder: { kind: recorder },
    kind: 'retention.purge',
    data: { policy, before: '2026-01-01T00:00:00.000Z', count: positions.length, leaves: leafRanges(positions) },
  } as AppendRequest;
}

/** Records the retention rule `record` names (every event, 30 days), which a purge must follow (docs/FORMAT.md 3.6). */
async function ruled(l: Ledger): Promise<void> {
  await setRetentionRule(l, { match: {}, olderThan: '30d' }, { actor: 'dpo@acme.example', recorder: { kind: 'cli' } });
}

/** Every stored row but the payload and salt, which the purge alone may change. */
async function headers(l: Ledger) {
  return (await rawRows(l)).map((r) => ({ ...image(r), data: null, salt: null }));
}

/**
 * The retention purge (Ledger.purgePayloads), the one change to stored events a ledger admits:
 * payload and salt nulled with the record in the same transaction, headers, hashes and positions
 * untouched, verify naming the purge; everything else still refused by the database itself.
 */
export function purgeContract(driver: DriverUnderTest): void {
  describe('retention purge', () => {
    it('[R-RETENTION] erases payload and salt of the listed events only, records the purge, and verify passes naming it', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await ruled(l);
        const before = await headers(l);
        const targets = [s.pos(s.a, 1), s.pos(s.a, 2), s.pos(s.c, 1)].sort((x, y) => x - y);
        const r = await l.purgePayloads({ positions: targets, record: record(targets) });
        expect(r).toMatchObject({ erased: 3, record: { pos: 12, stream: 'witness.retention' } });
        const rows = await rawRows(l);
        expect(rows.filter((x) => x.data === null).map((x) => x.pos)).toEqual(targets);
        expect(rows.filter((x) => x.salt === null).map((x) => x.pos)).toEqual(targets);
        // Headers, hashes, ids and positions exactly as they were; the record is appended after them.
        expect((await headers(l)).slice(0, 12)).toEqual(before);
        expect(rows).toHaveLength(13);
        const stored = await l.getEvent(r.record.id);
        expect(stored).toMatchObject({ kind: 'retention.purge', data: { count: 3, leaves: leafRanges(targets), policy: 'retention:all:30d' } });
        await l.seal();
        const v = await verifyAfresh(driver, l);
        expect(v.failures).toEqual([]);
        expect(v.ok).toBe(true);
        expect(v.purged).toEqual({ payloads: 3, stillPresent: 0, records: [{ leaf: 12, id: r.record.id, policy: 'retention:all:30d', count: 3 }] });
      });
    });

    it('[R-RETENTION] a purged session.end no longer gives its session a reason, and the session list still agrees with the events', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await ruled(l);
        expect((await l.listSessions({ session: s.a })).sessions[0]).toMatchObject({ ended: true, endReason: 'completed' });
        const end = s.pos(s.a, 4);
        await l.purgePayloads({ positions: [end], record: record([end]) });
        await l.seal();
        const [row] = (await l.listSessions({ session: s.a })).sessions;
        expect(row).toMatchObject({ ended: true, events: 5 });
        expect(row?.endReason).toBeUndefined();
        const v = await verifyAfresh(driver, l);
        expect(v.failures).toEqual([]);
        expect(v.purged?.payloads).toBe(1);
      });
    });

    it('[R-LEGAL-HOLD] [R-ERASURE] retention run, holds and erasure through the interface alone: held events kept, a subject erased once its hold is released', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        const who = { actor: 'dpo@acme.example' };
        await setRetentionRule(l, { match: { kind: 'note' }, olderThan: '30d' }, who);
        const { hold } = await placeHold(l, { scope: { session: s.c }, reason: 'litigation' }, who);
        await l.seal();
        const later = new Date(Date.now() + 365 * 86_400_000);
        const run = await runRetention(l, who, { now: later });
        // Notes: a1 (leaf 3), a3 (leaf 5) purged; c1 (leaf 9) held.
        expect(run).toMatchObject({ purged: 2, held: 1, heldBy: { [hold]: 1 } });
        const rows = await rawRows(l);
        expect(rows.filter((r) => r.data === null).map((r) => r.pos)).toEqual([s.pos(s.a, 2), s.pos(s.a, 3)]);
        await expect(eraseSubject(l, { subject: 'nobody', reason: ' ' }, who)).rejects.toMatchObject({ code: 'invalid_argument' });
        const [mine] = await l.append([{ stream: s.c, agent: { id: 'contract-bot' }, kind: 'note', subject: 'cust-9', data: { text: 'Ann called' } } as AppendRequest]);
        const refused = eraseSubject(l, { subject: 'cust-9', reason: 'DSR-1' }, who);
        await expect(refused).rejects.toMatchObject({ code: 'conflict' });
        await expect(refused).rejects.toThrow(new RegExp(`a legal hold covers 1 of its events \\(${hold} \\(1\\)\\)`));
        await releaseHold(l, hold, 'case closed', who);
        // Unsealed, so erasure seals first: the key vouched for the content before it goes.
        expect(await eraseSubject(l, { subject: 'cust-9', reason: 'DSR-1' }, who)).toMatchObject({ purged: 1, sealedFirst: true, policy: 'erasure:cust-9' });
        expect((await l.getEvent(mine!.id))?.data).toBeNull();
        await l.seal();
        const v = await verifyAfresh(driver, l);
        expect(v.failures).toEqual([]);
        expect(v.purged).toMatchObject({
          payloads: 3,
          records: [
            { policy: 'retention:kind=note:30d', count: 2 },
            { policy: 'erasure:cust-9', count: 1 },
          ],
        });
      });
    });

    it('[R-RETENTION] verifies the same in worker threads, with purged leaves across chunk seams', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await ruled(l);
        const targets = [s.pos(s.a, 1), s.pos(s.a, 2), s.pos(s.b, 2), s.pos(s.c, 1)].sort((x, y) => x - y);
        await l.purgePayloads({ positions: targets, record: record(targets) });
        await l.seal();
        const child = driver.childStore?.(l);
        const v = await verifyAfresh(driver, l, { threads: 2, chunkEvents: 4, ...(child === undefined ? {} : { url: child.url }) });
        expect(v.failures).toEqual([]);
        expect(v.purged?.payloads).toBe(4);
      });
    });

    it('[R-RETENTION] refuses, changing nothing: unsealed or governance events, positions out of order, a record that does not list them, a record that cannot be appended', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await ruled(l);
        const first = await l.purgePayloads({ positions: [s.pos(s.a, 1)], record: record([s.pos(s.a, 1)]) });
        await l.seal();
        const [unsealed] = await l.append([{ stream: s.c, agent: { id: 'contract-bot' }, kind: 'note', data: { text: 'fresh' } } as AppendRequest]);
        const rows = await rawRows(l);
        const attempts: Array<[string, () => Promise<unknown>, RegExp]> = [
          ['unsealed', () => l.purgePayloads({ positions: [unsealed!.pos], record: record([unsealed!.pos]) }), /not in a signed checkpoint/],
          ['governance', () => l.purgePayloads({ positions: [first.record.pos], record: record([first.record.pos]) }), /record of governance/],
          ['order', () => l.purgePayloads({ positions: [3, 2], record: record([3, 2]) }), /ascending/],
          ['unlisted', () => l.purgePayloads({ positions: [2, 3], record: record([2]) }), /list exactly/],
          ['no such event', () => l.purgePayloads({ positions: [9999], record: record([9999]) }), /hold no event/],
          // The record goes into a session that has ended: its append is refused, so nothing is erased.
          ['ended stream', () => l.purgePayloads({ positions: [s.pos(s.c, 1)], record: record([s.pos(s.c, 1)], 'p', s.a) }), /already ended/],
        ];
        for (const [what, run, message] of attempts) await expect(run(), what).rejects.toThrow(message);
        expect((await rawRows(l)).map(image)).toEqual(rows.map(image));
        expect((await verifyAfresh(driver, l)).failures).toEqual([]);
      });
    });

    it('[R-APPEND-ONLY] after a purge the database still refuses every other change, and its guard never lets a header change', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await ruled(l);
        await l.purgePayloads({ positions: [s.pos(s.a, 1)], record: record([s.pos(s.a, 1)]) });
        await l.seal();
        const rows = await rawRows(l);
        const at = s.pos(s.c, 1);
        const refused = [
          { kind: 'rewriteData', pos: at, data: null },
          { kind: 'rewriteSalt', pos: at, salt: null },
          { kind: 'rewriteData', pos: at, data: '{"text":"forged"}' },
          { kind: 'rewriteHeader', pos: at, header: rows[0]!.header },
          { kind: 'deleteEvent', pos: at },
          // Through the guard's own authorisation: erasing while changing the header is refused.
          { kind: 'guardedPurge', pos: at, header: editedHeader(rows[at]!.header, (h) => void (h['resource'] = 'forged')) },
          { kind: 'guardedPurge', pos: s.pos(s.a, 1), header: editedHeader(rows[s.pos(s.a, 1)]!.header, (h) => void (h['action'] = 'forged')) },
        ] as const;
        for (const op of refused) await expect(driver.edit(l, op, { bypass: false }), JSON.stringify(op).slice(0, 60)).rejects.toBeDefined();
        expect((await rawRows(l)).map(image)).toEqual(rows.map(image));
        expect((await verifyAfresh(driver, l)).failures).toEqual([]);
      });
    });

    it('[R-RETENTION] catches a payload erased without a record as uncovered_purge, through the guard or past it, while the recorded purge still passes', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await ruled(l);
        const listed = s.pos(s.a, 1);
        await l.purgePayloads({ positions: [listed], record: record([listed]) });
        await l.seal();
        // Past the guard (triggers lifted), and through it with its authorisation but no record.
        await driver.edit(l, { kind: 'rewriteData', pos: s.pos(s.b, 2), data: null });
        await driver.edit(l, { kind: 'rewriteSalt', pos: s.pos(s.b, 2), salt: null });
        await driver.edit(l, { kind: 'guardedPurge', pos: s.pos(s.c, 1) }, { bypass: false });
        const v = await verifyAfresh(driver, l);
        expect(where(v)).toEqual([
          { code: 'uncovered_purge', stream: s.b, seq: 2, leaf: s.pos(s.b, 2) },
          { code: 'uncovered_purge', stream: s.c, seq: 1, leaf: s.pos(s.c, 1) },
        ]);
        expect(v.purged?.payloads).toBe(1);
      });
    });

    it('[R-RETENTION] [R-LEGAL-HOLD] a purge the driver admits but the purge rules refuse fails verify as unauthorised_purge, naming the rule', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await ruled(l);
        await placeHold(l, { scope: { session: s.c }, reason: 'litigation' }, { actor: 'counsel@acme.example', recorder: { kind: 'cli' } });
        const [made, sdk, held] = [s.pos(s.a, 1), s.pos(s.a, 2), s.pos(s.c, 1)];
        const a = await l.purgePayloads({ positions: [made], record: record([made], 'gdpr-cleanup') });
        const b = await l.purgePayloads({ positions: [sdk], record: record([sdk], undefined, undefined, 'sdk') });
        const c = await l.purgePayloads({ positions: [held], record: record([held]) });
        await l.seal();
        const v = await verifyAfresh(driver, l);
        expect(where(v)).toEqual([
          { code: 'unauthorised_purge', stream: s.a, seq: 1, leaf: made },
          { code: 'unauthorised_purge', stream: s.a, seq: 2, leaf: sdk },
          { code: 'unauthorised_purge', stream: s.c, seq: 1, leaf: held },
        ]);
        expect(v.failures.map((f) => f.reason)).toEqual([
          `The payload was erased under the retention.purge event at leaf ${a.record.pos} (policy gdpr-cleanup), which may not erase it: policy gdpr-cleanup is neither erasure:<subject> nor a retention rule's label.`,
          `The payload was erased under the retention.purge event at leaf ${b.record.pos} (policy retention:all:30d), which may not erase it: the record was written by recorder sdk, not the CLI or the server.`,
          expect.stringMatching(
            new RegExp(
              `^The payload was erased under the retention\\.purge event at leaf ${c.record.pos} \\(policy retention:all:30d\\), which may not erase it: leaf ${held} was under legal hold hold-\\S+ \\(placed at leaf \\d+\\), in force at the record\\.$`,
            ),
          ),
        ]);
        expect(v.purged?.payloads).toBe(0);
      });
    });

    it('[R-RETENTION] a listed payload put back (it still matches its digest) passes with a warning that the purge did not hold', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        const at = s.pos(s.a, 2);
        const original = (await rawRows(l))[at]!;
        await l.purgePayloads({ positions: [at], record: record([at]) });
        await l.seal();
        await driver.edit(l, { kind: 'rewriteData', pos: at, data: original.data });
        await driver.edit(l, { kind: 'rewriteSalt', pos: at, salt: Buffer.from(original.salt!) });
        const v = await verifyAfresh(driver, l);
        expect(v.failures).toEqual([]);
        expect(v.purged).toMatchObject({ payloads: 0, stillPresent: 1 });
        expect(v.warnings.join('\n')).toMatch(/1 event\(s\) listed by a retention\.purge event still hold their payload/);
      });
    });

    it('[R-RETENTION] a purge record edited to list another leaf fails its digest and covers nothing', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        const at = s.pos(s.a, 1);
        const r = await l.purgePayloads({ positions: [at], record: record([at]) });
        await l.seal();
        const row = (await rawRows(l))[r.record.pos]!;
        await driver.edit(l, { kind: 'rewriteData', pos: r.record.pos, data: row.data!.replace(`[[${at},${at}]]`, `[[${at},${at + 1}]]`) });
        const v = await verifyAfresh(driver, l);
        expect(where(v)).toEqual([
          { code: 'uncovered_purge', stream: s.a, seq: 1, leaf: at },
          { code: 'payload_mismatch', stream: 'witness.retention', seq: 0, leaf: r.record.pos },
        ]);
      });
    });
  });
}
