import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { leafRanges } from '../../src/core/index.js';
import { exportBundle, verifyBundle } from '../../src/export/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * An evidence bundle of a span holding a payload erased by a subject erasure (docs/FORMAT.md 7.13):
 * a full export carries the retention.purge record that lists it (purges.jsonl, bound by the signed
 * export record) and verifies, naming the erasure; a withheld export (no payload at all) carries no
 * record and verifies too. test/export/purged-bundle.test.ts runs the three verifiers on tampered copies.
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
  it('[R-RETENTION] a full export carries the erasure record and verifies, naming it; a withheld export carries none and verifies', async () => {
    const { ledger, purgedLeaf } = await purgedLedger();
    try {
      const out = path.join(dir, 'full');
      const full = await exportBundle(ledger, { ...NONE, sessions: ['s1'] }, out, { actor: 'auditor@corp' });
      const lines = fs
        .readFileSync(path.join(out, 'purges.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l !== '');
      expect(lines).toHaveLength(1);
      expect((JSON.parse(lines[0]!) as { data: { leaves: unknown } }).data.leaves).toEqual([[purgedLeaf, purgedLeaf]]);
      const v = await verifyBundle(out);
      expect(v.failures).toEqual([]);
      expect(v.warnings.join(' | ')).toContain(`1 payload purged under policy erasure:ann by the record at leaf ${full.span.to}`);

      const withheld = path.join(dir, 'withheld');
      await exportBundle(ledger, { ...NONE, sessions: ['s1'] }, withheld, { actor: 'auditor@corp', withholdData: true });
      expect(fs.existsSync(path.join(withheld, 'purges.jsonl'))).toBe(false);
      const w = await verifyBundle(withheld);
      expect(w.failures).toEqual([]);
      expect(w.ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });
});
