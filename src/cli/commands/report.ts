import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { AUDIT_STREAM, BundleScope, makeDirectory, resolveSpan } from '../../export/index.js';
import { printReportPdf, renderReport, writeFileAtomic, type Regime } from '../../report/index.js';
import { type Io, printJson } from '../output.js';
import { bundleScopeFromFlags } from '../scope-flags.js';
import { SEAL_RECORD_HELP, openExisting, resolveStore } from '../store-option.js';

interface ReportFlags {
  since?: string;
  until?: string;
  agent?: string;
  session?: string;
  regime?: string;
  withholdData?: boolean;
  out: string;
  as?: string;
  store?: string;
  sealRecord?: string;
  json?: boolean;
}

const REGIMES: readonly Regime[] = ['eu-ai-act', 'soc2', 'hipaa', 'sec'];

function usage(message: string): WitnessError {
  return new WitnessError('invalid_argument', message);
}

/** The flags as a bundle scope (the same one `witness export` takes), or a one-sentence refusal. */
export function reportScope(o: Pick<ReportFlags, 'since' | 'until' | 'agent' | 'session' | 'regime'>): BundleScope {
  return bundleScopeFromFlags(o, 'the report covers');
}

export function registerReport(program: Command, io: Io): void {
  program
    .command('report')
    .description('write the auditor report of a scope (HTML, or PDF printed with Chromium): integrity, control mapping, oversight, reviews, changes, access, incidents, sampled events with proofs')
    .option('--since <time>', 'events at or after this time (ISO-8601)')
    .option('--until <time>', 'events before this time (ISO-8601)')
    .option('--agent <ids>', 'only these agents (comma-separated)')
    .option('--session <ids>', 'only these sessions (comma-separated)')
    .option('--regime <names>', `map the evidence to these regimes (comma-separated: ${REGIMES.join(', ')})`)
    .option('--withhold-data', 'show headers only, as a bundle exported with --withhold-data: no payloads, no screenshots')
    .requiredOption('-o, --out <file>', 'report.pdf or report.html (must not exist)')
    .option('--as <person>', 'who is reading, recorded as an audit.access event (default: the OS user)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--seal-record <file>', SEAL_RECORD_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: ReportFlags) => {
      const scope = reportScope(opts);
      const format = /\.pdf$/i.test(opts.out) ? 'pdf' : /\.html?$/i.test(opts.out) ? 'html' : undefined;
      if (format === undefined) throw usage(`The output ${opts.out} must end in .pdf or .html; name it report.pdf or report.html.`);
      if (fs.existsSync(opts.out)) throw usage(`The output ${opts.out} already exists; choose a new path with -o.`);
      makeDirectory(path.dirname(path.resolve(opts.out)), { what: 'output directory', flag: '-o' });
      const mode = opts.withholdData === true ? 'withheld' : 'full';
      // Not read-only: a span not yet covered by a checkpoint is sealed first when this process holds the key.
      const ledger = await openExisting(resolveStore(opts.store), opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord });
      try {
        const span = await resolveSpan(ledger, scope);
        if (span === undefined) throw new WitnessError('not_found', `No events in ${ledger.info.location} match the scope; widen --since/--until or check the --agent and --session names.`);
        let cp = await ledger.latestCheckpoint();
        if ((cp === undefined || cp.size < span.to) && ledger.canSeal) cp = (await ledger.seal()) ?? cp;
        if (cp === undefined || cp.size < span.to) {
          throw new WitnessError('invalid_checkpoint', "The scope's newest events are not yet covered by a signed checkpoint; run `witness seal` with the ledger's signing key, then report again.");
        }
        const html = await renderReport(ledger, { scope, span, checkpoint: { size: cp.size, root: cp.root.toString('hex') }, mode });
        const bytes = format === 'pdf' ? await printReportPdf(html) : Buffer.from(html);
        writeFileAtomic(opts.out, bytes);
        const actor = opts.as ?? os.userInfo().username;
        // Reading audit data is itself recorded (HIPAA 164.312(b), SOC 2 CC6.1), after the file is whole.
        await ledger.append([
          {
            stream: AUDIT_STREAM,
            agent: { id: 'witness-cli' },
            principal: { id: actor, kind: 'human' },
            kind: 'audit.access',
            resource: 'report',
            action: 'report',
            outcome: 'success',
            data: { actor, operation: 'export', format: `report/${format}`, scope, mode, span, checkpoint: { size: cp.size, root: cp.root.toString('hex') }, file: path.resolve(opts.out) },
          },
        ]);
        const warnings: string[] = [];
        if (ledger.canSeal) {
          try {
            await ledger.seal();
          } catch (e) {
            warnings.push(`The report is written and this access is recorded, but the record could not be sealed: ${e instanceof Error ? e.message.replace(/\.$/, '') : String(e)}.`);
          }
        }
        const result = { file: path.resolve(opts.out), format, bytes: bytes.length, span, checkpoint: { size: cp.size, root: cp.root.toString('hex') }, mode, scope, warnings };
        if (opts.json === true) return printJson(io, result);
        for (const w of warnings) io.err(`witness: ${w}`);
        io.out(`Wrote the report of leaves ${span.from}–${span.to - 1} against checkpoint size ${cp.size}${mode === 'withheld' ? ', payloads withheld' : ''}.`);
        io.out(`  report  ${result.file} (${format.toUpperCase()}, ${bytes.length.toLocaleString('en-US')} bytes)`);
      } finally {
        await ledger.close();
      }
    });
}
