import type { PreparedEvent } from '../core/index.js';
import { WitnessError } from '../core/index.js';
import type { AppendReceipt } from '../store/index.js';

export interface PreparedSink {
  appendPrepared(events: readonly PreparedEvent[]): AppendReceipt[] | Promise<AppendReceipt[]>;
}

export interface BatchWriterOptions {
  /** Events per transaction. */
  maxBatch?: number;
  /** Accepted but not yet durable events; past this, `write` waits (backpressure), it never drops. */
  maxQueue?: number;
  /** How long to keep retrying a failing store before giving the events up to `onError`. */
  retryForMs?: number;
  onError: (error: WitnessError) => void;
  /** Called after every durable batch (the sealer listens). */
  onCommit?: (receipts: readonly AppendReceipt[]) => void;
}

interface Pending {
  ev: PreparedEvent;
  resolve: (r: AppendReceipt | undefined) => void;
}

/**
 * Group commit: everything written during one turn of the event loop goes into one transaction,
 * and each writer's promise resolves once its transaction has committed — so an awaited record is
 * durable, and an agent that does not await gets batching for free.
 */
export class BatchWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private flushing = false;
  private spaceWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private readonly maxBatch: number;
  private readonly maxQueue: number;
  private readonly retryForMs: number;

  constructor(
    private readonly sink: PreparedSink,
    private readonly options: BatchWriterOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
    this.maxQueue = options.maxQueue ?? 10_000;
    this.retryForMs = options.retryForMs ?? 30_000;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Resolves with the receipt once durable, or undefined if the store gave up (reported to onError). */
  async write(ev: PreparedEvent): Promise<AppendReceipt | undefined> {
    while (this.queue.length >= this.maxQueue) {
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    }
    return new Promise((resolve) => {
      this.queue.push({ ev, resolve });
      this.schedule();
    });
  }

  /** Resolves when every accepted event has been committed or given up. */
  async drain(): Promise<void> {
    if (this.queue.length === 0 && !this.flushing) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        this.wakeSpace();
        const receipts = await this.commitWithRetry(batch.map((p) => p.ev));
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(receipts?.[i]);
        if (receipts !== undefined) this.options.onCommit?.(receipts.filter((r): r is AppendReceipt => r !== undefined));
      }
    } finally {
      this.flushing = false;
      this.wakeSpace();
      if (this.queue.length > 0) this.schedule();
      else for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async commitWithRetry(events: PreparedEvent[]): Promise<Array<AppendReceipt | undefined> | undefined> {
    const started = Date.now();
    let delay = 10;
    for (;;) {
      try {
        return await this.sink.appendPrepared(events);
      } catch (e) {
        // Anything but a WitnessError is a bug in the sink (a TypeError, say): waiting cannot mend
        // it, so it is reported at once instead of being retried as an outage for retryForMs.
        const err =
          e instanceof WitnessError
            ? e
            : new WitnessError('store_fault', `Recording failed with an error Witness has no case for (${e instanceof Error ? e.message : String(e)}), which is a bug; report it with this message.`, {
                cause: e,
              });
        // Only a lock held elsewhere or a store that is down or full may clear by itself.
        const transient = err.code === 'store_locked' || err.code === 'store_unavailable';
        // One bad event (a reused id, a write after session.end) must not take its batch-mates,
        // often other sessions' events, down with it: commit them one by one instead.
        if (!transient && events.length > 1) return this.commitOneByOne(events);
        if (!transient || Date.now() - started >= this.retryForMs) {
          this.options.onError(
            new WitnessError(err.code, `${events.length} event(s) could not be recorded: ${err.message}`, {
              cause: err,
              details: { lost: events.map((x) => ({ id: x.fields.id, stream: x.stream, kind: x.fields.kind, agent: x.fields.agent.id, ts: x.fields.ts })) },
            }),
          );
          return undefined;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }

  private async commitOneByOne(events: PreparedEvent[]): Promise<Array<AppendReceipt | undefined>> {
    const receipts: Array<AppendReceipt | undefined> = [];
    for (const ev of events) receipts.push((await this.commitWithRetry([ev]))?.[0]);
    return receipts;
  }

  private wakeSpace(): void {
    const free = this.maxQueue - this.queue.length;
    for (const w of this.spaceWaiters.splice(0, Math.max(free, 0))) w();
  }
}
