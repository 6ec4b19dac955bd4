import type { Ledger } from '../store/index.js';
import { RECORDER_VERSION } from '../recorder/index.js';
import type { Caller } from './keys.js';

/** The system stream every person's read of audit data is recorded on (HIPAA 164.312(b), SOC 2 CC6.1), the one `witness export` records on too. */
export const ACCESS_STREAM = 'witness.audit-access';

export type AccessOperation = 'query' | 'view' | 'verify' | 'export';

export interface AccessRecord {
  caller: Caller;
  operation: AccessOperation;
  /** The route as declared (`GET /v1/sessions/:stream`). */
  route: string;
  /** The path and query string as requested. */
  target: string;
  /** Where the request came from (the peer address; `unknown` when served without a socket). */
  from: string;
  /** How many events (or bytes, for an artifact) the answer held. */
  count?: number;
  /** What the read was about: the session, event or artifact digest. */
  resource?: string;
  /** A person refused the route for their role (403): recorded with outcome `denied` and why. */
  refusal?: { status: 403; message: string; unrecordedBefore?: number };
}

/** A person's role refusals recorded per minute at most; the rest are counted, and the next record says how many it follows. */
export const REFUSALS_PER_MINUTE = 30;
const MINUTE_MS = 60_000;

/**
 * Rate limit for recording people's role refusals, per caller (key id, or `oidc:<sub>`). Only
 * authenticated people reach it, so the ledger cannot be filled anonymously; the limit keeps a
 * script with a developer key from filling it on purpose. A fixed one-minute window per caller.
 */
export class RefusalLimiter {
  private readonly byCaller = new Map<string, { windowStart: number; recorded: number; skipped: number }>();

  constructor(
    private readonly perMinute = REFUSALS_PER_MINUTE,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether to record this caller's refusal; when so, how many of theirs went unrecorded since their last record. */
  take(caller: string): { record: true; unrecordedBefore: number } | { record: false } {
    const t = this.now();
    let slot = this.byCaller.get(caller);
    if (slot === undefined || t - slot.windowStart >= MINUTE_MS) {
      if (this.byCaller.size >= 10_000) this.forgetIdle(t);
      slot = { windowStart: t, recorded: 0, skipped: slot?.skipped ?? 0 };
      this.byCaller.set(caller, slot);
    }
    if (slot.recorded >= this.perMinute) {
      slot.skipped++;
      return { record: false };
    }
    slot.recorded++;
    const unrecordedBefore = slot.skipped;
    slot.skipped = 0;
    return { record: true, unrecordedBefore };
  }

  /** Callers whose window ended and who owe no count of skipped refusals. */
  private forgetIdle(t: number): void {
    for (const [k, s] of this.byCaller) if (t - s.windowStart >= MINUTE_MS && s.skipped === 0) this.byCaller.delete(k);
  }
}

/**
 * The request as a person reads it: path and query percent-decoded (`q=jane.doe@example.com`, not
 * `q=jane.doe%40example.com`), so masking for developers finds what a search was for; a part that
 * is not valid percent-encoding is kept as sent.
 */
export function readableRequest(target: string): string {
  const q = target.indexOf('?');
  // In a query `+` is a space (application/x-www-form-urlencoded); in a path it is itself.
  return q < 0 ? decodeRuns(target) : `${decodeRuns(target.slice(0, q))}?${decodeRuns(target.slice(q + 1).replace(/\+/g, ' '))}`;
}

function decodeRuns(s: string): string {
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/**
 * Appends an `audit.access` event: who (key id and name, role), what (route and request), when
 * (the event's time), from where. Awaited before the answer is sent, so a read whose record
 * cannot be written is refused instead of served unrecorded. A refusal is recorded the same way,
 * with outcome `denied` and `data.refusal` (status, the sentence the person was answered, and
 * `unrecorded_before`: their refusals the rate limit left out since their last record).
 */
export async function recordAccess(ledger: Ledger, a: AccessRecord): Promise<void> {
  const actor = a.caller.name === undefined ? `key:${a.caller.keyId}` : `${a.caller.name} (key:${a.caller.keyId})`;
  await ledger.append([
    {
      stream: ACCESS_STREAM,
      agent: { id: 'witness-server', credential: a.caller.keyId },
      principal: { id: actor, kind: 'human' },
      recorder: { kind: 'server', version: RECORDER_VERSION },
      source: { host: a.from },
      kind: 'audit.access',
      resource: a.resource ?? a.route,
      action: a.route,
      outcome: a.refusal === undefined ? 'success' : 'denied',
      data: {
        actor,
        role: a.caller.role,
        key_id: a.caller.keyId,
        operation: a.operation,
        scope: { route: a.route, request: readableRequest(a.target) },
        from: a.from,
        ...(a.count === undefined ? {} : { count: a.count }),
        ...(a.refusal === undefined
          ? {}
          : {
              refusal: {
                status: a.refusal.status,
                message: a.refusal.message,
                ...(a.refusal.unrecordedBefore === undefined || a.refusal.unrecordedBefore === 0 ? {} : { unrecorded_before: a.refusal.unrecordedBefore }),
              },
            }),
      },
    },
  ]);
}
