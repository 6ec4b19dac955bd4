import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { WitnessError, type PreparedEvent } from '../../src/core/index.js';
import { openWitness } from '../../src/index.js';
import { BatchWriter } from '../../src/recorder/writer.js';
import type { AppendReceipt } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-store-fault-');

/** A rule every insert into events now breaks, added by another connection: an error Witness has no case for. */
const BREAK_INSERTS = `
  CREATE TABLE fault_probe (x INTEGER CHECK (x > 0));
  CREATE TRIGGER fault_probe_on_insert AFTER INSERT ON events BEGIN INSERT INTO fault_probe VALUES (0); END;`;
const MEND_INSERTS = 'DROP TRIGGER IF EXISTS fault_probe_on_insert; DROP TABLE IF EXISTS fault_probe;';

function onOtherConnection(file: string, sql: string): void {
  const db = new Database(file);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

describe('an error the store does not expect', () => {
  it('[R-STORE-FAULT] reaches onError within a second as store_fault naming the SQLite error, instead of being retried as an outage for retryForMs', async () => {
    const file = tempDb(dir);
    const errors: WitnessError[] = [];
    const w = await openWitness({ store: `sqlite:${file}`, seal: { enabled: false }, onError: (e) => errors.push(e) });
    try {
      const s = await w.session({ agent: { id: 'fault-bot' } });
      onOtherConnection(file, BREAK_INSERTS);
      const started = Date.now();
      const outcome = await Promise.race([s.note('after the fault'), new Promise((r) => setTimeout(() => r('still retrying'), 3000))]);
      const tookMs = Date.now() - started;
      expect(outcome).toBeUndefined();
      expect(tookMs).toBeLessThan(1000);
      const fault = errors.find((e) => e.code === 'store_fault');
      expect(fault, errors.map((e) => `${e.code}: ${e.message}`).join('\n')).toBeDefined();
      expect(fault!.message).toContain('CHECK constraint failed');
      expect(fault!.message).toContain('SQLITE_CONSTRAINT_CHECK');
      expect(fault!.message).toMatch(/report it/);
      expect(fault!.details?.['lost']).toHaveLength(1);
    } finally {
      // Lets a writer that is still retrying (the behaviour this test refuses) finish, so close returns.
      onOtherConnection(file, MEND_INSERTS);
      await w.close();
    }
  });

  it('[R-STORE-FAULT] gives up at once on a sink that throws something other than a WitnessError (a bug), naming it, while a store outage is still retried', async () => {
    const errors: WitnessError[] = [];
    let calls = 0;
    const bug = new BatchWriter(
      {
        appendPrepared(): AppendReceipt[] {
          calls++;
          throw new TypeError("Cannot read properties of undefined (reading 'seq')");
        },
      },
      { retryForMs: 30_000, onError: (e) => errors.push(e) },
    );
    const ev = { stream: 's', fields: { id: 'e1', kind: 'note', agent: { id: 'a' }, ts: new Date().toISOString() } } as unknown as PreparedEvent;
    const started = Date.now();
    expect(await bug.write(ev)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(calls).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['store_fault']);
    expect(errors[0]!.message).toContain("reading 'seq'");

    // The retry that matters stays: an outage (store_unavailable) is tried again until it clears.
    let failures = 2;
    const outage = new BatchWriter(
      {
        appendPrepared(events): AppendReceipt[] {
          if (failures-- > 0) throw new WitnessError('store_unavailable', 'The disk is full; free space, then retry.');
          return events.map((e, i) => ({ id: e.fields.id, stream: e.stream, seq: i, pos: i, hash: '00' }));
        },
      },
      { retryForMs: 30_000, onError: (e) => errors.push(e) },
    );
    expect((await outage.write(ev))?.id).toBe('e1');
    expect(errors).toHaveLength(1);
  });
});
