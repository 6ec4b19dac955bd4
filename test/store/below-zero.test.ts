import { describe, expect, it } from 'vitest';
import { SqliteLedger, verifyLedger } from '../../src/store/index.js';
import { buildLedger, copyLedger, tamper } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-below-zero-');

/** Found by review: every verify scan started at position 0, while queries read any position. */
describe('an event stored below position 0', () => {
  for (const threads of [1, 2]) {
    it(`is reported by verify (threads: ${threads}) and served by no query, read by id or stream read [R-TAMPER-INDEX]`, async () => {
      const base = await buildLedger(dir);
      const l = copyLedger(base, dir);
      tamper(l.file, (db) => {
        // A fabricated approval in a real row's shape, never chained or sealed, with its index row.
        db.prepare(
          `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash)
           SELECT -1, '00000000-0000-7000-8000-000000000000', 'forged-session', 0, '2026-01-01T00:00:00.000Z', 'approval.decision', 'cfo-bot', 'billing', 'refund', 'success', header, data, salt, hash FROM events WHERE pos = 0`,
        ).run();
        db.prepare(
          `INSERT INTO event_index (pos, ts, agent, kind, resource, action, outcome) VALUES (-1, '2026-01-01T00:00:00.000Z', 'cfo-bot', 'approval.decision', 'billing', 'refund', 'success')`,
        ).run();
      });
      const ledger = SqliteLedger.open({ path: l.file, create: false, readonly: true });
      try {
        expect((await ledger.query({ agent: 'cfo-bot' })).events).toEqual([]);
        expect((await ledger.query({ kind: 'approval.decision', since: '2025-01-01T00:00:00.000Z' })).events.map((e) => e.pos)).not.toContain(-1);
        expect((await ledger.query({ stream: 'forged-session' })).events).toEqual([]);
        expect(await ledger.readStream('forged-session')).toEqual([]);
        expect(await ledger.getEvent('00000000-0000-7000-8000-000000000000')).toBeUndefined();
        const report = await verifyLedger(ledger, { trustedKeys: [l.vkey], threads, chunkEvents: 4 });
        expect(report.ok).toBe(false);
        expect(report.failures[0]).toMatchObject({ code: 'position_gap' });
      } finally {
        await ledger.close();
      }
    });
  }
});
