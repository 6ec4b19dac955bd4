import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WitnessError } from '../core/index.js';

/**
 * The monitor's numbers in the Prometheus text format (0.0.4). Counters count since this process
 * started, as Prometheus expects; gauges are as of the last pass.
 */
export class MonitorMetrics {
  ledgerSize = 0;
  verifiedSize = 0;
  sealedSize = 0;
  unsealed = 0;
  oldestUnsealedAgeSeconds = 0;
  pendingApprovals = 0;
  lastPass = 0;
  lastFullVerify = 0;
  lastFullVerifyOk = 1;
  eventsProcessed = 0;
  passErrors = 0;
  readonly alertsFired = new Map<string, number>();
  readonly alertsActive = new Map<string, number>();
  readonly verificationFailures = new Map<'incremental' | 'full', number>();
  readonly anomalies = new Map<string, number>();
  readonly deliveryFailures = new Map<string, number>();

  static bump<K>(m: Map<K, number>, k: K, by = 1): void {
    m.set(k, (m.get(k) ?? 0) + by);
  }

  render(): string {
    const out: string[] = [];
    const one = (name: string, type: 'gauge' | 'counter', help: string, value: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    const many = (name: string, type: 'gauge' | 'counter', help: string, label: string, m: ReadonlyMap<string, number>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [k, v] of [...m].sort(([a], [b]) => a.localeCompare(b))) out.push(`${name}{${label}="${escapeLabel(k)}"} ${v}`);
    };
    one('witness_monitor_ledger_events', 'gauge', 'Events in the ledger as of the last pass.', this.ledgerSize);
    one('witness_monitor_verified_checkpoint_size', 'gauge', 'Tree size of the last checkpoint the monitor verified.', this.verifiedSize);
    one('witness_monitor_sealed_events', 'gauge', 'Tree size of the newest checkpoint in the ledger.', this.sealedSize);
    one('witness_monitor_unsealed_events', 'gauge', 'Events after the newest checkpoint.', this.unsealed);
    one('witness_monitor_oldest_unsealed_age_seconds', 'gauge', 'Age of the oldest event no checkpoint covers (0 when none).', this.oldestUnsealedAgeSeconds);
    one('witness_monitor_pending_approvals', 'gauge', 'Approval requests waiting for a decision.', this.pendingApprovals);
    one('witness_monitor_last_pass_timestamp_seconds', 'gauge', 'When the last pass finished (Unix time).', this.lastPass);
    one('witness_monitor_last_full_verify_timestamp_seconds', 'gauge', 'When the last full verification finished (Unix time, 0 before the first).', this.lastFullVerify);
    one('witness_monitor_last_full_verify_ok', 'gauge', '1 when the last full verification passed, 0 when it failed.', this.lastFullVerifyOk);
    one('witness_monitor_events_processed_total', 'counter', 'Events the monitor read for alerts and anomaly rules.', this.eventsProcessed);
    one('witness_monitor_pass_errors_total', 'counter', 'Passes that failed (monitor_failed).', this.passErrors);
    many('witness_monitor_alerts_fired_total', 'counter', 'Alerts fired, by code.', 'code', this.alertsFired);
    many('witness_monitor_alerts_active', 'gauge', 'Conditions currently alerting, by code.', 'code', this.alertsActive);
    many('witness_monitor_verification_failures_total', 'counter', 'Verification runs that failed, by kind (incremental, full).', 'kind', this.verificationFailures);
    many('witness_monitor_anomalies_total', 'counter', 'Anomaly flags recorded, by rule.', 'rule', this.anomalies);
    many('witness_monitor_alert_delivery_failures_total', 'counter', 'Alerts a sink gave up on, by sink.', 'sink', this.deliveryFailures);
    return `${out.join('\n')}\n`;
  }
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** `host:port` as --metrics takes it (IPv6 in brackets); port 0 picks a free one. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || port > 65535) throw new WitnessError('invalid_argument', `--metrics "${text}" is not host:port; give e.g. 127.0.0.1:9464.`);
  return { host: m[1] ?? m[2]!, port };
}

/** Serves GET /metrics (and nothing else) until closed. */
export async function serveMetrics(metrics: MonitorMetrics, listen: { host: string; port: number }): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?') === true)) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render());
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: the monitor serves GET /metrics only.\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new WitnessError('invalid_argument', `--metrics cannot listen on ${listen.host}:${listen.port} (${e.code ?? e.message}); choose another address.`)),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return { url: `http://${host}:${a.port}/metrics`, close: () => new Promise((r) => server.close(() => r())) };
}
