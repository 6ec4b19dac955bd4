import { beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/store/index.js';
import { oneSentence, runBin, runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The time window through the real commands, on a real SQLite ledger whose events sit at exact
 * milliseconds: digits below the millisecond round up (so neither edge drops or adds an event), and
 * a time without a zone is refused by every command that takes one, whatever zone the machine is in.
 */
const dir = tempDir('witness-time-window-');
let store: string;
const stream = 'edge-session';

beforeAll(async () => {
  store = `sqlite:${tempDb(dir)}`;
  const ledger = await openLedger(store, { name: 'time-window' });
  try {
    const agent = { id: 'edge-bot' };
    await ledger.append([
      { stream, agent, ts: '2026-11-01T09:59:59.999Z', kind: 'session.start', data: {} },
      { stream, agent, ts: '2026-11-01T10:00:00.000Z', kind: 'note', data: { text: 'at .000' } },
      { stream, agent, ts: '2026-11-01T10:00:00.001Z', kind: 'note', data: { text: 'at .001' } },
    ]);
    await ledger.seal();
  } finally {
    await ledger.close();
  }
});

async function queried(...args: string[]): Promise<string[]> {
  const r = await runCli(['query', '--store', store, '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { events: Array<{ ts: string }> }).events.map((e) => e.ts);
}

describe('witness query with digits below the millisecond', () => {
  it('keeps the event at .000 before --until .0005Z, and not the one at .001', async () => {
    expect(await queried('--until', '2026-11-01T10:00:00.0005Z')).toEqual(['2026-11-01T09:59:59.999Z', '2026-11-01T10:00:00.000Z']);
  });

  it('leaves the event at .000 out of --since .0005Z and keeps the one at .001', async () => {
    expect(await queried('--since', '2026-11-01T10:00:00.0005Z')).toEqual(['2026-11-01T10:00:00.001Z']);
  });

  it('reads a date alone as midnight UTC and an offset as that offset', async () => {
    expect(await queried('--since', '2026-11-01', '--until', '2026-11-02')).toHaveLength(3);
    expect(await queried('--since', '2026-11-01T11:00:00.001+01:00')).toEqual(['2026-11-01T10:00:00.001Z']);
  });
});

describe('a time without a zone', () => {
  const commands: Array<[string, string[]]> = [
    ['query', ['query', '--store']],
    ['sessions', ['sessions', '--store']],
    ['export', ['export', '-o', 'never-written.zip', '--store']],
    ['report', ['report', '-o', 'never-written.html', '--store']],
    ['review', ['review', '--population', 'denials', '--disposition', 'ok', '--note', 'n', '--reviewer', 'r', '--store']],
  ];

  it.each(commands)('is refused by witness %s with exit 2 and one sentence, in any zone the machine is set to', async (_name, args) => {
    const saved = process.env['TZ'];
    try {
      for (const tz of ['Pacific/Kiritimati', 'UTC']) {
        process.env['TZ'] = tz;
        const r = await runCli([...args, store, '--since', '2026-11-01T10:00']);
        expect(r.code).toBe(2);
        expect(r.stdout).toBe('');
        expect(oneSentence(r.stderr)).toBe('--since "2026-11-01T10:00" has no time zone; add Z for UTC or an offset such as +01:00.');
      }
    } finally {
      if (saved === undefined) delete process.env['TZ'];
      else process.env['TZ'] = saved;
    }
  });

  it('is refused by the real binary started in a zone 14 hours from UTC, where a date alone is still midnight UTC', async () => {
    const env = { TZ: 'Pacific/Kiritimati' };
    const refused = await runBin(['query', '--store', store, '--until', '2026-11-01T10:00:00.0005'], { env });
    expect(refused.code).toBe(2);
    expect(oneSentence(refused.stderr)).toBe('--until "2026-11-01T10:00:00.0005" has no time zone; add Z for UTC or an offset such as +01:00.');
    const day = await runBin(['query', '--store', store, '--json', '--since', '2026-11-01', '--until', '2026-11-01T10:00:00.0005Z'], { env });
    expect(day.stderr).toBe('');
    expect((JSON.parse(day.stdout) as { events: Array<{ ts: string }> }).events.map((e) => e.ts)).toEqual(['2026-11-01T09:59:59.999Z', '2026-11-01T10:00:00.000Z']);
  });

  it('is refused by witness query for T24:00 too, never rolled over to the next day', async () => {
    const r = await runCli(['query', '--store', store, '--until', '2026-11-01T24:00:00Z']);
    expect(r.code).toBe(2);
    expect(oneSentence(r.stderr)).toContain('--until "2026-11-01T24:00:00Z" is not a real date or time');
  });
});
