import type { Command } from 'commander';
import { OUTCOMES, WitnessError } from '../../core/index.js';
import type { SessionFilter, SessionSummary } from '../../store/index.js';
import { type Io, printJson, table } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';
import { parseTime } from './query.js';

interface SessionsOpts {
  store?: string;
  agent?: string;
  resource?: string;
  outcome?: string;
  since?: string;
  until?: string;
  ended?: boolean;
  open?: boolean;
  limit: string;
  cursor?: string;
  json?: boolean;
}

export function registerSessions(program: Command, io: Io): void {
  program
    .command('sessions')
    .description('list sessions, newest first, with agent, start, end, event and tool-call counts, denials and approvals')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--agent <id>', 'sessions in which this agent recorded')
    .option('--resource <name>', 'sessions that touched this tool, server, URL or table')
    .option('--outcome <outcome>', `sessions with an event of this outcome: ${OUTCOMES.join(' | ')}`)
    .option('--since <time>', 'sessions still running at or after this time (ISO-8601, or e.g. 24h / 7d ago)')
    .option('--until <time>', 'sessions started before this time (ISO-8601, or e.g. 1h ago)')
    .option('--ended', 'only sessions closed by a session end')
    .option('--open', 'only sessions not ended yet')
    .option('--limit <n>', 'sessions per page (1-1000)', '50')
    .option('--cursor <cursor>', 'continue after a previous page (its "next" value)')
    .option('--json', 'machine-readable output')
    .action(async (opts: SessionsOpts) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new WitnessError('invalid_argument', `--limit "${opts.limit}" must be a whole number from 1 to 1000.`);
      }
      if (opts.outcome !== undefined && !(OUTCOMES as readonly string[]).includes(opts.outcome)) {
        throw new WitnessError('invalid_argument', `--outcome "${opts.outcome}" is not an outcome; use one of ${OUTCOMES.join(', ')}.`);
      }
      if (opts.ended === true && opts.open === true) {
        throw new WitnessError('invalid_argument', '--ended and --open exclude each other; give one of them, or neither for both kinds.');
      }
      const filter: SessionFilter = {};
      for (const key of ['agent', 'resource', 'outcome'] as const) {
        if (opts[key] !== undefined) filter[key] = opts[key];
      }
      if (opts.since !== undefined) filter.since = parseTime(opts.since, '--since');
      if (opts.until !== undefined) filter.until = parseTime(opts.until, '--until');
      if (opts.ended === true) filter.ended = true;
      if (opts.open === true) filter.ended = false;
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const page = await ledger.listSessions(filter, { limit, ...(opts.cursor === undefined ? {} : { cursor: opts.cursor }) });
        if (opts.json) return printJson(io, page);
        if (page.sessions.length === 0) {
          io.out('No sessions match.');
          return;
        }
        io.out(
          table(
            ['START', 'END', 'DURATION', 'AGENT', 'SESSION', 'STATUS', 'EVENTS', 'TOOL CALLS', 'DENIALS', 'ERRORS', 'APPROVALS'],
            page.sessions.map((s) => [
              s.start,
              s.end,
              duration(s.start, s.end),
              s.agents.join(', '),
              s.stream,
              s.ended ? `ended${s.endReason === undefined ? '' : ` (${s.endReason})`}` : 'open',
              String(s.events),
              String(s.toolCalls),
              String(s.denials),
              String(s.errors),
              approvals(s),
            ]),
          ),
        );
        if (page.next !== undefined) io.out(`\nMore sessions match: add --cursor ${page.next}`);
      } finally {
        await ledger.close();
      }
    });
}

/** `1h 02m`, `3m 05s`, `12s`: how long from the first event to the last. */
export function duration(start: string, end: string): string {
  const s = Math.max(0, Math.round((Date.parse(end) - Date.parse(start)) / 1000));
  if (!Number.isFinite(s)) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor(s / 3600) % 24)}h`;
}

/** `2 asked: 1 approved, 1 denied`; empty when none was asked or decided. */
function approvals(s: SessionSummary): string {
  const a = s.approvals;
  const decided = (
    [
      ['approved', a.approved],
      ['denied', a.denied],
      ['expired', a.expired],
    ] as const
  )
    .filter(([, n]) => n > 0)
    .map(([w, n]) => `${n} ${w}`);
  if (a.requested === 0 && decided.length === 0) return '';
  return `${a.requested} asked${decided.length === 0 ? '' : `: ${decided.join(', ')}`}`;
}
