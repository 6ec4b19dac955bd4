import { describe, expect, it } from 'vitest';
import { isoAt, uuidv7At } from '../../src/core/ids.js';

const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16);

describe('event ids (UUIDv7, RFC 9562)', () => {
  it('carry the millisecond they were made in, version 7 and the RFC variant', () => {
    const t = Date.UTC(2026, 11, 6, 8, 0, 0, 123);
    const id = uuidv7At(t + 10_000);
    expect(id).toMatch(UUID7);
    expect(msOf(id)).toBe(t + 10_000);
  });

  it('sort in the order they were made within one millisecond, past the 12-bit counter, and never go back when the clock does', () => {
    const t = Date.UTC(2026, 11, 6, 9, 0, 0, 0);
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) ids.push(uuidv7At(t));
    for (let i = 0; i < 100; i++) ids.push(uuidv7At(t - 5_000));
    ids.push(uuidv7At(t + 60_000));
    for (const id of ids) expect(id).toMatch(UUID7);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!, `${ids[i - 1]} then ${ids[i]}`).toBe(true);
    // The counter runs ahead of the clock by at most a few milliseconds under such a burst.
    expect(msOf(ids[9_999]!) - t).toBeLessThan(10);
    expect(msOf(ids.at(-1)!)).toBe(t + 60_000);
  });

  it('are unique and keep 62 random bits, so two processes stamping the same millisecond do not collide', () => {
    const t = Date.UTC(2026, 11, 6, 10);
    const ids = Array.from({ length: 50_000 }, (_, i) => uuidv7At(t + Math.floor(i / 1000)));
    expect(new Set(ids).size).toBe(ids.length);
    // rand_b (the last 62 bits) differs between ids of one millisecond.
    const tails = new Set(ids.slice(0, 1000).map((id) => id.slice(19)));
    expect(tails.size).toBe(1000);
  });

  it('fall back to the last millisecond seen for a time outside the 48-bit range', () => {
    expect(uuidv7At(Number.NaN)).toMatch(UUID7);
    expect(uuidv7At(-1)).toMatch(UUID7);
    expect(uuidv7At(2 ** 50)).toMatch(UUID7);
  });
});

describe('event timestamps', () => {
  it('are the ISO-8601 text of the millisecond, cached per millisecond', () => {
    for (const t of [0, Date.UTC(2026, 10, 23, 10, 0, 0, 123), Date.UTC(2026, 10, 23, 10, 0, 0, 124), Date.UTC(2026, 10, 23, 10, 0, 0, 124)]) {
      expect(isoAt(t)).toBe(new Date(t).toISOString());
    }
    expect(() => isoAt(Number.NaN)).toThrow(RangeError);
  });
});
