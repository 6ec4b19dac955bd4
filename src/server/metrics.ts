import { listApprovals } from '../approvals/index.js';
import type { Ledger } from '../store/index.js';

/** Pending approvals are counted among requests made this long ago at most (holds last minutes: `--approval-timeout`, 5 m by default). */
export const PENDING_WINDOW_MS = 24 * 3_600_000;
/** …and counted at most this often, since counting reads the window's requests, decisions and policy decisions. */
export const PENDING_CACHE_MS = 30_000;

/** `error` events are counted by whose fault among those recorded this long ago at most… */
export const RECORDED_ERRORS_WINDOW_MS = 24 * 3_600_000;
/** …at most this often… */
export const RECORDED_ERRORS_CACHE_MS = 30_000;
/**
 * …and at most this many of them are held (oldest first), so a flood of tool errors cannot make a
 * scrape read without end: reading 100,000 took 4.4–5.8 s on SQLite and 2.3–2.7 s on PostgreSQL.
 */
export const RECORDED_ERRORS_MAX = 50_000;
/**
 * After the first count only the events since the last one are read, from this long before it:
 * an event is stamped when recorded and committed a little later (batching, another host's clock),
 * so it can carry a time just before the last count. Events already counted are known by position.
 */
export const RECORDED_ERRORS_OVERLAP_MS = 5 * 60_000;

/** Whose fault an `error` event says it records (core/event.ts, `data.source`); `unknown` when it says nothing. */
export const ERROR_SOURCES = ['recorder', 'capture', 'gateway', 'tool', 'llm', 'agent', 'unknown'] as const;
export type ErrorSource = (typeof ERROR_SOURCES)[number];

/** Where a refused API key was presented: an `Authorization: Bearer` header, or the viewer's key sign-in form. */
export type KeyRefusalVia = 'bearer' | 'sign-in';

export interface VerifyOutcome {
  ok: boolean;
  /** When it finished (ISO-8601). */
  at: string;
  events: number;
  failures: number;
}

/**
 * What operations alert on, in the Prometheus text format (version 0.0.4): whether audit
 * records are being made (events appended, ingest and seal errors), whether they are being sealed
 * (age of the last checkpoint) and whether the ledger still verifies. Counters are this process's
 * since it started, as Prometheus expects; the checkpoint age is read from the ledger.
 */
export class ServerMetrics {
  appended = 0;
  readonly ingestErrors = new Map<string, number>();
  sealErrors = 0;
  accessRecordErrors = 0;
  lastVerify: VerifyOutcome | undefined;
  /** The server's key set (createServer sets it): key records it ignored because their signature does not verify. */
  keyRing: { readonly unverified: number } | undefined;
  /** OpenID Connect sign-in, when configured (createServer sets it): refusals before the provider named anyone, by code. */
  oidc: { readonly unnamedRefusals: ReadonlyMap<string, number> } | undefined;
  /**
   * More series from whoever runs the server in its process (`witness serve --monitor` passes the
   * monitor's: the server cannot import src/monitor), appended to every scrape (createServer sets it).
   */
  extra: (() => string | Promise<string>) | undefined;
  /** API keys refused (not issued here, revoked, or not `Bearer <key>`), by where they were presented: unauthenticated, so counted, never recorded. */
  readonly keyRefusals = new Map<KeyRefusalVia, number>();
  /** People's role refusals (403) recorded as `audit.access` denied… */
  refusalsRecorded = 0;
  /** …left unrecorded because that person passed the rate limit (access.ts)… */
  refusalsUnrecorded = 0;
  /** …or because the record could not be written (the refusal is answered all the same). */
  refusalRecordErrors = 0;
  private pending: { at: number; count: number; oldestTs: string | undefined } | undefined;
  private recordedErrors: { at: number; byPos: Map<number, { ts: number; source: ErrorSource }>; cappedAt: number | undefined } | undefined;

  /** `maxRecordedErrors`: how many error events of the window are held at most (RECORDED_ERRORS_MAX). */
  constructor(private readonly limits: { maxRecordedErrors?: number } = {}) {}

  /** A decision made through this server: the next scrape counts again, so /metrics agrees with GET /v1/approvals at once. */
  approvalsChanged(): void {
    this.pending = undefined;
  }

  keyRefused(via: KeyRefusalVia): void {
    this.keyRefusals.set(via, (this.keyRefusals.get(via) ?? 0) + 1);
  }

  ingestError(code: string): void {
    this.ingestErrors.set(code, (this.ingestErrors.get(code) ?? 0) + 1);
  }

  async render(ledger: Ledger, now = Date.now()): Promise<string> {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[labels: string, value: number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    metric('witness_server_events_appended_total', 'counter', 'Events this server appended (ingested, key changes, access records).', [['', this.appended]]);
    const errs = [...this.ingestErrors.entries()].map(([code, n]): [string, number] => [`{code="${code}"}`, n]);
    metric('witness_server_ingest_errors_total', 'counter', 'Ingest requests refused or failed, by error code.', errs.length === 0 ? [['{code="none"}', 0]] : errs);
    metric('witness_server_seal_errors_total', 'counter', 'Periodic seals that failed.', [['', this.sealErrors]]);
    metric('witness_server_access_record_errors_total', 'counter', 'Reads refused because their audit.access record could not be written.', [['', this.accessRecordErrors]]);
    // Someone who can append to the ledger but does not hold the API-key signing key tried to make a key, or the server runs with another key file: either wants a person.
    metric(
      'witness_server_unverified_key_records_total',
      'counter',
      "API-key records ignored because their signature does not verify with this ledger's API-key signing key (forged, or signed with another key file).",
      [['', this.keyRing?.unverified ?? 0]],
    );
    metric(
      'witness_server_refused_keys_total',
      'counter',
      'API keys refused because this server did not issue them, they are revoked, or the header is not `Bearer <key>` (never recorded: they name no one), by where they were presented.',
      (['bearer', 'sign-in'] as const).map((via): [string, number] => [`{via="${via}"}`, this.keyRefusals.get(via) ?? 0]),
    );
    const oidc = [...(this.oidc?.unnamedRefusals ?? new Map<string, number>()).entries()].map(([code, n]): [string, number] => [`{code="${labelValue(code)}"}`, n]);
    metric(
      'witness_server_oidc_unnamed_refusals_total',
      'counter',
      'OpenID Connect sign-ins refused before the provider named anyone (provider error, bad state, failed exchange), by code; never recorded.',
      oidc.length === 0 ? [['{code="none"}', 0]] : oidc,
    );
    metric('witness_server_refusals_recorded_total', 'counter', 'People refused a route or page for their role, recorded as audit.access with outcome denied.', [['', this.refusalsRecorded]]);
    metric('witness_server_refusals_unrecorded_total', 'counter', 'Such refusals not recorded: over the per-person rate limit (reason="rate") or the record failed (reason="error").', [
      ['{reason="rate"}', this.refusalsUnrecorded],
      ['{reason="error"}', this.refusalRecordErrors],
    ]);
    const errors = await this.recordedErrorCounts(ledger, now);
    metric(
      'witness_recorded_errors',
      'gauge',
      "error events recorded in the last 24 h, by whose fault (data.source: recorder, capture and gateway are Witness failing to record or capture; tool, llm and agent are the agent's own), counted at most every 30 s.",
      ERROR_SOURCES.map((source): [string, number] => [`{source="${source}"}`, errors.bySource.get(source) ?? 0]),
    );
    metric(
      'witness_recorded_errors_capped',
      'gauge',
      `1 when more than ${this.limits.maxRecordedErrors ?? RECORDED_ERRORS_MAX} error events fell in the window and some were not counted (the counts above are then lower bounds).`,
      [['', errors.capped ? 1 : 0]],
    );
    const cp = await ledger.latestCheckpoint();
    metric('witness_ledger_events', 'gauge', 'Events in the ledger when this server last read its size.', [['', ledger.info.size]]);
    if (cp !== undefined) {
      metric('witness_last_checkpoint_size', 'gauge', 'Tree size of the newest signed checkpoint.', [['', cp.size]]);
      metric('witness_last_checkpoint_age_seconds', 'gauge', 'Seconds since the newest signed checkpoint was made.', [['', Math.max(0, Math.round((now - Date.parse(cp.ts)) / 1000))]]);
    }
    const pending = await this.pendingApprovals(ledger, now);
    metric('witness_pending_approvals', 'gauge', "Calls held for a person's approval, among requests of the last 24 h (counted at most every 30 s).", [['', pending.count]]);
    metric('witness_oldest_pending_approval_age_seconds', 'gauge', 'How long the oldest pending approval has waited (0 when none).', [
      ['', pending.oldestTs === undefined ? 0 : Math.max(0, Math.round((now - Date.parse(pending.oldestTs)) / 1000))],
    ]);
    if (this.lastVerify !== undefined) {
      const v = this.lastVerify;
      metric('witness_last_verify_ok', 'gauge', '1 when the last verification run through this server passed, 0 when it failed.', [['', v.ok ? 1 : 0]]);
      metric('witness_last_verify_timestamp_seconds', 'gauge', 'When the last verification run through this server finished (Unix time).', [['', Math.round(Date.parse(v.at) / 1000)]]);
      metric('witness_last_verify_failures', 'gauge', 'Failures the last verification reported.', [['', v.failures]]);
    }
    const extra = this.extra === undefined ? '' : await this.extra();
    return `${lines.join('\n')}\n${extra}`;
  }

  /**
   * Counts the window's `error` events by `data.source`. Recorders write their own failures this
   * way (a rejected record, a gap after a store outage, a failed screenshot, the gateway losing a
   * message), so this is how operations see audit generation failing in other processes.
   */
  private async recordedErrorCounts(ledger: Ledger, now: number): Promise<{ bySource: Map<ErrorSource, number>; capped: boolean }> {
    const windowStart = now - RECORDED_ERRORS_WINDOW_MS;
    let state = this.recordedErrors;
    if (state === undefined || now - state.at >= RECORDED_ERRORS_CACHE_MS) {
      const from = state === undefined ? windowStart : Math.max(windowStart, state.at - RECORDED_ERRORS_OVERLAP_MS);
      const next = { at: now, byPos: state?.byPos ?? new Map<number, { ts: number; source: ErrorSource }>(), cappedAt: state?.cappedAt };
      for (const [pos, e] of next.byPos) if (e.ts < windowStart) next.byPos.delete(pos);
      let cursor: string | undefined;
      scan: do {
        const page = await ledger.query({ kind: 'error', since: new Date(from).toISOString(), limit: 10_000, ...(cursor === undefined ? {} : { cursor }) });
        for (const e of page.events) {
          if (next.byPos.has(e.pos)) continue;
          if (next.byPos.size >= (this.limits.maxRecordedErrors ?? RECORDED_ERRORS_MAX)) {
            next.cappedAt = now;
            break scan;
          }
          next.byPos.set(e.pos, { ts: Date.parse(e.ts), source: sourceOf(e.data) });
        }
        cursor = page.next;
      } while (cursor !== undefined);
      this.recordedErrors = state = next;
    }
    const bySource = new Map<ErrorSource, number>();
    for (const e of state.byPos.values()) if (e.ts >= windowStart) bySource.set(e.source, (bySource.get(e.source) ?? 0) + 1);
    return { bySource, capped: state.cappedAt !== undefined && state.cappedAt >= windowStart };
  }

  private async pendingApprovals(ledger: Ledger, now: number): Promise<{ count: number; oldestTs: string | undefined }> {
    if (this.pending !== undefined && now - this.pending.at < PENDING_CACHE_MS) return this.pending;
    const views = await listApprovals(ledger, { since: new Date(now - PENDING_WINDOW_MS).toISOString(), status: 'pending', now: new Date(now) });
    const oldestTs = views.map((v) => v.request.ts).sort()[0];
    this.pending = { at: now, count: views.length, oldestTs };
    return this.pending;
  }
}

function sourceOf(data: unknown): ErrorSource {
  const source = typeof data === 'object' && data !== null ? (data as { source?: unknown }).source : undefined;
  // The schema admits only the listed sources; anything else (an older writer) is not theirs to name a label.
  return typeof source === 'string' && (ERROR_SOURCES as readonly string[]).includes(source) ? (source as ErrorSource) : 'unknown';
}

/** A label value in the exposition format: backslash, quote and newline escaped. */
function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
