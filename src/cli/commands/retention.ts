import os from 'node:os';
import type { Command } from 'commander';
import { RECORDER_VERSION } from '../../recorder/index.js';
import { RETENTION_PRESETS, listRetentionRules, runRetention, setRetentionRule, type Actor } from '../../store/index.js';
import { type Io, inert, printJson, table } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

const STORE_HELP = 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)';

/** Who records a governance change: --by, else $USER, else the OS account. */
export function actorOf(flag: string | undefined): Actor {
  let actor = flag;
  if (actor === undefined || actor.trim() === '') {
    const env = process.env['USER'];
    try {
      actor = env !== undefined && env !== '' ? env : os.userInfo().username;
    } catch {
      actor = 'unknown';
    }
  }
  return { actor, recorder: { kind: 'cli', version: RECORDER_VERSION } };
}

const n = (x: number) => x.toLocaleString('en-US');

/**
 * `witness retention set|list|run`: rules kept in the ledger as config.change events, and the run
 * that purges expired payloads through the ledger's one purge path (src/store/retention.ts).
 */
export function registerRetention(program: Command, io: Io): void {
  const retention = program.command('retention').description('retention rules kept in the ledger, and the purge of expired payloads (headers, hashes and digests stay; every purge is recorded)');

  retention
    .command('set')
    .description('set the retention period for a kind, record class or data category (or for every event): recorded as a config.change event')
    .option('--kind <kind>', 'events of this kind (e.g. llm.call)')
    .option('--record-class <class>', 'events whose header carries this record_class')
    .option('--data-category <category>', 'events whose header lists this data category')
    .option('--older-than <period>', 'purge payloads older than this: a number and d, w, m or y (180d, 6m, 6y)')
    .option(
      '--preset <name>',
      `a keeping duty: ${Object.entries(RETENTION_PRESETS)
        .map(([k, v]) => `${k} (${v})`)
        .join(', ')}; a longer duty wins, and erasure is refused while it binds`,
    )
    .option('--by <name>', 'who sets it (default: $USER)')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { kind?: string; recordClass?: string; dataCategory?: string; olderThan?: string; preset?: string; by?: string; store?: string; json?: boolean }) => {
      const ledger = await openExisting(resolveStore(opts.store));
      try {
        const match = {
          ...(opts.kind === undefined ? {} : { kind: opts.kind }),
          ...(opts.recordClass === undefined ? {} : { record_class: opts.recordClass }),
          ...(opts.dataCategory === undefined ? {} : { data_category: opts.dataCategory }),
        };
        const { rule, receipt } = await setRetentionRule(
          ledger,
          { match, ...(opts.olderThan === undefined ? {} : { olderThan: opts.olderThan }), ...(opts.preset === undefined ? {} : { preset: opts.preset }) },
          actorOf(opts.by),
        );
        if (opts.json) return printJson(io, { rule, event: receipt.id, leaf: receipt.pos });
        io.out(
          inert(
            `Retention set: ${rule.selector} purged after ${rule.period}${rule.preset === undefined ? '' : ` (preset ${rule.preset}, a keeping duty)`}; policy ${rule.policy}, recorded at leaf ${receipt.pos}.`,
          ),
        );
      } finally {
        await ledger.close();
      }
    });

  retention
    .command('list')
    .description('the retention rules in force, as recorded in the ledger')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { store?: string; json?: boolean }) => {
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const rules = await listRetentionRules(ledger);
        if (opts.json) return printJson(io, { rules });
        if (rules.length === 0) return io.out('No retention rules: every payload is kept. Set one with `witness retention set --kind llm.call --older-than 180d`.');
        io.out(
          table(
            ['selector', 'period', 'preset', 'policy', 'set', 'by'],
            rules.map((r) => [r.selector, r.period, r.preset ?? '', r.policy, r.setAt, r.setBy]),
          ),
        );
      } finally {
        await ledger.close();
      }
    });

  retention
    .command('run')
    .description('purge the payloads of expired events, except those under a legal hold, and record each purge')
    .option('--dry-run', 'say what would be purged and held back; change nothing')
    .option('--by <name>', 'who runs it (default: $USER)')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { dryRun?: boolean; by?: string; store?: string; json?: boolean }) => {
      const ledger = await openExisting(resolveStore(opts.store), { readonly: opts.dryRun === true });
      try {
        const r = await runRetention(ledger, actorOf(opts.by), { dryRun: opts.dryRun === true });
        if (opts.json) return printJson(io, r);
        if (r.rules === 0) return io.out('No retention rules: nothing is ever purged. Set one with `witness retention set`.');
        const verb = r.dryRun ? 'would purge' : 'purged';
        for (const p of r.policies) {
          const recs = p.records.length === 0 ? '' : `; recorded by ${p.records.length} retention.purge event(s) from leaf ${p.records[0]!.pos}`;
          const kept = [p.held > 0 ? `${n(p.held)} held back by a legal hold` : '', p.unsealed > 0 ? `${n(p.unsealed)} kept until sealed` : ''].filter((x) => x !== '').join(', ');
          io.out(inert(`${p.policy}: ${verb} ${n(p.purged)} payload(s) dated before ${p.before}${kept === '' ? '' : ` (${kept})`}${recs}.`));
        }
        if (r.policies.length === 0) io.out('Nothing has expired: no payload to purge.');
        for (const [id, count] of Object.entries(r.heldBy)) io.out(inert(`  hold ${id} kept ${n(count)} event(s).`));
        io.out(`${r.dryRun ? 'Dry run: nothing was changed. ' : ''}${n(r.purged)} payload(s) ${verb}, ${n(r.held)} held back.`);
      } finally {
        await ledger.close();
      }
    });
}
