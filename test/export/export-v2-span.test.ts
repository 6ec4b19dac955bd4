import { beforeAll, describe, expect, it } from 'vitest';
import { resolveSpan, type SpanScope } from '../../src/export/index.js';
import { hashedHeaderOfRow, type ScanRow } from '../../src/export/span.js';
import { SqliteLedger } from '../../src/store/index.js';
import { WitnessError } from '../../src/core/index.js';
import { canonicalize, eventHash } from '../../src/core/index.js';
import { buildLedger, copyLedger, oneSentence, rewriteStream, tamper, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-span-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

const none: SpanScope = { since: null, until: null, agents: null, sessions: null };

async function span(scope: Partial<SpanScope>) {
  const ledger = SqliteLedger.open({ path: base.file, create: false });
  try {
    return await resolveSpan(ledger, { ...none, ...scope });
  } finally {
    await ledger.close();
  }
}

describe('resolveSpan', () => {
  it('is the smallest leaf range holding every event of the named session', async () => {
    const b = base.sessions.b;
    expect(await span({ sessions: [b] })).toEqual({ from: base.pos(b, 0), to: base.pos(b, 4) + 1 });
  });

  it('covers every named session and agent, and a session and an agent must both hold', async () => {
    const { a, c } = base.sessions;
    expect(await span({ sessions: [a, c] })).toEqual({ from: base.pos(a, 0), to: base.pos(c, 1) + 1 });
    expect(await span({ agents: ['ops-bot'] })).toEqual({ from: base.pos(c, 0), to: base.pos(c, 1) + 1 });
    expect(await span({ agents: ['ops-bot'], sessions: [a] })).toBeUndefined();
  });

  it('follows the time window as instants, and is undefined when nothing is in scope', async () => {
    expect(await span({ since: '2000-01-01T00:00:00Z' })).toEqual({ from: 0, to: base.size });
    expect(await span({ until: '2000-01-01T00:00:00Z' })).toBeUndefined();
    expect(await span({ sessions: ['no-such-session'] })).toBeUndefined();
  });
});

describe('resolveSpan on a ledger whose index columns were edited', () => {
  async function spanOf(file: string, scope: Partial<SpanScope>) {
    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      return await resolveSpan(ledger, { ...none, ...scope });
    } finally {
      await ledger.close();
    }
  }

  it('refuses, in one sentence, when an agent column disagrees with the hashed header (the span cannot shrink around a hidden event)', async () => {
    const copy = copyLedger(base, dir);
    tamper(copy.file, (db) => {
      db.prepare(`UPDATE events SET agent = 'support-bot' WHERE stream = ?`).run(base.sessions.b);
    });
    const err = await spanOf(copy.file, { agents: ['billing-bot'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WitnessError);
    expect((err as WitnessError).code).toBe('verification_failed');
    oneSentence((err as WitnessError).message);
    expect((err as WitnessError).message).toMatch(/fails verification \(\d+ problems?, the first column_mismatch at position \d+.*witness verify/);
  });

  it('refuses when a time or outcome column was edited, whatever the scope', async () => {
    const copy = copyLedger(base, dir);
    tamper(copy.file, (db) => {
      db.prepare(`UPDATE events SET ts = '1999-01-01T00:00:00.000Z', outcome = 'denied' WHERE pos = ?`).run(base.pos(base.sessions.a, 1));
    });
    await expect(spanOf(copy.file, {})).rejects.toThrow(/fails verification .*column_mismatch at position \d+/);
  });

  it('refuses when a stored header no longer matches its stored hash', async () => {
    const copy = copyLedger(base, dir);
    tamper(copy.file, (db) => {
      const pos = base.pos(base.sessions.b, 1);
      const h = db.prepare('SELECT header FROM events WHERE pos = ?').pluck().get(pos) as string;
      db.prepare('UPDATE events SET header = ? WHERE pos = ?').run(h.replace('"agent":{"id":"billing-bot"}', '"agent":{"id":"billing-boT"}'), pos);
    });
    await expect(spanOf(copy.file, {})).rejects.toThrow(/fails verification \(\d+ problems?, the first \w+ at position \d+/);
  });

  it("refuses when a session's first events were moved to another stream in the columns (the scan cannot start after them)", async () => {
    const copy = copyLedger(base, dir);
    const b = base.sessions.b;
    tamper(copy.file, (db) => {
      db.prepare(`UPDATE events SET stream = 'elsewhere' WHERE stream = ? AND seq < 2`).run(b);
    });
    await expect(spanOf(copy.file, { sessions: [b] })).rejects.toThrow(/fails verification/);
  });

  // Verification comes first; the row checks stay for a database edited between it and the scan.
  it('reads a scanned row only when its header matches its stored hash and every index column', async () => {
    const copy = copyLedger(base, dir);
    const pos = base.pos(base.sessions.a, 1);
    tamper(copy.file, (db) => db.prepare(`UPDATE events SET outcome = 'denied' WHERE pos = ?`).run(pos));
    const ledger = SqliteLedger.open({ path: copy.file, create: false, readonly: true });
    try {
      const rows: ScanRow[] = [];
      for await (const page of ledger.scanForVerify(pos - 1, pos + 1, 10)) rows.push(...page);
      expect(hashedHeaderOfRow(rows[0]!).id).toBe(rows[0]!.id);
      expect(() => hashedHeaderOfRow(rows[1]!)).toThrow(/index columns disagree with the hashed headers \(position \d+, column "outcome"\)/);
      expect(() => hashedHeaderOfRow({ ...rows[0]!, hash: rows[1]!.hash })).toThrow(/does not match its stored hash/);
    } finally {
      await ledger.close();
    }
  });
});

describe('resolveSpan on a ledger edited consistently, header and stored hash together', () => {
  async function spanOf(file: string, scope: Partial<SpanScope>) {
    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      return await resolveSpan(ledger, { ...none, ...scope });
    } finally {
      await ledger.close();
    }
  }

  /** Moves one event's time out of every window by rewriting its header, columns and stored hash alike, as someone who can write the database would. */
  function moveOut(db: import('better-sqlite3').Database, pos: number): void {
    const row = db.prepare('SELECT header FROM events WHERE pos = ?').get(pos) as { header: string };
    const h = JSON.parse(row.header) as Record<string, unknown>;
    h['ts'] = '1999-01-01T00:00:00.000Z';
    const header = canonicalize(h);
    const hash = eventHash(Buffer.from(h['prev'] as string, 'hex'), header);
    db.prepare('UPDATE events SET header = ?, hash = ?, ts = ? WHERE pos = ?').run(header, hash, h['ts'], pos);
  }

  it('refuses, in one sentence, an event whose header and stored hash were both rewritten (its successor still links to the old hash), so the span cannot shrink around it', async () => {
    const copy = copyLedger(base, dir);
    const c = base.sessions.c;
    // The last event of the ledger's newest session: dropping it from the window would shrink the span.
    tamper(copy.file, (db) => moveOut(db, base.pos(c, 0)));
    const err = await spanOf(copy.file, { since: '2000-01-01T00:00:00Z' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WitnessError);
    expect((err as WitnessError).code).toBe('verification_failed');
    oneSentence((err as WitnessError).message);
    expect((err as WitnessError).message).toMatch(/fails verification.*witness verify/);
  });

  it('refuses a sealed stream rewritten to the end with every link re-made (only the signed checkpoints can tell)', async () => {
    const copy = copyLedger(base, dir);
    tamper(copy.file, (db) => rewriteStream(db, base.sessions.a, 1, { text: 'nothing happened' }));
    await expect(spanOf(copy.file, { sessions: [base.sessions.b] })).rejects.toThrow(/fails verification/);
  });
});
