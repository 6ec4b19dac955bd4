import { parentPort, threadId, workerData } from 'node:worker_threads';
import { openLedger, verifyLedger } from '../store/index.js';
import type { FromFullPass, FullPassJob } from './full-pass.js';

/**
 * The monitor's full verification thread (full-pass.ts): opens the ledger read-only, verifies it
 * whole (itself with verify's worker threads on a big ledger), reports once and ends. The URL may
 * carry a password: it is only opened, and errors name the store by its redacted location.
 */

const port = parentPort;
if (port === null) throw new Error('full-pass-worker.js runs as a worker thread');
const job = workerData as FullPassJob;

let reply: FromFullPass;
let opened = false;
try {
  const ledger = await openLedger(job.url, { readonly: true, create: false, sealRecord: job.sealRecord });
  opened = true;
  try {
    const report = await verifyLedger(ledger, { url: job.url, threads: job.threads, ...(job.trustedKeys === undefined ? {} : { trustedKeys: job.trustedKeys }) });
    reply = { report, thread: threadId };
  } finally {
    await ledger.close();
  }
} catch (e) {
  reply = {
    error: e instanceof Error ? e.message : String(e),
    code: typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'store_unavailable',
    opened,
  };
}
port.postMessage(reply);
