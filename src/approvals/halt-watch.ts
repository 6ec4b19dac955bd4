import type { LedgerReader } from '../store/index.js';
import { haltState, type HaltView } from './halt.js';

/**
 * How a gateway learns of a halt written by another process: one reader per agent per process
 * reads the agent's halt state from the ledger every `pollMs` (as the approval desk reads for
 * decisions), and every call of that agent checks the last answer without touching the ledger. A
 * halt written anywhere is therefore obeyed within `pollMs` plus one read, well under a second.
 *
 * The ledger's commit announcements (PostgreSQL LISTEN/NOTIFY, `LedgerReader.watch`) cover only
 * approval decisions (store's WatchedKind), so polling is the mechanism here on both drivers.
 *
 * Fail closed: until the first read answers, a call waits for it; when the last read failed, or no
 * read has answered for `staleMs` (a ledger that hangs), the answer is "unreadable" and the gateway
 * refuses the call as it refuses one it cannot record.
 */

export type HaltCheck = { halted: false } | { halted: true; halt: HaltView } | { halted: 'unreadable'; why: string };

export interface HaltWatchSettings {
  /** How often the ledger is read (default 250 ms, as approval decisions are). */
  pollMs: number;
  /** An answer older than this is not trusted (default 10 s). */
  staleMs: number;
  /** How long a watch with no user keeps reading, so relays opened one per request reuse it (default 30 s). */
  lingerMs: number;
}

export const DEFAULT_HALT_WATCH: HaltWatchSettings = { pollMs: 250, staleMs: 10_000, lingerMs: 30_000 };

/** Shared per ledger reader and agent: one HTTP gateway serves many sessions of one agent. */
const watches = new WeakMap<LedgerReader, Map<string, HaltWatch>>();

export class HaltWatch {
  private users = 0;
  private timer: NodeJS.Timeout | undefined;
  private linger: NodeJS.Timeout | undefined;
  private last: HaltCheck | undefined;
  private lastAt = 0;
  private first: Promise<void> | undefined;
  private reading = false;

  private constructor(
    private readonly reader: LedgerReader,
    readonly agent: string,
    private readonly s: HaltWatchSettings,
  ) {}

  /** The process's watch of `agent` on this ledger, started if needed; give it back with `release`. */
  static acquire(reader: LedgerReader, agent: string, settings: Partial<HaltWatchSettings> = {}): HaltWatch {
    let byAgent = watches.get(reader);
    if (byAgent === undefined) {
      byAgent = new Map();
      watches.set(reader, byAgent);
    }
    let w = byAgent.get(agent);
    if (w === undefined) {
      w = new HaltWatch(reader, agent, { ...DEFAULT_HALT_WATCH, ...settings });
      byAgent.set(agent, w);
    }
    w.users += 1;
    w.start();
    return w;
  }

  /** One user is done; the last one stops the reading after `lingerMs`. */
  release(): void {
    if (this.users === 0) return;
    this.users -= 1;
    if (this.users > 0) return;
    this.linger = setTimeout(() => this.stop(), this.s.lingerMs);
    this.linger.unref();
  }

  /** The agent's state as last read; waits for the first read. Never throws: a failure is `unreadable`. */
  async check(): Promise<HaltCheck> {
    if (this.last === undefined) await (this.first ?? this.read());
    return this.current();
  }

  /** The last answer, without waiting (undefined before the first read answers). */
  current(): HaltCheck {
    const last = this.last;
    if (last === undefined) return { halted: 'unreadable', why: 'the halt state has not been read yet' };
    if (last.halted !== 'unreadable' && Date.now() - this.lastAt > this.s.staleMs) {
      return { halted: 'unreadable', why: `the ledger has not answered for ${Math.round((Date.now() - this.lastAt) / 1000)} s` };
    }
    return last;
  }

  private start(): void {
    if (this.linger !== undefined) clearTimeout(this.linger);
    this.linger = undefined;
    if (this.timer !== undefined) return;
    this.first = this.read();
    this.timer = setInterval(() => void this.read(), this.s.pollMs);
    this.timer.unref();
  }

  private stop(): void {
    if (this.users > 0) return;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.linger = undefined;
    this.last = undefined;
    this.first = undefined;
    watches.get(this.reader)?.delete(this.agent);
  }

  private async read(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const s = await haltState(this.reader, this.agent);
      this.last = s.halted ? { halted: true, halt: s.halt } : { halted: false };
      this.lastAt = Date.now();
    } catch (e) {
      this.last = { halted: 'unreadable', why: e instanceof Error ? e.message : String(e) };
    } finally {
      this.reading = false;
    }
  }
}
