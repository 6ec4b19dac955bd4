import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { haltState } from '../../src/approvals/index.js';
import { GOVERNANCE_RULES, UNPURGEABLE_KINDS } from '../../src/core/index.js';
import { SqliteLedger, runRetention, setRetentionRule, type Actor, type AppendRequest } from '../../src/store/index.js';
import { verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A genuine `witness retention run` once purged the payloads of old halts and resumes (found by
 * review): the halt kept counting from its header, the resume did not, so an agent resumed two
 * months ago read as halted again. Every kind core's governance rule counts is the record of
 * governance and is never purged.
 */

const dir = tempDir('witness-retention-halts-');
const who: Actor = { actor: 'dpo@acme.example', recorder: { kind: 'cli' } };
const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000).toISOString();

describe('retention and the stop button', () => {
  it('[R-RETENTION] [R-HALT] every kind the governance rule counts is unpurgeable', () => {
    expect([...UNPURGEABLE_KINDS].sort()).toEqual(expect.arrayContaining(Object.keys(GOVERNANCE_RULES).sort()));
  });

  it('[R-RETENTION] [R-HALT] a retention run keeps the payloads of old halts and resumes, so a resumed agent stays resumed and verify passes', async () => {
    const file = tempDb(dir);
    const l = SqliteLedger.open({ path: file });
    try {
      const person = { principal: { id: 'alice', kind: 'human' }, recorder: { kind: 'cli', version: '0.1.0' }, outcome: 'success' } as const;
      const [h] = await l.append([
        { stream: 'witness.approvals', ts: daysAgo(60), agent: { id: 'a1' }, ...person, kind: 'human.halt', data: { actor: 'alice', reason: 'refunding every order', agent: 'a1' } } as AppendRequest,
      ]);
      await l.append([
        { stream: 'witness.approvals', ts: daysAgo(59), agent: { id: 'a1' }, ...person, kind: 'human.resume', data: { actor: 'alice', agent: 'a1', halt: h!.id, reason: 'fixed' } } as AppendRequest,
        { stream: 's-old', ts: daysAgo(58), agent: { id: 'a1' }, kind: 'note', data: { text: 'old enough to go' } } as AppendRequest,
      ]);
      await l.seal();
      await setRetentionRule(l, { match: {}, olderThan: '30d' }, who);
      const run = await runRetention(l, who);
      expect(run.purged).toBe(1);
      expect(await haltState(l, 'a1')).toMatchObject({ halted: false, resumed: { actor: 'alice' } });
      await l.seal();
    } finally {
      await l.close();
    }
    const db = new Database(file, { readonly: true });
    try {
      const kept = db.prepare(`SELECT kind FROM events WHERE data IS NOT NULL AND kind IN ('human.halt', 'human.resume')`).pluck().all();
      expect(kept.sort()).toEqual(['human.halt', 'human.resume']);
    } finally {
      db.close();
    }
    expect((await verifyFile(file)).ok).toBe(true);
  });
});
