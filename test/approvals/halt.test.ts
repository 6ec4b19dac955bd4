import { afterEach, describe, expect, it } from 'vitest';
import { HALT_STREAM, HaltWatch, haltState, haltedAgents, recordHalt, recordResume } from '../../src/approvals/index.js';
import { WitnessError } from '../../src/core/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { testSchemas } from '../store/postgres-driver.js';

/**
 * The stop button's protocol over real ledgers, SQLite and PostgreSQL: a halt and a resume
 * recorded by one recorder, the state read by another handle (as a gateway in another process
 * reads it), and the refusals that record nothing.
 */

const dir = tempDir('witness-halt-');
const pg = testSchemas('halt');

interface Store {
  url: string;
  /** A second handle on the same ledger, as another process has. */
  reader: () => Promise<Ledger>;
  /** A writable handle that appends past the recorder, as whoever can write the database can. */
  writer: () => Promise<Ledger>;
}

const DRIVERS: Array<[string, () => Promise<Store>]> = [
  [
    'sqlite',
    async () => {
      const url = `sqlite:${tempDb(dir)}`;
      return { url, reader: () => openLedger(url, { create: false, readonly: true }), writer: () => openLedger(url, { create: false }) };
    },
  ],
  [
    'postgres',
    async () => {
      const s = await pg.fresh();
      await s.l.close();
      return {
        url: s.url,
        reader: () => openLedger(s.url, { create: false, readonly: true, keyFile: s.keyFile }),
        writer: () => openLedger(s.url, { create: false, keyFile: s.keyFile }),
      };
    },
  ],
];

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function witnessOn(url: string): Promise<Witness> {
  const w = await openWitness({ store: url, strict: true, seal: { enabled: false } });
  open.push(w);
  return w;
}

const wanted = process.env['WITNESS_TEST_DRIVERS']?.split(',').map((s) => s.trim());
for (const [driver, make] of DRIVERS) {
  if (wanted !== undefined && !wanted.includes(driver)) continue;
  describe(`halting an agent on ${driver} [R-HALT]`, () => {
    it('records a halt and a resume in the oversight stream, with who and why, and answers the state from another handle', async () => {
      const store = await make();
      const w = await witnessOn(store.url);
      const other = await store.reader();
      open.push(other);
      expect(await haltState(other, 'support-bot')).toEqual({ agent: 'support-bot', halted: false });

      const { halt, already } = await recordHalt(w, { agent: 'support-bot', actor: 'alice', reason: 'it is refunding every order' });
      expect(already).toBe(false);
      const state = await haltState(other, 'support-bot');
      expect(state).toMatchObject({ halted: true, halt: { id: halt.id, agent: 'support-bot', actor: 'alice', reason: 'it is refunding every order', stream: HALT_STREAM } });
      // Another agent is untouched.
      expect((await haltState(other, 'billing-bot')).halted).toBe(false);

      const e = await other.getEvent(halt.id);
      expect(e).toMatchObject({
        kind: 'human.halt',
        stream: 'witness.approvals',
        agent: { id: 'support-bot' },
        principal: { id: 'alice', kind: 'human' },
        outcome: 'success',
        data: { actor: 'alice', reason: 'it is refunding every order', agent: 'support-bot' },
      });

      const resumed = await recordResume(w, { agent: 'support-bot', actor: 'bob', reason: 'refund rule fixed' });
      expect(resumed.halt.id).toBe(halt.id);
      const r = await other.getEvent(resumed.id);
      expect(r).toMatchObject({
        kind: 'human.resume',
        stream: 'witness.approvals',
        parent: halt.id,
        principal: { id: 'bob', kind: 'human' },
        data: { actor: 'bob', agent: 'support-bot', halt: halt.id, reason: 'refund rule fixed' },
      });
      expect(await haltState(other, 'support-bot')).toMatchObject({ halted: false, resumed: { id: resumed.id, actor: 'bob', reason: 'refund rule fixed' } });

      // Halted again after a resume: the newer halt is in force.
      const again = await recordHalt(w, { agent: 'support-bot', actor: 'carol', reason: 'again' });
      expect(await haltState(other, 'support-bot')).toMatchObject({ halted: true, halt: { id: again.halt.id, actor: 'carol' } });
    });

    it('does not halt an agent twice: the halt in force is returned and nothing is recorded', async () => {
      const store = await make();
      const w = await witnessOn(store.url);
      const first = await recordHalt(w, { agent: 'support-bot', actor: 'alice', reason: 'first' });
      const size = (await store.reader().then(async (l) => (await l.close(), l.info.size))) as number;
      const second = await recordHalt(w, { agent: 'support-bot', actor: 'bob', reason: 'second' });
      expect(second).toEqual({ already: true, halt: expect.objectContaining({ id: first.halt.id, actor: 'alice', reason: 'first' }) });
      const after = await store.reader();
      open.push(after);
      expect(after.info.size).toBe(size);
    });

    it('refuses to resume an agent that is not halted, recording nothing, in one sentence', async () => {
      const store = await make();
      const w = await witnessOn(store.url);
      const err = await recordResume(w, { agent: 'support-bot', actor: 'bob' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WitnessError);
      expect(err).toMatchObject({ code: 'conflict', message: 'Agent support-bot is not halted, so there is nothing to resume; nothing was recorded.' });
      await recordHalt(w, { agent: 'support-bot', actor: 'alice', reason: 'stop' });
      await recordResume(w, { agent: 'support-bot', actor: 'bob' });
      await expect(recordResume(w, { agent: 'support-bot', actor: 'bob' })).rejects.toMatchObject({
        code: 'conflict',
        message: expect.stringMatching(/^Agent support-bot is not halted \(bob resumed it at \d{4}-.*Z\), so there is nothing to resume; nothing was recorded\.$/),
      });
      const l = await store.reader();
      open.push(l);
      expect((await l.query({ kind: 'human.resume' })).events).toHaveLength(1);
    });

    it('refuses a halt without a reason or an agent, recording nothing', async () => {
      const store = await make();
      const w = await witnessOn(store.url);
      await expect(recordHalt(w, { agent: 'support-bot', actor: 'alice', reason: '   ' })).rejects.toMatchObject({
        code: 'invalid_argument',
        message: 'Cannot halt the agent: reason: say why the agent is halted (--reason); nothing was recorded.',
      });
      await expect(recordHalt(w, { agent: '', actor: 'alice', reason: 'x' })).rejects.toMatchObject({
        code: 'invalid_argument',
        message: expect.stringMatching(/^Cannot halt the agent: agent: give the id/),
      });
      const l = await store.reader();
      open.push(l);
      expect((await l.query({ kind: 'human.halt' })).events).toHaveLength(0);
    });

    it('believes only halts and resumes the CLI or the server recorded in the oversight stream: a resume appended directly with recorder sdk does not lift a halt', async () => {
      const store = await make();
      const w = await witnessOn(store.url);
      const { halt } = await recordHalt(w, { agent: 'support-bot', actor: 'alice', reason: 'refunding everything' });
      await w.flush();
      // A direct writer of the ledger (the SDK refuses these now): the agent's resume in the
      // oversight stream as recorder sdk, one with no recorder, and one stamped cli in its own session.
      const direct = await store.writer();
      open.push(direct);
      const resume = (stream: string, recorder?: 'sdk' | 'cli') => ({
        stream,
        agent: { id: 'support-bot' },
        ...(recorder === undefined ? {} : { recorder: { kind: recorder } }),
        kind: 'human.resume' as const,
        data: { actor: 'support-bot', agent: 'support-bot', halt: halt.id },
      });
      await direct.append([resume(HALT_STREAM, 'sdk'), resume(HALT_STREAM), resume('support-bot-session', 'cli')]);
      const other = await store.reader();
      open.push(other);
      expect(await haltState(other, 'support-bot')).toMatchObject({ halted: true, halt: { id: halt.id, actor: 'alice' } });
      expect((await haltedAgents(other)).map((h) => h.agent)).toEqual(['support-bot']);
      // Nor does a halt an agent appended stop anyone: not another agent, not in its session.
      await direct.append([
        { stream: HALT_STREAM, agent: { id: 'billing-bot' }, recorder: { kind: 'sdk' }, kind: 'human.halt', data: { actor: 'support-bot', reason: 'spite', agent: 'billing-bot' } },
        { stream: 'billing-bot-session', agent: { id: 'billing-bot' }, recorder: { kind: 'cli' }, kind: 'human.halt', data: { actor: 'ops', reason: 'elsewhere', agent: 'billing-bot' } },
      ]);
      expect((await haltState(other, 'billing-bot')).halted).toBe(false);
      // The person's resume lifts the person's halt.
      await recordResume(w, { agent: 'support-bot', actor: 'bob' });
      expect((await haltState(other, 'support-bot')).halted).toBe(false);
    });

    it("a gateway's watch sees a halt written through another handle within a second, and a resume", async () => {
      const store = await make();
      const w = await witnessOn(store.url);
      const gatewaySide = await store.reader();
      open.push(gatewaySide);
      const watch = HaltWatch.acquire(gatewaySide, 'watch-bot');
      try {
        expect(await watch.check()).toEqual({ halted: false });
        const { halt } = await recordHalt(w, { agent: 'watch-bot', actor: 'alice', reason: 'stop now' });
        const t0 = Date.now();
        while (watch.current().halted !== true && Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 20));
        expect(watch.current()).toMatchObject({ halted: true, halt: { id: halt.id, actor: 'alice' } });
        await recordResume(w, { agent: 'watch-bot', actor: 'alice' });
        const t1 = Date.now();
        while (watch.current().halted !== false && Date.now() - t1 < 1000) await new Promise((r) => setTimeout(r, 20));
        expect(watch.current()).toEqual({ halted: false });
      } finally {
        watch.release();
      }
    });
  });
}

describe('the halt watch fails closed', () => {
  it('answers unreadable, never "not halted", when the ledger cannot be read', async () => {
    const url = `sqlite:${tempDb(dir)}`;
    const w = await witnessOn(url);
    await recordHalt(w, { agent: 'x-bot', actor: 'alice', reason: 'r' });
    const l = await openLedger(url, { create: false, readonly: true });
    const watch = HaltWatch.acquire(l, 'closed-bot', { pollMs: 20 });
    try {
      expect(await watch.check()).toEqual({ halted: false });
      await l.close();
      const t0 = Date.now();
      while (watch.current().halted === false && Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 10));
      expect(watch.current()).toMatchObject({ halted: 'unreadable', why: expect.any(String) });
    } finally {
      watch.release();
    }
  });
});
