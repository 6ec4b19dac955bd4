import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ERROR_CODES, WitnessError, type ErrorCode, type VerifyReport } from '../core/index.js';
import { verifyLedger, type Ledger } from '../store/index.js';

/**
 * The monitor's scheduled full verification, on a worker thread of its own: `verifyLedger` reads
 * and hashes every row, and on SQLite each read is a synchronous call, so in `witness serve
 * --monitor` a pass over 100,000 events held the server's event loop for seconds at a time (README,
 * "In the server", has the numbers). The thread opens the ledger read-only through `openLedger`,
 * with the sealer's record the monitor's ledger uses, and sends back the report; the monitor's
 * thread only waits. Where no thread can run (the TypeScript sources with no build, an in-memory
 * ledger) it runs here as before.
 */

export interface FullPassOptions {
  /** Where the thread opens the ledger (credentials included); default the ledger's location. */
  url?: string;
  trustedKeys?: string[];
  /** Threads verify may use (default: one fewer than the cores, at least one: a core is left for what else the process serves). */
  threads?: number;
  /** Stops the thread (a server shutting down): the pass then has no result. */
  signal?: AbortSignal;
}

export interface FullPassResult {
  report: VerifyReport;
  /** The thread it ran on (worker_threads' threadId): 0 is the monitor's own. */
  thread: number;
}

export interface FullPassJob {
  url: string;
  sealRecord: string;
  threads: number;
  trustedKeys?: string[];
}

/** `opened`: whether the thread got as far as opening the ledger (when not, the pass runs in the monitor's thread instead). */
export type FromFullPass = { report: VerifyReport; thread: number } | { error: string; code: string; opened: boolean };

const ENTRY = new URL('./full-pass-worker.js', import.meta.url);

/** The worker script, or undefined when there is none (run from the sources, the built one in dist/ is used; see store/verify-pool.ts). */
export function fullPassEntry(): URL | undefined {
  if (ENTRY.protocol !== 'file:') return undefined;
  if (fs.existsSync(fileURLToPath(ENTRY))) return ENTRY;
  if (import.meta.url.endsWith('.ts')) {
    const built = new URL('../../dist/monitor/full-pass-worker.js', import.meta.url);
    if (fs.existsSync(fileURLToPath(built))) return built;
  }
  return undefined;
}

/** Verifies the whole ledger off this thread when it can; undefined when `signal` stopped it first. */
export async function fullPass(ledger: Ledger, options: FullPassOptions = {}): Promise<FullPassResult | undefined> {
  const url = options.url ?? ledger.info.location;
  const entry = url === ':memory:' ? undefined : fullPassEntry();
  const threads = options.threads ?? Math.max(1, os.availableParallelism() - 1);
  const job: FullPassJob = { url, sealRecord: ledger.sealRecordLocation, threads, ...(options.trustedKeys === undefined ? {} : { trustedKeys: options.trustedKeys }) };
  const inThread = async (): Promise<FullPassResult> => ({
    report: await verifyLedger(ledger, { ...(options.trustedKeys === undefined ? {} : { trustedKeys: options.trustedKeys }), url }),
    thread: 0,
  });
  const worker = entry === undefined ? undefined : start(entry, job);
  if (worker === undefined) return inThread();
  // A thread that cannot open the ledger by its URL (a PostgreSQL password the caller left out of
  // `url`, so only the redacted location was there) leaves the pass to this thread, as before.
  const result = await new Promise<FullPassResult | undefined | 'unopened'>((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', stop);
      f();
    };
    const stop = () =>
      settle(
        () =>
          void worker.terminate().then(
            () => resolve(undefined),
            () => resolve(undefined),
          ),
      );
    if (options.signal?.aborted === true) return stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    worker.once('message', (m: FromFullPass) =>
      settle(() => {
        if ('report' in m) resolve({ report: m.report, thread: m.thread });
        else if (!m.opened) resolve('unopened');
        else reject(new WitnessError((ERROR_CODES as readonly string[]).includes(m.code) ? (m.code as ErrorCode) : 'store_unavailable', m.error));
      }),
    );
    worker.once('error', (e) => settle(() => reject(new WitnessError('store_unavailable', `The monitor's full verification thread failed: ${e.message}`, { cause: e }))));
    worker.once('exit', (code) => settle(() => reject(new WitnessError('store_unavailable', `The monitor's full verification thread exited with code ${code} before it reported.`))));
  });
  return result === 'unopened' ? inThread() : result;
}

/**
 * A thread inherits the process's flags; some refuse a script file (`node -e …`) and are dropped,
 * and a process started with flags a thread may not take starts it with none (as verify-pool.ts).
 */
function start(entry: URL, job: FullPassJob): Worker | undefined {
  const execArgv = process.execArgv.filter((a) => !/^--(input-type|eval|print)\b|^-[ep]$/.test(a));
  try {
    return new Worker(entry, { workerData: job, execArgv });
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') return undefined;
  }
  try {
    return new Worker(entry, { workerData: job, execArgv: [] });
  } catch {
    return undefined;
  }
}
