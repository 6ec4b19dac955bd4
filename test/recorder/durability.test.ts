import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SqliteLedger, verifyLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const RECORD_LOOP = fileURLToPath(new URL('../fixtures/children/record-loop.mjs', import.meta.url));
const DIE_DURING_CREATE = fileURLToPath(new URL('../fixtures/children/die-during-create.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

const dir = tempDir('witness-durability-');

interface KilledRun {
  session: string;
  /** Event ids whose promise resolved before the kill. */
  acked: string[];
  /** `n` of every tool call whose call and result were acknowledged. */
  tools: number[];
  delayMs: number;
  stderr: string;
  signal: NodeJS.Signals | null;
  code: number | null;
}

/**
 * Starts the recording child, waits until its session is open, lets it record for `delayMs`, then
 * SIGKILLs it. Everything the child printed before dying is read after the pipe closes.
 */
function recordThenKill(db: string, delayMs: number, agentId = 'durability-bot'): Promise<KilledRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RECORD_LOOP, db, agentId], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the child never reported READY within 15 s; stderr: ${stderr}`));
    }, 15_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (timer === undefined && stdout.includes('READY ')) {
        clearTimeout(guard);
        timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (timer === undefined) {
        reject(new Error(`the child exited (code ${code}, signal ${signal}) before READY; stderr: ${stderr}`));
        return;
      }
      const lines = stdout.split('\n');
      // A line cut by the kill has no newline yet: it was not fully acknowledged, so ignore it.
      lines.pop();
      const session = lines.find((l) => l.startsWith('READY '))?.slice(6) ?? '';
      const acked = lines.filter((l) => l.startsWith('A ')).map((l) => l.slice(2));
      const tools = lines.filter((l) => l.startsWith('T ')).map((l) => Number(l.slice(2)));
      resolve({ session, acked, tools, delayMs, stderr, signal, code });
    });
  });
}

function randomDelay(): number {
  return 20 + Math.floor(Math.random() * 281);
}

/** Reopens the ledger and checks every acknowledged event of `run` is there and the ledger verifies. */
async function checkAfterKill(db: string, run: KilledRun): Promise<{ streamEvents: number; total: number }> {
  const context = `run killed ${run.delayMs} ms after READY (session ${run.session})`;
  expect(run.signal, context).toBe('SIGKILL');
  // The recorder reported nothing to onError while it ran.
  expect(run.stderr, context).toBe('');
  const ledger = SqliteLedger.open({ path: db });
  try {
    for (const id of run.acked) {
      const ev = await ledger.getEvent(id);
      expect(ev, `${context}: acknowledged event ${id} is missing`).toBeDefined();
      expect(ev!.stream, context).toBe(run.session);
    }
    const stream = await ledger.readStream(run.session);
    expect(stream[0]?.kind, context).toBe('session.start');
    expect(
      stream.map((e) => e.seq),
      context,
    ).toEqual(stream.map((_, i) => i));
    expect(
      stream.some((e) => e.kind === 'session.end'),
      context,
    ).toBe(false);
    for (const n of run.tools) {
      const call = stream.find((e) => e.kind === 'tool.call' && (e.data?.['arguments'] as { n?: number } | undefined)?.n === n);
      expect(call, `${context}: acknowledged tool call ${n} is missing`).toBeDefined();
      const result = stream.find((e) => e.kind === 'tool.result' && e.parent === call!.id);
      expect(result, `${context}: the result of acknowledged tool call ${n} is missing`).toBeDefined();
      expect(result!.data?.['is_error'], context).toBe(false);
    }
    const report = await verifyLedger(ledger);
    expect(report.failures, context).toEqual([]);
    expect(report.ok, context).toBe(true);
    expect(report.openSessions, context).toBeGreaterThanOrEqual(1);
    return { streamEvents: stream.length, total: report.events };
  } finally {
    await ledger.close();
  }
}

describe('durability under SIGKILL', () => {
  it('[R-DURABLE] keeps every acknowledged event when the writer is killed with SIGKILL, run after run on the same ledger', async () => {
    const db = tempDb(dir);
    let totalAcked = 0;
    let previousTotal = 0;
    const sessions = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const run = await recordThenKill(db, randomDelay());
      const { total } = await checkAfterKill(db, run);
      // Nothing written by an earlier, killed run was lost either.
      expect(total).toBeGreaterThanOrEqual(previousTotal + 1 + run.acked.length);
      previousTotal = total;
      totalAcked += run.acked.length + run.tools.length;
      sessions.add(run.session);
    }
    expect(sessions.size).toBe(12);
    // The kills landed while the loop was busy, not only before it started.
    expect(totalAcked).toBeGreaterThan(100);

    // After all that, a writer that runs to completion still ends, seals and verifies cleanly.
    const finish = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [RECORD_LOOP, db, 'finisher', '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr, stdout }));
    });
    expect(finish.stderr).toBe('');
    expect(finish.code).toBe(0);
    expect(finish.stdout).toMatch(/^DONE \d+ \d+$/m);
    const ledger = SqliteLedger.open({ path: db });
    try {
      const report = await verifyLedger(ledger);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.unsealed).toBe(0);
      expect(report.checkpoints).toBeGreaterThanOrEqual(1);
      expect(report.streams).toBe(13);
      expect(report.openSessions).toBe(12);
    } finally {
      await ledger.close();
    }
  });

  it('keeps every acknowledged event when the writer of a fresh ledger is killed with SIGKILL', async () => {
    let totalAcked = 0;
    for (let i = 0; i < 10; i++) {
      const db = tempDb(dir);
      const run = await recordThenKill(db, randomDelay(), `fresh-bot-${i}`);
      const { total, streamEvents } = await checkAfterKill(db, run);
      expect(total).toBe(streamEvents);
      totalAcked += run.acked.length + run.tools.length;
    }
    expect(totalAcked).toBeGreaterThan(80);
  });

  it('can open, seal and verify a new ledger whose creator was killed while writing its signing key', async () => {
    const outcomes: Record<string, string> = {};
    for (const point of ['before-key-write', 'during-key-write', 'after-key-write']) {
      const db = tempDb(dir);
      const exit = await new Promise<NodeJS.Signals | null>((resolve, reject) => {
        const child = spawn(process.execPath, [DIE_DURING_CREATE, db, point], { stdio: 'ignore' });
        child.on('error', reject);
        child.on('close', (_code, signal) => resolve(signal));
      });
      expect(exit, point).toBe('SIGKILL');
      expect(fs.existsSync(db), point).toBe(true);
      try {
        const ledger = SqliteLedger.open({ path: db });
        try {
          await ledger.append([{ stream: 'after-crash', kind: 'note', agent: { id: 'survivor' }, data: { text: 'recording again' } }]);
          const canSeal = ledger.canSeal;
          const cp = canSeal ? await ledger.seal() : null;
          const report = await verifyLedger(ledger);
          outcomes[point] = `canSeal=${canSeal} sealed=${cp?.size ?? 'no'} ok=${report.ok} checkpoints=${report.checkpoints}`;
        } finally {
          await ledger.close();
        }
      } catch (e) {
        outcomes[point] = `open failed: ${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
    }
    // A crash during creation must not leave a ledger that can never be opened or never signed.
    expect(outcomes).toEqual({
      'before-key-write': 'canSeal=true sealed=1 ok=true checkpoints=1',
      'during-key-write': 'canSeal=true sealed=1 ok=true checkpoints=1',
      'after-key-write': 'canSeal=true sealed=1 ok=true checkpoints=1',
    });
  });
});

it('has a compiled package for the child processes to import', () => {
  expect(fs.existsSync(DIST), `${DIST} is missing: run \`npx tsc -p tsconfig.build.json\` first`).toBe(true);
});
