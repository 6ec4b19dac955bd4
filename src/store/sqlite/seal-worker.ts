import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { WitnessError, parseVerifierKey, type RotationEntry } from '../../core/index.js';
import type { CheckpointRow } from '../ledger.js';
import { Sealer } from './sealer.js';
import type { FromSealWorker, SealWorkerData, ToSealWorker, WireError } from './seal-thread.js';

/*
 * The sealer thread (started by seal-thread.ts): its own connection to the ledger, on which it
 * verifies the unsealed tail, builds the tree, stores the checkpoint, writes the record and copies
 * the WAL into the database, one request at a time. It never holds the private key: each checkpoint
 * body goes back to the thread that opened the ledger to be signed (a ~50 µs step).
 */

const port = parentPort;
if (port === null) throw new Error('seal-worker.ts runs as a worker thread only');
const data = workerData as SealWorkerData;

let db: Database.Database | undefined;
let sealer: Sealer | undefined;
let signIds = 0;
const signing = new Map<number, { resolve: (note: string) => void; reject: (e: Error) => void }>();
let granted: (() => void) | undefined;

function send(m: FromSealWorker): void {
  port!.postMessage(m);
}

function requestSignature(body: string, rotations: readonly RotationEntry[]): Promise<string> {
  const id = ++signIds;
  return new Promise((resolve, reject) => {
    signing.set(id, { resolve, reject });
    send({ type: 'sign', id, body, rotations: [...rotations] });
  });
}

/** The recording thread holds its appends back while this thread writes (WriteGate in sealer.ts). */
const gate = {
  acquire(): Promise<void> {
    return new Promise<void>((resolve) => {
      granted = resolve;
      send({ type: 'lock' });
    });
  },
  release(): void {
    send({ type: 'unlock' });
  },
};

function openSealer(): Sealer {
  if (sealer !== undefined) return sealer;
  db = new Database(data.path, { fileMustExist: true, timeout: data.busyTimeoutMs });
  // Commits here hold the write lock for no fsync: the WAL is synced right after each seal's commit,
  // before the record names it (sealer.ts, `fsync-wal`).
  db.pragma('synchronous = NORMAL');
  db.pragma('temp_store = MEMORY');
  sealer = new Sealer(db, data.context, parseVerifierKey(data.verifierKey), { sign: requestSignature, gate, durable: 'fsync-wal' });
  return sealer;
}

function toWire(e: unknown): WireError {
  if (e instanceof WitnessError) {
    let details: Record<string, unknown> | undefined;
    try {
      details = e.details === undefined ? undefined : structuredClone(e.details);
    } catch {
      details = undefined;
    }
    return { code: e.code, message: e.message, ...(details === undefined ? {} : { details }) };
  }
  return {
    code: 'store_fault',
    message: `Sealing failed with an error Witness has no case for (${e instanceof Error ? e.message : String(e)}), which is a bug; report it with this message.`,
  };
}

async function seal(id: number, force: boolean, now: string): Promise<void> {
  let row: CheckpointRow | null = null;
  try {
    row = await openSealer().seal({ force, now: new Date(now) });
    send({ type: 'sealed', id, row });
  } catch (e) {
    send({ type: 'failed', id, error: toWire(e) });
  }
  // After the answer, so the caller does not wait for the index or the WAL copy; close() waits for
  // 'done'. A seal that found nothing new left nothing to index or copy.
  if (row !== null) await sealer?.afterSeal();
  send({ type: 'done', id });
}

let queue: Promise<void> = Promise.resolve();
send({ type: 'ready' });

port.on('message', (m: ToSealWorker) => {
  switch (m.type) {
    case 'locked': {
      const g = granted;
      granted = undefined;
      g?.();
      return;
    }
    case 'signed': {
      const waiter = signing.get(m.id);
      signing.delete(m.id);
      if (m.note !== undefined) waiter?.resolve(m.note);
      else waiter?.reject(new WitnessError('invalid_key', m.error ?? 'The checkpoint could not be signed.'));
      return;
    }
    case 'seal':
      queue = queue.then(() => seal(m.id, m.force, m.now));
      return;
    case 'close':
      queue = queue.then(() => {
        // Closed, not abandoned: the last checkpoint has finished, so the file needs nothing from
        // this connection once it is gone.
        db?.close();
        db = undefined;
        send({ type: 'closed' });
        port.close();
      });
      return;
  }
});
