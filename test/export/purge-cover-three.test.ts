import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PurgeCover, UNPURGEABLE_KINDS, type PurgeRecord } from '../../src/core/index.js';
import { GOVERNANCE_KINDS } from '../../src/export/purges.js';
import { REPO_ROOT } from '../helpers/ledger.js';

/**
 * Which purge record answers for a leaf several records list (docs/FORMAT.md 3.6, 7.13): the
 * earliest, in core's PurgeCover (witness verify, ledger and bundle), the standalone verify.mjs and
 * the Python verifier alike; and the kinds the three hold never purged are core's.
 */

type Span = { from: number; to: number; by: number };
const PY = '/usr/bin/python3';
const INDEPENDENT = path.join(REPO_ROOT, 'test', 'export', 'independent');

async function standalone(): Promise<{ ownedRanges(r: Span[]): Span[] }> {
  return (await import(pathToFileURL(path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs')).href)) as { ownedRanges(r: Span[]): Span[] };
}

/** The Python verifier's Purges, finished over each case's ranges (listed in record order, as purges.jsonl is read). */
function python(cases: Span[][]): Array<Array<[number, number, number]>> {
  const code = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(INDEPENDENT)})`,
    'import verify_bundle as v',
    'out = []',
    'for spans in json.load(sys.stdin):',
    '    p = v.Purges()',
    '    p.ranges = [(s["from"], s["to"], s["by"]) for s in spans]',
    '    p.finish()',
    '    out.append([list(r) for r in p.ranges])',
    'print(json.dumps(out))',
  ].join('\n');
  return JSON.parse(execFileSync(PY, ['-c', code], { input: JSON.stringify(cases), encoding: 'utf8' })) as Array<Array<[number, number, number]>>;
}

/** Random records with ascending, disjoint ranges of their own, overlapping each other. */
function randomCases(n: number): Span[][] {
  let seed = 0xc0ffee;
  const rand = (k: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % k;
  };
  return Array.from({ length: n }, () => {
    const spans: Span[] = [];
    const leaves = [...new Set(Array.from({ length: rand(6) }, () => 50 + rand(40)))].sort((a, b) => a - b);
    for (const by of leaves) {
      let next = rand(10);
      for (let k = rand(5); k > 0 && next < 48; k--) {
        const to = Math.min(47, next + rand(8));
        spans.push({ from: next, to, by });
        next = to + 2 + rand(6);
      }
    }
    return spans;
  });
}

const records = (spans: Span[]): PurgeRecord[] => {
  const by = new Map<number, Array<[number, number]>>();
  for (const s of spans) by.set(s.by, [...(by.get(s.by) ?? []), [s.from, s.to]]);
  return [...by].map(([leaf, ranges]) => ({ leaf, id: `r${leaf}`, policy: 'p', count: 0, ranges }));
};

const owner = (runs: Array<[number, number, number]>, leaf: number) => runs.find(([a, b]) => a <= leaf && leaf <= b)?.[2];

describe('the earliest purge record answers for a leaf, in all three verifiers', () => {
  it("[R-RETENTION] record A at leaf 100 lists [10, 10], B at leaf 300 lists [9, 10]: leaf 10 is A's in core, verify.mjs and Python", async () => {
    const spans: Span[] = [
      { from: 10, to: 10, by: 100 },
      { from: 9, to: 10, by: 300 },
    ];
    const c = PurgeCover.of(records(spans));
    expect([c.at(9), c.at(10)]).toEqual([300, 100]);
    expect((await standalone()).ownedRanges(spans)).toEqual([
      { from: 9, to: 9, by: 300 },
      { from: 10, to: 10, by: 100 },
    ]);
    expect(python([spans])).toEqual([
      [
        [9, 9, 300],
        [10, 10, 100],
      ],
    ]);
  });

  it('[R-RETENTION] the three agree with the lowest record listing each leaf on 500 seeded random covers', async () => {
    const cases = randomCases(500);
    const S = await standalone();
    const py = python(cases);
    cases.forEach((spans, i) => {
      const c = PurgeCover.of(records(spans));
      const js = S.ownedRanges(spans).map((s): [number, number, number] => [s.from, s.to, s.by]);
      for (let leaf = 0; leaf < 50; leaf++) {
        const want = spans.filter((s) => s.from <= leaf && leaf <= s.to).reduce<number | undefined>((m, s) => (m === undefined || s.by < m ? s.by : m), undefined);
        expect([c.at(leaf), owner(js, leaf), owner(py[i]!, leaf)]).toEqual([want, want, want]);
      }
    });
  });

  it("[R-RETENTION] [R-HALT] the kinds all three never count as purged are core's UNPURGEABLE_KINDS, halts and resumes among them", async () => {
    const want = [...UNPURGEABLE_KINDS].sort();
    expect(want).toEqual(expect.arrayContaining(['human.halt', 'human.resume']));
    expect([...GOVERNANCE_KINDS].sort()).toEqual(want);
    const mjs = /const GOVERNANCE_KINDS = \[([^\]]*)\]/.exec(await import('node:fs').then((fs) => fs.readFileSync(path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs'), 'utf8')))![1]!;
    expect([...mjs.matchAll(/'([^']+)'/g)].map((m) => m[1]).sort()).toEqual(want);
    const py = execFileSync(PY, ['-c', `import sys, json; sys.path.insert(0, ${JSON.stringify(INDEPENDENT)}); import verify_bundle as v; print(json.dumps(sorted(v.GOVERNANCE_KINDS)))`], {
      encoding: 'utf8',
    });
    expect(JSON.parse(py)).toEqual(want);
  });
});
