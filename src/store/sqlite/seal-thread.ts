import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { WitnessError, signNote, type ErrorCode, type NoteSigner, type RotationEntry } from '../../core/index.js';
import { pendingRotationSigners } from '../seal-keys.js';
import type { CheckpointRow } from '../ledger.js';
import type { SealerContext, SealRequest } from './sealer.js';

/** What the sealer thread is started with: no private key (it asks for signatures, see seal-worker.ts). */
export interface SealWorkerData {
  path: string;
  busyTimeoutMs: number;
  context: SealerContext;
  /** The sealer's public key, to check the record and the checkpoints it builds on. */
  verifierKey: string;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export type ToSealWorker = { type: 'seal'; id: number; force: boolean; now: string } | { type: 'signed'; id: number; note?: string; error?: string } | { type: 'locked' } | { type: 'close' };

export type FromSealWorker =
  | { type: 'sign'; id: number; body: string; rotations: RotationEntry[] }
  | { type: 'lock' }
  | { type: 'unlock' }
  | { type: 'sealed'; id: number; row: CheckpointRow | null }
  | { type: 'failed'; id: number; error: WireError }
  | { type: 'done'; id: number }
  | { type: 'ready' }
  | { type: 'closed' };

const WORKER = new URL('./seal-worker.js', import.meta.url);

/**
 * Whether the sealer thread can be started: its compiled script sits beside this module. Run from
 * TypeScript sources (the test runner), there is none and the driver seals inline, with the same
 * Sealer; tests of the thread itself run the built package (test/store/sealer-thread.test.ts).
 */
export function sealThreadAvailable(): boolean {
  return WORKER.protocol === 'file:' && fs.existsSync(fileURLToPath(WORKER));
}

interface Waiter {
  resolve: (row: CheckpointRow | null) => void;
  reject: (e: Error) => void;
}

/**
 * The recording thread's handle on its ledger's sealer thread, started on the first seal. A seal
 * resolves once its checkpoint is committed and recorded; the thread then copies the WAL into the
 * database, and close() waits for that copy to finish — never terminating the thread mid-copy —
 * before the thread closes its connection and exits. The thread keeps the process alive only while
 * it has work (ref'd from a request until its 'done').
 */
export class SealThread {
  private worker: Worker | undefined;
  private ids = 0;
  private readonly waiting = new Map<number, Waiter>();
  /** Requests whose WAL copy has not finished ('done' not yet received). */
  private readonly unfinished = new Set<number>();
  private idleWaiters: Array<() => void> = [];
  private exited: Promise<void> | undefined;
  /** Set while the sealer thread writes: appends on the recording thread wait for it (sealer.ts, WriteGate). */
  private held: { promise: Promise<void>; open: () => void } | undefined;
  /** A seal was asked for, so the thread may have a connection open: close it gracefully. */
  private used = false;
  /** Its modules are loaded (they take 30 ms on an idle machine and over 300 ms on a loaded one). */
  ready = false;
  /** `new Worker` threw: this process cannot start the thread, so it is not tried again and seals run inline. */
  private unstartable = false;

  constructor(
    private readonly data: SealWorkerData,
    private readonly signer: NoteSigner,
  ) {}

  /**
   * Starts the thread ahead of the first seal: loading its modules takes 30 ms on an idle machine
   * and over 300 ms on a loaded one, which a recorder's first seal should not wait for. Until a seal
   * is asked for, the thread has no connection open.
   */
  warm(): void {
    if (this.unstartable) return;
    try {
      this.start();
    } catch {
      // Never a failed append because of the sealer thread: without it, seals run inline
      // (SqliteLedger.sealOnce seals inline while `ready` is false), as from TypeScript sources.
      this.unstartable = true;
    }
  }

  seal(request: SealRequest): Promise<CheckpointRow | null> {
    const worker = this.start();
    this.used = true;
    const id = ++this.ids;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.unfinished.add(id);
      worker.ref();
      this.post({ type: 'seal', id, force: request.force, now: request.now.toISOString() });
    });
  }

  /** Waits for every request and its WAL copy, then lets the thread close its connection and exit. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    if (!this.used) {
      // Warmed but never asked to seal: it opened no connection, so stopping it abandons nothing.
      this.worker = undefined;
      await worker.terminate();
      return;
    }
    if (this.unfinished.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    worker.ref();
    this.post({ type: 'close' });
    await this.exited;
  }

  private start(): Worker {
    if (this.worker !== undefined) return this.worker;
    // None of the process's flags: a thread inherits them by default, and refuses V8 ones (`node
    // --max-old-space-size=2048 app.js`, `--expose-gc`) with ERR_WORKER_INVALID_EXEC_ARGV, others
    // a script file (`--input-type=module -e …`). The thread runs only Witness's compiled modules,
    // which need none of them (flags given in NODE_OPTIONS still apply).
    const worker = new Worker(WORKER, { workerData: this.data, execArgv: [] });
    this.worker = worker;
    worker.unref();
    worker.on('message', (m: FromSealWorker) => this.receive(m));
    worker.on('error', (e) => this.lost(e));
    this.exited = new Promise<void>((resolve) =>
      worker.once('exit', (code) => {
        if (this.worker === worker) this.lost(new Error(`the sealer thread exited with code ${code}`));
        resolve();
      }),
    );
    return worker;
  }

  private post(m: ToSealWorker): void {
    this.worker?.postMessage(m);
  }

  /** Resolves when the sealer thread is not writing; undefined when it is not (no wait at all). */
  get writing(): Promise<void> | undefined {
    return this.held?.promise;
  }

  private receive(m: FromSealWorker): void {
    switch (m.type) {
      case 'lock': {
        // This runs between two tasks of the recording thread, so none of its transactions is open.
        let open!: () => void;
        const promise = new Promise<void>((r) => (open = r));
        this.held = { promise, open };
        this.post({ type: 'locked' });
        return;
      }
      case 'unlock':
        this.release();
        return;
      case 'sign': {
        // The key stays on this thread; signing one note is ~50 µs.
        let reply: ToSealWorker;
        try {
          // A rotation is sealed inline by `witness keys rotate`, which holds its new key: here it is refused.
          const next = pendingRotationSigners(m.rotations, this.signer, [], this.data.context.location);
          reply = { type: 'signed', id: m.id, note: signNote(m.body, [this.signer, ...next]) };
        } catch (e) {
          reply = { type: 'signed', id: m.id, error: e instanceof Error ? e.message : String(e) };
        }
        this.post(reply);
        return;
      }
      case 'sealed': {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        // A Buffer crosses threads as a plain Uint8Array.
        w?.resolve(m.row === null ? null : { ...m.row, root: Buffer.from(m.row.root) });
        return;
      }
      case 'failed': {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        w?.reject(new WitnessError(m.error.code, m.error.message, m.error.details === undefined ? undefined : { details: m.error.details }));
        return;
      }
      case 'done':
        this.unfinished.delete(m.id);
        if (this.unfinished.size === 0) this.idle();
        return;
      case 'ready':
        this.ready = true;
        return;
      case 'closed':
        // The thread exits once its port is closed; 'exit' follows.
        this.worker = undefined;
        return;
    }
  }

  private release(): void {
    const held = this.held;
    this.held = undefined;
    held?.open();
  }

  private idle(): void {
    this.worker?.unref();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** The thread died (a crash, not a close): every open request fails, and the next seal starts a new one. */
  private lost(e: unknown): void {
    this.worker = undefined;
    this.ready = false;
    this.release();
    const err = new WitnessError('store_fault', `The sealer thread stopped unexpectedly (${e instanceof Error ? e.message : String(e)}), which is a bug; report it with this message.`, { cause: e });
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.unfinished.clear();
    this.idle();
  }
}
