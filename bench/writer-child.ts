/**
 * Child process for benchmark 8 (bench/postgres.ts): one writer of the concurrent-writers run. It
 * opens the ledger through `openLedger` (SQLite or PostgreSQL, by URL), generates its own events on
 * streams of its own, prints `ready`, waits for `go` on stdin (so every writer starts at once, with
 * process start-up, connecting and generating left out), appends them with prepare() +
 * appendPrepared() in batches, and prints one JSON line: its start and end on the shared clock.
 * Usage: node writer-child.js '<json WriterJob>'
 */
import readline from 'node:readline';
import { openLedger } from '../src/store/index.js';
import { toolCallInputs } from './events.js';

export interface WriterJob {
  url: string;
  /** PostgreSQL's signing key file (the parent created the ledger and its key). */
  keyFile?: string;
  events: number;
  batch: number;
  streams: number;
  /** Distinct per writer, so each writes streams of its own. */
  seed: number;
}

export interface WriterResult {
  events: number;
  /** performance.timeOrigin + performance.now(), milliseconds: comparable across processes on one machine. */
  start: number;
  end: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as WriterJob;
  const ledger = await openLedger(job.url, { create: false, ...(job.keyFile === undefined ? {} : { keyFile: job.keyFile }) });
  const inputs = toolCallInputs(job.events, job.streams, job.seed);
  process.stdout.write('ready\n');
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => rl.once('line', () => resolve()));
  rl.close();
  const start = performance.timeOrigin + performance.now();
  for (let i = 0; i < inputs.length; i += job.batch) await ledger.appendPrepared(ledger.prepare(inputs.slice(i, i + job.batch)));
  const end = performance.timeOrigin + performance.now();
  await ledger.close();
  const result: WriterResult = { events: inputs.length, start, end };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
