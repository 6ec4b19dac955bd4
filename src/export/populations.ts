import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SYSTEM_STREAMS, WitnessError, type EventHeader } from '../core/index.js';
import type { BundleScope, PopulationLine } from './bundle-format.js';

/**
 * The populations an auditor samples from, and which events of an export are in its scope. Both
 * are decided from hashed header fields only, so they can be recomputed from a bundle whose
 * payloads are withheld: the verifier re-derives every population from events.jsonl and compares
 * it with the bundle's files, which is what makes a population provably complete (the span is a
 * contiguous run of the signed tree, so no event of it can be left out unnoticed).
 *
 * docs/FORMAT.md "Populations" states these rules in prose; the standalone verifier (verify.mjs)
 * and the independent Python verifier implement them from that text.
 */

/** The header fields the rules read. */
export type ScopedHeader = Pick<EventHeader, 'id' | 'stream' | 'seq' | 'kind' | 'ts' | 'outcome' | 'agent' | 'resource' | 'parent' | 'policy'>;

export type PopulationPredicate = { kinds: string[] } | { outcomes: string[]; policy_decisions: string[] } | { kinds: string[]; outcomes: string[] };

export interface PopulationDefinition {
  name: string;
  title: string;
  /** The `witness query` an auditor can run on the ledger for the same kinds of event. */
  query: string;
  predicate: PopulationPredicate;
}

export const POPULATIONS: readonly PopulationDefinition[] = [
  {
    name: 'approvals',
    title: 'Human approvals requested and decided',
    query: 'witness query --kind approval.request,approval.decision',
    predicate: { kinds: ['approval.request', 'approval.decision'] },
  },
  {
    name: 'denials',
    title: 'Actions denied (by policy, a person or the gateway)',
    query: 'witness query --outcome denied',
    predicate: { outcomes: ['denied'], policy_decisions: ['deny'] },
  },
  {
    name: 'overrides-and-halts',
    title: 'Human overrides, halts and resumes',
    query: 'witness query --kind human.override,human.halt,human.resume',
    predicate: { kinds: ['human.override', 'human.halt', 'human.resume'] },
  },
  {
    name: 'configuration-changes',
    title: 'Configuration changes (models, prompts, policies, tool scopes, retention, keys)',
    query: 'witness query --kind config.change',
    predicate: { kinds: ['config.change'] },
  },
  {
    name: 'reviews',
    title: 'Reviews of populations performed by people',
    query: 'witness query --kind review',
    predicate: { kinds: ['review'] },
  },
  {
    name: 'audit-access',
    title: 'Access to audit data (reads, searches, exports, verifications)',
    query: 'witness query --kind audit.access',
    predicate: { kinds: ['audit.access'] },
  },
  {
    name: 'errors-and-gaps',
    title: 'Errors, alerts and recording gaps',
    query: 'witness query --kind error,alert; witness query --outcome error',
    predicate: { kinds: ['error', 'alert'], outcomes: ['error'] },
  },
];

/** Whether `e` belongs to population `p`. A predicate's lists are alternatives (any match). */
export function inPopulation(p: PopulationDefinition, e: ScopedHeader): boolean {
  const pr = p.predicate as { kinds?: string[]; outcomes?: string[]; policy_decisions?: string[] };
  if (pr.kinds?.includes(e.kind) === true) return true;
  if (e.outcome !== undefined && pr.outcomes?.includes(e.outcome) === true) return true;
  if (e.policy !== undefined && pr.policy_decisions?.includes(e.policy.decision) === true) return true;
  return false;
}

/** The line an event contributes to a population file (keys in this order, then LF). */
export function populationLine(leaf: number, e: ScopedHeader & { hash: string }): string {
  const line: PopulationLine = { leaf, id: e.id, stream: e.stream, seq: e.seq, kind: e.kind, ts: e.ts, outcome: e.outcome ?? null, hash: e.hash };
  return `${JSON.stringify(line)}\n`;
}

const SYSTEM = new Set<string>(SYSTEM_STREAMS);

/**
 * Decides, event by event in leaf order, which events of a span are in an export's scope:
 *
 * - with `since`/`until`: `since <= ts < until`, compared as strings (UTF-16 code units), as
 *   docs/FORMAT.md says: the scope holds both in the form `YYYY-MM-DDTHH:MM:SS.mmmZ` (normaliseInstant),
 *   the form every recorded `ts` has, so for real instants this is time order; a stored `ts` that
 *   is no real instant (10:05:60, T24:00, 11-31: the recorder refuses them, an old ledger may hold
 *   one) lands where its text sorts, and every verifier, in any language, gets the same answer;
 * - with `sessions`: the event's stream is one of them; with `agents`: its `agent.id` is one of them;
 * - an event of a system stream (SYSTEM_STREAMS: witness.approvals, witness.evidence, witness.monitor, …) that does not match the
 *   sessions/agents filter is still in scope when its `resource` names an in-scope session, or its
 *   `parent` is the id of an event already found in scope (a decision on a held call, the video of
 *   a session), so an export of one session carries its approvals and its video;
 * - all filters given must hold (time window AND (session/agent filter OR the system-stream rule)).
 *
 * Stateful (it remembers in-scope ids and streams), so feed it every event of the span in leaf order.
 */
export class ScopeTracker {
  private readonly ids = new Set<string>();
  private readonly sessions: Set<string> | null;
  private readonly agents: Set<string> | null;
  private readonly since: string | null;
  private readonly until: string | null;

  constructor(scope: Pick<BundleScope, 'since' | 'until' | 'agents' | 'sessions'>) {
    this.sessions = scope.sessions === null ? null : new Set(scope.sessions);
    this.agents = scope.agents === null ? null : new Set(scope.agents);
    this.since = scope.since;
    this.until = scope.until;
  }

  inScope(e: ScopedHeader): boolean {
    if (this.since !== null && !(e.ts >= this.since)) return false;
    if (this.until !== null && !(e.ts < this.until)) return false;
    let ok = (this.sessions === null || this.sessions.has(e.stream)) && (this.agents === null || this.agents.has(e.agent.id));
    if (!ok && SYSTEM.has(e.stream)) {
      ok = (e.resource !== undefined && this.sessions?.has(e.resource) === true) || (e.parent !== undefined && this.ids.has(e.parent));
    }
    if (ok) this.ids.add(e.id);
    return ok;
  }
}

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):?(\d{2}))?)?$/i;
/** The instants a scope can hold: stored times are compared as text, and "+010000-…" or "-000001-…" would sort wrongly. */
const FIRST_INSTANT = utc(0, 1, 1);
const LAST_INSTANT = utc(9999, 12, 31) + 86_400_000 - 1;

/**
 * A `--since`/`--until` value as the scope holds it, `YYYY-MM-DDTHH:MM:SS.mmmZ` (the form the
 * tracker compares and the manifest records), or a one-sentence refusal. The one reading of a
 * time for every command that takes one (export, report, review, the SIEM export, query, sessions):
 *
 * - a date alone is that day's midnight UTC (`2026-11-01` is `2026-11-01T00:00:00.000Z`);
 * - a date-time must carry `Z` or an offset: read as the machine's local time, the same command
 *   would pick other events on a machine in another zone, which an audit window must not;
 * - every part must exist: month 01–12, a day its month has, hour 00–23, minute and second 00–59,
 *   offset up to ±23:59 (Date.parse would turn 11-31 into 12-01 and T24:00 into the next day);
 * - digits below the millisecond round UP: recorded times have milliseconds, so `t >= .0005` holds
 *   exactly when `t >= .001`, and `t < .0005` exactly when `t < .001` (truncating to `.000` would
 *   drop an event at `.000` from a window ending at `.0005`);
 * - the instant must lie in the years 0000–9999 once the offset is applied.
 */
export function normaliseInstant(value: string, flag: string): string {
  const m = INSTANT.exec(value.trim());
  const n = (i: number): number => (m?.[i] === undefined ? 0 : Number(m[i]));
  const real =
    m !== null &&
    n(2) >= 1 &&
    n(2) <= 12 &&
    n(3) >= 1 &&
    n(3) <= new Date(Date.UTC(2000, n(2), 0)).getUTCDate() - (n(2) === 2 && !leap(n(1)) ? 1 : 0) &&
    n(4) <= 23 &&
    n(5) <= 59 &&
    n(6) <= 59 &&
    n(10) <= 23 &&
    n(11) <= 59;
  if (!real) {
    throw new WitnessError('invalid_argument', `${flag} ${JSON.stringify(value)} is not a real date or time; give an ISO date or time such as 2026-11-01 or 2026-11-01T09:00:00Z.`);
  }
  if (m[4] !== undefined && m[8] === undefined) {
    throw new WitnessError('invalid_argument', `${flag} ${JSON.stringify(value)} has no time zone; add Z for UTC or an offset such as +01:00.`);
  }
  const nanos = Number((m[7] ?? '').padEnd(9, '0'));
  const ms = Math.ceil(nanos / 1e6);
  const offset = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (n(10) * 60 + n(11)) * 60_000;
  const t = utc(n(1), n(2), n(3)) + ((n(4) * 60 + n(5)) * 60 + n(6)) * 1000 + ms - offset;
  if (!(t >= FIRST_INSTANT && t <= LAST_INSTANT)) {
    throw new WitnessError('invalid_argument', `${flag} ${JSON.stringify(value)} lies outside the years 0000-9999 once its offset is applied; give a time within them.`);
  }
  return new Date(t).toISOString();
}

/** Midnight UTC of a calendar day, for any year 0–9999 (Date.UTC reads years 0–99 as 1900–1999). */
function utc(year: number, month: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getTime();
}

function leap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/**
 * The digest an export's audit.access event binds: SHA-256 over the 32 raw bytes of each event
 * hash of the span, in leaf order. With the span and the mode in that signed event, a bundle
 * cannot drop, swap or strip an event of its span without the verifier noticing.
 */
export class EventsDigest {
  private readonly h = createHash('sha256');
  private n = 0;
  add(hashHex: string): void {
    this.h.update(Buffer.from(hashHex, 'hex'));
    this.n++;
  }
  get count(): number {
    return this.n;
  }
  hex(): string {
    return this.h.digest('hex');
  }
}

/** Builds every population's file text as events of the span arrive (in-scope events only). */
export class PopulationBuilder {
  private readonly lines = new Map<string, string[]>(POPULATIONS.map((p) => [p.name, []]));
  add(leaf: number, e: ScopedHeader & { hash: string }): void {
    for (const p of POPULATIONS) if (inPopulation(p, e)) this.lines.get(p.name)!.push(populationLine(leaf, e));
  }
  /** Each population's file text, count and SHA-256 (hex) of that text. */
  results(): Array<{ def: PopulationDefinition; text: string; count: number; digest: string }> {
    return POPULATIONS.map((def) => {
      const lines = this.lines.get(def.name)!;
      const text = lines.join('');
      return { def, text, count: lines.length, digest: createHash('sha256').update(text).digest('hex') };
    });
  }
}

/** Characters of a population's lines gathered before they are written to its file. */
const FLUSH_CHARS = 64 * 1024;

/**
 * As PopulationBuilder, for the exporter: each population's lines go to `<dir>/<name>.jsonl` as they
 * are made (a few at a time), with their count and SHA-256 kept as they pass, and the bundle streams
 * the files. A population can be most of a span — every event of an agent that keeps failing is in
 * errors-and-gaps — so held as text it would grow with the events (about 250 bytes a line).
 */
export class PopulationFiles {
  private readonly pops: Array<{ def: PopulationDefinition; file: string; fd: number; count: number; hash: Hash; pending: string }> = [];

  /** `dir` is a directory of the caller's, empty of these names; the caller removes it. */
  constructor(dir: string) {
    try {
      for (const def of POPULATIONS) {
        const file = path.join(dir, `${def.name}.jsonl`);
        this.pops.push({ def, file, fd: fs.openSync(file, 'wx', 0o600), count: 0, hash: createHash('sha256'), pending: '' });
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  add(leaf: number, e: ScopedHeader & { hash: string }): void {
    for (const p of this.pops) {
      if (!inPopulation(p.def, e)) continue;
      const line = populationLine(leaf, e);
      p.hash.update(line);
      p.count++;
      p.pending += line;
      if (p.pending.length >= FLUSH_CHARS) this.flush(p);
    }
  }

  /** Writes what is pending and closes the files: each population's file, count and SHA-256 (hex) of its text, as PopulationBuilder.results gives them. */
  finish(): Array<{ def: PopulationDefinition; file: string; count: number; digest: string }> {
    for (const p of this.pops) this.flush(p);
    this.close();
    return this.pops.map((p) => ({ def: p.def, file: p.file, count: p.count, digest: p.hash.digest('hex') }));
  }

  /** Closes the files (safe to call twice); they stay in the caller's directory. */
  close(): void {
    for (const p of this.pops) {
      if (p.fd < 0) continue;
      fs.closeSync(p.fd);
      p.fd = -1;
    }
  }

  private flush(p: (typeof this.pops)[number]): void {
    if (p.pending === '') return;
    fs.writeSync(p.fd, p.pending);
    p.pending = '';
  }
}
