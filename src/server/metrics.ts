import type { Ledger } from '../store/index.js';

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
    const cp = await ledger.latestCheckpoint();
    metric('witness_ledger_events', 'gauge', 'Events in the ledger when this server last read its size.', [['', ledger.info.size]]);
    if (cp !== undefined) {
      metric('witness_last_checkpoint_size', 'gauge', 'Tree size of the newest signed checkpoint.', [['', cp.size]]);
      metric('witness_last_checkpoint_age_seconds', 'gauge', 'Seconds since the newest signed checkpoint was made.', [['', Math.max(0, Math.round((now - Date.parse(cp.ts)) / 1000))]]);
    }
    if (this.lastVerify !== undefined) {
      const v = this.lastVerify;
      metric('witness_last_verify_ok', 'gauge', '1 when the last verification run through this server passed, 0 when it failed.', [['', v.ok ? 1 : 0]]);
      metric('witness_last_verify_timestamp_seconds', 'gauge', 'When the last verification run through this server finished (Unix time).', [['', Math.round(Date.parse(v.at) / 1000)]]);
      metric('witness_last_verify_failures', 'gauge', 'Failures the last verification reported.', [['', v.failures]]);
    }
    return `${lines.join('\n')}\n`;
  }
}
