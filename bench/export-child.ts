/**
 * Child process for the export benchmark: one export, one verification of the ledger alone (the
 * check every export starts with), or one offline verification of the bundle — by `witness verify`
 * (verifyZipBundle) or by the standalone verify.mjs the bundle carries — in a fresh process so its
 * peak RSS (getrusage maxrss) is its own. Run with --trace-gc, the parent reads the peak heap from
 * the lines V8 prints (bench/export.ts peakHeap).
 *
 * Usage: node export-child.js export <ledger.db> <out.zip> | ledger <ledger.db> | verify <bundle.zip> | standalone <verify.mjs> <bundle.zip>
 * Prints one JSON line, last.
 */
import { pathToFileURL } from 'node:url';
import { exportBundle, verifyZipBundle } from '../src/export/index.js';
import { SqliteLedger, verifyLedger } from '../src/store/index.js';

export interface ExportChildResult {
  ms: number;
  /** Kernel high-water mark of the whole process, bytes. */
  maxRss: number;
  /** RSS right before the measured work began. */
  baseRss: number;
  ok: boolean;
  events: number;
  artifacts: number;
  /** verify: the first failure, when it did not pass. */
  failure?: string;
}

type Done = Omit<ExportChildResult, 'ms' | 'maxRss' | 'baseRss'>;

/** The standalone verifier's report, as much of it as is read here. */
interface StandaloneReport {
  ok: boolean;
  events: number;
  artifacts: number;
  first?: { code: string; reason: string };
}

async function run(what: string | undefined, a: string | undefined, b: string | undefined): Promise<Done> {
  if (what === 'export' && a !== undefined && b !== undefined) {
    const ledger = SqliteLedger.open({ path: a, create: false });
    try {
      const r = await exportBundle(ledger, { since: null, until: null, agents: ['shot-bot'], sessions: null, regimes: ['soc2'] }, b, { actor: 'bench' });
      return { ok: true, events: r.events, artifacts: r.artifacts };
    } finally {
      await ledger.close();
    }
  }
  if (what === 'ledger' && a !== undefined) {
    const ledger = SqliteLedger.open({ path: a, create: false });
    try {
      const r = await verifyLedger(ledger);
      return { ok: r.ok, events: r.events, artifacts: r.artifacts, ...(r.first === undefined ? {} : { failure: `${r.first.code}: ${r.first.reason}` }) };
    } finally {
      await ledger.close();
    }
  }
  if (what === 'verify' && a !== undefined) {
    const r = await verifyZipBundle(a);
    return { ok: r.ok, events: r.events, artifacts: r.artifacts, ...(r.first === undefined ? {} : { failure: `${r.first.code}: ${r.first.reason}` }) };
  }
  if (what === 'standalone' && a !== undefined && b !== undefined) {
    // The same file the bundle carries as verify.mjs, imported rather than run so this process's
    // peak RSS is the verifier's own; it runs its command line only when it is the entry script.
    const mod = (await import(pathToFileURL(a).href)) as { verifyTarget: (target: string) => Promise<StandaloneReport> };
    const r = await mod.verifyTarget(b);
    return { ok: r.ok, events: r.events, artifacts: r.artifacts, ...(r.first === undefined ? {} : { failure: `${r.first.code}: ${r.first.reason}` }) };
  }
  throw new Error('usage: export-child.js export <ledger.db> <out.zip> | ledger <ledger.db> | verify <bundle.zip> | standalone <verify.mjs> <bundle.zip>');
}

async function main(): Promise<void> {
  const [what, a, b] = process.argv.slice(2);
  const baseRss = process.memoryUsage().rss;
  const t = performance.now();
  const result = await run(what, a, b);
  const ms = performance.now() - t;
  process.stdout.write(`${JSON.stringify({ ...result, ms, baseRss, maxRss: process.resourceUsage().maxRSS * 1024 } satisfies ExportChildResult)}\n`);
}

await main();
