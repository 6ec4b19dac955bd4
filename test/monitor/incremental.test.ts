import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/core/index.js';
import { verifyNewCheckpoints, type VerifiedState } from '../../src/monitor/index.js';
import type { Ledger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { Agent, newLedger } from './fixture.js';

/** The incremental check on its own: from the last verified checkpoint to the newest, whatever lies between. */
describe('[R-MONITOR-VERIFY] verifyNewCheckpoints', () => {
  const dir = tempDir('witness-monitor-incremental-');
  let ledger: Ledger;
  let bot: Agent;
  let first: VerifiedState;
  const ts = () => new Date().toISOString();
  beforeAll(async () => {
    ledger = (await newLedger(dir)).ledger;
    bot = new Agent(ledger, 'support-bot');
    await bot.call('crm.lookup', ts());
    await ledger.seal();
    const r = await verifyNewCheckpoints(ledger, undefined);
    expect(r.failures).toEqual([]);
    first = r.state!;
  });
  afterAll(async () => ledger.close());

  it('starts from nothing, then checks only what is new, skipping checkpoints sealed in between through the proof between the two ends', async () => {
    expect(first.size).toBe(3);
    await bot.call('billing.refund', ts());
    await ledger.seal();
    await bot.call('email.send', ts());
    const third = await ledger.seal();
    const r = await verifyNewCheckpoints(ledger, first);
    expect(r.failures).toEqual([]);
    expect(r.events).toBe(4);
    expect(r.state).toMatchObject({ checkpoint: third!.id, size: 7, root: third!.root.toString('hex') });
    const idle = await verifyNewCheckpoints(ledger, r.state);
    expect([idle.checkpoints, idle.events, idle.state]).toEqual([0, 0, r.state]);
  });

  it('fails a checkpoint not signed by the pinned key, and keeps the verified state', async () => {
    await bot.call('crm.lookup', ts());
    await ledger.seal();
    const other = generateKey('someone-else').verifierKey;
    const r = await verifyNewCheckpoints(ledger, first, [other]);
    expect(r.failures.map((f) => f.code)).toEqual(['checkpoint_signature']);
    expect(r.state).toBe(first);
  });

  it('fails a ledger whose newest checkpoint is smaller than the one verified (rolled back)', async () => {
    const latest = (await ledger.latestCheckpoint())!;
    const ahead: VerifiedState = { checkpoint: 0, size: latest.size + 1, root: 'ab'.repeat(32), frontier: { size: 0, hashes: [] } };
    const r = await verifyNewCheckpoints(ledger, ahead);
    expect(r.failures[0]).toMatchObject({ code: 'consistency_failed' });
    expect(r.failures[0]!.reason).toContain('history was rolled back');
  });

  it('fails when the verified root is not one this ledger extends (history rewritten)', async () => {
    const forged: VerifiedState = { ...first, root: 'cd'.repeat(32) };
    const r = await verifyNewCheckpoints(ledger, forged);
    expect(r.failures.map((f) => f.code)).toContain('consistency_failed');
  });
});
