import os from 'node:os';
import type { Command } from 'commander';
import { haltState, recordHalt, recordResume } from '../../approvals/index.js';
import { WitnessError } from '../../core/index.js';
import { openWitness } from '../../recorder/index.js';
import { type Io, inert, printJson } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

interface HaltOpts {
  agent?: string;
  reason?: string;
  store?: string;
  json?: boolean;
}

/** Who halts or resumes at the command line: the operating-system user, never a typed name. */
function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}

/** --agent and, for a halt, --reason: missing or blank is bad usage (exit 2), said in one sentence. */
function required(value: string | undefined, flag: string, command: string, what: string): string {
  if (value === undefined || value.trim() === '') {
    throw new WitnessError('invalid_argument', `witness ${command} needs ${flag} (${what}); run \`witness ${command} --help\` for usage.`);
  }
  return value;
}

/**
 * `witness halt` / `witness resume` / `witness halts`: the stop button (approvals/halt.ts). They
 * only read and append to the ledger, so they work from any process (or host, on PostgreSQL) that
 * reaches the gateways' ledger; every gateway of the agent refuses its calls within a second.
 */
export function registerHalt(program: Command, io: Io): void {
  const storeHelp = 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)';
  program
    .command('halt')
    .description('stop an agent: every gateway refuses its calls until `witness resume` (recorded as human.halt, with you as the person and your reason)')
    .option('--agent <id>', 'the agent to halt (its id in the gateway configuration)')
    .option('--reason <text>', 'why, recorded with the halt and shown to the agent')
    .option('--store <url>', storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (opts: HaltOpts) => {
      const agent = required(opts.agent, '--agent <id>', 'halt', 'the agent to halt');
      const reason = required(opts.reason, '--reason <text>', 'halt', 'why the agent is halted, recorded with the halt');
      const store = resolveStore(opts.store);
      // Fail on a missing ledger rather than create an empty one.
      await (await openExisting(store, { readonly: true })).close();
      const witness = await openWitness({ store });
      try {
        const { halt, already } = await recordHalt(witness, { agent, actor: osUser(), reason, recorder: 'cli' });
        if (opts.json) return printJson(io, { agent, halted: true, already, event: halt.id, actor: halt.actor, reason: halt.reason, ts: halt.ts });
        io.out(
          inert(
            already
              ? `Agent ${agent} was already halted by ${halt.actor} at ${halt.ts} (${halt.reason}); nothing was recorded.`
              : `Halted agent ${agent} as ${halt.actor}; recorded as event ${halt.id}. Gateways refuse its calls until \`witness resume --agent ${agent}\`.`,
          ),
        );
      } finally {
        await witness.close();
      }
    });

  program
    .command('resume')
    .description('lift the halt on an agent (recorded as human.resume, with you as the person); refused when the agent is not halted')
    .option('--agent <id>', 'the halted agent')
    .option('--reason <text>', 'why, recorded with the resume')
    .option('--store <url>', storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (opts: HaltOpts) => {
      const agent = required(opts.agent, '--agent <id>', 'resume', 'the halted agent');
      const store = resolveStore(opts.store);
      await (await openExisting(store, { readonly: true })).close();
      const witness = await openWitness({ store });
      try {
        const { id, halt } = await recordResume(witness, { agent, actor: osUser(), ...(opts.reason === undefined ? {} : { reason: opts.reason }), recorder: 'cli' });
        if (opts.json) return printJson(io, { agent, halted: false, event: id, halt: halt.id });
        io.out(inert(`Resumed agent ${agent} (halted by ${halt.actor} at ${halt.ts}); recorded as event ${id}. Gateways pass its calls again.`));
      } finally {
        await witness.close();
      }
    });

  program
    .command('halted')
    .description('say whether an agent is halted now, by whom and why (exit 0 either way)')
    .option('--agent <id>', 'the agent')
    .option('--store <url>', storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (opts: HaltOpts) => {
      const agent = required(opts.agent, '--agent <id>', 'halted', 'the agent to look up');
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const s = await haltState(ledger, agent);
        if (opts.json) return printJson(io, s.halted ? { agent, halted: true, event: s.halt.id, actor: s.halt.actor, reason: s.halt.reason, ts: s.halt.ts } : { agent, halted: false });
        io.out(inert(s.halted ? `Agent ${agent} is halted by ${s.halt.actor} since ${s.halt.ts} (${s.halt.reason}); event ${s.halt.id}.` : `Agent ${agent} is not halted.`));
      } finally {
        await ledger.close();
      }
    });
}
