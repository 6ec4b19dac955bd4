import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { buildV2Bundle, type LedgerEvent } from './verify-v2-fixture.js';

/**
 * Verifying a format-2 bundle holds one line of events.jsonl at a time: a bundle whose
 * events.jsonl (62 MiB) is larger than the whole JavaScript heap the verifier is given (40 MiB)
 * verifies. Measured in a child process on the built dist/ (run `npx tsc -p tsconfig.build.json`
 * first), a bundle of 2,000 tool calls against one of 40,000 (about 1 KiB of payload each, every
 * tenth event out of scope). Peak RSS is printed, not asserted: how lazily V8 collects garbage
 * moves it by tens of MiB (measured +37 MiB from 2,000 to 40,000 events without the heap cap,
 * which then still fits in 40 MiB of heap).
 */

const dir = tempDir('witness-verify-v2-mem-');

function ledger(calls: number): LedgerEvent[] {
  const events: LedgerEvent[] = [
    { stream: 's-big', kind: 'session.start', data: {} },
    { stream: 's-noise', kind: 'session.start', agent: 'other-bot', data: {} },
  ];
  const filler = 'x'.repeat(1000);
  for (let i = 0; i < calls; i++) {
    events.push({ stream: 's-big', kind: 'tool.call', resource: 'billing', action: 'lookup', data: { tool: 'lookup', arguments: { i, filler } } });
    if (i % 9 === 0) events.push({ stream: 's-noise', kind: 'note', agent: 'other-bot', data: { text: `noise ${i}` } });
  }
  events.push({ stream: 's-big', kind: 'session.end' });
  return events;
}

function measure(bundle: string, vkey: string): Promise<{ ok: boolean; events: number; maxRssMiB: number; ms: number }> {
  const script = `
    const { verifyBundle } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'export', 'index.js'))});
    const t = performance.now();
    const r = verifyBundle(${JSON.stringify(bundle)}, { trustedKeys: [${JSON.stringify(vkey)}] });
    const ms = performance.now() - t;
    console.log(JSON.stringify({ ok: r.ok, events: r.events, maxRssMiB: process.resourceUsage().maxRSS / 1024, ms, first: r.first }));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--max-old-space-size=40', '--input-type=module', '-e', script], { timeout: 120_000 }, (err, stdout) =>
      err === null ? resolve(JSON.parse(stdout) as never) : reject(err),
    );
  });
}

describe('verify memory on a format-2 bundle', () => {
  it('verifies 40,000 events (62 MiB of events.jsonl) in a 40 MiB heap, as it does 2,000', async () => {
    const small = buildV2Bundle(path.join(dir, 'small'), ledger(2_000), { scope: { sessions: ['s-big'] } });
    const big = buildV2Bundle(path.join(dir, 'big'), ledger(40_000), { scope: { sessions: ['s-big'] } });
    const bigBytes = fs.statSync(path.join(big.dir, 'events.jsonl')).size;
    const a = await measure(small.dir, small.vkey);
    const b = await measure(big.dir, big.vkey);
    expect(a.ok && b.ok, JSON.stringify([a, b])).toBe(true);
    const growth = b.maxRssMiB - a.maxRssMiB;
    console.info(
      `verify v2: ${a.events} events ${a.maxRssMiB.toFixed(0)} MiB peak in ${a.ms.toFixed(0)} ms; ${b.events} events (events.jsonl ${(bigBytes / 1024 / 1024).toFixed(0)} MiB) ${b.maxRssMiB.toFixed(0)} MiB peak in ${b.ms.toFixed(0)} ms; growth ${growth.toFixed(1)} MiB`,
    );
    expect(bigBytes).toBeGreaterThan(40 * 1024 * 1024);
  }, 180_000);
});
