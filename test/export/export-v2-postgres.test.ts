import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportBundle } from '../../src/export/index.js';
import { PNG_BYTES } from '../helpers/ledger.js';
import { testSchemas } from '../store/postgres-driver.js';
import { checkBundle } from './export-v2-check.js';

const pg = testSchemas('export_v2');

describe('export v2 on PostgreSQL', () => {
  it('writes a session of a PostgreSQL ledger as a bundle that checks from its files alone, its screenshot streamed from artifact chunks', async () => {
    const { l } = await pg.fresh();
    try {
      const shot = await l.putArtifact(Buffer.concat([PNG_BYTES, Buffer.alloc(3 << 20, 7)]), 'image/png', 'before');
      const agent = { id: 'pg-bot' };
      await l.append([
        { stream: 'pg-a', agent, kind: 'session.start', data: {} },
        { stream: 'pg-b', agent: { id: 'other' }, kind: 'session.start', data: {} },
        { stream: 'pg-a', agent, kind: 'capture', artifacts: [shot], data: { role: 'before' } },
        { stream: 'pg-b', agent: { id: 'other' }, kind: 'note', data: { text: 'not in scope' } },
        { stream: 'pg-a', agent, kind: 'session.end', data: { reason: 'completed' } },
      ]);
      await l.seal();
      const out = path.join(pg.dir, 'bundle');
      const r = await exportBundle(l, { since: null, until: null, agents: null, sessions: ['pg-a'], regimes: ['hipaa'] }, out, { actor: 'pg-auditor' });
      expect(r).toMatchObject({ inScope: 3, artifacts: 1, span: { from: 0, to: 5 }, events: 6, warnings: [] });
      const b = checkBundle(out);
      expect(b.artifacts).toEqual([`artifacts/${shot.sha256}.png`]);
      expect(b.events.find((e) => e.stream === 'pg-b' && e.kind === 'note')).toMatchObject({ data: null, salt: null });
    } finally {
      await l.close();
    }
  });
});
