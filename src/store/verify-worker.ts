import { parentPort, workerData } from 'node:worker_threads';
import { ChunkChecker } from '../core/index.js';
import type { Ledger } from './ledger.js';
import { openLedger } from './open.js';
import { scanRange, type FromWorker, type ToWorker } from './verify-pool.js';

/**
 * A verify thread (see verify-pool.ts): opens the ledger read-only through the one seam and checks
 * the chunks it is sent, one at a time, until told to close. The URL may carry a password: it is
 * only ever opened, and an error names the store by the driver's redacted location.
 */

const port = parentPort;
if (port === null) throw new Error('verify-worker.js runs as a worker thread');
const { url } = workerData as { url: string };
let ledger: Promise<Ledger> | undefined;

port.on('message', (m: ToWorker) => {
  if ('close' in m) {
    void (async () => {
      try {
        await (await ledger)?.close();
      } finally {
        port.close();
      }
    })();
    return;
  }
  void (async () => {
    let reply: FromWorker;
    try {
      ledger ??= openLedger(url, { readonly: true, create: false });
      const l = await ledger;
      const c = new ChunkChecker(m.plan);
      for await (const page of scanRange(l, m.plan.start, m.plan.end)) for (const row of page) c.add(row);
      reply = { result: c.finish() };
    } catch (e) {
      reply = { error: e instanceof Error ? e.message : String(e) };
    }
    port.postMessage(reply);
  })();
});
