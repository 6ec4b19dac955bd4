/**
 * Benchmark 5 — peak memory while verifying ledgers of growing size. Each measurement runs in a
 * fresh child process (bench/verify-child.ts) so nothing from other benchmarks inflates it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Config } from './config.js';
import type { LargeLedgers } from './ledgers.js';
import type { ChildResult } from './verify-child.js';
import { fmtInt, fmtMiB, log, mdTable, median, type Section, type Verdict } from './util.js';

const CHILD = fileURLToPath(new URL('./verify-child.js', import.meta.url));
const MiB = 1024 * 1024;

function runChild(path: string, live = false): ChildResult {
  const r = spawnSync(process.execPath, ['--expose-gc', CHILD, path, ...(live ? ['--live'] : [])], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`verify child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

export async function benchMemory(cfg: Config, ledgers: LargeLedgers): Promise<Section> {
  const sizes = cfg.memory.sizes;
  const reps = cfg.memory.reps;
  const results = new Map<number, ChildResult[]>();
  const lives = new Map<number, ChildResult>();
  for (const size of sizes) {
    const path = await ledgers.path(size);
    const rs: ChildResult[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const r = runChild(path);
      if (!r.ok || r.events !== size) throw new Error(`verification of the ${size}-event ledger did not pass`);
      rs.push(r);
      log(`memory: ${fmtInt(size)} events rep ${rep + 1}/${reps}: peak RSS ${fmtMiB(r.maxRss)} MiB, peak heap ${fmtMiB(r.peakHeapUsed)} MiB, ${fmtInt((size / r.ms) * 1000)} ev/s`);
    }
    results.set(size, rs);
    const l = runChild(path, true);
    lives.set(size, l);
    log(`memory: ${fmtInt(size)} events, live after full GCs: heap ${fmtMiB(l.liveHeapUsed ?? Number.NaN)} MiB, RSS ${fmtMiB(l.liveRss ?? Number.NaN)} MiB`);
  }
  const med = (size: number, f: (r: ChildResult) => number) => median(results.get(size)!.map(f));
  const table = mdTable(
    [
      'ledger size',
      'sessions (streams)',
      'RSS before verify MiB',
      '**peak RSS MiB** (kernel maxrss)',
      'peak RSS sampled MiB',
      'heap used before MiB',
      '**peak heap used MiB**',
      'peak heap total MiB',
      'peak external MiB',
      'verify events/s',
      'live heap after full GC MiB',
      'RSS after full GC MiB',
    ],
    sizes.map((s) => [
      fmtInt(s),
      fmtInt(med(s, (r) => r.streams)),
      fmtMiB(med(s, (r) => r.baseRss)),
      fmtMiB(med(s, (r) => r.maxRss)),
      fmtMiB(med(s, (r) => r.peakRss)),
      fmtMiB(med(s, (r) => r.baseHeapUsed)),
      fmtMiB(med(s, (r) => r.peakHeapUsed)),
      fmtMiB(med(s, (r) => r.peakHeapTotal)),
      fmtMiB(med(s, (r) => r.peakExternal)),
      fmtInt(med(s, (r) => (r.events / r.ms) * 1000)),
      fmtMiB(lives.get(s)?.liveHeapUsed ?? Number.NaN),
      fmtMiB(lives.get(s)?.liveRss ?? Number.NaN),
    ]),
  );
  const small = sizes[0]!;
  const big = sizes[sizes.length - 1]!;
  const rssS = med(small, (r) => r.maxRss);
  const rssB = med(big, (r) => r.maxRss);
  const heapS = med(small, (r) => r.peakHeapUsed);
  const heapB = med(big, (r) => r.peakHeapUsed);
  const streamsS = med(small, (r) => r.streams);
  const streamsB = med(big, (r) => r.streams);
  const rssMet = rssB <= rssS * 1.1;
  const heapMet = heapB <= heapS * 1.1;
  const liveS = lives.get(small)?.liveHeapUsed ?? Number.NaN;
  const liveB = lives.get(big)?.liveHeapUsed ?? Number.NaN;
  const perStream = streamsB > streamsS ? (liveB - liveS) / (streamsB - streamsS) : Number.NaN;
  const streamNote =
    `What the verifier retains (heap right after a forced full GC, measured in a separate run per size) goes from ${fmtMiB(liveS)} to ${fmtMiB(liveB)} MiB; ` +
    `it keeps one entry per stream (next seq, last hash) for the whole run, so it is O(streams + log n) — ${fmtInt(streamsS)} → ${fmtInt(streamsB)} sessions here` +
    `${Number.isFinite(perStream) && perStream > 0 ? `, ~${fmtInt(perStream)} bytes per additional session` : ''}. ` +
    'The peaks above that are garbage V8 has not collected yet (every event allocates parsed headers, validated copies, hex strings and hash buffers), and V8 lets the heap grow further before collecting on a longer run.';
  const limitFor = (what: string, from: number, to: number) =>
    `Of the ${fmtMiB(to - from)} MiB rise in ${what}, only ${fmtMiB(liveB - liveS)} MiB is memory the verifier keeps (live heap after a full GC: ${fmtMiB(liveS)} → ${fmtMiB(liveB)} MiB, its per-stream map of ${fmtInt(streamsS)} → ${fmtInt(streamsB)} sessions); the rest is per-event garbage (parsed headers, validated copies, hex strings, hash buffers) that V8 lets accumulate longer before collecting on a longer run.`;
  const verdicts: Verdict[] = [
    {
      target: `peak RSS does not grow with ledger size (${fmtInt(big)} within 10 % of ${fmtInt(small)})`,
      measured: `${fmtMiB(rssS)} → ${fmtMiB(rssB)} MiB (${rssB >= rssS ? '+' : ''}${(((rssB - rssS) / rssS) * 100).toFixed(1)} %)`,
      met: rssMet,
      ...(rssMet ? {} : { note: limitFor('peak RSS', rssS, rssB) }),
    },
    {
      target: `peak heap used does not grow with ledger size (${fmtInt(big)} within 10 % of ${fmtInt(small)})`,
      measured: `${fmtMiB(heapS)} → ${fmtMiB(heapB)} MiB (${heapB >= heapS ? '+' : ''}${(((heapB - heapS) / heapS) * 100).toFixed(1)} %)`,
      met: heapMet,
      ...(heapMet ? {} : { note: limitFor('peak heap used', heapS, heapB) }),
    },
  ];
  return {
    id: 'memory',
    title: '5. Peak memory while verifying',
    method: [
      `\`verifyLedger\` with default options over the shared ledger at ${sizes.map(fmtInt).join(', ')} events (the smaller ones are copies of the same ledger taken while it was built), each in a fresh \`node --expose-gc\` child process that opens the ledger, runs a full GC, then verifies; memory is sampled at every progress report (every chunk of 32,768 events taken in from the worker threads, every 5,000 rows checked in-thread) and the kernel's high-water mark (\`process.resourceUsage().maxRSS\`) is read at the end. At these sizes verification runs on worker threads (one per core), each with its own V8 heap and SQLite connection: RSS and maxRSS count them (they are the process's), heap figures are the main thread's only. ${reps} repetitions per size, medians shown.`,
      'The issue asks for peak memory flat from 250k to 1M events; the criterion used is that the peak at the largest size stays within 10 % of the peak at the smallest (4× fewer events). ' +
        `For reference, ${fmtInt(big)} events would take ~${fmtInt((big * 700) / MiB)} MiB if held in memory at ~700 bytes per row.`,
    ],
    body: [table, streamNote],
    verdicts,
  };
}
