import { once } from 'node:events';
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { leafHash, verifyInclusion } from '../../src/core/index.js';
import { exportSiem } from '../../src/export/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { driverOf } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-siem-stream-');
const N = 20_000;
let file: string;

beforeAll(async () => {
  file = tempDb(dir);
  const w = await openWitness({ store: `sqlite:${file}`, name: 'siem', strict: true, seal: { enabled: false } });
  try {
    const ledger = driverOf(w);
    for (let b = 0; b < N / 1000; b++) {
      const batch: AppendRequest[] = [];
      for (let i = 0; i < 1000; i++) {
        const n = b * 1000 + i;
        batch.push({
          stream: `s-${n % 50}`,
          kind: 'tool.call',
          agent: { id: 'bulk-bot' },
          resource: 'crm',
          action: 'crm.lookup',
          outcome: 'pending',
          data: { tool: 'crm.lookup', arguments: { customer: `c-${n}`, note: 'x'.repeat(200) } },
        });
      }
      await ledger.append(batch);
    }
    await ledger.seal();
  } finally {
    await w.close();
  }
}, 120_000);

describe('SIEM export of 20,000 events', () => {
  it('writes progressively under backpressure: the output buffer stays bounded and memory flat while every line arrives', async () => {
    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      let bytes = 0;
      let lines = 0;
      let maxBuffered = 0;
      let maxHeap = 0;
      // Live heap, not garbage: collect before each sample (gc exposed for this test only).
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      gc();
      const heap0 = process.memoryUsage().heapUsed;
      // A slow reader (one write per macrotask, 64 KiB buffer), counting and discarding what it gets.
      const out = new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          for (const c of chunk) if (c === 10) lines++;
          maxBuffered = Math.max(maxBuffered, out.writableLength);
          if (lines % 2000 === 0 && lines > 0) {
            gc();
            maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed);
          }
          setImmediate(done);
        },
      });
      const firstLineSeen = new Promise<number>((resolve) => {
        const t = setInterval(() => {
          if (lines > 0) {
            clearInterval(t);
            resolve(Date.now());
          }
        }, 1);
      });
      const started = Date.now();
      const result = await exportSiem(ledger, out, { format: 'ocsf', scope: { since: null, until: null, agents: null, sessions: null } });
      const finished = Date.now();
      out.end();
      await once(out, 'finish');
      const first = await firstLineSeen;
      expect(result.events).toBe(N);
      expect(lines).toBe(N);
      // Progressive: the first line reached the reader long before the export ended.
      expect(first - started).toBeLessThan((finished - started) / 2);
      // Backpressure: never more than the buffer plus one line waiting, though the output is tens of MB.
      expect(bytes).toBeGreaterThan(20 * 1024 * 1024);
      expect(maxBuffered).toBeLessThan(64 * 1024 + 8 * 1024);
      // Flat: the live heap grows by far less than the output (holding it would take twice its size, as UTF-16).
      expect(maxHeap - heap0).toBeLessThan(16 * 1024 * 1024);
      console.log(
        `OCSF export of ${N} events: ${finished - started} ms, ${(bytes / 1048576).toFixed(1)} MiB, first line after ${first - started} ms, live heap growth ${((maxHeap - heap0) / 1048576).toFixed(1)} MiB`,
      );
    } finally {
      await ledger.close();
    }
  }, 120_000);
  it('gives every line an inclusion proof that verifies against the checkpoint, in whole 256-leaf blocks and at the edges of a span', async () => {
    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      const cp = (await ledger.latestCheckpoint())!;
      for (const sessions of [null, ['s-3']]) {
        const chunks: Buffer[] = [];
        const out = new Writable({
          write(chunk: Buffer, _enc, done) {
            chunks.push(chunk);
            done();
          },
        });
        const r = await exportSiem(ledger, out, { format: 'ocsf', scope: { since: null, until: null, agents: null, sessions } });
        const lines = Buffer.concat(chunks)
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== '');
        expect(lines.length).toBe(sessions === null ? cp.size : N / 50);
        expect(r.events).toBe(lines.length);
        for (const l of lines) {
          const w = (JSON.parse(l) as { unmapped: { witness: { event: { hash: string }; leaf: number; inclusion_proof: { tree_size: number; hashes: string[] } } } }).unmapped.witness;
          const proof = w.inclusion_proof.hashes.map((h) => Buffer.from(h, 'hex'));
          expect(verifyInclusion(leafHash(Buffer.from(w.event.hash, 'hex')), w.leaf, w.inclusion_proof.tree_size, proof, cp.root), `leaf ${w.leaf}`).toEqual({ ok: true });
        }
      }
    } finally {
      await ledger.close();
    }
  }, 120_000);
});
