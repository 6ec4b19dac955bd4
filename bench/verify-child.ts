/**
 * Child process for benchmark 5: verifies one ledger and reports its memory, so each measurement
 * starts from a clean process (nothing left over from other benchmarks or earlier sizes).
 * Usage: node --expose-gc verify-child.js <ledger.db> [--live]; prints one JSON line on stdout.
 * With --live it runs a full GC at every eighth of the ledger (and at its last page) and reports the live heap and RSS
 * after those GCs: what the verifier really retains, as opposed to garbage V8 has not yet collected.
 * verifyLedger runs with default options, so on a large ledger its worker threads are part of the
 * process: RSS and maxRSS include their heaps and connections; the heap figures are this thread's.
 */
import { SqliteLedger, verifyLedger } from '../src/store/index.js';

export interface ChildResult {
  events: number;
  ok: boolean;
  streams: number;
  ms: number;
  /** After opening the ledger, after a full GC, before verifying. */
  baseRss: number;
  baseHeapUsed: number;
  /** Highest values sampled at every progress report (each chunk taken in, or 5,000 rows in-thread) and at the end. */
  peakRss: number;
  peakHeapUsed: number;
  peakHeapTotal: number;
  peakExternal: number;
  /** Kernel high-water mark of the whole process (getrusage maxrss), bytes. */
  maxRss: number;
  /** --live only: highest heapUsed / RSS measured right after a forced full GC. */
  liveHeapUsed?: number;
  liveRss?: number;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  const live = process.argv[3] === '--live';
  if (file === undefined) throw new Error('usage: verify-child.js <ledger.db> [--live]');
  const ledger = SqliteLedger.open({ path: file, create: false });
  const g = (globalThis as { gc?: () => void }).gc;
  g?.();
  g?.();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakHeapUsed = base.heapUsed;
  let peakHeapTotal = base.heapTotal;
  let peakExternal = base.external;
  let liveHeapUsed = 0;
  let liveRss = 0;
  let nextLive = 0;
  const sample = (done = 0, total = 0) => {
    if (live && total > 0 && (done >= nextLive || done === total)) {
      nextLive = done + Math.max(5000, Math.ceil(total / 8));
      g?.();
      g?.();
      const l = process.memoryUsage();
      if (l.heapUsed > liveHeapUsed) liveHeapUsed = l.heapUsed;
      if (l.rss > liveRss) liveRss = l.rss;
      return;
    }
    const m = process.memoryUsage();
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.heapUsed > peakHeapUsed) peakHeapUsed = m.heapUsed;
    if (m.heapTotal > peakHeapTotal) peakHeapTotal = m.heapTotal;
    if (m.external > peakExternal) peakExternal = m.external;
  };
  const t = performance.now();
  const report = await verifyLedger(ledger, { onProgress: sample });
  const ms = performance.now() - t;
  sample();
  await ledger.close();
  const result: ChildResult = {
    events: report.events,
    ok: report.ok,
    streams: report.streams,
    ms,
    baseRss: base.rss,
    baseHeapUsed: base.heapUsed,
    peakRss,
    peakHeapUsed,
    peakHeapTotal,
    peakExternal,
    maxRss: process.resourceUsage().maxRSS * 1024,
    ...(live ? { liveHeapUsed, liveRss } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
