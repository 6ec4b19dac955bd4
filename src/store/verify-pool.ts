import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ChunkPlan, ChunkResult, VerifyRow } from '../core/index.js';
import type { Ledger } from './ledger.js';

/**
 * Worker threads that each open the ledger read-only through `openLedger` and check chunks of it
 * (core ChunkChecker); the caller takes the results in, in order (core LedgerVerifier.addChunk).
 */

const ENTRY = new URL('./verify-worker.js', import.meta.url);

/**
 * The worker script, or undefined when there is none to run (then verification stays in-thread).
 * Run from the TypeScript sources (the test suite) the compiled worker in dist/ is used: a worker
 * thread cannot load .ts files, and the tests that spawn bin/witness.js need dist/ built anyway.
 */
export function workerEntry(): URL | undefined {
  if (ENTRY.protocol !== 'file:') return undefined;
  if (fs.existsSync(fileURLToPath(ENTRY))) return ENTRY;
  if (import.meta.url.endsWith('.ts')) {
    const built = new URL('../../dist/store/verify-worker.js', import.meta.url);
    if (fs.existsSync(fileURLToPath(built))) return built;
  }
  return undefined;
}

export function availableThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Pages of the rows at positions [start, end) (`end` may be Infinity), in order, read with the
 * driver's lean verify scan (memory: one page). Pages, not rows: an async generator costs a promise
 * per item, and the checks of a page's rows are synchronous.
 */
export async function* scanRange(ledger: Pick<Ledger, 'scanForVerify'>, start: number, end: number, pageSize = 5000): AsyncIterable<VerifyRow[]> {
  if (start >= end) return;
  yield* ledger.scanForVerify(start, end, pageSize);
}

export type ToWorker = { plan: ChunkPlan } | { close: true };
export type FromWorker = { result: ChunkResult } | { error: string };

interface Task {
  plan: ChunkPlan;
  resolve: (r: ChunkResult) => void;
  reject: (e: Error) => void;
}

/**
 * A thread inherits the process's flags; some refuse a script file (`node -e …`) and are dropped,
 * and a process started with flags a thread may not take (`--expose-gc`, V8 options) starts its
 * threads with none. A thread that cannot start at all leaves its share to the calling thread.
 */
function spawn(entry: URL, url: string): Worker | undefined {
  const execArgv = process.execArgv.filter((a) => !/^--(input-type|eval|print)\b|^-[ep]$/.test(a));
  // Every row is garbage after one check; a young generation of 16 MiB keeps a thread's RSS about
  // 40 MiB lower than V8's default on a 200k-event ledger at the same CPU time (measured).
  const resourceLimits = { maxYoungGenerationSizeMb: 16 };
  try {
    return new Worker(entry, { workerData: { url }, execArgv, resourceLimits });
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') return undefined;
  }
  try {
    return new Worker(entry, { workerData: { url }, execArgv: [], resourceLimits });
  } catch {
    return undefined;
  }
}

/**
 * `url` is what each thread opens: the store as the caller opened it, with the credentials it used
 * (a password in a PostgreSQL URL; PGPASSWORD and the password file reach the threads through the
 * environment they inherit). It stays in this process's memory (workerData) and is never logged.
 */
export class VerifyPool {
  private readonly workers = new Set<Worker>();
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly queue: Task[] = [];

  constructor(entry: URL, url: string, size: number) {
    for (let i = 0; i < size; i++) {
      const w = spawn(entry, url);
      if (w === undefined) continue;
      this.workers.add(w);
      this.idle.push(w);
      w.on('message', (m: FromWorker) => this.done(w, m));
      w.on('error', (e) => this.lost(w, e));
      w.on('exit', (code) => this.lost(w, new Error(`the verify thread exited with code ${code}`)));
    }
  }

  get size(): number {
    return this.workers.size;
  }

  /** Checks one chunk on the next free thread; rejects when no thread can (the caller then checks it in-thread). */
  run(plan: ChunkPlan): Promise<ChunkResult> {
    return new Promise((resolve, reject) => {
      if (this.workers.size === 0) {
        reject(new Error('no verify thread is running'));
        return;
      }
      this.queue.push({ plan, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const task = this.queue.shift()!;
      this.busy.set(w, task);
      w.postMessage({ plan: task.plan } satisfies ToWorker);
    }
  }

  private done(w: Worker, m: FromWorker): void {
    const task = this.busy.get(w);
    this.busy.delete(w);
    this.idle.push(w);
    if (task !== undefined) {
      if ('result' in m) task.resolve(m.result);
      else task.reject(new Error(m.error));
    }
    this.pump();
  }

  private lost(w: Worker, e: Error): void {
    if (!this.workers.delete(w)) return;
    const i = this.idle.indexOf(w);
    if (i >= 0) this.idle.splice(i, 1);
    this.busy.get(w)?.reject(e);
    this.busy.delete(w);
    if (this.workers.size === 0) for (const t of this.queue.splice(0)) t.reject(e);
  }

  /** Lets every thread close its connection and exit (terminated after 5 s if one does not). */
  async close(): Promise<void> {
    const all = [...this.workers];
    this.workers.clear();
    for (const t of this.queue.splice(0)) t.reject(new Error('the verify pool was closed'));
    await Promise.all(
      all.map(
        (w) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void w.terminate(), 5000);
            w.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            w.postMessage({ close: true } satisfies ToWorker);
          }),
      ),
    );
  }
}
