import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportBundle } from '../../src/export/index.js';
import { extractZip } from '../../src/export/zip.js';
import { openWitness } from '../../src/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-export-v2-mem-');
const EVENTS = 10_000;
const SHOTS = 1_000;
const SHOT_BYTES = 160 * 1024;
let file: string;

/** 10,000 events in two sessions, 1,000 of them captures each naming its own 96 KiB screenshot (156 MiB of artifacts). */
beforeAll(async () => {
  file = tempDb(dir);
  const w = await openWitness({ store: `sqlite:${file}`, name: 'mem', strict: true, seal: { enabled: false } });
  await w.close();
  const ledger = SqliteLedger.open({ path: file, create: false });
  try {
    const batch: AppendRequest[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const stream = i % 2 === 0 ? 'sess-big' : 'sess-other';
      const agent = { id: i % 2 === 0 ? 'shot-bot' : 'other-bot' };
      const k = Math.floor(i / 2);
      if (i % 2 === 0 && k % 5 === 0 && k / 5 < SHOTS) {
        const ref = await ledger.putArtifact(randomBytes(SHOT_BYTES), 'image/png', 'after');
        batch.push({ stream, agent, kind: 'capture', artifacts: [ref], data: { role: 'after', url: `https://app.example/${k}` } });
      } else {
        batch.push({ stream, agent, kind: 'note', data: { text: `step ${k} ${'x'.repeat(200)}` } });
      }
      if (batch.length === 500) await ledger.append(batch.splice(0));
    }
    if (batch.length > 0) await ledger.append(batch);
    await ledger.seal();
  } finally {
    await ledger.close();
  }
}, 300_000);

describe('export v2 memory', () => {
  it('writes 10,000 events and 1,000 screenshots into a zip without holding them: heap and RSS grow far less than the 156 MiB of screenshots', async () => {
    const ledger = SqliteLedger.open({ path: file, create: false });
    const out = path.join(dir, 'big.zip');
    const before = process.memoryUsage();
    let peakHeap = before.heapUsed + before.external;
    let peakRss = before.rss;
    const sample = setInterval(() => {
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed + m.external);
      peakRss = Math.max(peakRss, m.rss);
    }, 5);
    const t0 = performance.now();
    try {
      const r = await exportBundle(ledger, { since: null, until: null, agents: ['shot-bot'], sessions: null, regimes: [] }, out, { actor: 'mem-test' });
      expect(r).toMatchObject({ inScope: EVENTS / 2, artifacts: SHOTS });
      // The span runs from the first shot-bot event (leaf 0) to the last (leaf 9,998), then the export's own event.
      expect(r.events).toBe(EVENTS);
    } finally {
      clearInterval(sample);
      await ledger.close();
    }
    const ms = performance.now() - t0;
    const MiB = 1024 * 1024;
    const heapDelta = (peakHeap - (before.heapUsed + before.external)) / MiB;
    const rssDelta = (peakRss - before.rss) / MiB;
    console.log(
      `export of ${EVENTS} events / ${SHOTS} screenshots: ${Math.round(ms)} ms, zip ${(fs.statSync(out).size / MiB).toFixed(1)} MiB, peak heap+external +${heapDelta.toFixed(1)} MiB, peak RSS +${rssDelta.toFixed(1)} MiB`,
    );
    expect(fs.statSync(out).size).toBeGreaterThan(SHOTS * SHOT_BYTES);
    // Garbage is not collected on demand here, so the heap bound is loose; RSS is the honest measure.
    expect(heapDelta).toBeLessThan(80);
    expect(rssDelta).toBeLessThan(64);

    // Proofs of whole 256-leaf blocks are hashed by the exporter, not read from the store: each
    // must equal the store's own proof for that leaf.
    const unpacked = path.join(dir, 'big');
    fs.mkdirSync(unpacked);
    expect(await extractZip(out, unpacked, () => 1 << 30)).toBeUndefined();
    const proofs = fs
      .readFileSync(path.join(unpacked, 'proofs.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { leaf: number; size: number; proof: string[] });
    expect(proofs.length).toBe(EVENTS);
    const check = SqliteLedger.open({ path: file, create: false });
    try {
      for (const p of proofs) {
        expect(p.proof, `leaf ${p.leaf}`).toEqual((await check.inclusionProof(p.leaf, p.size)).map((h) => h.toString('hex')));
      }
    } finally {
      await check.close();
    }
  }, 300_000);
});
