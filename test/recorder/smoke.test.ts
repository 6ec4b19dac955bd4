import { describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { driverOf } from '../helpers/ledger.js';

const dir = tempDir();

describe('smoke', () => {
  it('records a session and verifies it', async () => {
    const errors: unknown[] = [];
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, onError: (e) => errors.push(e) });
    const s = await w.session({ agent: { id: 'support-bot', version: '1.4.2' }, user: 'customer-12345' });
    await s.llmCall({ model: 'claude', input: [{ role: 'user', content: 'refund please' }], output: 'ok', systemPrompt: 'be nice' });
    const r = await s.tool('billing.refund', { amount: 50 }, () => ({ ok: true }));
    expect(r).toEqual({ ok: true });
    await s.note('done');
    await s.end();
    const report = await verifyLedger(driverOf(w));
    expect(errors).toEqual([]);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.events).toBe(6);
    expect(report.checkpoints).toBe(1);
    await w.close();
  });
});
