/**
 * Child process for the export benchmark: one export, or one offline verification of the bundle,
 * in a fresh process so its peak RSS (getrusage maxrss) is its own.
 * Usage: node export-child.js export <ledger.db> <out.zip> | verify <bundle.zip>; prints one JSON line.
 */
import { exportBundle, verifyZipBundle } from '../src/export/index.js';
import { SqliteLedger } from '../src/store/index.js';

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

async function main(): Promise<void> {
  const [what, a, b] = process.argv.slice(2);
  const baseRss = process.memoryUsage().rss;
  const t = performance.now();
  let result: Omit<ExportChildResult, 'ms' | 'maxRss' | 'baseRss'>;
  if (what === 'export' && a !== undefined && b !== undefined) {
    const ledger = SqliteLedger.open({ path: a, create: false });
    try {
      const r = await exportBundle(ledger, { since: null, until: null, agents: ['shot-bot'], sessions: null, regimes: ['soc2'] }, b, { actor: 'bench' });
      result = { ok: true, events: r.events, artifacts: r.artifacts };
    } finally {
      await ledger.close();
    }
  } else if (what === 'verify' && a !== undefined) {
    const r = await verifyZipBundle(a);
    result = { ok: r.ok, events: r.events, artifacts: r.artifacts, ...(r.first === undefined ? {} : { failure: `${r.first.code}: ${r.first.reason}` }) };
  } else {
    throw new Error('usage: export-child.js export <ledger.db> <out.zip> | verify <bundle.zip>');
  }
  const ms = performance.now() - t;
  process.stdout.write(`${JSON.stringify({ ...result, ms, baseRss, maxRss: process.resourceUsage().maxRSS * 1024 } satisfies ExportChildResult)}\n`);
}

await main();
