import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { anchorLatest, checkCosignatures, defaultAnchorsFile, generateCosignerKey, parseCosignerSignerKey, parseCosignerVerifierKey, readAnchors, startCosigner } from '../../src/anchor/index.js';
import { parseVerifierKey } from '../../src/core/index.js';
import type { Ledger } from '../../src/store/index.js';
import { testSchemas } from '../store/postgres-driver.js';
import { Agent } from '../monitor/fixture.js';

/** Anchoring reads the ledger through the `Ledger` interface alone: the same exchange on PostgreSQL, with --anchors named. */
describe('[R-ANCHOR-COSIGN] anchoring a PostgreSQL ledger', () => {
  const schemas = testSchemas('wanc');
  const open: Ledger[] = [];
  afterAll(async () => {
    for (const l of open) await l.close();
  });

  it('cosigns two checkpoints through a real witness, requires --anchors for PostgreSQL, and verifies the cosignature on the newest', async () => {
    const { l, url } = await schemas.fresh();
    open.push(l);
    expect(() => defaultAnchorsFile(url, undefined)).toThrow(/pass --anchors FILE/);
    const anchors = defaultAnchorsFile(url, path.join(schemas.dir, 'pg.anchors.jsonl'));
    const w = generateCosignerKey('witness.test/pg');
    const stateDir = path.join(schemas.dir, 'state');
    fs.mkdirSync(stateDir);
    await new Agent(l, 'bot').call('crm.lookup', new Date().toISOString());
    await l.seal();
    const witness = await startCosigner({ signer: parseCosignerSignerKey(w.signerKey), stateDir, logs: new Map([[l.info.origin, [parseVerifierKey((await l.publicKeys())[0]!.vkey)]]]) });
    try {
      const target = { url: witness.url, verifier: parseCosignerVerifierKey(w.verifierKey) };
      expect((await anchorLatest(l, { anchorsFile: anchors, cosigners: [target] })).refused).toEqual([]);
      await new Agent(l, 'bot').call('billing.refund', new Date().toISOString());
      const cp = (await l.seal())!;
      expect((await anchorLatest(l, { anchorsFile: anchors, cosigners: [target] })).cosigned).toHaveLength(1);
      const { records, unreadable } = readAnchors(anchors);
      const verdict = checkCosignatures(await l.checkpoints(), records, unreadable, [target.verifier]);
      expect(verdict).toMatchObject({ ok: true, head: { size: cp.size } });
      expect(verdict.checked.map((c) => c.size)).toEqual([3, cp.size]);
    } finally {
      await witness.close();
    }
  });
});
