import { listApprovals } from '../approvals/index.js';
import type { Ledger } from '../store/index.js';

/** Pending approvals are counted among requests made this long ago at most (holds last minutes: `--approval-timeout`, 5 m by default). */
export const PENDING_WINDOW_MS = 24 * 3_600_000;
/** …and counted at most this often, since counting reads the window's requests, decisions and policy decisions. */
export const PENDING_CACHE_MS = 30_000;

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
  private pending: { at: number; count: number; oldestTs: string | undefined } | undefined;

  /** A decision made through this server: the next scrape counts again, so /metrics agrees with GET /v1/approvals at once. */
  approvalsChanged(): void {
    this.pending = undefined;
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
    return `${lines.join('\n')}\n`;
  }

  private async pendingApprovals(ledger: Ledger, now: number): Promise<{ count: number; oldestTs: string | undefined }> {
    if (this.pending !== undefined && now - this.pending.at < PENDING_CACHE_MS) return this.pending;
    const views = await listApprovals(ledger, { since: new Date(now - PENDING_WINDOW_MS).toISOString(), status: 'pending', now: new Date(now) });
    const oldestTs = views.map((v) => v.request.ts).sort()[0];
    this.pending = { at: now, count: views.length, oldestTs };
    return this.pending;
  }
}
