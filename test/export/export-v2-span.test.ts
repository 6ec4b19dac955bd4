import { beforeAll, describe, expect, it } from 'vitest';
import { resolveSpan, type SpanScope } from '../../src/export/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { buildLedger, type BuiltLedger } from '../helpers/ledger.js';
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
