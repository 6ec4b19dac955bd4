import { describe, expect, it } from 'vitest';
import { TimeParam } from '../../src/server/schemas.js';

describe('the API reads ?since= and ?until= as the CLI reads --since and --until', () => {
  it('normalises a zoned time and a date to the stored form, rounding digits below the millisecond up', () => {
    expect(TimeParam.parse('2026-11-01T10:00:00+01:00')).toBe('2026-11-01T09:00:00.000Z');
    expect(TimeParam.parse('2026-11-01')).toBe('2026-11-01T00:00:00.000Z');
    expect(TimeParam.parse('2026-11-01T10:00:00.0005Z')).toBe('2026-11-01T10:00:00.001Z');
  });

  it('refuses a roll-over, a time without a zone and a year beyond 9999 with the reason', () => {
    for (const [v, why] of [
      ['2026-01-01T24:00:00Z', /is not a real date or time/],
      ['2026-02-30', /is not a real date or time/],
      ['2026-11-01T10:00', /has no time zone; add Z for UTC/],
      ['9999-12-31T23:00-02:00', /outside the years 0000-9999/],
      ['yesterday', /is not a real date or time/],
    ] as const) {
      const r = TimeParam.safeParse(v);
      expect(r.success, v).toBe(false);
      expect(r.error?.issues[0]?.message, v).toMatch(why);
    }
  });
});
