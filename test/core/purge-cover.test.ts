import { describe, expect, it } from 'vitest';
import { PurgeCover, type PurgeRecord } from '../../src/core/index.js';

const rec = (leaf: number, ranges: Array<[number, number]>): PurgeRecord => ({ leaf, id: `r${leaf}`, policy: 'p', count: 0, ranges });

describe('PurgeCover: which record answers for a purged leaf', () => {
  it('[R-RETENTION] the earliest record listing a leaf answers for it, whatever range starts first', () => {
    const c = PurgeCover.of([rec(100, [[10, 10]]), rec(300, [[9, 10]])]);
    expect([9, 10, 11].map((l) => c.at(l))).toEqual([300, 100, undefined]);
    const d = PurgeCover.of([
      rec(300, [[0, 20]]),
      rec(100, [
        [5, 6],
        [12, 12],
      ]),
      rec(200, [[6, 14]]),
    ]);
    expect(Array.from({ length: 22 }, (_, l) => d.at(l))).toEqual([300, 300, 300, 300, 300, 100, 100, 200, 200, 200, 200, 200, 100, 200, 200, 300, 300, 300, 300, 300, 300, undefined]);
  });

  it('[R-RETENTION] answers every leaf as the lowest record listing it, asked in order or not, and slices agree (2,000 seeded random covers)', () => {
    let seed = 0x5eed;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let round = 0; round < 2000; round++) {
      const leavesOf = new Set<number>();
      const records = Array.from({ length: rand(6) }, () => {
        let leaf = 50 + rand(40);
        while (leavesOf.has(leaf)) leaf++;
        leavesOf.add(leaf);
        // Ascending, disjoint ranges, as purgeRecordOf requires of one record.
        const out: Array<[number, number]> = [];
        let next = rand(10);
        for (let k = rand(5); k > 0 && next < 48; k--) {
          const to = Math.min(47, next + rand(8));
          out.push([next, to]);
          next = to + 2 + rand(6);
        }
        return rec(leaf, out);
      });
      const want = (l: number) => {
        const by = records.filter((r) => r.ranges.some(([a, b]) => a <= l && l <= b)).map((r) => r.leaf);
        return by.length === 0 ? undefined : Math.min(...by);
      };
      const c = PurgeCover.of(records);
      for (let l = 0; l < 52; l++) expect(c.at(l)).toBe(want(l));
      for (let l = 51; l >= 0; l -= 3) expect(c.at(l)).toBe(want(l));
      const s = new PurgeCover(c.slice(10, 30));
      for (let l = 10; l < 30; l++) expect(s.at(l)).toBe(want(l));
    }
  });
});
