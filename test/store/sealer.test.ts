import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { Frontier, generateKey, leafHash, parseSignerKey, signNote, type EventInput } from '../../src/core/index.js';
import { openWitness } from '../../src/index.js';
import { SqliteLedger, sidecarPaths } from '../../src/store/index.js';
import { TRIGGERS } from '../../src/store/sqlite/schema.js';
import { BIN, buildLedger, copyLedger, oneSentence, rewriteStream, runBin, runCli, verifyFile, where, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The attack of issue 9, finding 1, on real ledger files: someone who can write the database but
 * does not hold the signing key drops the triggers, rewrites sealed history so that every chain
 * verifies again, removes what would contradict it (the checkpoints and tree nodes above the
 * edit, or the sealer's stored frontier), restores the triggers, and waits for the real sealer
 * to sign the result. The sealer must refuse, write nothing, and say why in one sentence.
 *
 * The base ledger is test/helpers/ledger.ts's: sessions a, b (ended) and c (open), 13 events,
 * checkpoints of size 5, 9 and 13; b's tool.result is seq 3 at leaf 7.
 */

const dir = tempDir('witness-sealer-');
let base: BuiltLedger;
let B: string;
let C: string;

beforeAll(async () => {
  base = await buildLedger(dir);
  ({ b: B, c: C } = base.sessions);
});

/** A copy of the base ledger together with the sealer's record of its last checkpoint. */
function fresh(): BuiltLedger {
  const l = copyLedger(base, dir);
  const from = sidecarPaths(base.file).sealed;
  if (fs.existsSync(from)) fs.copyFileSync(from, sidecarPaths(l.file).sealed);
  return l;
}

/** Raw SQL as the attacker runs it: triggers dropped, the edit, triggers restored, in one transaction. */
function forge(file: string, edit: (db: Database.Database) => void): void {
  const db = new Database(file);
  try {
    db.transaction(() => {
      for (const t of db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger'`).pluck().all() as string[]) db.exec(`DROP TRIGGER "${t}"`);
      edit(db);
      db.exec(TRIGGERS);
    })();
  } finally {
    db.close();
  }
}

/** Deletes every checkpoint that covers `pos`, and every tree node the sealer would write again from the newest one left. */
function deleteAbove(db: Database.Database, pos: number): void {
  db.prepare('DELETE FROM checkpoints WHERE size > ?').run(pos);
  const keep = (db.prepare('SELECT max(size) FROM checkpoints').pluck().get() as number | null) ?? 0;
  db.prepare('DELETE FROM tree_nodes WHERE ((idx + 1) << level) > ?').run(keep);
}

/** The tree over the stored (forged) hashes, as the attacker computes it. */
function frontierOfStoredHashes(db: Database.Database, size: number): Frontier {
  const f = Frontier.empty();
  for (const h of db.prepare('SELECT hash FROM events WHERE pos < ? ORDER BY pos').pluck().all(size) as Buffer[]) f.push(leafHash(h));
  return f;
}

const REFUND_DENIED = { tool: 'billing.refund', is_error: false, output: { refund_id: 'R-1', status: 'declined' } };

function snapshot(file: string): { checkpoints: number; nodes: number; record: string | null } {
  const db = new Database(file, { readonly: true });
  try {
    const sealed = sidecarPaths(file).sealed;
    return {
      checkpoints: db.prepare('SELECT count(*) FROM checkpoints').pluck().get() as number,
      nodes: db.prepare('SELECT count(*) FROM tree_nodes').pluck().get() as number,
      record: fs.existsSync(sealed) ? fs.readFileSync(sealed, 'utf8') : null,
    };
  } finally {
    db.close();
  }
}

async function sealFile(file: string, add?: string): Promise<unknown> {
  const ledger = SqliteLedger.open({ path: file });
  try {
    if (add !== undefined) await ledger.append([{ stream: C, kind: 'note', agent: { id: 'ops-bot' }, data: { text: add } } as EventInput & { stream: string }]);
    return await ledger.seal();
  } finally {
    await ledger.close();
  }
}

async function refusal(file: string, add?: string): Promise<string> {
  let error: unknown;
  try {
    await sealFile(file, add);
  } catch (e) {
    error = e;
  }
  expect(error, 'the seal must be refused').toMatchObject({ code: 'seal_refused' });
  return oneSentence((error as Error).message);
}

describe('the sealer keeps its last checkpoint beside the key', () => {
  it('[R-SEAL-ROLLBACK] writes the checkpoint it signed to <db>.sealed, mode 0600, as the signed note itself', () => {
    const sealed = sidecarPaths(base.file).sealed;
    expect(fs.readFileSync(sealed, 'utf8')).toBe(base.checkpoints[2]!.note);
    expect(fs.statSync(sealed).mode & 0o777).toBe(0o600);
  });
});

describe('the sealer refuses a history that does not extend its last checkpoint', () => {
  it('[R-SEAL-ROLLBACK] refuses a sealed event rewritten with its chain recomputed and the checkpoints and tree nodes above it deleted, and writes nothing', async () => {
    const l = fresh();
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      deleteAbove(db, l.pos(B, 3));
    });
    const before = snapshot(l.file);
    expect(before.checkpoints).toBe(1);
    const message = await refusal(l.file);
    expect(message).toMatch(/^Not signing: .*size 5.*size 13/);
    expect(snapshot(l.file)).toEqual(before);
    // Nor does the real key vouch for it afterwards.
    expect((await verifyFile(l.file, { trustedKeys: [l.vkey] })).ok).toBe(false);
  });

  it('[R-SEAL-ROLLBACK] refuses when only checkpoint rows were deleted (a roll-back to an older checkpoint)', async () => {
    const l = fresh();
    forge(l.file, (db) => db.prepare('DELETE FROM checkpoints WHERE id = 3').run());
    const before = snapshot(l.file);
    expect(await refusal(l.file, 'after the roll-back')).toMatch(/size 9.*size 13/);
    expect(snapshot(l.file).checkpoints).toBe(before.checkpoints);
  });

  it('[R-SEAL-ROLLBACK] refuses when every checkpoint and tree node was deleted, so that the ledger looks never sealed', async () => {
    const l = fresh();
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      db.prepare('DELETE FROM checkpoints').run();
      db.prepare('DELETE FROM tree_nodes').run();
    });
    expect(await refusal(l.file)).toMatch(/no checkpoint.*size 13/);
    expect(snapshot(l.file).checkpoints).toBe(0);
  });

  it('[R-SEAL-ROLLBACK] refuses a doctored frontier that would make the real key sign the root of a rewritten tree', async () => {
    const l = fresh();
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      // Leave every checkpoint in place; only the sealer's working state points at the forged tree.
      db.prepare('UPDATE checkpoints SET frontier = ? WHERE id = 3').run(JSON.stringify(frontierOfStoredHashes(db, 13).toJSON()));
    });
    const before = snapshot(l.file);
    expect(await refusal(l.file, 'one more')).toMatch(/frontier/);
    expect(snapshot(l.file)).toEqual(before);
  });

  it('[R-SEAL-ROLLBACK] refuses a newest checkpoint that its key did not sign', async () => {
    const l = fresh();
    const attacker = generateKey(l.origin);
    forge(l.file, (db) => {
      const last = db.prepare('SELECT * FROM checkpoints WHERE id = 3').get() as Record<string, unknown>;
      const body = (last['note'] as string).slice(0, (last['note'] as string).indexOf('\n\n') + 1);
      db.prepare('INSERT INTO checkpoints (size, root, note, ts, frontier, consistency, prev_size) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
        last['size'],
        last['root'],
        signNote(body, [parseSignerKey(attacker.signerKey)]),
        last['ts'],
        last['frontier'],
        '[]',
        last['size'],
      );
    });
    expect(await refusal(l.file, 'x')).toMatch(/not signed by this key/);
  });

  it('[R-SEAL-ROLLBACK] refuses when the record beside the key is a symbolic link', async () => {
    const l = fresh();
    const sealed = sidecarPaths(l.file).sealed;
    const elsewhere = path.join(dir, `elsewhere-${Date.now()}.txt`);
    fs.renameSync(sealed, elsewhere);
    fs.symlinkSync(elsewhere, sealed);
    expect(await refusal(l.file, 'x')).toMatch(/symbolic link/);
    expect(fs.lstatSync(sealed).isSymbolicLink()).toBe(true);
  });
});

describe('an honest ledger keeps sealing', () => {
  it('[R-SEAL-ROLLBACK] advances the record with every checkpoint it signs', async () => {
    const l = fresh();
    const cp = (await sealFile(l.file, 'next')) as { size: number; note: string };
    expect(cp.size).toBe(14);
    expect(fs.readFileSync(sidecarPaths(l.file).sealed, 'utf8')).toBe(cp.note);
  });

  it('[R-SEAL-ROLLBACK] accepts a record older than the newest checkpoint (a crash between commit and record), and catches up', async () => {
    const l = fresh();
    const sealed = sidecarPaths(l.file).sealed;
    fs.writeFileSync(sealed, l.checkpoints[0]!.note); // size 5: the process died twice before writing it
    const cp = (await sealFile(l.file, 'after the crash')) as { size: number; note: string };
    expect(cp.size).toBe(14);
    expect(fs.readFileSync(sealed, 'utf8')).toBe(cp.note);
    expect(where(await verifyFile(l.file, { trustedKeys: [l.vkey] }))).toEqual([]);
  });

  it('[R-SEAL-ADOPT] adopts the newest checkpoint of a ledger sealed before records existed only when told to, after verifying it whole', async () => {
    const l = fresh();
    fs.rmSync(sidecarPaths(l.file).sealed);
    const ledger = SqliteLedger.open({ path: l.file });
    try {
      expect(await ledger.adopt()).toMatchObject({ checkpoint: { size: 13, note: l.checkpoints[2]!.note }, location: sidecarPaths(l.file).sealed });
      expect(fs.readFileSync(sidecarPaths(l.file).sealed, 'utf8')).toBe(l.checkpoints[2]!.note);
    } finally {
      await ledger.close();
    }
    const cp = (await sealFile(l.file, 'first seal since the upgrade')) as { size: number; note: string };
    expect(cp.size).toBe(14);
    expect(fs.readFileSync(sidecarPaths(l.file).sealed, 'utf8')).toBe(cp.note);
  });

  it('[R-SEAL-ADOPT] does not adopt a ledger without a record whose sealed part fails verification', async () => {
    const l = fresh();
    fs.rmSync(sidecarPaths(l.file).sealed);
    forge(l.file, (db) => db.prepare(`UPDATE events SET data = replace(data, 'twice', 'once') WHERE pos = 2`).run());
    const ledger = SqliteLedger.open({ path: l.file });
    try {
      const error = await ledger.adopt().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'seal_refused' });
      expect(oneSentence((error as Error).message)).toMatch(/^Not adopting: .*does not verify.*payload_mismatch at leaf 2/);
    } finally {
      await ledger.close();
    }
    expect(fs.existsSync(sidecarPaths(l.file).sealed)).toBe(false);
  });

  it('[R-SEAL-ROLLBACK] survives kill -9 at any moment of a seal loop: the next seal still succeeds and everything verifies', async () => {
    const l = fresh();
    const store = path.join(path.dirname(BIN), '..', 'dist', 'store', 'index.js');
    const child = `
      const { SqliteLedger } = await import(${JSON.stringify(store)});
      const ledger = SqliteLedger.open({ path: ${JSON.stringify(l.file)} });
      process.stdout.write('READY\\n');
      for (let i = 0; ; i++) {
        await ledger.append([{ stream: ${JSON.stringify(C)}, kind: 'note', agent: { id: 'ops-bot' }, data: { text: 'n' + i } }]);
        await ledger.seal();
      }`;
    for (const delayMs of [40, 90, 170]) {
      await new Promise<void>((resolve, reject) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        p.stderr.on('data', (c: Buffer) => (err += c.toString()));
        p.stdout.on('data', (c: Buffer) => {
          if (c.toString().includes('READY')) setTimeout(() => p.kill('SIGKILL'), delayMs);
        });
        p.on('close', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child ended without the kill: ${err}`))));
      });
    }
    expect(await sealFile(l.file, 'after three kills')).toMatchObject({ note: expect.any(String) });
    expect(where(await verifyFile(l.file, { trustedKeys: [l.vkey] }))).toEqual([]);
  });
});

describe("verify checks the ledger against the sealer's record", () => {
  it('[R-SEAL-ROLLBACK] passes an honest ledger and says it extends the record', async () => {
    const r = await verifyFile(base.file);
    expect(where(r)).toEqual([]);
    expect(r.sealRecord).toEqual({ location: sidecarPaths(base.file).sealed, size: 13, extended: true });
  });

  it('[R-SEAL-ROLLBACK] fails a rewritten history with sealed_record_mismatch, with no key pinned and no checkpoint saved', async () => {
    const l = fresh();
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      deleteAbove(db, l.pos(B, 3));
    });
    const r = await verifyFile(l.file);
    expect(where(r)).toEqual([{ code: 'sealed_record_mismatch', leaf: 12 }]);
    expect(r.first!.reason).toContain(`kept in ${sidecarPaths(l.file).sealed}`);
    expect(r.sealRecord).toMatchObject({ size: 13, extended: false });
  });

  it('[R-SEAL-ROLLBACK] fails a forgery that the real key re-signed where the record was missing, once the record is back', async () => {
    const l = fresh();
    const sealed = sidecarPaths(l.file).sealed;
    const kept = `${sealed}.kept`;
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      db.prepare('DELETE FROM checkpoints').run();
      db.prepare('DELETE FROM tree_nodes').run();
    });
    // Without its record the sealer takes a ledger with no checkpoint for a new one: trust on first use.
    fs.renameSync(sealed, kept);
    expect(await sealFile(l.file)).toMatchObject({ size: 13 });
    expect(where(await verifyFile(l.file, { trustedKeys: [l.vkey] }))).toEqual([]);
    fs.renameSync(kept, sealed);
    expect(where(await verifyFile(l.file, { trustedKeys: [l.vkey] }))).toEqual([{ code: 'sealed_record_mismatch', leaf: 12 }]);
  });

  it('[R-UNSEALED-GAP] counts the record as a newer checkpoint: events it signed that no stored checkpoint covers any more fail unsealed_gap', async () => {
    const l = fresh();
    const ledger = SqliteLedger.open({ path: l.file });
    try {
      await ledger.append([{ stream: C, kind: 'note', agent: { id: 'ops-bot' }, data: { text: 'ten minutes later' } } as EventInput & { stream: string }]);
      expect(await ledger.seal({ now: new Date(Date.now() + 10 * 60_000) })).toMatchObject({ size: 14 });
    } finally {
      await ledger.close();
    }
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      deleteAbove(db, l.pos(B, 3));
    });
    const r = await verifyFile(l.file);
    expect(where(r)).toEqual([
      { code: 'unsealed_gap', stream: B, seq: 1, leaf: 5 },
      { code: 'sealed_record_mismatch', leaf: 13 },
    ]);
    expect(r.first!.reason).toContain(`before the checkpoint recorded in ${sidecarPaths(l.file).sealed} was signed`);
    expect(r.first!.reason).toContain('and neither are 8 later event(s)');
  });

  it('[R-SEAL-ROLLBACK] fails checkpoint_missing when checkpoint rows were deleted but the events are intact', async () => {
    const l = fresh();
    forge(l.file, (db) => db.prepare('DELETE FROM checkpoints WHERE id = 3').run());
    const r = await verifyFile(l.file);
    expect(where(r)).toEqual([{ code: 'checkpoint_missing', leaf: 9 }]);
    expect(r.first!.reason).toMatch(/signed a checkpoint of size 13 .* largest checkpoint left in the ledger has size 9: checkpoints were deleted\.$/);
  });

  it('only warns about a record that the pinned key did not sign', async () => {
    const r = await verifyFile(base.file, { trustedKeys: [generateKey('someone-else').verifierKey] });
    expect(where(r).map((f) => f.code)).not.toContain('sealed_record_mismatch');
    expect(r.warnings.join(' ')).toMatch(/The sealer's record .* was not used/);
  });
});

describe('every sealer surfaces the refusal', () => {
  function forged(): BuiltLedger {
    const l = fresh();
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      deleteAbove(db, l.pos(B, 3));
    });
    return l;
  }

  it('[R-SEAL-ROLLBACK] `witness seal` exits 1 with one sentence and writes nothing', async () => {
    const l = forged();
    const before = snapshot(l.file);
    const r = await runBin(['seal', '--store', `sqlite:${l.file}`]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/^Not signing: /);
    expect(snapshot(l.file)).toEqual(before);
  });

  it('[R-SEAL-ROLLBACK] `witness export`, which seals first, exits 1 with one sentence and writes no bundle', async () => {
    const l = forged();
    const out = path.join(dir, `bundle-${Date.now()}`);
    const r = await runBin(['export', '--store', `sqlite:${l.file}`, '--session', B, '-o', out]);
    expect(r.code).toBe(1);
    // The export verifies the ledger before it seals, so the rewrite is refused there, against the sealer's record.
    expect(oneSentence(r.stderr)).toMatch(/^The ledger .* fails verification \(.*(seal|checkpoint|record)/i);
    expect(fs.existsSync(out)).toBe(false);
    expect(snapshot(l.file).checkpoints).toBe(1);
  });

  it('[R-SEAL-ROLLBACK] the recorder reports it to onError, keeps recording, and never throws into the agent', async () => {
    const l = forged();
    const errors: Array<{ code: string; message: string }> = [];
    const w = await openWitness({ store: `sqlite:${l.file}`, onError: (e) => errors.push({ code: e.code, message: e.message }) });
    const s = await w.session({ agent: { id: 'late-bot' } });
    expect(await s.note('still recorded')).toMatchObject({ seq: 1 });
    await w.sealNow();
    await w.sealNow(true);
    await w.close();
    // Every seal attempt (two here, then close) is refused the same way: reported once, not each time.
    expect(errors.filter((e) => e.code === 'seal_refused')).toHaveLength(1);
    oneSentence(errors.find((e) => e.code === 'seal_refused')!.message);
    expect(snapshot(l.file).checkpoints).toBe(1);
  });
});

describe('no silent trust on first use', () => {
  /** A copy whose record is gone: what anyone who can write the ledger's directory can arrange. */
  function withoutRecord(): BuiltLedger {
    const l = fresh();
    fs.rmSync(sidecarPaths(l.file).sealed);
    return l;
  }

  async function appendTo(file: string, stream: string, text: string): Promise<void> {
    const ledger = SqliteLedger.open({ path: file });
    try {
      await ledger.append([{ stream, kind: 'note', agent: { id: 'ops-bot' }, data: { text } } as EventInput & { stream: string }]);
    } finally {
      await ledger.close();
    }
  }

  it('[R-SEAL-ADOPT] refuses to seal a ledger that has checkpoints but no record, naming where it looked and `witness seal --adopt`, and writes nothing', async () => {
    const l = withoutRecord();
    const before = snapshot(l.file);
    const message = await refusal(l.file, 'after the record vanished');
    expect(message).toMatch(/^Not signing: .* has checkpoints but no record of the last one this key signed/);
    expect(message).toContain(`looked for ${sidecarPaths(l.file).sealed}`);
    expect(message).toContain(`witness seal --adopt --store sqlite:${l.file}`);
    expect(snapshot(l.file)).toEqual(before);
  });

  it('[R-SEAL-ADOPT] the recorder reports the missing record once through onError and keeps recording', async () => {
    const l = withoutRecord();
    const errors: Array<{ code: string; message: string }> = [];
    const w = await openWitness({ store: `sqlite:${l.file}`, onError: (e) => errors.push({ code: e.code, message: e.message }) });
    const s = await w.session({ agent: { id: 'late-bot' } });
    expect(await s.note('still recorded')).toMatchObject({ seq: 1 });
    await w.sealNow();
    await w.sealNow(true);
    await w.close();
    const refusals = errors.filter((e) => e.code === 'seal_refused');
    expect(refusals).toHaveLength(1);
    expect(oneSentence(refusals[0]!.message)).toContain('witness seal --adopt');
    expect(snapshot(l.file)).toMatchObject({ checkpoints: 3, record: null });
  });

  it('[R-SEAL-ADOPT] `witness export`, sealing first, refuses with exit 1 naming `witness seal --adopt`, and writes no bundle', async () => {
    const l = withoutRecord();
    await appendTo(l.file, C, 'needs a seal before export');
    const out = path.join(dir, `bundle-adopt-${Date.now()}`);
    const r = await runBin(['export', '--store', `sqlite:${l.file}`, '--session', C, '-o', out]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/^Not signing: .*witness seal --adopt/);
    expect(fs.existsSync(out)).toBe(false);
    expect(snapshot(l.file)).toMatchObject({ checkpoints: 3, record: null });
  });

  it("[R-SEAL-ADOPT] `witness seal --adopt` verifies the whole ledger with the sealer's key, records its newest checkpoint, then seals", async () => {
    const l = withoutRecord();
    await appendTo(l.file, C, 'sealed after the adoption');
    const r = await runBin(['seal', '--adopt', '--store', `sqlite:${l.file}`]);
    expect(r.code).toBe(0);
    // What verification noted is shown to the person adopting: here the event appended since.
    expect(r.stderr).toMatch(/^witness: 1 event\(s\) after the newest checkpoint are chained but not signed/);
    expect(r.stdout).toContain(`Adopted checkpoint 3 (13 events) as the sealer's record in ${sidecarPaths(l.file).sealed}, after verifying the whole ledger with this key.`);
    expect(r.stdout).toMatch(/Sealed checkpoint 4: 14 events/);
    const after = snapshot(l.file);
    expect(after.checkpoints).toBe(4);
    expect(after.record).toMatch(new RegExp(`^${l.origin}\n14\n`));
    expect(where(await verifyFile(l.file, { trustedKeys: [l.vkey] }))).toEqual([]);
    // Once there is a record, there is nothing to adopt: asking again is bad usage.
    const again = await runBin(['seal', '--adopt', '--store', `sqlite:${l.file}`]);
    expect(again.code).toBe(2);
    expect(oneSentence(again.stderr)).toMatch(/already has a record .*size 14.*nothing to adopt/);
  });

  it('[R-SEAL-ADOPT] `witness seal --adopt --against FILE` adopts only a ledger that still extends the saved checkpoint', async () => {
    const saved = path.join(dir, `saved-${Date.now()}.txt`);
    fs.writeFileSync(saved, base.checkpoints[2]!.note);
    // An intact ledger extends it.
    const honest = withoutRecord();
    const ok = await runBin(['seal', '--adopt', '--against', saved, '--store', `sqlite:${honest.file}`, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ adopted: { size: 13, location: sidecarPaths(honest.file).sealed, warnings: [] }, sealed: false });
    // A rewritten one, its record removed and the checkpoints above the edit deleted, does not.
    const l = withoutRecord();
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      deleteAbove(db, l.pos(B, 3));
    });
    const before = snapshot(l.file);
    const r = await runBin(['seal', '--adopt', '--against', saved, '--store', `sqlite:${l.file}`]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/^Not adopting: .*against_mismatch/);
    expect(snapshot(l.file)).toEqual(before);
    // --against means nothing without --adopt.
    expect((await runBin(['seal', '--against', saved, '--store', `sqlite:${l.file}`])).code).toBe(2);
  });

  it('[R-SEAL-ADOPT] a brand-new ledger needs no adoption: its first seal starts the record', async () => {
    const file = path.join(dir, `new-${Date.now()}.db`);
    const ledger = SqliteLedger.open({ path: file });
    try {
      await ledger.append([{ stream: 's', kind: 'note', agent: { id: 'new-bot' }, data: { text: 'first' } } as EventInput & { stream: string }]);
      const cp = await ledger.seal();
      expect(cp).toMatchObject({ size: 1 });
      expect(fs.readFileSync(sidecarPaths(file).sealed, 'utf8')).toBe(cp!.note);
    } finally {
      await ledger.close();
    }
  });
});

describe("the record kept where the database's writers cannot write", () => {
  /** A copy whose record lives in a directory of its own (the sealer's), besides the stale one a copy leaves beside the ledger. */
  function keptElsewhere(): { l: BuiltLedger; record: string } {
    const l = fresh();
    const record = path.join(fs.mkdtempSync(path.join(dir, 'sealer-')), 'ledger.sealed');
    fs.copyFileSync(sidecarPaths(base.file).sealed, record);
    return { l, record };
  }

  /** The review's attack: a rewrite, the checkpoints above it deleted, and an old genuine note written over <db>.sealed. */
  function rollBack(l: BuiltLedger): void {
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      deleteAbove(db, l.pos(B, 3));
    });
    fs.writeFileSync(sidecarPaths(l.file).sealed, base.checkpoints[0]!.note);
  }

  it('[R-SEAL-RECORD-PATH] openWitness({ sealRecord }) and $WITNESS_SEAL_RECORD put the record at that path, and nothing beside the ledger', async () => {
    const keys = fs.mkdtempSync(path.join(dir, 'keys-'));
    const file = path.join(dir, `elsewhere-${Date.now()}.db`);
    const record = path.join(keys, 'witness.sealed');
    const w = await openWitness({ store: `sqlite:${file}`, sealRecord: record });
    const s = await w.session({ agent: { id: 'kept-bot' } });
    await s.note('one');
    await s.end();
    await w.close();
    const cps = (await verifyFile(file)).checkpoints;
    expect(cps).toBeGreaterThan(0);
    expect(fs.readFileSync(record, 'utf8')).toMatch(/\n3\n/);
    expect(fs.statSync(record).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(sidecarPaths(file).sealed)).toBe(false);

    const byEnv = path.join(keys, 'by-env.sealed');
    fs.copyFileSync(record, byEnv);
    const ledger = SqliteLedger.open({ path: file, env: { WITNESS_SEAL_RECORD: byEnv } });
    try {
      expect(ledger.sealRecordLocation).toBe(byEnv);
      await ledger.append([{ stream: 'after', kind: 'note', agent: { id: 'kept-bot' }, data: { text: 'two' } } as EventInput & { stream: string }]);
      const cp = await ledger.seal();
      expect(fs.readFileSync(byEnv, 'utf8')).toBe(cp!.note);
    } finally {
      await ledger.close();
    }
    expect(fs.existsSync(sidecarPaths(file).sealed)).toBe(false);
  });

  it("[R-SEAL-RECORD-PATH] with the record outside the ledger's directory, an old checkpoint note written over <db>.sealed does not make the key sign a forged history", async () => {
    // Beside the ledger (the default), whoever writes its directory can roll the record back: the documented limit.
    const beside = fresh();
    rollBack(beside);
    expect(await sealFile(beside.file)).toMatchObject({ size: 13 });

    const { l, record } = keptElsewhere();
    rollBack(l);
    const before = snapshot(l.file);
    const ledger = SqliteLedger.open({ path: l.file, sealRecord: record });
    try {
      const error = await ledger.seal({ force: true }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'seal_refused' });
      expect(oneSentence((error as Error).message)).toMatch(new RegExp(`^Not signing: .*size 5.*size 13 \\(kept in ${record.replace(/[.]/g, '\\.')}\\)`));
    } finally {
      await ledger.close();
    }
    // The CLI, given the record by flag or by environment, refuses the same way.
    const byFlag = await runBin(['seal', '--force', '--store', `sqlite:${l.file}`, '--seal-record', record]);
    expect(byFlag.code).toBe(1);
    expect(oneSentence(byFlag.stderr)).toMatch(/^Not signing: /);
    const byEnv = await runBin(['seal', '--force', '--store', `sqlite:${l.file}`], { env: { WITNESS_SEAL_RECORD: record } });
    expect(byEnv.code).toBe(1);
    expect(snapshot(l.file)).toEqual(before);
    expect(fs.readFileSync(record, 'utf8')).toBe(base.checkpoints[2]!.note);
  });

  it('[R-SEAL-RECORD-PATH] with the record elsewhere, deleting every checkpoint and <db>.sealed does not make the ledger look new', async () => {
    const { l, record } = keptElsewhere();
    forge(l.file, (db) => {
      rewriteStream(db, B, 3, REFUND_DENIED);
      db.prepare('DELETE FROM checkpoints').run();
      db.prepare('DELETE FROM tree_nodes').run();
    });
    fs.rmSync(sidecarPaths(l.file).sealed);
    const ledger = SqliteLedger.open({ path: l.file, sealRecord: record });
    try {
      await expect(ledger.seal()).rejects.toMatchObject({ code: 'seal_refused', message: expect.stringMatching(/holds no checkpoint.*size 13/) });
    } finally {
      await ledger.close();
    }
    expect(snapshot(l.file).checkpoints).toBe(0);
  });

  it('[R-SEAL-RECORD-PATH] `witness verify --seal-record FILE` checks the ledger against the record kept elsewhere', async () => {
    const { l, record } = keptElsewhere();
    rollBack(l);
    // Beside the ledger it finds the rolled-back note, which the forgery extends.
    const beside = await runCli(['verify', '--store', `sqlite:${l.file}`, '--json']);
    expect((JSON.parse(beside.stdout) as { sealRecord: unknown }).sealRecord).toEqual({ location: sidecarPaths(l.file).sealed, size: 5, extended: true });
    const r = await runCli(['verify', '--store', `sqlite:${l.file}`, '--seal-record', record, '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { sealRecord: unknown; failures: Array<{ code: string }> };
    expect(report.sealRecord).toEqual({ location: record, size: 13, extended: false });
    expect(report.failures.map((f) => f.code)).toContain('sealed_record_mismatch');
    // A record that is not there, or given with a bundle, is bad usage.
    expect((await runCli(['verify', '--store', `sqlite:${l.file}`, '--seal-record', path.join(dir, 'no-such.sealed')])).code).toBe(2);
    expect((await runCli(['verify', dir, '--seal-record', record])).code).toBe(2);
  });

  it('[R-SEAL-RECORD-PATH] verify warns when checkpoints signed by the trusted key exist but no record is found, saying where it looked', async () => {
    const l = fresh();
    fs.rmSync(sidecarPaths(l.file).sealed);
    const r = await verifyFile(l.file, { trustedKeys: [l.vkey] });
    expect(where(r)).toEqual([]);
    const warning = r.warnings.find((w) => w.includes('record'));
    expect(warning).toBeDefined();
    expect(warning).toContain(`no record of its sealer's last checkpoint was found at ${sidecarPaths(l.file).sealed}`);
    expect(warning).toContain('--seal-record FILE');
    // With a record, or with nothing signed by the trusted key, there is nothing to warn about.
    expect((await verifyFile(base.file, { trustedKeys: [l.vkey] })).warnings.filter((w) => w.includes('record'))).toEqual([]);
    const other = await verifyFile(l.file, { trustedKeys: [generateKey('someone-else').verifierKey] });
    expect(other.warnings.filter((w) => w.includes('no record'))).toEqual([]);
  });

  it('[R-SEAL-RECORD-PATH] a record path in a directory that does not exist is refused when the ledger is opened for writing, before anything is signed', async () => {
    const file = path.join(dir, `nowhere-${Date.now()}.db`);
    const record = path.join(dir, 'no', 'such', 'dir', 'w.sealed');
    await expect(openWitness({ store: `sqlite:${file}`, sealRecord: record })).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining(path.dirname(record)),
    });
  });
});

describe('a second key beside the ledger', () => {
  it('[R-SECOND-KEY] a process holding another key neither adds it to the ledger nor signs with it', async () => {
    const l = fresh();
    const other = generateKey('other');
    const ledger = SqliteLedger.open({ path: l.file, env: { WITNESS_SIGNING_KEY: other.signerKey } });
    try {
      expect((await ledger.publicKeys()).map((k) => k.vkey)).toEqual([l.vkey]);
      await expect(ledger.seal({ force: true })).rejects.toMatchObject({ code: 'seal_refused', message: expect.stringMatching(/not this ledger's key/) });
      expect((await ledger.checkpoints()).length).toBe(3);
    } finally {
      await ledger.close();
    }
  });
});
