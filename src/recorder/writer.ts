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
  /**
   * For how long in each turn of the event loop a write that finds the writer idle is committed at
   * once (on a microtask) instead of after the turn (see quickAllowed); 0, the default, turns that off.
   */
  quickForMs?: number;
  onError: (error: WitnessError) => void;
  /** Called after every durable batch (the sealer listens). */
  onCommit?: (receipts: readonly AppendReceipt[]) => void;
}

interface Pending {
  ev: PreparedEvent;
  resolve: (r: AppendReceipt | undefined) => void;
}

/**
 * Group commit: a write that finds the writer idle starts a transaction once the code that made it
 * yields (a microtask; see quickAllowed) or at the end of the event loop's turn, and everything
 * written until then goes into that transaction, up to maxBatch. Each writer's promise resolves
 * once its transaction has committed — so an awaited record is durable, and an agent that does not
 * await gets batching for free.
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
  private readonly quickForMs: number;
  /** When the first quick commit of this loop turn was scheduled; cleared as the turn ends. */
  private turnStart: number | undefined;

  constructor(
    private readonly sink: PreparedSink,
    private readonly options: BatchWriterOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
    this.maxQueue = options.maxQueue ?? 10_000;
    this.retryForMs = options.retryForMs ?? 30_000;
    this.quickForMs = options.quickForMs ?? 0;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Resolves with the receipt once durable, or undefined if the store gave up (reported to onError). */
  write(ev: PreparedEvent): Promise<AppendReceipt | undefined> {
    // With room in the queue (nearly always), the promise is handed back as it is: wrapping it in an
    // async function would add a promise and two turns of the microtask queue to every record.
    if (this.queue.length < this.maxQueue) return this.enqueue(ev);
    return this.writeWhenRoom(ev);
  }

  private async writeWhenRoom(ev: PreparedEvent): Promise<AppendReceipt | undefined> {
    while (this.queue.length >= this.maxQueue) {
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    }
    return this.enqueue(ev);
  }

  private enqueue(ev: PreparedEvent): Promise<AppendReceipt | undefined> {
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
    if (this.quickAllowed()) queueMicrotask(() => void this.flush());
    else setImmediate(() => void this.flush());
  }

  /**
   * A write that finds the writer idle is committed on a microtask rather than after the event
   * loop's next turn: an agent that awaits each record waits for one commit, not for a loop turn
   * too. Writes made in the same synchronous run still share a transaction (the microtask runs
   * after that run), but writes that arrive in separate callbacks of one turn would each get a
   * transaction of their own, so this holds for `quickForMs` per turn only: after that the writer
   * waits for the turn to end as before, which batches the rest and lets I/O and timers run.
   */
  private quickAllowed(): boolean {
    if (this.quickForMs <= 0) return false;
    const now = performance.now();
    if (this.turnStart === undefined) {
      this.turnStart = now;
      setImmediate(() => (this.turnStart = undefined));
      return true;
    }
    return now - this.turnStart < this.quickForMs;
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
