import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { leafRanges } from '../../src/core/index.js';
import { SqliteLedger, setRetentionRule, type AppendRequest } from '../../src/store/index.js';
import { REPO_ROOT, readRows, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * kill -9 of a process in the middle of a retention purge. The erasure and its retention.purge
 * record are one transaction (src/store/sqlite/purge.ts), so whenever the kill lands the ledger
 * holds either both (every listed payload gone, the record there) or neither, and verifies either
 * way: never an erased payload without its record (uncovered_purge), never a record of an erasure
 * that did not happen. The child runs the built package (`npm run build` first).
 */

const dir = tempDir('witness-purge-crash-');
const EVENTS = 30_000;
const DIST = path.join(REPO_ROOT, 'dist', 'store', 'index.js');

const CHILD = `
const { openLedger } = await import(process.argv[1]);
const [file, count] = [process.argv[2], Number(process.argv[3])];
const l = await openLedger('sqlite:' + file, { create: false });
const positions = Array.from({ length: count }, (_, i) => i);
process.stdout.write('GO\\n');
await l.purgePayloads({ positions, record: { stream: 'witness.retention', agent: { id: 'witness-governance' }, recorder: { kind: 'cli' }, kind: 'retention.purge',
  data: { policy: 'retention:kind=note:1d', before: '2026-01-01T00:00:00.000Z', count, leaves: [[0, count - 1]] } } });
process.stdout.write('DONE\\n');
await l.close();
`;

async function sealedLedger(): Promise<string> {
  const file = tempDb(dir);
  const l = SqliteLedger.open({ path: file });
  try {
    const batch: AppendRequest[] = [];
    for (let i = 0; i < EVENTS; i++) batch.push({ stream: `s${i % 50}`, agent: { id: 'bot' }, kind: 'note', data: { text: `event ${i} about a customer` } } as AppendRequest);
    for (let i = 0; i < EVENTS; i += 5000) await l.append(batch.slice(i, i + 5000));
    // The rule the child's purge names: verify judges a purge by the rules in the ledger.
    await setRetentionRule(l, { match: { kind: 'note' }, olderThan: '1d' }, { actor: 'dpo@acme.example', recorder: { kind: 'cli' } });
    await l.seal();
  } finally {
    await l.close();
  }
  return file;
}

function purgeKilledAfter(file: string, delayMs: number): Promise<{ done: boolean; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, DIST, file, String(EVENTS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('GO') && !out.includes('DONE')) setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('exit', (_code, signal) => resolve({ done: out.includes('DONE'), signal, stderr }));
  });
}

describe('kill -9 during a retention purge', () => {
  it('[R-RETENTION] leaves the erasure and its record both or neither, and the ledger verifies', async () => {
    expect(fs.existsSync(DIST), 'dist/ is missing: run `npm run build` before this test').toBe(true);
    const seen = new Set<string>();
    for (const delay of [0, 5, 25, 80]) {
      const file = await sealedLedger();
      const r = await purgeKilledAfter(file, delay);
      expect(r.stderr).toBe('');
      const rows = readRows(file);
      const erased = rows.filter((x) => x.data === null).length;
      const records = rows.filter((x) => x.kind === 'retention.purge');
      if (records.length === 0) {
        expect(erased, `killed after ${delay} ms`).toBe(0);
        seen.add('neither');
      } else {
        expect(records).toHaveLength(1);
        expect(JSON.parse(records[0]!.data!)).toMatchObject({ count: EVENTS, leaves: leafRanges(Array.from({ length: EVENTS }, (_, i) => i)) });
        expect(erased, `killed after ${delay} ms`).toBe(EVENTS);
        seen.add('both');
      }
      const v = await verifyFile(file);
      expect(v.failures, `killed after ${delay} ms`).toEqual([]);
      expect(v.purged?.payloads ?? 0).toBe(erased);
    }
    // At least one kill landed inside the transaction, else the test proved nothing about it.
    expect(seen.has('neither')).toBe(true);
  }, 240_000);
});
