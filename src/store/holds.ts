import { v7 as uuidv7 } from 'uuid';
import {
  GOVERNANCE_RULES,
  GOVERNANCE_STREAM,
  HOLD_SCOPE_KEYS,
  WitnessError,
  isGovernanceRecord,
  holdScopeCovers,
  holdScopeOf,
  type HoldScope,
  type HoldTarget,
  type StoredEvent,
} from '../core/index.js';
import type { AppendReceipt, Ledger, LedgerReader } from './ledger.js';

// The stream and the scope rules live in core (purge-rules.ts): verify judges purges by them too.
export { GOVERNANCE_STREAM, type HoldScope, type HoldTarget };

/** Who records a governance event: the person (`witness … --by`, else the OS account). */
export interface Actor {
  actor: string;
  /** The recorder, as the caller knows it (the CLI passes its own name and version). */
  recorder?: { kind: 'cli' | 'server'; version?: string };
}

/** The agent id governance events are recorded under; the person is the principal. */
export const GOVERNANCE_AGENT = 'witness-governance';

/**
 * The fields every governance record carries. The recorder is always stamped (the CLI's when the
 * caller names none: these functions are the operator's tools, never an agent's), because readers
 * and verify count a governance record only from the CLI or the server (core purge-rules.ts).
 */
export function governanceFields(who: Actor): { agent: { id: string }; principal: { id: string; kind: 'human' }; recorder: { kind: 'cli' | 'server'; version?: string } } {
  return { agent: { id: GOVERNANCE_AGENT }, principal: { id: who.actor, kind: 'human' }, recorder: who.recorder ?? { kind: 'cli' } };
}

export interface Hold {
  id: string;
  scope: HoldScope;
  reason: string;
  case?: string;
  placedBy: string;
  placedAt: string;
  /** The hold.placed event. */
  event: string;
  released?: { by: string; at: string; reason?: string; event: string };
}

const SCOPE_KEYS = HOLD_SCOPE_KEYS;
const scopeOf = holdScopeOf;

/** Every event of `kind`, in position order, through the query's kind filter. */
export async function eventsOfKind(ledger: Pick<LedgerReader, 'query'>, kind: string): Promise<Array<StoredEvent & { pos: number }>> {
  const out: Array<StoredEvent & { pos: number }> = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ kind, limit: 10_000, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.events);
    cursor = page.next;
  } while (cursor !== undefined);
  return out.sort((a, b) => a.pos - b.pos);
}

/**
 * The governance records of `kind` a reader believes, in position order: in the kind's system
 * stream, recorded by the CLI or the server (core's isGovernanceRecord). One an agent's process
 * appended elsewhere or as another recorder (its SDK refuses to; whoever writes the database can)
 * releases no hold and sets no rule.
 */
export async function governanceEventsOf(ledger: Pick<LedgerReader, 'query'>, kind: 'hold.placed' | 'hold.released' | 'config.change'): Promise<Array<StoredEvent & { pos: number }>> {
  const stream = GOVERNANCE_RULES[kind]!.stream;
  const out: Array<StoredEvent & { pos: number }> = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ kind, stream, limit: 10_000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) if (isGovernanceRecord(e)) out.push(e);
    cursor = page.next;
  } while (cursor !== undefined);
  return out.sort((a, b) => a.pos - b.pos);
}

/**
 * Every hold ever placed, from the ledger itself (hold.placed and hold.released events, never a
 * side file), with its release when there is one. A hold.placed whose scope names nothing known
 * is kept and covers everything: a hold is never weakened by a reader that cannot read it.
 */
export async function listHolds(ledger: Pick<LedgerReader, 'query'>): Promise<Hold[]> {
  const holds = new Map<string, Hold>();
  for (const e of await governanceEventsOf(ledger, 'hold.placed')) {
    const d = e.data as { hold_id?: unknown; scope?: unknown; reason?: unknown; placed_by?: unknown; case?: unknown } | null;
    if (d === null || typeof d.hold_id !== 'string' || holds.has(d.hold_id)) continue;
    holds.set(d.hold_id, {
      id: d.hold_id,
      scope: scopeOf(d.scope) ?? {},
      reason: typeof d.reason === 'string' ? d.reason : '',
      ...(typeof d.case === 'string' ? { case: d.case } : {}),
      placedBy: typeof d.placed_by === 'string' ? d.placed_by : '',
      placedAt: e.ts,
      event: e.id,
    });
  }
  for (const e of await governanceEventsOf(ledger, 'hold.released')) {
    const d = e.data as { hold_id?: unknown; released_by?: unknown; reason?: unknown } | null;
    const h = d === null || typeof d.hold_id !== 'string' ? undefined : holds.get(d.hold_id);
    if (h === undefined || h.released !== undefined) continue;
    h.released = { by: typeof d!.released_by === 'string' ? d!.released_by : '', at: e.ts, event: e.id, ...(typeof d!.reason === 'string' ? { reason: d!.reason } : {}) };
  }
  return [...holds.values()];
}

/** The holds in force (placed, not released). */
export async function activeHolds(ledger: Pick<LedgerReader, 'query'>): Promise<Hold[]> {
  return (await listHolds(ledger)).filter((h) => h.released === undefined);
}

/** Whether `hold` covers the event. */
export function holdCovers(hold: Hold, e: HoldTarget): boolean {
  return holdScopeCovers(hold.scope, e);
}

export interface PlaceHoldRequest {
  scope: HoldScope;
  reason: string;
  case?: string;
}

/** Records a hold.placed event; from its commit on, no event it covers is purged or erased. */
export async function placeHold(ledger: Ledger, request: PlaceHoldRequest, who: Actor): Promise<{ hold: string; receipt: AppendReceipt }> {
  const scope = Object.fromEntries(SCOPE_KEYS.flatMap((k) => (request.scope[k] === undefined ? [] : [[k, request.scope[k]]]))) as HoldScope;
  if (Object.keys(scope).length === 0) {
    throw new WitnessError('invalid_argument', 'A hold needs a scope: give --session, --agent, --subject or --since/--until (a hold on everything is none of these left out).');
  }
  for (const k of ['since', 'until'] as const) {
    const v = scope[k];
    if (v !== undefined && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(v)) {
      throw new WitnessError('invalid_argument', `--${k} must be an ISO-8601 UTC time with milliseconds (e.g. 2026-01-01T00:00:00.000Z), not ${JSON.stringify(v)}.`);
    }
  }
  if (request.reason.trim() === '') throw new WitnessError('invalid_argument', 'A hold needs a --reason saying why the records must be kept.');
  const hold = `hold-${uuidv7()}`;
  const [receipt] = await ledger.append([
    {
      stream: GOVERNANCE_STREAM,
      ...governanceFields(who),
      kind: 'hold.placed',
      action: 'place',
      outcome: 'success',
      data: { hold_id: hold, scope, reason: request.reason, placed_by: who.actor, ...(request.case === undefined ? {} : { case: request.case }) },
    },
  ]);
  return { hold, receipt: receipt! };
}

/** Records a hold.released event for a hold in force; an unknown or already released hold is refused. */
export async function releaseHold(ledger: Ledger, holdId: string, reason: string, who: Actor): Promise<AppendReceipt> {
  const hold = (await listHolds(ledger)).find((h) => h.id === holdId);
  if (hold === undefined) throw new WitnessError('not_found', `No hold ${JSON.stringify(holdId)} was ever placed in this ledger; list them with \`witness hold list\`.`);
  if (hold.released !== undefined) throw new WitnessError('conflict', `Hold ${holdId} was already released on ${hold.released.at} by ${hold.released.by}; nothing changed.`);
  if (reason.trim() === '') throw new WitnessError('invalid_argument', 'Releasing a hold needs a --reason saying why the records may go.');
  const [receipt] = await ledger.append([
    { stream: GOVERNANCE_STREAM, ...governanceFields(who), kind: 'hold.released', action: 'release', outcome: 'success', data: { hold_id: holdId, released_by: who.actor, reason } },
  ]);
  return receipt!;
}
