import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ScopeTracker, exportBundle, exportSiem, normaliseInstant, recordReview, type ScopedHeader } from '../../src/export/index.js';
import { normaliseScopeTimes } from '../../src/export/span.js';
import { SqliteLedger } from '../../src/store/index.js';
import { scopeFromFlags } from '../../src/cli/commands/export.js';
import { reportScope } from '../../src/cli/commands/report.js';
import { scopeTime } from '../../src/cli/commands/export-siem.js';
import { parseTime } from '../../src/cli/commands/query.js';
import { buildLedger, oneSentence } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

const at = (ts: string): ScopedHeader => ({ id: ts, stream: 's1', seq: 0, kind: 'tool.call', ts, agent: { id: 'a' }, outcome: 'denied' });

describe('ScopeTracker time window', () => {
  it('compares the stored ts with since/until as strings, so an impossible stored time lands where its text sorts (every verifier agrees)', () => {
    const window = new ScopeTracker({ since: '2026-11-01T10:00:00.000Z', until: '2026-11-01T11:00:00.000Z', agents: null, sessions: null });
    expect(window.inScope(at('2026-11-01T10:05:60.000Z'))).toBe(true);
    expect(window.inScope(at('2026-11-01T10:59:60.000Z'))).toBe(true);
    expect(window.inScope(at('2026-11-01T10:00:00.000Z'))).toBe(true);
    expect(window.inScope(at('2026-11-01T11:00:00.000Z'))).toBe(false);
    expect(window.inScope(at('2026-11-01T09:59:59.999Z'))).toBe(false);
    const day = new ScopeTracker({ since: '2026-11-30T00:00:00.000Z', until: '2026-12-01T00:00:00.000Z', agents: null, sessions: null });
    expect(day.inScope(at('2026-11-30T24:00:00.000Z'))).toBe(true);
    expect(day.inScope(at('2026-11-31T10:00:00.000Z'))).toBe(true);
    expect(day.inScope(at('2026-12-01T00:00:00.000Z'))).toBe(false);
  });
});

describe('since/until given to an export', () => {
  it('are normalised to YYYY-MM-DDTHH:MM:SS.mmmZ (the form the manifest holds and the tracker compares)', () => {
    expect(normaliseInstant('2026-11-01', '--since')).toBe('2026-11-01T00:00:00.000Z');
    expect(normaliseInstant('2026-11-01T09:00:00Z', '--since')).toBe('2026-11-01T09:00:00.000Z');
    expect(normaliseInstant('2026-11-01T09:00:00+02:00', '--since')).toBe('2026-11-01T07:00:00.000Z');
    expect(normaliseInstant('2028-02-29T23:59:59.999Z', '--until')).toBe('2028-02-29T23:59:59.999Z');
  });

  it.each(['2026-11-31', '2026-02-29', '2026-13-01', '2026-11-01T24:00:00Z', '2026-11-01T10:60:00Z', '2026-11-01T10:05:60Z', '2026-11-01T10:00:00+24:00', 'yesterday'])(
    'refuse %s, which is no real date or time, in one sentence (exit 2) — export, report, review and the SIEM export alike',
    (v) => {
      for (const run of [() => scopeFromFlags({ since: v, out: 'x' }), () => reportScope({ since: v }), ...(/^\d{4}-/.test(v) ? [() => scopeTime(v, '--since')] : [])]) {
        let err: unknown;
        try {
          run();
        } catch (e) {
          err = e;
        }
        expect(err).toMatchObject({ code: 'invalid_argument' });
        expect(oneSentence((err as Error).message)).toContain(`--since ${JSON.stringify(v)} is not a real date or time`);
      }
    },
  );
});

/** Every parser of a --since/--until: the scope flags (export, report, review), the SIEM export's and `witness query`'s. */
const PARSERS: Array<[string, (v: string, flag: string) => string]> = [
  ['export', (v, flag) => (flag === '--since' ? scopeFromFlags({ since: v, out: 'x' }).since! : scopeFromFlags({ until: v, out: 'x' }).until!)],
  ['report', (v, flag) => (flag === '--since' ? reportScope({ since: v }).since! : reportScope({ until: v }).until!)],
  ['SIEM export', (v, flag) => scopeTime(v, flag)],
  ['query', (v, flag) => parseTime(v, flag)],
];

function refusal(run: () => unknown): string {
  let err: unknown;
  try {
    run();
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({ code: 'invalid_argument' });
  return oneSentence((err as Error).message);
}

describe('a time without a zone', () => {
  it.each(['2026-11-01T10:00', '2026-11-01T10:00:00', '2026-11-01 10:00:00.5', '2026-11-01T10:00:00.000'])(
    'is refused by export, report, the SIEM export and query alike (%s): the machine’s own zone never decides an audit window',
    (v) => {
      for (const [name, parse] of PARSERS) {
        for (const flag of ['--since', '--until']) {
          expect(
            refusal(() => parse(v, flag)),
            `${name} ${flag}`,
          ).toBe(`${flag} ${JSON.stringify(v)} has no time zone; add Z for UTC or an offset such as +01:00.`);
        }
      }
    },
  );

  it('is refused whatever zone the process runs in, and a date alone is midnight UTC there too', () => {
    const saved = process.env['TZ'];
    try {
      for (const tz of ['Pacific/Kiritimati', 'America/Los_Angeles', 'UTC']) {
        process.env['TZ'] = tz;
        for (const [name, parse] of PARSERS) {
          expect(parse('2026-11-01', '--since'), `${name} in ${tz}`).toBe('2026-11-01T00:00:00.000Z');
          expect(parse('2026-11-01T10:00+01:00', '--since'), `${name} in ${tz}`).toBe('2026-11-01T09:00:00.000Z');
          refusal(() => parse('2026-11-01T10:00', '--since'));
        }
      }
    } finally {
      if (saved === undefined) delete process.env['TZ'];
      else process.env['TZ'] = saved;
    }
  });
});

describe('digits below the millisecond', () => {
  it('round up to the next millisecond, for since (t >= .0005 is t >= .001) and until (t < .0005 is t < .001) alike', () => {
    for (const [name, parse] of PARSERS) {
      for (const flag of ['--since', '--until']) {
        expect(parse('2026-11-01T10:00:00.0005Z', flag), name).toBe('2026-11-01T10:00:00.001Z');
        expect(parse('2026-11-01T10:00:00.000000001Z', flag), name).toBe('2026-11-01T10:00:00.001Z');
        expect(parse('2026-11-01T10:00:00.0010Z', flag), name).toBe('2026-11-01T10:00:00.001Z');
        expect(parse('2026-11-01T10:00:00.5Z', flag), name).toBe('2026-11-01T10:00:00.500Z');
        expect(parse('2026-11-01T23:59:59.9991Z', flag), name).toBe('2026-11-02T00:00:00.000Z');
        expect(parse('2026-11-01T10:00:00.0005+01:00', flag), name).toBe('2026-11-01T09:00:00.001Z');
      }
    }
  });

  it('keep an event at exactly .000 in a window ending at .0005 and leave it out of one starting there', () => {
    const event = at('2026-11-01T10:00:00.000Z');
    const next = at('2026-11-01T10:00:00.001Z');
    const until = new ScopeTracker({ since: null, until: normaliseInstant('2026-11-01T10:00:00.0005Z', '--until'), agents: null, sessions: null });
    expect(until.inScope(event)).toBe(true);
    expect(until.inScope(next)).toBe(false);
    const since = new ScopeTracker({ since: normaliseInstant('2026-11-01T10:00:00.0005Z', '--since'), until: null, agents: null, sessions: null });
    expect(since.inScope(event)).toBe(false);
    expect(since.inScope(next)).toBe(true);
  });
});

describe('roll-overs and out-of-range instants', () => {
  it.each(['2026-11-01T24:00:00Z', '2026-11-01T24:00Z', '2026-11-01T10:60Z', '2026-11-01T10:05:60Z', '2026-11-31', '2026-02-29T10:00Z', '2026-11-01T10:00+24:00', '2026-11-01T10:00+01:60'])(
    'are refused by query as by the export (%s), never rolled over',
    (v) => {
      for (const [name, parse] of PARSERS)
        expect(
          refusal(() => parse(v, '--since')),
          name,
        ).toContain(`--since ${JSON.stringify(v)} is not a real date or time`);
    },
  );

  it('refuse an offset that moves the instant out of the years 0000-9999, which stored times (compared as text) cannot hold', () => {
    for (const [name, parse] of PARSERS) {
      expect(
        refusal(() => parse('9999-12-31T23:00:00-02:00', '--until')),
        name,
      ).toContain('--until "9999-12-31T23:00:00-02:00" lies outside the years 0000-9999');
      expect(
        refusal(() => parse('0000-01-01T00:30:00+01:00', '--since')),
        name,
      ).toContain('lies outside the years 0000-9999');
      expect(parse('0000-01-01', '--since'), name).toBe('0000-01-01T00:00:00.000Z');
      expect(parse('0099-03-01T00:00Z', '--since'), name).toBe('0099-03-01T00:00:00.000Z');
    }
  });
});

describe('a scope given through the export module’s API', () => {
  it('is normalised there, once, and a time it cannot read is refused naming the scope field, not a CLI flag', async () => {
    const dir = tempDir('witness-scope-api-');
    const base = await buildLedger(dir);
    const ledger = SqliteLedger.open({ path: base.file, create: false });
    try {
      const none = { since: null, until: null, agents: null, sessions: null, regimes: [] };
      for (const [scope, sentence] of [
        [{ ...none, since: '2026-11-01T10:00' }, 'scope.since "2026-11-01T10:00" has no time zone; add Z for UTC or an offset such as +01:00.'],
        [{ ...none, until: '2026-11-01T24:00:00Z' }, 'scope.until "2026-11-01T24:00:00Z" is not a real date or time'],
      ] as const) {
        const run = [
          () => exportBundle(ledger, scope, path.join(dir, 'never')),
          () => recordReview(ledger, { population: 'denials', scope, disposition: 'ok', note: 'n', reviewer: 'r' }),
          () => exportSiem(ledger, new PassThrough(), { format: 'jsonl', scope }),
        ];
        for (const r of run) {
          const err: unknown = await r().catch((e: unknown) => e);
          expect(err).toMatchObject({ code: 'invalid_argument' });
          expect(oneSentence((err as Error).message)).toContain(sentence.replace(/\.$/, ''));
        }
      }
      const odd: unknown = await exportBundle(ledger, { ...none, since: 1 as unknown as string }, path.join(dir, 'never')).catch((e: unknown) => e);
      expect(oneSentence((odd as Error).message)).toMatch(/^The export scope is not valid \(.*\); give since and until as ISO times or null, and known regimes\.$/);
      expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
      // What the CLI hands over is already in that form; the API normalises anything else it can read.
      expect(normaliseScopeTimes({ ...none, since: '2026-11-01', until: '2026-11-01T10:00:00.0005Z' })).toEqual({ ...none, since: '2026-11-01T00:00:00.000Z', until: '2026-11-01T10:00:00.001Z' });
    } finally {
      await ledger.close();
    }
  });
});
