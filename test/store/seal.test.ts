import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { exportSession, verifyBundle } from '../../src/export/index.js';
import { driverOf, tamper, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir();

async function ledgerWithUnsealedTail(): Promise<{ file: string; session: string }> {
  const file = tempDb(dir);
  const w = await openWitness({ store: `sqlite:${file}`, strict: true, seal: { enabled: false } });
  const s = await w.session({ agent: { id: 'support-bot' } });
  await s.note('sealed');
  await driverOf(w).seal();
  await s.tool('billing.refund', { amount: 650 }, () => ({ ok: true }));
  await w.close();
  return { file, session: s.id };
}

describe('the sealer signs only what verifies', () => {
  it('[R-TAMPER-PAYLOAD] refuses to sign an unsealed event whose payload was edited, instead of vouching for the forgery', async () => {
    const { file } = await ledgerWithUnsealedTail();
    tamper(file, (db) => db.prepare(`UPDATE events SET data = replace(data, '650', '5') WHERE kind = 'tool.call'`).run());
    const ledger = SqliteLedger.open({ path: file });
    try {
      await expect(ledger.seal()).rejects.toMatchObject({ code: 'store_corrupt', message: expect.stringMatching(/^Not signing: the event at leaf 2 .*payload_mismatch/) });
      expect((await ledger.checkpoints()).length).toBe(1);
    } finally {
      await ledger.close();
    }
  });

  it('refuses to sign an unsealed tail whose chain was rewritten with recomputed hashes', async () => {
    const { file } = await ledgerWithUnsealedTail();
    // Re-linking needs the header's prev to point at a different predecessor: drop the middle event.
    tamper(file, (db) => db.prepare('DELETE FROM events WHERE pos = 2').run());
    const ledger = SqliteLedger.open({ path: file });
    try {
      await expect(ledger.seal()).rejects.toMatchObject({ code: 'store_corrupt' });
    } finally {
      await ledger.close();
    }
  });

  it('warns that a session ended with no checkpoint covering its end, since the recorder always seals there', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, strict: true });
    const s = await w.session({ agent: { id: 'a' } });
    await s.end();
    await w.close();
    tamper(file, (db) => db.prepare('DELETE FROM checkpoints').run());
    const r = await verifyFile(file);
    expect(r.warnings.join(' ')).toMatch(/1 session\(s\) ended .* no checkpoint covering the end/);
    expect(r.warnings.join(' ')).not.toMatch(/run `witness seal`/);
  });
});

describe('sessions that have ended stay ended', () => {
  it('[R-NO-THROW] refuses a record after session.end without throwing, keeps its batch-mates, and the ledger still verifies', async () => {
    const file = tempDb(dir);
    const errors: string[] = [];
    const w = await openWitness({ store: `sqlite:${file}`, onError: (e) => errors.push(`${e.code}: ${e.message}`) });
    const a = await w.session({ agent: { id: 'a' } });
    const b = await w.session({ agent: { id: 'b' } });
    await a.end();
    // Same tick, same group commit: one doomed record and one innocent one.
    const [late, innocent] = await Promise.all([a.note('after the end'), b.note('innocent')]);
    expect(late).toBeUndefined();
    expect(innocent?.seq).toBe(1);
    expect(errors.join('\n')).toMatch(/Session .* has already ended; start a new session/);
    const reused = await w.session({ agent: { id: 'a' }, id: a.id });
    expect(await reused.note('reusing an ended id')).toBeUndefined();
    await w.close();
    const r = await verifyFile(file);
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('reports a reused event id as a duplicate id and loses only that event', async () => {
    const file = tempDb(dir);
    const errors: string[] = [];
    const w = await openWitness({ store: `sqlite:${file}`, onError: (e) => errors.push(e.message) });
    const a = await w.session({ agent: { id: 'a' } });
    const first = await a.note('first');
    const [dup, other] = await Promise.all([a.note('dup', { id: first!.id }), a.note('other')]);
    expect(dup).toBeUndefined();
    expect(other).toBeDefined();
    expect(errors.join('\n')).toMatch(/An event with the same id already exists/);
    await w.close();
  });
});

describe('hostile bundles', () => {
  it('[R-HOSTILE] fails, without hanging, an artifact that is a link to /dev/zero', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, strict: true, spillBytes: 16 });
    const s = await w.session({ agent: { id: 'a' } });
    await s.tool('crm.export', {}, () => ({ rows: 'x'.repeat(100) }));
    await s.end();
    const out = path.join(dir, `bundle-${Date.now()}`);
    const r = await exportSession(driverOf(w), s.id, out);
    await w.close();
    const sha = fs.readdirSync(path.join(out, 'artifacts'))[0]!;
    fs.rmSync(path.join(out, 'artifacts', sha));
    fs.symlinkSync('/dev/zero', path.join(out, 'artifacts', sha));
    const report = verifyBundle(out, { trustedKeys: [] });
    expect(r.artifacts).toBe(1);
    expect(report.ok).toBe(false);
    // A version 2 bundle refuses a file that is not a regular file before hashing it (bundle_invalid).
    expect(report.failures.map((f) => f.code)).toContain('bundle_invalid');
  });

  it('[R-WITHHOLD] fails payload_missing for a payload stripped from a bundle that was not exported as withheld', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, strict: true });
    const s = await w.session({ agent: { id: 'a' } });
    await s.note('keep me');
    await s.end();
    const out = path.join(dir, `bundle-strip-${Date.now()}`);
    await exportSession(driverOf(w), s.id, out);
    await w.close();
    const lines = fs.readFileSync(path.join(out, 'events.jsonl'), 'utf8').trim().split('\n');
    const ev = JSON.parse(lines[1]!) as Record<string, unknown>;
    ev['data'] = null;
    ev['salt'] = null;
    lines[1] = JSON.stringify(ev);
    fs.writeFileSync(path.join(out, 'events.jsonl'), `${lines.join('\n')}\n`);
    const report = verifyBundle(out);
    expect(report.first).toMatchObject({ code: 'payload_missing', seq: 1 });
  });
});
