import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { listHolds, placeHold, releaseHold, type HoldScope } from '../../store/index.js';
import { type Io, inert, printJson, table } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';
import { parseTime } from './query.js';
import { actorOf } from './retention.js';

const STORE_HELP = 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)';

function describeScope(s: HoldScope): string {
  const parts = [
    s.session === undefined ? '' : `session ${s.session}`,
    s.agent === undefined ? '' : `agent ${s.agent}`,
    s.subject === undefined ? '' : `subject ${s.subject}`,
    s.since === undefined ? '' : `from ${s.since}`,
    s.until === undefined ? '' : `before ${s.until}`,
  ].filter((x) => x !== '');
  return parts.length === 0 ? 'everything' : parts.join(', ');
}

/**
 * `witness hold place|release|list`: legal holds, recorded as hold.placed / hold.released events
 * and read back from the ledger by every purge and erasure (src/store/holds.ts).
 */
export function registerHold(program: Command, io: Io): void {
  const hold = program.command('hold').description('legal holds: events they cover are never purged or erased until the hold is released; both are recorded');

  hold
    .command('place')
    .description('place a legal hold on a session, an agent, a subject and/or a time window (every one given must match)')
    .option('--session <id>', 'events of this session')
    .option('--agent <id>', 'events of this agent')
    .option('--subject <id>', 'events whose header names this data subject')
    .option('--since <time>', 'events at or after this time (ISO-8601, or e.g. 30d ago)')
    .option('--until <time>', 'events before this time (ISO-8601, or e.g. 1d ago)')
    .requiredOption('--reason <text>', 'why the records must be kept (recorded)')
    .option('--case <ref>', 'the matter or case reference (recorded)')
    .option('--by <name>', 'who places it (default: $USER)')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { session?: string; agent?: string; subject?: string; since?: string; until?: string; reason: string; case?: string; by?: string; store?: string; json?: boolean }) => {
      const scope: HoldScope = {
        ...(opts.session === undefined ? {} : { session: opts.session }),
        ...(opts.agent === undefined ? {} : { agent: opts.agent }),
        ...(opts.subject === undefined ? {} : { subject: opts.subject }),
        ...(opts.since === undefined ? {} : { since: parseTime(opts.since, '--since') }),
        ...(opts.until === undefined ? {} : { until: parseTime(opts.until, '--until') }),
      };
      if (scope.since !== undefined && scope.until !== undefined && scope.since >= scope.until) {
        throw new WitnessError('invalid_argument', `--since ${scope.since} is not before --until ${scope.until}; the hold's window would hold nothing.`);
      }
      const ledger = await openExisting(resolveStore(opts.store));
      try {
        const placed = await placeHold(ledger, { scope, reason: opts.reason, ...(opts.case === undefined ? {} : { case: opts.case }) }, actorOf(opts.by));
        if (opts.json) return printJson(io, { hold: placed.hold, scope, event: placed.receipt.id, leaf: placed.receipt.pos });
        io.out(inert(`Hold ${placed.hold} placed on ${describeScope(scope)}; recorded at leaf ${placed.receipt.pos}. Release it with \`witness hold release ${placed.hold} --reason …\`.`));
      } finally {
        await ledger.close();
      }
    });

  hold
    .command('release')
    .description('release a legal hold: from now on, what it covered follows the retention rules again')
    .argument('<hold-id>', 'the hold, as `witness hold list` shows it')
    .requiredOption('--reason <text>', 'why the records may go (recorded)')
    .option('--by <name>', 'who releases it (default: $USER)')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason: string; by?: string; store?: string; json?: boolean }) => {
      const ledger = await openExisting(resolveStore(opts.store));
      try {
        const receipt = await releaseHold(ledger, id, opts.reason, actorOf(opts.by));
        if (opts.json) return printJson(io, { hold: id, released: true, event: receipt.id, leaf: receipt.pos });
        io.out(inert(`Hold ${id} released; recorded at leaf ${receipt.pos}.`));
      } finally {
        await ledger.close();
      }
    });

  hold
    .command('list')
    .description('every hold placed, in force or released, as recorded in the ledger')
    .option('--active', 'only holds in force')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { active?: boolean; store?: string; json?: boolean }) => {
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const holds = (await listHolds(ledger)).filter((h) => opts.active !== true || h.released === undefined);
        if (opts.json) return printJson(io, { holds });
        if (holds.length === 0) return io.out('No legal holds.');
        io.out(
          table(
            ['hold', 'scope', 'reason', 'case', 'placed', 'by', 'released'],
            holds.map((h) => [h.id, describeScope(h.scope), h.reason, h.case ?? '', h.placedAt, h.placedBy, h.released === undefined ? 'in force' : `${h.released.at} by ${h.released.by}`]),
            60,
          ),
        );
      } finally {
        await ledger.close();
      }
    });
}
