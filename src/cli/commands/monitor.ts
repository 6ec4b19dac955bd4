import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { CommandSink, GOVERNANCE_KINDS, Monitor, WebhookSink, parseListen, serveMetrics, type AlertSink, type GovernanceKind, type MonitorConfig, type PassReport } from '../../monitor/index.js';
import { parseStoreUrl } from '../../store/index.js';
import { type Io, inert, jsonText } from '../output.js';
import { SEAL_RECORD_HELP, openExisting, readTrustedKeys, resolveStore } from '../store-option.js';
import { untilStopped } from '../until-stopped.js';
import { parseDuration } from './proxy.js';

/** The options `witness monitor` and `witness serve --monitor` share (addMonitorOptions defines them). */
export interface MonitorSettingsOpts {
  state?: string;
  webhook?: string;
  webhookSecretEnv?: string;
  command?: string;
  fullEvery: string;
  approvalPending: string;
  sealStall: string;
  burst: string;
  denialStreak: string;
  newToolAfter: string;
  trustedKey?: string[];
  backfill?: boolean;
  quietGovernance?: string;
}

interface MonitorOpts extends MonitorSettingsOpts {
  store?: string;
  metrics?: string;
  interval: string;
  sealRecord?: string;
  record: boolean;
  once?: boolean;
  json?: boolean;
}

/**
 * The monitor's own options, defined once for both commands that run it: where it keeps its place,
 * where alerts go and what they alert on. Each command adds its own interval flag (`--interval`
 * for monitor, `--monitor-interval` for serve, whose process serves more than the monitor). Returns
 * the attribute names of the options it added, so serve can refuse them without --monitor.
 */
export function addMonitorOptions(cmd: Command): string[] {
  const before = new Set(cmd.options.map((o) => o.attributeName()));
  cmd
    .option('--state <file>', 'where the monitor keeps its place (default: <db>.monitor.json beside a SQLite ledger; required for PostgreSQL)')
    .option('--webhook <url>', 'POST each alert as JSON here, signed (needs --webhook-secret-env)')
    .option('--webhook-secret-env <name>', 'environment variable holding the webhook HMAC secret')
    .option('--command <cmd>', 'run this shell command for each alert, with the alert JSON on its standard input')
    .option('--full-every <duration>', 'verify the whole ledger this often', '1h')
    .option('--approval-pending <duration>', 'alert on an approval request pending longer than this', '15m')
    .option('--seal-stall <duration>', 'alert when events wait unsealed longer than this', '5m')
    .option('--burst <calls/duration>', 'flag an agent making more tool calls than this within the window', '30/60s')
    .option('--denial-streak <n>', 'flag this many policy refusals in a row', '5')
    .option('--new-tool-after <n>', 'flag a tool new to an agent once it has made this many calls', '20')
    .option('--trusted-key <key-or-file...>', "verify checkpoints with these keys instead of the ledger's own")
    .option('--backfill', 'on the first pass, flag the existing history too (by default it is only learned from)')
    .option('--quiet-governance <kinds>', `acts of governance not to alert on, comma-separated (${GOVERNANCE_KINDS.join(', ')}); misplaced ones alert all the same`);
  return cmd.options.map((o) => o.attributeName()).filter((n) => !before.has(n));
}

/**
 * Everything a Monitor needs from the shared options, checked before the ledger is opened so a bad
 * option stops the start in one sentence: its config, where its state lives, and its alert sinks.
 */
export function monitorSetup(opts: MonitorSettingsOpts, url: string, record: boolean): { config: MonitorConfig; statePath: string; sinks: AlertSink[] } {
  return { config: { ...monitorConfig(opts, record), url }, statePath: opts.state ?? defaultStatePath(url), sinks: buildSinks(opts) };
}

/** The alert and flag lines of one pass, as a person reads them. */
export function passLines(r: PassReport): string[] {
  return [...r.alerts.map((a) => `ALERT ${a.status} ${a.code} [${a.severity}]: ${a.message}`), ...r.flags.map((f) => `FLAG ${f.rule} ${f.agent}: ${f.reason}`)];
}

export function registerMonitor(program: Command, io: Io, setExit: (code: number) => void): void {
  const cmd = program
    .command('monitor')
    .description('verify new checkpoints as they appear and the whole ledger on a schedule; alert on failures, stalls, pending approvals and halts; flag anomalies')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)');
  addMonitorOptions(cmd);
  cmd
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://<host:port>/metrics while running')
    .option('--interval <duration>', 'time between passes', '10s')
    .option('--seal-record <file>', SEAL_RECORD_HELP)
    .option('--no-record', 'do not record alerts and flags in the ledger (a read-only ledger)')
    .option('--once', 'run one pass and exit (cron, tests): exit 1 when the ledger does not verify or a finding was not recorded, saved or delivered')
    .option('--json', 'machine-readable output: one JSON object per pass')
    .action(async (opts: MonitorOpts) => {
      const url = resolveStore(opts.store);
      const { config, statePath, sinks } = monitorSetup(opts, url, opts.record);
      if (opts.once === true && opts.metrics !== undefined) throw new WitnessError('invalid_argument', '--metrics serves while the monitor runs; drop --once to scrape it, or drop --metrics.');
      const listen = opts.metrics === undefined ? undefined : parseListen(opts.metrics);
      const interval = parseDuration(opts.interval, '--interval');
      const ledger = await openExisting(url, { readonly: !opts.record, ...(opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord }) });
      try {
        const monitor = new Monitor(ledger, config, { statePath, sinks });
        if (opts.once === true) {
          const report = await monitor.pass();
          printPass(io, report, opts.json === true, true);
          for (const e of report.errors) io.err(inert(`witness: ${e}`));
          // Exit 1 when the ledger does not verify, or when a finding was not recorded, saved or delivered.
          if (report.verified.failures.length > 0 || report.full?.ok === false || report.errors.length > 0) setExit(1);
          return;
        }
        const served = listen === undefined ? undefined : await serveMetrics(monitor.metrics, listen);
        if (served !== undefined && opts.json !== true) io.out(`Metrics at ${served.url}`);
        if (opts.json !== true) io.out(`Monitoring ${ledger.info.location} every ${opts.interval} (full verification every ${opts.fullEvery}); state in ${statePath}. Stop with Ctrl-C.`);
        const stop = new AbortController();
        void untilStopped().then(() => stop.abort());
        try {
          await monitor.run(
            interval,
            stop.signal,
            (r) => {
              printPass(io, r, opts.json === true, false);
              for (const e of r.errors) io.err(inert(`witness: ${e}`));
            },
            (e) => io.err(inert(`witness: ${e.message}`)),
          );
        } finally {
          await served?.close();
        }
      } finally {
        await ledger.close();
      }
    });
}

function monitorConfig(opts: MonitorSettingsOpts, record: boolean) {
  const m = /^(\d+)\/(.+)$/.exec(opts.burst.trim());
  if (m === null || Number(m[1]) < 1) throw new WitnessError('invalid_argument', `--burst "${opts.burst}" is not calls/duration; give e.g. 30/60s.`);
  const count = (text: string, flag: string, min: number) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) throw new WitnessError('invalid_argument', `${flag} "${text}" is not a whole number of at least ${min}.`);
    return n;
  };
  const trusted = readTrustedKeys(opts.trustedKey);
  return {
    fullEveryMs: parseDuration(opts.fullEvery, '--full-every'),
    approvalPendingMs: parseDuration(opts.approvalPending, '--approval-pending'),
    sealStallMs: parseDuration(opts.sealStall, '--seal-stall'),
    backfill: opts.backfill === true,
    record,
    quietGovernance: quietKinds(opts.quietGovernance),
    ...(trusted === undefined ? {} : { trustedKeys: trusted }),
    behaviour: {
      burstCalls: Number(m[1]),
      burstWindowMs: parseDuration(m[2]!, '--burst'),
      denialStreak: count(opts.denialStreak, '--denial-streak', 1),
      newToolAfter: count(opts.newToolAfter, '--new-tool-after', 0),
      hoursMinCalls: 50,
      hoursMinDays: 3,
    },
  };
}

function quietKinds(text: string | undefined): GovernanceKind[] {
  if (text === undefined) return [];
  const kinds = text
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  const unknown = kinds.find((k) => !(GOVERNANCE_KINDS as readonly string[]).includes(k));
  if (unknown !== undefined || kinds.length === 0)
    throw new WitnessError('invalid_argument', `--quiet-governance names ${JSON.stringify(unknown ?? text)}, which is not an act of governance; name some of ${GOVERNANCE_KINDS.join(', ')}.`);
  return kinds as GovernanceKind[];
}

function defaultStatePath(url: string): string {
  const loc = parseStoreUrl(url);
  if (loc.driver === 'sqlite') return `${loc.path}.monitor.json`;
  throw new WitnessError('invalid_argument', 'A PostgreSQL ledger has no directory to keep the monitor state beside; give --state FILE.');
}

function buildSinks(opts: MonitorSettingsOpts): AlertSink[] {
  const sinks: AlertSink[] = [];
  if (opts.webhook !== undefined) {
    if (opts.webhookSecretEnv === undefined)
      throw new WitnessError(
        'invalid_argument',
        '--webhook needs --webhook-secret-env NAME: alerts are signed with the secret in that environment variable so the receiver can tell them from forgeries.',
      );
    const secret = process.env[opts.webhookSecretEnv];
    if (secret === undefined || secret === '')
      throw new WitnessError('invalid_argument', `The environment variable ${opts.webhookSecretEnv} named by --webhook-secret-env is not set; set it to the secret the webhook receiver checks.`);
    sinks.push(new WebhookSink({ url: opts.webhook, secret }));
  } else if (opts.webhookSecretEnv !== undefined) {
    throw new WitnessError('invalid_argument', '--webhook-secret-env is used only with --webhook; add the webhook URL or drop it.');
  }
  if (opts.command !== undefined) sinks.push(new CommandSink(opts.command));
  return sinks;
}

function printPass(io: Io, r: PassReport, json: boolean, always: boolean): void {
  if (json) {
    io.out(jsonText(r, 0));
    return;
  }
  for (const line of passLines(r)) io.out(inert(line));
  if (!always && r.alerts.length === 0 && r.flags.length === 0) return;
  const full = r.full === null ? 'not due' : r.full.ok ? `ok (${r.full.events} events, ${r.full.seconds} s)` : `FAILED: ${r.full.first ?? ''}`;
  const verified = r.verified.checkpoint === null ? 'no checkpoint yet' : `checkpoint ${r.verified.checkpoint} (size ${r.verified.size})`;
  io.out(
    inert(
      `Read ${r.events} event(s); verified ${verified}${r.verified.failures.length > 0 ? `, FAILED: ${r.verified.failures[0]}` : ''}; full pass ${full}; ${r.unsealed} unsealed; ${r.flags.length} flag(s), ${r.alerts.length} alert(s).`,
    ),
  );
}
