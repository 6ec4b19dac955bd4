import os from 'node:os';
import type { Command } from 'commander';
import { defaultAnchorsFile, readAnchors, type AnchorRecord } from '../../anchor/index.js';
import { WitnessError } from '../../core/index.js';
import { BundleScope, exportBundle, type ExportOptions } from '../../export/index.js';
import { bundleReport } from '../../report/index.js';
import { parseStoreUrl } from '../../store/index.js';
import { type Io, printJson } from '../output.js';
import { bundleScopeFromFlags } from '../scope-flags.js';
import { SEAL_RECORD_HELP, openExisting, resolveStore } from '../store-option.js';
import type { OtlpExportFlags } from './export-otlp.js';
import { FORMAT_HELP, isSiemFormat, siemExportCommand, type SiemExportFlags } from './export-siem.js';

const REGIMES = BundleScope.shape.regimes.element.options;

/** `witness export`'s flags: one set, whichever --format is asked for. */
type ExportFlags = SiemExportFlags & { anchors?: string };

/** The anchor records `witness anchor` kept for this ledger: none for PostgreSQL without --anchors (it has no "beside"). */
function ledgerAnchors(store: string, flag: string | undefined): AnchorRecord[] {
  return flag !== undefined || parseStoreUrl(store).driver === 'sqlite' ? readAnchors(defaultAnchorsFile(store, flag)).records : [];
}

/** The scope the flags ask for, or a one-sentence refusal (exit 2). */
export function scopeFromFlags(opts: ExportFlags): BundleScope {
  return bundleScopeFromFlags(opts, 'to export');
}

export function registerExport(program: Command, io: Io): void {
  program
    .command('export')
    .description('write an evidence bundle (events of a time window, agents or sessions with inclusion proofs, signed checkpoints, keys, populations, artifacts, verifier) that verifies offline')
    .option('--since <iso>', 'events at or after this time (ISO date or time)')
    .option('--until <iso>', 'events before this time (ISO date or time)')
    .option('--agent <ids>', 'events of these agents (comma-separated)')
    .option('--session <ids>', 'events of these sessions (comma-separated), with their approvals and video')
    .option('--regime <names>', `the audit regimes the bundle is for (comma-separated: ${REGIMES.join(', ')})`)
    .option('-o, --out <path>', 'bundle.zip, or an output directory (must not exist or be empty); not with --otlp')
    .option('--withhold-data', 'export headers and salted payload digests only (no payloads, no artifacts): shareable without personal data, still verifiable')
    .option('--as <person>', 'who is exporting, recorded in the export event (default: the OS user)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--seal-record <file>', SEAL_RECORD_HELP)
    .option('--anchors <file>', 'the anchors file `witness anchor` keeps, whose cosignatures and time-stamps the bundle carries (default: <db>.anchors.jsonl beside a SQLite ledger)')
    .option('--format <format>', FORMAT_HELP)
    .option('--otlp <url>', 'send the events as OpenTelemetry spans to this OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318) instead of writing a file')
    .option('--otlp-protocol <protocol>', 'with --otlp: http/protobuf (default) or http/json')
    .option('--otlp-header <name=value>', 'with --otlp: a header for the endpoint (repeatable), e.g. authorization="Bearer …"', (v: string, prev: string[] = []) => [...prev, v])
    .option('--json', 'machine-readable output')
    .action(async (opts: ExportFlags) => {
      // OpenTelemetry spans to a collector (export-otlp.ts, loaded only here: the exporter is large).
      const otlp = opts as ExportFlags & Partial<OtlpExportFlags>;
      if (otlp.otlp !== undefined) {
        if (opts.format !== undefined || otlp.out !== undefined) throw new WitnessError('invalid_argument', '--otlp sends spans to an endpoint; leave out --format and -o with it.');
        const { otlpExportCommand } = await import('./export-otlp.js');
        return otlpExportCommand(io, { ...otlp, otlp: otlp.otlp });
      }
      if (otlp.out === undefined) throw new WitnessError('invalid_argument', 'witness export needs -o <path> (or --otlp <url> to send spans); say where to write, see `witness export --help`.');
      // OCSF and JSONL stream lines for a SIEM (export-siem.ts); the rest of this action is the bundle.
      if (isSiemFormat(opts.format)) return siemExportCommand(io, opts);
      // Flags first: a bad date or regime is refused before the ledger is opened.
      const scope = scopeFromFlags(opts);
      // Not read-only: the export records itself and seals, which checks the ledger against the
      // sealer's record like `witness seal` does.
      const ledger = await openExisting(resolveStore(opts.store), opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord });
      try {
        const actor = opts.as ?? os.userInfo().username;
        // report.html: the auditor report of exactly this bundle (src/report), its screenshots linked as the bundle's files.
        const options: ExportOptions = { withholdData: opts.withholdData === true, actor, renderReport: bundleReport, anchors: ledgerAnchors(resolveStore(opts.store), opts.anchors) };
        const r = await exportBundle(ledger, scope, opts.out, options);
        if (opts.json) return printJson(io, r);
        for (const w of r.warnings) io.err(`witness: ${w}`);
        io.out(
          `Exported ${r.inScope} event(s) in scope (leaves ${r.span.from}–${r.span.to - 1}, ${r.events} lines with the export's own record), ${r.artifacts} artifact(s), proofs against checkpoint size ${r.checkpointSize}${opts.withholdData ? ', payloads withheld' : ''}.`,
        );
        // Not the .pub beside the ledger: whoever can rewrite the ledger can replace that file too,
        // so it pins nothing. The fingerprint is what to compare with the auditor's own record.
        io.out(`  bundle     ${r.dir}`);
        io.out(`  signed by  ${r.signedBy.join(', ')} (the key fingerprint: compare it with the one recorded when the ledger was created)`);
        io.out(`  check      npx witness verify ${r.dir} --trusted-key <that public key, from your own record>`);
      } finally {
        await ledger.close();
      }
    });
}
