import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SqliteLedger, verifyLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const RECORD_LOOP = fileURLToPath(new URL('../fixtures/children/record-loop.mjs', import.meta.url));
const APPEND_BATCHES = fileURLToPath(new URL('../fixtures/children/append-batches.mjs', import.meta.url));

const dir = tempDir('witness-concurrency-');

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
  stderr: string;
}

function run(script: string, args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (stdout += c));
    child.stderr.on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, lines: stdout.split('\n').filter((l) => l !== ''), stderr }));
  });
}

/** Creates the ledger (and its key) up front, so the children only ever open an existing one. */
async function existingLedger(): Promise<string> {
  const db = tempDb(dir);
  await SqliteLedger.open({ path: db }).close();
  return db;
}

describe('two processes writing one ledger', () => {
  it('[R-CONCURRENT] keeps every acknowledged event of two SDK processes recording concurrently, and the ledger verifies', async () => {
    const db = await existingLedger();
    const [a, b] = await Promise.all([run(RECORD_LOOP, [db, 'agent-one', '400', '60']), run(RECORD_LOOP, [db, 'agent-two', '400', '60'])]);
    const ledger = SqliteLedger.open({ path: db });
    try {
      let expectedTotal = 0;
      for (const [name, child] of [
        ['agent-one', a],
        ['agent-two', b],
      ] as const) {
        expect(child.stderr, name).toBe('');
        expect(child.code, name).toBe(0);
        const session = child.lines.find((l) => l.startsWith('READY '))!.slice(6);
        const done = child.lines.find((l) => l.startsWith('DONE '))!.split(' ');
        const notes = Number(done[1]);
        const tools = Number(done[2]);
        expect(notes + tools, name).toBe(400);
        const acked = child.lines.filter((l) => l.startsWith('A ')).map((l) => l.slice(2));
        expect(acked, name).toHaveLength(notes);
        expect(
          child.lines.filter((l) => l.startsWith('T ')),
          name,
        ).toHaveLength(tools);

        for (const id of acked) {
          const ev = await ledger.getEvent(id);
          expect(ev, `${name}: acknowledged event ${id} is missing`).toBeDefined();
          expect(ev!.stream).toBe(session);
          expect(ev!.agent.id).toBe(name);
        }
        const stream = await ledger.readStream(session);
        // session.start + notes + (tool.call + tool.result) per tool + session.end
        expect(stream, name).toHaveLength(2 + notes + 2 * tools);
        expect(stream.map((e) => e.seq)).toEqual(stream.map((_, i) => i));
        expect(stream.filter((e) => e.kind === 'note')).toHaveLength(notes);
        expect(stream.filter((e) => e.kind === 'tool.result')).toHaveLength(tools);
        const end = stream[stream.length - 1]!;
        expect(end.kind).toBe('session.end');
        expect(end.data).toMatchObject({ event_count: stream.length - 1, last_hash: stream[stream.length - 2]!.hash });
        expectedTotal += stream.length;
      }
      const report = await verifyLedger(ledger);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.events).toBe(expectedTotal);
      expect(report.streams).toBe(2);
      expect(report.openSessions).toBe(0);
      // Both recorders sealed as they went; whichever closed last covered everything.
      expect(report.unsealed).toBe(0);
      expect(report.checkpoints).toBeGreaterThan(2);
      // Global positions are gapless even though two processes interleaved their commits.
      const positions = ledger.database.prepare('SELECT pos FROM events ORDER BY pos').pluck().all() as number[];
      expect(positions).toEqual(positions.map((_, i) => i));
      const agents = ledger.database.prepare('SELECT agent, count(*) AS n FROM events GROUP BY agent ORDER BY agent').all();
      expect(agents).toEqual([
        { agent: 'agent-one', n: expectedTotal / 2 },
        { agent: 'agent-two', n: expectedTotal / 2 },
      ]);
    } finally {
      await ledger.close();
    }
  });

  it('keeps every batch of two processes appending and sealing concurrently, with consistent checkpoints', async () => {
    const db = await existingLedger();
    const batches = 40;
    const size = 10;
    const [a, b] = await Promise.all([run(APPEND_BATCHES, [db, 'left', String(batches), String(size), '1']), run(APPEND_BATCHES, [db, 'right', String(batches), String(size), '1'])]);
    const ledger = SqliteLedger.open({ path: db });
    try {
      const sealedSizes: number[] = [];
      for (const [name, child] of [
        ['left', a],
        ['right', b],
      ] as const) {
        expect(child.stderr, name).toBe('');
        expect(child.code, name).toBe(0);
        expect(child.lines).toContain(`DONE ${batches * size}`);
        const receipts = child.lines.filter((l) => l.startsWith('A ')).map((l) => l.split(' '));
        expect(receipts, name).toHaveLength(batches * size);
        for (const [, id, stream, seq] of receipts) {
          const ev = await ledger.getEvent(id!);
          expect(ev, `${name}: acknowledged event ${id} is missing`).toBeDefined();
          expect({ stream: ev!.stream, seq: ev!.seq }).toEqual({ stream, seq: Number(seq) });
        }
        sealedSizes.push(...child.lines.filter((l) => l.startsWith('C ')).map((l) => Number(l.slice(2))));
      }
      // Each process sealed while the other was appending and sealing.
      expect(a.lines.some((l) => l.startsWith('C '))).toBe(true);
      expect(b.lines.some((l) => l.startsWith('C '))).toBe(true);

      const total = 2 * batches * size;
      const checkpoints = await ledger.checkpoints();
      // Every checkpoint either process reported is in the ledger, and there are no others.
      expect(checkpoints.map((c) => c.size).sort((x, y) => x - y)).toEqual([...sealedSizes].sort((x, y) => x - y));
      // One linear history: sizes strictly grow, each proves consistency from the one before it.
      for (let i = 0; i < checkpoints.length; i++) {
        const cp = checkpoints[i]!;
        const prev = checkpoints[i - 1];
        expect(cp.prevSize).toBe(prev === undefined ? null : prev.size);
        if (prev !== undefined) expect(cp.size).toBeGreaterThan(prev.size);
      }
      expect(checkpoints[checkpoints.length - 1]!.size).toBe(total);

      // The stream both processes appended to is one unbroken chain.
      const shared = await ledger.readStream('shared-stream');
      expect(shared.map((e) => e.seq)).toEqual(shared.map((_, i) => i));
      expect(new Set(shared.map((e) => e.agent.id))).toEqual(new Set(['batch-left', 'batch-right']));

      const report = await verifyLedger(ledger);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.events).toBe(total);
      expect(report.streams).toBe(7);
      expect(report.checkpoints).toBe(checkpoints.length);
      expect(report.sealedSize).toBe(total);
      expect(report.unsealed).toBe(0);

      // Inclusion and consistency proofs still come out of the tree both sealers built together.
      const first = checkpoints[0]!;
      const last = checkpoints[checkpoints.length - 1]!;
      expect((await ledger.consistencyProof(first.size, last.size)).length).toBeGreaterThan(0);
      expect((await ledger.inclusionProof(0, last.size)).length).toBeGreaterThan(0);
    } finally {
      await ledger.close();
    }
  });

  it('lets two processes that start at the same moment both create and use a brand-new ledger', async () => {
    const failures: string[] = [];
    for (let i = 0; i < 8; i++) {
      const db = tempDb(dir);
      // Both children load the SDK first, then open the same new file at one agreed instant.
      const env = { START_AT: String(Date.now() + 300) };
      const both = await Promise.all([run(RECORD_LOOP, [db, 'early-one', '5'], env), run(RECORD_LOOP, [db, 'early-two', '5'], env)]);
      for (const child of both) {
        if (child.code !== 0) failures.push(`attempt ${i}: exit ${child.code}: ${child.stderr.split('\n').find((l) => l.startsWith('WitnessError:')) ?? child.stderr.slice(0, 300)}`);
      }
      if (both.every((c) => c.code === 0)) {
        const ledger = SqliteLedger.open({ path: db });
        try {
          const report = await verifyLedger(ledger);
          expect(report.ok).toBe(true);
          expect(report.streams).toBe(2);
        } finally {
          await ledger.close();
        }
      }
    }
    expect(failures).toEqual([]);
  });
});
