import { describe, expect, it } from 'vitest';
import { activeHolds, listHolds, listRetentionRules, openLedger, placeHold, setRetentionRule, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/*
 * F3, the readers' side: the SDK now refuses to write governance records, but whoever can write the
 * database (and older SDKs) could append them. Holds and retention rules are believed only from
 * witness.retention as the CLI or the server recorded them (core's isGovernanceRecord): a release
 * an agent appended does not lift a legal hold, and a rule it appended does not shorten retention.
 */

const dir = tempDir('witness-governance-readers-');
const who = { actor: 'dpo@acme.example', recorder: { kind: 'cli' as const } };

function forged(stream: string, recorder: 'sdk' | 'cli' | 'gateway' | undefined, kind: AppendRequest['kind'], data: Record<string, unknown>): AppendRequest {
  return { stream, agent: { id: 'support-bot' }, ...(recorder === undefined ? {} : { recorder: { kind: recorder } }), kind, data } as AppendRequest;
}

describe('governance records are believed only from witness.retention by the CLI or the server', () => {
  it('a hold.released an agent appended (as the SDK or the gateway, or outside witness.retention) does not release the hold', async () => {
    const l = await openLedger(`sqlite:${tempDb(dir)}`);
    try {
      await l.append([{ stream: 'case-session', agent: { id: 'support-bot' }, kind: 'note', data: { text: 'evidence' } }]);
      const { hold } = await placeHold(l, { scope: { session: 'case-session' }, reason: 'litigation' }, who);
      const release = { hold_id: hold, released_by: 'support-bot', reason: 'not needed' };
      await l.append([
        forged('witness.retention', 'sdk', 'hold.released', release),
        forged('witness.retention', 'gateway', 'hold.released', release),
        forged('case-session', 'cli', 'hold.released', release),
      ]);
      expect((await activeHolds(l)).map((h) => h.id)).toEqual([hold]);
      // Nor does a hold.placed it appended count (its own hold ids would shadow nothing, but it is not a person's act).
      await l.append([forged('witness.retention', 'sdk', 'hold.placed', { hold_id: 'hold-forged', scope: { agent: 'billing-bot' }, reason: 'x', placed_by: 'support-bot' })]);
      expect((await listHolds(l)).map((h) => h.id)).toEqual([hold]);
    } finally {
      await l.close();
    }
  });

  it('a retention config.change an agent appended does not set a rule', async () => {
    const l = await openLedger(`sqlite:${tempDb(dir)}`);
    try {
      await setRetentionRule(l, { match: { kind: 'note' }, olderThan: '6y' }, who);
      const rule = { selector: 'kind=note', kind: 'note', older_than: '1d', duty: false };
      const data = { target: 'retention', description: 'purge notes after a day', rule };
      await l.append([forged('witness.retention', 'sdk', 'config.change', data), forged('agent-session', 'cli', 'config.change', data)]);
      expect((await listRetentionRules(l)).map((r) => [r.selector, r.period])).toEqual([['kind=note', '6y']]);
    } finally {
      await l.close();
    }
  });
});
