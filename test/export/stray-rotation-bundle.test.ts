import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKey } from '../../src/core/index.js';
import { exportBundle } from '../../src/export/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { expectPassed, threeVerdicts } from './verify-three.js';

/*
 * A key.rotated event counts as a rotation only in witness.keys, stamped by the CLI (docs/FORMAT.md
 * 7.6). One written into a session's own stream (here by a direct append, as an agent or anyone who
 * can append might) is an ordinary event: the bundle of that session lists no key for it in
 * keys.json, and all three verifiers pass without comparing it with the key history.
 */

const dir = tempDir('witness-stray-rotation-');
const agent = { id: 'support-bot' };

describe('a session holding a stray key.rotated', () => {
  it('[R-KEY-ROTATION] exports with one key in keys.json and verifies in all three verifiers', async () => {
    const ledger = SqliteLedger.open({ path: tempDb(dir) });
    const out = path.join(dir, 'bundle');
    let vkey: string;
    try {
      vkey = (await ledger.publicKeys())[0]!.vkey;
      const stranger = generateKey('stranger').verifierKey;
      await ledger.append([
        { stream: 's1', agent, kind: 'session.start', data: {} },
        { stream: 's1', agent, kind: 'key.rotated', recorder: { kind: 'cli' }, data: { old_key: vkey, new_key: stranger, reason: 'not a rotation' } },
        { stream: 's1', agent, kind: 'note', data: { text: 'after it' } },
      ] as AppendRequest[]);
      await ledger.seal();
      await exportBundle(ledger, { since: null, until: null, agents: null, sessions: ['s1'], regimes: [] }, out, { actor: 'auditor@corp' });
    } finally {
      await ledger.close();
    }
    const keys = JSON.parse(fs.readFileSync(path.join(out, 'keys.json'), 'utf8')) as { keys: Array<{ vkey: string }> };
    expect(keys.keys.map((k) => k.vkey)).toEqual([vkey]);
    expectPassed(await threeVerdicts(out, vkey));
  });
});
