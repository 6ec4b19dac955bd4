import { afterEach, describe, expect, it } from 'vitest';
import { haltState, haltedAgents, recordHalt, recordResume } from '../../src/approvals/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { sqliteEdit } from '../store/sqlite-edit-hook.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A payload gone (purged past the writers, who keep every halt and resume) must never flip a halt
 * state: a halt without its payload stops the agent its header names, and a resume without its
 * payload lifts the halt of the agent its header names, read from the header alone.
 */

const dir = tempDir('witness-halt-purged-');
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function erasePayload(url: string, pos: number): Promise<void> {
  const l: Ledger = await openLedger(url, { create: false });
  try {
    await sqliteEdit(l, { kind: 'rewriteData', pos, data: null });
    await sqliteEdit(l, { kind: 'rewriteSalt', pos, salt: null });
  } finally {
    await l.close();
  }
}

describe('a halt state read from headers when a payload is gone [R-HALT]', () => {
  it("a resume whose payload was erased still lifts the halt of its header's agent", async () => {
    const url = `sqlite:${tempDb(dir)}`;
    const w: Witness = await openWitness({ store: url, strict: true, seal: { enabled: false } });
    open.push(w);
    await recordHalt(w, { agent: 'a1', actor: 'alice', reason: 'refunding every order' });
    await recordResume(w, { agent: 'a1', actor: 'alice', reason: 'fixed' });
    await w.flush();
    const reader = await openLedger(url, { create: false, readonly: true });
    open.push(reader);
    const resume = (await reader.query({ kind: 'human.resume', agent: 'a1' })).events[0]!;
    await erasePayload(url, resume.pos);
    expect((await reader.query({ kind: 'human.resume', agent: 'a1' })).events[0]!.data).toBeNull();
    expect(await haltState(reader, 'a1')).toMatchObject({ agent: 'a1', halted: false, resumed: { pos: resume.pos } });
    expect(await haltedAgents(reader)).toEqual([]);
  });

  it("a halt whose payload was erased still stops its header's agent", async () => {
    const url = `sqlite:${tempDb(dir)}`;
    const w: Witness = await openWitness({ store: url, strict: true, seal: { enabled: false } });
    open.push(w);
    const { halt } = await recordHalt(w, { agent: 'a1', actor: 'alice', reason: 'refunding every order' });
    await w.flush();
    await erasePayload(url, halt.pos);
    const reader = await openLedger(url, { create: false, readonly: true });
    open.push(reader);
    expect(await haltState(reader, 'a1')).toMatchObject({ halted: true, halt: { id: halt.id } });
  });
});
