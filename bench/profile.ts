/**
 * CPU profile of the append or verify hot path, for whoever optimises it:
 *
 *   node dist-bench/bench/profile.js append|verify|recorder [events]
 *
 * Runs the workload under the V8 sampling profiler (node:inspector), prints the functions with
 * the most self time (and the time under a few entry points), and writes the .cpuprofile next to
 * this file for Chrome DevTools / speedscope.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openWitness } from '../src/index.js';
import { SqliteLedger, verifyLedger } from '../src/store/index.js';
import { Timeline, toolCallData, toolCallInputs } from './events.js';
import { cleanupBenchDir, fmtInt, freshDbPath, log, rng } from './util.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function where(n: Node): string {
  const url = n.callFrame.url.replace(/^file:\/\//, '');
  const rel = url.startsWith(ROOT) ? path.relative(ROOT, url) : url.replace(/^.*node_modules\//, '');
  return `${n.callFrame.functionName || '(anonymous)'} ${rel === '' ? '' : `${rel}:${n.callFrame.lineNumber + 1}`}`.trim();
}

function summarise(p: Profile, top: number): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  // Self time per function (merged across call sites).
  const self = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const k = where(byId.get(id)!);
    self.set(k, (self.get(k) ?? 0) + us);
  }
  // Inclusive time per function (counted once per stack even if recursive).
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = where(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const fmt = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${((us / total) * 100).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`)
      .join('\n');
  return `total sampled: ${(total / 1000).toFixed(0)} ms\n\nself time:\n${fmt(self)}\n\ninclusive time:\n${fmt(incl)}\n`;
}

async function main(): Promise<void> {
  const what = process.argv[2] ?? 'append';
  const n = Number(process.argv[3] ?? (what === 'recorder' ? 20_000 : 100_000));
  let work: () => Promise<void>;
  if (what === 'append') {
    const inputs = toolCallInputs(n, 200, 1);
    const ledger = SqliteLedger.open({ path: freshDbPath('profile-append') });
    work = async () => {
      for (let i = 0; i < inputs.length; i += 1000) ledger.appendPreparedSync(ledger.prepare(inputs.slice(i, i + 1000)));
      await ledger.close();
    };
  } else if (what === 'verify') {
    log(`building a ${fmtInt(n)}-event ledger to verify`);
    const ledger = SqliteLedger.open({ path: freshDbPath('profile-verify') });
    const t = new Timeline(n, 100, 42);
    for (let i = 0; i < n; i += 5000) {
      const batch = [];
      for (let k = 0; k < 5000 && i + k < n; k++) batch.push(t.next());
      ledger.appendPreparedSync(ledger.prepare(batch));
      if ((i + 5000) % 10_000 === 0) await ledger.seal();
    }
    await ledger.seal();
    work = async () => {
      const r = await verifyLedger(ledger);
      if (!r.ok) throw new Error('verify failed');
      await ledger.close();
    };
  } else if (what === 'recorder') {
    const r = rng(2);
    const datas = Array.from({ length: n }, () => toolCallData(r));
    const w = await openWitness({ store: `sqlite:${freshDbPath('profile-recorder')}` });
    const s = await w.session({ agent: { id: 'agent-7' } });
    work = async () => {
      await Promise.all(datas.map((d) => s.record('tool.call', d, { resource: 'billing', action: 'refund', outcome: 'success' })));
      await w.close();
    };
  } else {
    throw new Error('usage: profile.js append|verify|recorder [events]');
  }
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
  session.disconnect();
  const out = fileURLToPath(new URL(`./${what}.cpuprofile`, import.meta.url));
  fs.writeFileSync(out, JSON.stringify(profile));
  process.stdout.write(`${what}: ${fmtInt(n)} events in ${ms.toFixed(0)} ms (${fmtInt((n / ms) * 1000)} events/s under the profiler)\nprofile written to ${out}\n\n${summarise(profile, 30)}`);
  cleanupBenchDir();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  cleanupBenchDir();
  process.exit(1);
});
