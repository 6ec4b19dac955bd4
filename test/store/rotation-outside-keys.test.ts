import { describe, expect, it } from 'vitest';
import { generateKey, parseSignerKey } from '../../src/core/index.js';
import { ledgerKeyHistory, openLedger, verifyLedger, type AppendRequest, type Ledger } from '../../src/store/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { testSchemas } from './postgres-driver.js';

/*
 * F4: a key.rotated an agent's process appended to its own session (its SDK refuses to now, but
 * whoever can write the database can, and older SDKs did) used to count as a rotation: every seal
 * was then refused for want of the new key's signature, `witness keys rotate` exited 2 with no way
 * out, and verify's note claimed a covering checkpoint that did not exist. A rotation counts only in
 * witness.keys from recorder cli (docs/FORMAT.md 5.4); anything else is an ordinary event, ignored
 * by sealing and named by verify in a note.
 */

const dir = tempDir('witness-rotation-outside-');
const pg = testSchemas('rotout');
const note = (i: number): AppendRequest => ({ stream: 'agent-session', agent: { id: 'support-bot' }, kind: 'note', data: { text: `n${i}` } });

/**
 * The forgeries: a rotation naming the key in use as old, in the agent's session (as its SDK or as
 * the CLI) and in witness.keys as the SDK. Not among them: one in witness.keys stamped cli or with no
 * recorder (what `witness keys rotate` wrote before it stamped one): those are rotations by the
 * rule, and only a direct writer of the database can append them, who could forge anything.
 */
function forgedRotations(inUse: string): AppendRequest[] {
  const next = generateKey('forged-next').verifierKey;
  const rotation = (stream: string, recorder?: 'sdk' | 'cli'): AppendRequest => ({
    stream,
    agent: { id: 'support-bot' },
    ...(recorder === undefined ? {} : { recorder: { kind: recorder } }),
    kind: 'key.rotated',
    data: { old_key: inUse, new_key: next },
  });
  return [rotation('agent-session', 'sdk'), rotation('agent-session', 'cli'), rotation('witness.keys', 'sdk')];
}

async function inUseKey(l: Ledger): Promise<string> {
  return (await l.publicKeys())[0]!.vkey;
}

describe('a key.rotated outside witness.keys, or not by the CLI, is an ordinary event', () => {
  it('on SQLite: sealing goes on, `witness keys rotate` exits 0, and verify passes with a note naming each by leaf and stream', async () => {
    const file = tempDb(dir);
    const store = `sqlite:${file}`;
    const l = await openLedger(store);
    await l.append([note(0), note(1)]);
    await l.seal();
    const forged = await l.append(forgedRotations(await inUseKey(l)));
    await l.append([note(2)]);
    expect((await ledgerKeyHistory(l)).rotations).toEqual([]);
    // The seal is not refused for want of the forged new key's signature.
    const cp = await l.seal();
    expect(cp?.size).toBe(3 + forged.length);
    await l.close();

    const rotated = await runCli(['keys', 'rotate', '--store', store, '--reason', 'routine']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const leaf = 3 + forged.length;
    expect(rotated.stdout).toContain(`(key.rotated at leaf ${leaf})`);

    const v = await runCli(['verify', '--store', store, '--json']);
    expect(v.code, v.stdout).toBe(0);
    const report = JSON.parse(v.stdout) as { ok: boolean; warnings: string[]; trust: { keys: unknown[] } };
    expect(report.ok).toBe(true);
    expect(report.trust.keys).toHaveLength(2);
    for (const r of forged) {
      expect(report.warnings.some((w) => w.includes(`leaf ${r.pos}`) && w.includes(JSON.stringify(r.stream)))).toBe(true);
    }
    // The same notes when worker threads check the ledger in chunks (one chunk holds the forgeries).
    const again = await openLedger(store, { create: false, readonly: true });
    try {
      const threaded = await verifyLedger(again, { threads: 2, chunkEvents: 4 });
      expect(threaded.ok).toBe(true);
      expect(threaded.warnings).toEqual(report.warnings);
    } finally {
      await again.close();
    }
    // The genuine rotation alone is in the history note.
    expect(report.warnings.filter((w) => w.startsWith('The signing key was rotated'))).toEqual([expect.stringContaining(` at leaf ${leaf})`)]);
  });

  it('on PostgreSQL: sealing goes on and verify passes with the note', async () => {
    const s = await pg.fresh();
    const l = s.l;
    try {
      await l.append([note(0)]);
      await l.seal();
      const [r] = await l.append([forgedRotations(await inUseKey(l))[0]!]);
      expect((await l.seal())?.size).toBe(2);
      const report = await verifyLedger(l);
      expect(report.ok, JSON.stringify(report.failures)).toBe(true);
      expect(report.warnings.some((w) => w.includes(`leaf ${r!.pos}`) && w.includes('"agent-session"'))).toBe(true);
    } finally {
      await l.close();
    }
  });

  it('the key a forged rotation names is never trusted: a checkpoint signed only by it is not vouched for', async () => {
    const file = tempDb(dir);
    const l = await openLedger(`sqlite:${file}`);
    try {
      await l.append([note(0)]);
      const forgedKey = generateKey('forged-next');
      await l.append([{ stream: 'agent-session', agent: { id: 'support-bot' }, recorder: { kind: 'sdk' }, kind: 'key.rotated', data: { old_key: await inUseKey(l), new_key: forgedKey.verifierKey } }]);
      await l.seal();
      const report = await verifyLedger(l);
      expect(report.ok).toBe(true);
      expect(report.trust.keys).toHaveLength(1);
      expect(JSON.stringify(report.trust.keys)).not.toContain(parseSignerKey(forgedKey.signerKey).name);
    } finally {
      await l.close();
    }
  });
});
