import { describe, expect, it } from 'vitest';
import { ScopeTracker, normaliseInstant, type ScopedHeader } from '../../src/export/index.js';
import { scopeFromFlags } from '../../src/cli/commands/export.js';
import { reportScope } from '../../src/cli/commands/report.js';
import { scopeTime } from '../../src/cli/commands/export-siem.js';
import { oneSentence } from '../helpers/ledger.js';

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
