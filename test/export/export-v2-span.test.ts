import { beforeAll, describe, expect, it } from 'vitest';
import { resolveSpan, type SpanScope } from '../../src/export/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { WitnessError } from '../../src/core/index.js';
import { buildLedger, copyLedger, oneSentence, tamper, type BuiltLedger } from '../helpers/ledger.js';
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
    expect((err as WitnessError).code).toBe('store_corrupt');
    oneSentence((err as WitnessError).message);
    expect((err as WitnessError).message).toMatch(/index columns disagree with the hashed headers.*witness verify/);
  });

  it('refuses when a time or outcome column was edited, whatever the scope', async () => {
    const copy = copyLedger(base, dir);
    tamper(copy.file, (db) => {
      db.prepare(`UPDATE events SET ts = '1999-01-01T00:00:00.000Z', outcome = 'denied' WHERE pos = ?`).run(base.pos(base.sessions.a, 1));
    });
    await expect(spanOf(copy.file, {})).rejects.toThrow(/index columns disagree with the hashed headers \(position \d+, column "ts"\)/);
  });

  it('refuses when a stored header no longer matches its stored hash', async () => {
    const copy = copyLedger(base, dir);
    tamper(copy.file, (db) => {
      const pos = base.pos(base.sessions.b, 1);
      const h = db.prepare('SELECT header FROM events WHERE pos = ?').pluck().get(pos) as string;
      db.prepare('UPDATE events SET header = ? WHERE pos = ?').run(h.replace('"agent":{"id":"billing-bot"}', '"agent":{"id":"billing-boT"}'), pos);
    });
    await expect(spanOf(copy.file, {})).rejects.toThrow(/does not match its stored hash.*witness verify/);
  });

  it("refuses when a session's first events were moved to another stream in the columns (the scan cannot start after them)", async () => {
    const copy = copyLedger(base, dir);
    const b = base.sessions.b;
    tamper(copy.file, (db) => {
      db.prepare(`UPDATE events SET stream = 'elsewhere' WHERE stream = ? AND seq < 2`).run(b);
    });
    await expect(spanOf(copy.file, { sessions: [b] })).rejects.toThrow(/index columns disagree with the hashed headers/);
  });
});
