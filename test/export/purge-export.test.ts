import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { leafRanges } from '../../src/core/index.js';
import { exportBundle, verifyBundle } from '../../src/export/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { oneSentence } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * An evidence bundle of a span holding payloads erased by the retention purge. Until the three
 * bundle verifiers accept a missing payload that a bundled retention.purge lists (docs/FORMAT.md
 * 3.6), a full export of such a scope is refused in one sentence before it records anything, and
 * a withheld export (no payload at all) is written and verifies.
 */

const dir = tempDir('witness-purge-export-');
const agent = { id: 'support-bot' };
const NONE = { since: null, until: null, agents: null, sessions: null, regimes: [] };

async function purgedLedger(): Promise<{ file: string; ledger: SqliteLedger; purgedLeaf: number }> {
  const file = tempDb(dir);
  const ledger = SqliteLedger.open({ path: file });
  const r = await ledger.append([
    { stream: 's1', agent, kind: 'session.start', data: {} },
    { stream: 's1', agent, kind: 'note', subject: 'ann', data: { text: 'customer Ann asked for a refund' } },
    { stream: 's1', agent, kind: 'note', data: { text: 'refund done' } },
  ] as AppendRequest[]);
  await ledger.seal();
  const leaf = r[1]!.pos;
  await ledger.purgePayloads({
    positions: [leaf],
    record: {
      stream: 'witness.retention',
      agent: { id: 'witness-governance' },
      recorder: { kind: 'cli' },
      kind: 'retention.purge',
      data: { policy: 'erasure:ann', before: new Date().toISOString(), count: 1, leaves: leafRanges([leaf]) },
    } as AppendRequest,
  });
  await ledger.seal();
  return { file, ledger, purgedLeaf: leaf };
}

describe('export of a span with purged payloads', () => {
  it('[R-RETENTION] refuses a full export in one sentence and records nothing; a withheld export is written and verifies', async () => {
    const { ledger, purgedLeaf } = await purgedLedger();
    try {
      const size = ledger.info.size;
      const out = path.join(dir, 'full');
      const refused = exportBundle(ledger, { ...NONE, sessions: ['s1'] }, out, { actor: 'auditor@corp' });
      await expect(refused).rejects.toMatchObject({ code: 'conflict' });
      const message = ((await refused.catch((e: unknown) => e)) as Error).message;
      expect(oneSentence(message)).toBe(
        `1 in-scope event(s) of this export (first at leaf ${purgedLeaf}) had their payloads purged under retention, which a full bundle cannot show yet; export with --withhold-data, or narrow the scope to leave them out.`,
      );
      expect(fs.existsSync(out)).toBe(false);
      expect(ledger.info.size).toBe(size);

      const withheld = path.join(dir, 'withheld');
      await exportBundle(ledger, { ...NONE, sessions: ['s1'] }, withheld, { actor: 'auditor@corp', withholdData: true });
      const v = await verifyBundle(withheld);
      expect(v.failures).toEqual([]);
      expect(v.ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });
});
