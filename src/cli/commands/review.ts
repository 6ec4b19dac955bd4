import os from 'node:os';
import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { DISPOSITIONS, POPULATIONS, recordReview, type SpanScope } from '../../export/index.js';
import { type Io, printJson } from '../output.js';
import { idList } from '../scope-flags.js';
import { SEAL_RECORD_HELP, openExisting, resolveStore } from '../store-option.js';
import { scopeTime } from './export-siem.js';

interface ReviewFlags {
  population: string;
  since?: string;
  until?: string;
  agent?: string;
  session?: string;
  disposition: string;
  note: string;
  reviewer?: string;
  store?: string;
  sealRecord?: string;
  json?: boolean;
}

/** The reviewer: --reviewer, else $USER, else the OS account. */
function reviewerOf(flag: string | undefined): string {
  if (flag !== undefined) return flag;
  const env = process.env['USER'];
  return env !== undefined && env !== '' ? env : os.userInfo().username;
}

export function registerReview(program: Command, io: Io): void {
  program
    .command('review')
    .description('record that a person reviewed a population of events (approvals, denials, errors…), bound to its digest and the signed checkpoint it was taken at')
    .requiredOption('--population <name>', `the population reviewed: ${POPULATIONS.map((p) => p.name).join(', ')}`)
    .option('--since <time>', 'events at or after this time (ISO-8601, or e.g. 7d ago)')
    .option('--until <time>', 'events before this time (ISO-8601, or e.g. 1h ago)')
    .option('--agent <ids>', 'events of these agents (comma-separated)')
    .option('--session <ids>', 'events of these sessions (comma-separated)')
    .requiredOption('--disposition <d>', `${DISPOSITIONS.join(' | ')}: nothing to act on, or handed on for action`)
    .requiredOption('--note <text>', 'what you reviewed and found, in a sentence (recorded as the attestation)')
    .option('--reviewer <who>', 'who reviewed (default: $USER); give it explicitly when a service account runs this')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--seal-record <file>', SEAL_RECORD_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: ReviewFlags) => {
      // Flags first: a bad population, disposition, note or time is refused before the ledger is opened.
      if (!POPULATIONS.some((p) => p.name === opts.population)) {
        throw new WitnessError('invalid_argument', `--population "${opts.population}" is not a population; use one of ${POPULATIONS.map((p) => p.name).join(', ')}.`);
      }
      if (!(DISPOSITIONS as readonly string[]).includes(opts.disposition)) {
        throw new WitnessError('invalid_argument', `--disposition "${opts.disposition}" is not a disposition; use ok (nothing found) or escalated (handed on for action).`);
      }
      if (opts.note.trim() === '') throw new WitnessError('invalid_argument', '--note is empty; say in a sentence what you reviewed and what you found.');
      const scope: SpanScope = {
        since: opts.since === undefined ? null : scopeTime(opts.since, '--since'),
        until: opts.until === undefined ? null : scopeTime(opts.until, '--until'),
        agents: idList(opts.agent, '--agent'),
        sessions: idList(opts.session, '--session'),
      };
      if (scope.since !== null && scope.until !== null && scope.since >= scope.until) {
        throw new WitnessError('invalid_argument', `--since ${opts.since} is not before --until ${opts.until}; give a window that is not empty.`);
      }
      const reviewer = reviewerOf(opts.reviewer);
      const ledger = await openExisting(resolveStore(opts.store), opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord });
      try {
        const r = await recordReview(ledger, { population: opts.population, scope, disposition: opts.disposition, note: opts.note, reviewer });
        if (opts.json) return printJson(io, r);
        for (const w of r.warnings) io.err(`witness: ${w}`);
        io.out(`Recorded review ${r.id} (leaf ${r.leaf}) by ${r.reviewer}: ${r.population.name} ${r.disposition}.`);
        io.out(`  population  ${r.population.name}, ${r.population.count} event(s), digest ${r.population.digest}`);
        io.out(`  span        leaves ${r.span.from}–${r.span.to - 1}`);
        io.out(`  checkpoint  size ${r.checkpoint.size}, root ${r.checkpoint.root}`);
        io.out(`  query       ${r.population.query}`);
        if (!r.sealed) io.out('  not sealed yet: run `witness seal` with the signing key to seal the review itself.');
      } finally {
        await ledger.close();
      }
    });
}
