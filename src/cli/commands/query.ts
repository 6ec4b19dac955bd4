import type { Command } from 'commander';
import { EVENT_KINDS, OUTCOMES, WitnessError, isKind, type StoredEvent } from '../../core/index.js';
import { normaliseInstant } from '../../export/index.js';
import type { QueryFilter } from '../../store/index.js';
import { type Io, printJson, table } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

interface QueryOpts {
  store?: string;
  agent?: string;
  session?: string;
  kind?: string;
  resource?: string;
  action?: string;
  outcome?: string;
  since?: string;
  until?: string;
  limit: string;
  cursor?: string;
  json?: boolean;
}

export function registerQuery(program: Command, io: Io): void {
  program
    .command('query')
    .description('list events by agent, session, kind, resource, action, outcome and time window')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--agent <id>', 'agent identity')
    .option('--session <id>', 'session (stream) id')
    .option('--kind <kind>', 'event kind, e.g. tool.call, llm.call, session.start')
    .option('--resource <name>', 'tool, server, URL or table touched')
    .option('--action <name>', 'action, e.g. billing.refund')
    .option('--outcome <outcome>', OUTCOMES.join(' | '))
    .option('--since <time>', 'events at or after this time (ISO-8601, or e.g. 24h / 7d ago)')
    .option('--until <time>', 'events before this time (ISO-8601, or e.g. 1h ago)')
    .option('--limit <n>', 'events per page (1-10000)', '50')
    .option('--cursor <cursor>', 'continue after a previous page (its "next" value)')
    .option('--json', 'machine-readable output')
    .action(async (opts: QueryOpts) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        throw new WitnessError('invalid_argument', `--limit "${opts.limit}" must be a whole number from 1 to 10000.`);
      }
      if (opts.kind !== undefined && !(EVENT_KINDS as readonly string[]).includes(opts.kind)) {
        throw new WitnessError('invalid_argument', `--kind "${opts.kind}" is not an event kind; use one of ${EVENT_KINDS.join(', ')}.`);
      }
      if (opts.outcome !== undefined && !(OUTCOMES as readonly string[]).includes(opts.outcome)) {
        throw new WitnessError('invalid_argument', `--outcome "${opts.outcome}" is not an outcome; use one of ${OUTCOMES.join(', ')}.`);
      }
      const filter: QueryFilter = { limit };
      for (const key of ['agent', 'kind', 'resource', 'action', 'outcome', 'cursor'] as const) {
        if (opts[key] !== undefined) filter[key] = opts[key];
      }
      if (opts.session !== undefined) filter.stream = opts.session;
      if (opts.since !== undefined) filter.since = parseTime(opts.since, '--since');
      if (opts.until !== undefined) filter.until = parseTime(opts.until, '--until');
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const page = await ledger.query(filter);
        if (opts.json) return printJson(io, page);
        if (page.events.length === 0) {
          io.out('No events match.');
          return;
        }
        io.out(
          table(
            ['TIME', 'AGENT', 'SESSION', 'SEQ', 'KIND', 'ACTION', 'OUTCOME', 'POLICY', 'SUMMARY'],
            page.events.map((e) => [
              e.ts,
              e.agent.id,
              e.stream,
              String(e.seq),
              e.kind,
              e.action ?? e.resource ?? '',
              e.outcome ?? '',
              e.policy ? `${e.policy.decision}${e.policy.rule ? ` (${e.policy.rule})` : ''}` : '',
              summarise(e),
            ]),
          ),
        );
        if (page.next !== undefined) io.out(`\nMore events match: add --cursor ${page.next}`);
      } finally {
        await ledger.close();
      }
    });
}

/**
 * One line a person can scan: what the event says, not its JSON. Fields are read by their declared
 * names (core/event.ts) but printed whatever they hold, since a ledger may hold anything.
 */
export function summarise(e: StoredEvent): string {
  if (e.data === null) return '(payload withheld or purged)';
  const s = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
  if (isKind(e, 'llm.call')) return `${s(e.data?.model)}: ${s(e.data?.output ?? '')}`;
  if (isKind(e, 'tool.call')) return `${s(e.data?.tool)}(${s(e.data?.arguments)})`;
  if (isKind(e, 'tool.result')) {
    const text = resultText(e.data?.output);
    if (e.data?.is_error !== true) return text ?? s(e.data?.output);
    const error: unknown = e.data.error;
    return `error: ${s((error as { message?: unknown } | undefined)?.message ?? text ?? '')}`;
  }
  if (isKind(e, 'capture')) {
    const d = e.data;
    return `${s(d?.role)} screenshot of ${s(d?.url ?? d?.session ?? '')}${e.artifacts?.[0] === undefined ? '' : ` (${e.artifacts[0].sha256.slice(0, 12)}…)`}`;
  }
  if (isKind(e, 'note')) return s(e.data?.text);
  if (isKind(e, 'error')) return s(e.data?.message);
  if (isKind(e, 'session.start')) return `started${e.data?.purpose === undefined ? '' : `: ${s(e.data.purpose)}`}${e.user === undefined ? '' : ` (for ${e.user})`}`;
  if (isKind(e, 'session.end')) return `${s(e.data?.reason)} after ${s(e.data?.event_count)} events`;
  if (isKind(e, 'policy.decision')) return `${s(e.data?.decision)} by ${s(e.data?.rule ?? 'default')}`;
  if (isKind(e, 'approval.decision')) return `${s(e.data?.decision)} by ${s(e.data?.approver)}`;
  if (isKind(e, 'approval.request')) return `${s(e.data?.tool)} awaits approval (${s(e.data?.reason ?? e.data?.rule ?? '')})`;
  return s(e.data);
}

/** The text of an MCP tool result (`content[].text`), when it has one. */
function resultText(output: unknown): string | undefined {
  const content = (output as { content?: unknown } | null | undefined)?.content;
  if (!Array.isArray(content)) return undefined;
  const texts = content.map((c) => (c as { text?: unknown } | null)?.text).filter((t): t is string => typeof t === 'string');
  return texts.length === 0 ? undefined : texts.join(' ');
}

/**
 * A time as the export reads one (normaliseInstant: a date is midnight UTC, a date-time needs `Z`
 * or an offset, every part must exist, digits below the millisecond round up), or a relative
 * "30m", "24h", "7d" meaning that long ago. Anything else is bad usage: JavaScript's Date.parse
 * alone would read "1" as the year 2001, "2026-02-30" as 2 March and a zone-less time in the
 * machine's zone. Results must lie in the years 0000-9999, because stored times are compared as
 * text and "+010000-…" sorts before "2026-…".
 */
export function parseTime(value: string, flag: string, now = Date.now()): string {
  const v = value.trim();
  if (/^\d{4}-/.test(v)) return normaliseInstant(value, flag);
  const rel = /^(\d+)\s*(s|m|h|d)( ago)?$/.exec(v);
  if (rel === null) {
    throw new WitnessError('invalid_argument', `${flag} "${value}" is not a time; use ISO-8601 (2026-11-23T10:00:00Z) or a span like 24h.`);
  }
  const unit = { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  const t = now - Number(rel[1]) * unit;
  if (!(t >= MIN_TIME && t <= MAX_TIME)) {
    throw new WitnessError('invalid_argument', `${flag} "${value}" lies outside the years 0000-9999; give a time within them or a shorter span.`);
  }
  return new Date(t).toISOString();
}

const MIN_TIME = Date.parse('0000-01-01T00:00:00.000Z');
const MAX_TIME = Date.parse('9999-12-31T23:59:59.999Z');
