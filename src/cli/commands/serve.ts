import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { Monitor } from '../../monitor/index.js';
import { type Io, inert } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';
import { untilStopped } from '../until-stopped.js';
import { addMonitorOptions, monitorSetup, passLines, type MonitorSettingsOpts } from './monitor.js';
import { parseDuration } from './proxy.js';
import { otlpExportSetup, startOtlpExport } from './export-otlp.js';

interface ServeOpts extends MonitorSettingsOpts {
  store?: string;
  port: string;
  host: string;
  config?: string;
  monitor?: boolean;
  monitorInterval: string;
  otlpExport?: string;
  otlpExportProtocol?: string;
  otlpExportHeader?: string[];
  otlpExportState?: string;
  otlpExportInterval: string;
}

/**
 * `witness serve`: the HTTP API over one ledger until SIGINT/SIGTERM, then a clean close (requests
 * in flight finish, what arrived is sealed, the ledger is closed). The server's modules (hono) are
 * loaded only by this command.
 */
export function registerServe(program: Command, io: Io): void {
  const cmd = program
    .command('serve')
    .description('serve the HTTP API (ingest, search, artifacts, proofs, verify) over a ledger, with API keys and roles')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--port <n>', 'TCP port (0 picks a free one)', '7350')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--config <file>', 'server config file (YAML): public_url, and an oidc: section for OpenID Connect sign-in to the viewer')
    .option('--monitor', "also run `witness monitor` in this process (its options below); its metrics join the server's /metrics")
    .option('--monitor-interval <duration>', 'with --monitor: time between passes', '10s')
    .option('--otlp-export <url>', 'also send every committed event, in order, as an OpenTelemetry span to this OTLP/HTTP endpoint (at least once; resumes where it stopped)')
    .option('--otlp-export-protocol <protocol>', 'with --otlp-export: http/protobuf (default) or http/json')
    .option('--otlp-export-header <name=value>', 'with --otlp-export: a header for the endpoint (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--otlp-export-state <file>', 'with --otlp-export: where the export keeps its place (default: <db>.otlp-export.json beside a SQLite ledger; required for PostgreSQL)')
    .option('--otlp-export-interval <duration>', 'with --otlp-export: time between looks for new events', '2s');
  // The monitor's options are witness monitor's own (one definition), taken only with --monitor.
  const monitorOptions = [...addMonitorOptions(cmd), 'monitorInterval'];
  cmd.action(async (opts: ServeOpts) => {
    if (!/^\d{1,5}$/.test(opts.port) || Number(opts.port) > 65535) throw new WitnessError('invalid_argument', `--port "${opts.port}" must be a port number from 0 to 65535.`);
    const stray = monitorOptions.find((name) => cmd.getOptionValueSource(name) === 'cli');
    if (opts.monitor !== true && stray !== undefined) {
      const flag = cmd.options.find((o) => o.attributeName() === stray)?.long ?? stray;
      throw new WitnessError('invalid_argument', `${flag} is a monitor option; add --monitor to run the monitor in this server, or drop it.`);
    }
    const url = resolveStore(opts.store);
    // Checked before anything starts: a bad monitor option stops the start in one sentence.
    const monitoring = opts.monitor === true ? { ...monitorSetup(opts, url, true), intervalMs: parseDuration(opts.monitorInterval, '--monitor-interval') } : undefined;
    const { listen, loadServerConfig, OidcSignIn } = await import('../../server/index.js');
    // Bundles exported over the API carry the auditor report, as `witness export`'s do.
    const { bundleReport } = await import('../../report/index.js');
    // Read before the ledger is opened: a bad config stops the start in one sentence.
    const config = opts.config === undefined ? {} : loadServerConfig(opts.config);
    // The config file's otlp_export: section, each of its settings overridden by the flag that names it.
    const x = config.otlpExport;
    const otlpOpts =
      x === undefined
        ? opts
        : {
            ...opts,
            otlpExport: opts.otlpExport ?? x.url,
            otlpExportProtocol: opts.otlpExportProtocol ?? x.protocol,
            otlpExportHeader: opts.otlpExportHeader ?? Object.entries(x.headers ?? {}).map(([k, v]) => `${k}=${v}`),
            otlpExportState: opts.otlpExportState ?? x.state,
            otlpExportInterval: cmd.getOptionValueSource('otlpExportInterval') === 'cli' ? opts.otlpExportInterval : (x.interval ?? opts.otlpExportInterval),
          };
    const otlpExport = otlpOpts.otlpExport === undefined ? undefined : await otlpExportSetup(otlpOpts, url);
    const ledger = await openExisting(url);
    // Built before the server listens, so its first scrape already has the monitor's series.
    const monitor = monitoring === undefined ? undefined : new Monitor(ledger, monitoring.config, { statePath: monitoring.statePath, sinks: monitoring.sinks });
    let server;
    try {
      server = await listen({
        ledger,
        port: Number(opts.port),
        host: opts.host,
        ...(config.oidc === undefined ? {} : { oidc: config.oidc }),
        onError: (e) => io.err(inert(`witness serve: ${(e as Error).message ?? String(e)}`)),
        renderReport: bundleReport,
        ...(monitor === undefined ? {} : { extraMetrics: () => monitor.metrics.render() }),
      });
    } catch (e) {
      await ledger.close();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
        throw new WitnessError('invalid_argument', `witness serve cannot listen on ${opts.host}:${opts.port} (${code}); choose another --port or --host.`);
      }
      throw e;
    }
    if (!['127.0.0.1', '::1', 'localhost'].includes(opts.host)) {
      io.err(`witness serve: listening on ${opts.host} without TLS: API keys cross the network in clear text unless a TLS proxy sits in front.`);
    }
    if (config.oidc !== undefined) {
      io.err(inert(`witness serve: OpenID Connect sign-in through ${config.oidc.issuer}, returning to ${config.oidc.redirectUri}.`));
      // Not fatal: the provider may be down for a moment; each sign-in discovers it again until it answers.
      new OidcSignIn(config.oidc).ready().catch((e: unknown) => io.err(inert(`witness serve: ${(e as Error).message}`)));
    }
    if (!ledger.canSeal) io.err('witness serve: no signing key for this ledger here, so this server signs no checkpoints; run `witness seal` where the key is.');
    io.out(`Witness server listening on ${server.url} (ledger ${ledger.info.location}); create a key with \`witness keys create --role auditor\`. Stop with Ctrl-C.`);
    const stop = new AbortController();
    let monitorRun: Promise<void> | undefined;
    if (monitor !== undefined && monitoring !== undefined) {
      io.err(`witness serve: monitoring every ${opts.monitorInterval} (full verification every ${opts.fullEvery}); state in ${monitoring.statePath}.`);
      monitorRun = monitor.run(
        monitoring.intervalMs,
        stop.signal,
        (r) => {
          for (const line of passLines(r)) io.err(inert(`witness serve: ${line}`));
          if (r.full !== null) {
            const where = r.full.thread === 0 ? "on the server's own thread" : `on worker thread ${r.full.thread}`;
            io.err(`witness serve: full verification of ${r.full.events} events ${r.full.ok ? 'passed' : 'FAILED'} in ${r.full.seconds} s ${where}.`);
          }
          for (const e of r.errors) io.err(inert(`witness serve: ${e}`));
        },
        (e) => io.err(inert(`witness serve: ${e.message}`)),
      );
    }
    // Beside ingest, never in its way: the follower reads committed events and only ever delays itself.
    const follower = otlpExport === undefined ? undefined : await startOtlpExport(otlpExport, ledger, io);
    await untilStopped();
    await follower?.stop();
    // The monitor finishes its pass (it records into this ledger) before the server closes the ledger.
    stop.abort();
    await monitorRun;
    await server.close();
    io.err('witness serve: stopped; every acknowledged event is committed and the ledger is closed.');
  });
}
