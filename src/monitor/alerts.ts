import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * What the monitor alerts on, each with a stable code (recorded as the `alert` event's `code` and
 * sent to every sink). A condition is keyed (`approval_pending:<request id>`, `agent_halted:<agent>`)
 * and fires once when it begins; it fires again only after it has cleared ("resolved" is sent
 * then), so a failing ledger or a long outage is one alert, not a storm.
 */
export const ALERT_CODES = {
  verification_failed: { severity: 'critical', what: 'A new checkpoint or the scheduled full pass did not verify.' },
  sealing_stalled: { severity: 'critical', what: 'Events have waited unsealed longer than --seal-stall with no new checkpoint.' },
  recording_gap: { severity: 'critical', what: 'A recorder or gateway recorded a gap: events it could not write are missing from the ledger.' },
  capture_failed: { severity: 'warning', what: 'A screenshot could not be taken or stored (an `error` event with source capture).' },
  approval_pending: { severity: 'warning', what: 'An approval request has waited longer than --approval-pending.' },
  approval_expired: { severity: 'warning', what: 'An approval request expired undecided (or its grant expired unused).' },
  agent_halted: { severity: 'critical', what: 'A person halted an agent (human.halt); resolved by human.resume.' },
  governance: {
    severity: 'warning',
    what: 'An act of governance was recorded where Witness records it: a purge, a legal hold placed or released, a retention rule set, a key rotated, an agent halted or resumed.',
  },
  governance_misplaced: {
    severity: 'critical',
    what: 'An act of governance was found outside its stream or stamped by another recorder kind than the one that records it: something else wrote it, and it may be forged.',
  },
  monitor_failed: { severity: 'critical', what: "The monitor's own pass failed (the ledger unreadable, the state file unwritable); sent to the sinks only." },
} as const;
export type AlertCode = keyof typeof ALERT_CODES;
export type Severity = 'info' | 'warning' | 'critical';

/** What every sink receives (the webhook's body, the command's stdin), and what the `alert` event records. */
export interface AlertMessage {
  /** Stable per occurrence (the condition's key and when it began): a receiver dedupes on it. */
  id: string;
  status: 'firing' | 'resolved';
  code: AlertCode;
  severity: Severity;
  key: string;
  message: string;
  /** When the condition began (ISO-8601). */
  since: string;
  /** When this message was made. */
  at: string;
  ledger: { id: string; origin: string; location: string };
  details?: Record<string, unknown>;
}

export const Condition = z.strictObject({
  code: z.string(),
  since: z.string(),
  message: z.string(),
  /** One-shot conditions (an expiry) never send "resolved"; they are forgotten once out of view. */
  oneShot: z.boolean().optional(),
});
export type Condition = z.infer<typeof Condition>;

export interface Raised {
  code: AlertCode;
  key: string;
  message: string;
  details?: Record<string, unknown>;
  oneShot?: boolean;
  /** When the condition began, when not now: an alert about one event dates from the event, so its id is the same whichever pass raises it. */
  since?: string;
}

/** The active conditions (saved in the state file) and what changed in this pass. */
export class AlertBook {
  readonly changes: Array<{ status: 'firing' | 'resolved'; raised: Raised; since: string }> = [];

  constructor(
    readonly active: Record<string, Condition>,
    private readonly now: Date,
  ) {}

  raise(r: Raised): void {
    if (this.active[r.key] !== undefined) return;
    const since = r.since ?? this.now.toISOString();
    this.active[r.key] = { code: r.code, since, message: r.message, ...(r.oneShot === true ? { oneShot: true } : {}) };
    this.changes.push({ status: 'firing', raised: r, since });
  }

  clear(key: string, message?: string): void {
    const c = this.active[key];
    if (c === undefined) return;
    delete this.active[key];
    if (c.oneShot === true) return;
    // Raised and cleared within one pass (a halt and its resume read together): neither is news.
    const raisedNow = this.changes.findIndex((ch) => ch.status === 'firing' && ch.raised.key === key);
    if (raisedNow !== -1) {
      this.changes.splice(raisedNow, 1);
      return;
    }
    this.changes.push({ status: 'resolved', raised: { code: c.code as AlertCode, key, message: message ?? `Resolved: ${c.message}` }, since: c.since });
  }

  /** Keys beginning with `prefix` that `keep` does not hold: cleared (conditions no longer in view). */
  clearExcept(prefix: string, keep: ReadonlySet<string>, message?: (c: Condition) => string): void {
    for (const [key, c] of Object.entries(this.active)) if (key.startsWith(prefix) && !keep.has(key)) this.clear(key, message?.(c));
  }

  isActive(key: string): boolean {
    return this.active[key] !== undefined;
  }

  messages(ledger: AlertMessage['ledger']): AlertMessage[] {
    const at = this.now.toISOString();
    return this.changes.map(({ status, raised, since }) => ({
      id: createHash('sha256').update(`${raised.key}\n${since}\n${status}`).digest('hex').slice(0, 32),
      status,
      code: raised.code,
      severity: status === 'resolved' ? 'info' : ALERT_CODES[raised.code].severity,
      key: raised.key,
      message: raised.message,
      since,
      at,
      ledger,
      ...(raised.details === undefined ? {} : { details: raised.details }),
    }));
  }
}
