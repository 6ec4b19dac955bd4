import fs from 'node:fs';
import os from 'node:os';
import type { Writable } from 'node:stream';
import { WitnessError } from '../../core/index.js';
import { SIEM_FORMATS, exportSiem, normaliseInstant, type SiemFormat, type SpanScope } from '../../export/index.js';
import { RECORDER_VERSION } from '../../recorder/index.js';
import { type Io, jsonText } from '../output.js';
import { idList, type ScopeFlags } from '../scope-flags.js';
import { openExisting, resolveStore } from '../store-option.js';
import { parseTime } from './query.js';

/**
 * A --since/--until of a scope: an ISO date or time whose every part exists (2026-11-31 and T24:00
 * are refused, not rolled over), or a span such as 24h; as YYYY-MM-DDTHH:MM:SS.mmmZ.
 */
export function scopeTime(value: string, flag: string): string {
  return /^\s*\d{4}-/.test(value) ? normaliseInstant(value, flag) : parseTime(value, flag);
}

/** The flags of `witness export`, which `--format ocsf|jsonl` reads too. */
export interface SiemExportFlags extends ScopeFlags {
  format?: string;
  withholdData?: boolean;
  out: string;
  as?: string;
  store?: string;
  sealRecord?: string;
  json?: boolean;
}

/** What `--format` takes: the evidence bundle (the default) or a SIEM stream. */
export const EXPORT_FORMATS = ['evidence', ...SIEM_FORMATS] as const;
export const FORMAT_HELP = 'evidence (a bundle, the default), ocsf (OCSF 1.8.0 JSON lines) or jsonl (stored events, one per line) — the last two stream to -o FILE, or to stdout with -o -';

/** Whether `--format` asks for a SIEM stream rather than a bundle; refuses an unknown format. */
export function isSiemFormat(format: string | undefined): boolean {
  if (format === undefined || format === 'evidence') return false;
  if (!(SIEM_FORMATS as readonly string[]).includes(format)) {
    throw new WitnessError('invalid_argument', `--format "${format}" is not an export format; use one of ${EXPORT_FORMATS.join(', ')}.`);
  }
  return true;
}

/**
 * `witness export --format ocsf|jsonl`: the scope's events streamed as lines to a new file or, with
 * `-o -`, to standard output (the summary then goes to standard error). No filter: every event.
 */
export async function siemExportCommand(io: Io, opts: SiemExportFlags): Promise<void> {
  const format = opts.format as SiemFormat;
  if (opts.regime !== undefined) throw new WitnessError('invalid_argument', `--regime applies to evidence bundles only; leave it out with --format ${format}.`);
  const scope: SpanScope = {
    since: opts.since === undefined ? null : scopeTime(opts.since, '--since'),
    until: opts.until === undefined ? null : scopeTime(opts.until, '--until'),
    agents: idList(opts.agent, '--agent'),
    sessions: idList(opts.session, '--session'),
  };
  if (scope.since !== null && scope.until !== null && scope.since >= scope.until) {
    throw new WitnessError('invalid_argument', `--since ${opts.since} is not before --until ${opts.until}; give a window that is not empty.`);
  }
  const toStdout = opts.out === '-';
  if (!toStdout && fs.existsSync(opts.out)) throw new WitnessError('invalid_argument', `The output ${opts.out} already exists; choose a new path with -o (or - for standard output).`);
  const report = toStdout ? (t: string) => io.err(t) : (t: string) => io.out(t);

  const ledger = await openExisting(resolveStore(opts.store), opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord });
  let file: fs.WriteStream | undefined;
  let opened = false;
  try {
    if (!toStdout) {
      file = fs.createWriteStream(opts.out, { flags: 'wx' });
      await new Promise<void>((resolve, reject) => {
        file!.once('open', () => {
          opened = true;
          resolve();
        });
        file!.once('error', (e: NodeJS.ErrnoException) =>
          reject(new WitnessError('invalid_argument', `Cannot write ${opts.out} (${e.code ?? e.message}); choose a writable path with -o.`, { cause: e })),
        );
      });
    }
    const out: Writable = file ?? process.stdout;
    const r = await exportSiem(ledger, out, {
      format,
      scope,
      withholdData: opts.withholdData === true,
      actor: opts.as ?? os.userInfo().username,
      productVersion: RECORDER_VERSION,
    });
    if (file !== undefined) {
      const f = file;
      await new Promise<void>((resolve, reject) => {
        f.once('error', reject);
        f.end(() => resolve());
      });
    }
    if (opts.json) return report(jsonText({ ...r, out: toStdout ? '-' : opts.out }));
    for (const w of r.warnings) io.err(`witness: ${w}`);
    const where = toStdout ? 'standard output' : opts.out;
    const span = r.span === null ? 'no event in scope' : `leaves ${r.span.from}–${r.span.to - 1}`;
    report(
      `Exported ${r.events} event(s) as ${format === 'ocsf' ? 'OCSF 1.8.0' : 'JSONL'} to ${where} (${span}, proofs against checkpoint size ${r.checkpoint.size}${opts.withholdData ? ', payloads withheld' : ''})${r.closed ? '; the reader closed the output early' : ''}.`,
    );
  } catch (e) {
    // A half-written file is not an export: remove it.
    if (file !== undefined) {
      file.destroy();
      if (opened) fs.rmSync(opts.out, { force: true });
    }
    throw e;
  } finally {
    await ledger.close();
  }
}
