import { GOVERNANCE_RULES, isGovernanceRecord } from '../core/index.js';
import type { ObservedEvent } from './behaviour.js';

/**
 * Acts of governance — a purge, a legal hold placed or released, a retention rule set, a signing
 * key rotated, an agent halted or resumed — each change what the record keeps or what an agent may
 * do, and whoever can write the database can append one that readers then honour. So every one is
 * announced (a `governance` alert, one per event), and one found anywhere but where Witness's own
 * writers put it (core's GOVERNANCE_RULES: their stream, stamped by their recorder kind) is
 * announced louder (`governance_misplaced`, critical): it was written by something other than the
 * command or the server that records such acts, and the readers that apply the same rule ignore it.
 */

/** The kinds announced, as --quiet-governance names them (`config.change` means a retention rule change). */
export const GOVERNANCE_KINDS = ['retention.purge', 'hold.placed', 'hold.released', 'config.change', 'key.rotated', 'human.halt', 'human.resume'] as const;
export type GovernanceKind = (typeof GOVERNANCE_KINDS)[number];

export interface GovernanceAct {
  kind: GovernanceKind;
  /** Why it is not where Witness records such acts (one clause), or undefined when it is. */
  misplaced: string | undefined;
  /** What happened, as a person reads it (one sentence, from the event's own fields). */
  what: string;
  details: Record<string, unknown>;
}

/** Ranges of a purge named in an alert at most; the count and the first and last leaf always are. */
const MAX_RANGES = 20;

/** The act `e` records, or undefined when it is none (a config.change of anything but retention). */
export function governanceAct(e: ObservedEvent): GovernanceAct | undefined {
  if (!(GOVERNANCE_KINDS as readonly string[]).includes(e.kind)) return undefined;
  const kind = e.kind as GovernanceKind;
  const d = e.data ?? {};
  if (kind === 'config.change' && d['target'] !== 'retention') return undefined;
  const place = GOVERNANCE_RULES[kind];
  if (place === undefined) return undefined;
  const wrong: string[] = [];
  if (!isGovernanceRecord({ kind, stream: e.stream, recorder: e.recorder === undefined ? undefined : { kind: e.recorder } })) {
    // Core's rule decides; this only says which half of it failed.
    if (e.stream !== place.stream) wrong.push(`is in stream ${e.stream}, not ${place.stream}`);
    if (e.recorder === undefined || !(place.recorders as readonly string[]).includes(e.recorder)) {
      wrong.push(`was recorded by ${e.recorder === undefined ? 'no recorder kind' : `recorder kind ${e.recorder}`}, not ${place.recorders.join(' or ')}`);
    }
    if (wrong.length === 0) wrong.push(`is not where Witness records a ${kind}`);
  }
  const who = str(d['actor']) ?? str(d['placed_by']) ?? str(d['released_by']) ?? str(d['approved_by']) ?? e.principal ?? 'someone';
  const details: Record<string, unknown> = { event: e.id, kind, stream: e.stream, recorder: e.recorder ?? null, expected: { stream: place.stream, recorders: place.recorders } };
  let what: string;
  switch (kind) {
    case 'retention.purge': {
      const ranges = Array.isArray(d['leaves']) ? (d['leaves'] as unknown[]) : [];
      const first = leafOf(ranges[0], 0);
      const last = leafOf(ranges[ranges.length - 1], 1);
      const count = typeof d['count'] === 'number' ? d['count'] : undefined;
      Object.assign(details, { policy: str(d['policy']) ?? null, count: count ?? null, ranges: ranges.length, leaves: ranges.slice(0, MAX_RANGES) });
      const span = first === undefined || last === undefined ? '' : ` (leaves ${first}–${last} in ${ranges.length} range(s))`;
      what = `${who} purged the payloads of ${count ?? 'an unstated number of'} event(s) under policy ${str(d['policy']) ?? '(none named)'}${span}`;
      break;
    }
    case 'hold.placed':
      Object.assign(details, { hold: str(d['hold_id']) ?? null, scope: d['scope'] ?? null, ...(str(d['case']) === undefined ? {} : { case: d['case'] }) });
      what = `${who} placed legal hold ${str(d['hold_id']) ?? '(no id)'} on ${JSON.stringify(d['scope'] ?? null)}: ${str(d['reason']) ?? '(no reason given)'}`;
      break;
    case 'hold.released':
      Object.assign(details, { hold: str(d['hold_id']) ?? null });
      what = `${who} released legal hold ${str(d['hold_id']) ?? '(no id)'}${str(d['reason']) === undefined ? '' : `: ${str(d['reason'])}`}`;
      break;
    case 'config.change':
      Object.assign(details, { rule: d['rule'] ?? null });
      what = `${who} changed retention: ${str(d['description']) ?? '(no description)'}`;
      break;
    case 'key.rotated':
      Object.assign(details, { old_key: str(d['old_fingerprint']) ?? null, new_key: str(d['new_fingerprint']) ?? null });
      what = `${who} rotated the signing key ${str(d['old_fingerprint']) ?? '(unnamed)'} → ${str(d['new_fingerprint']) ?? '(unnamed)'}${str(d['reason']) === undefined ? '' : `: ${str(d['reason'])}`}`;
      break;
    case 'human.halt':
      Object.assign(details, { agent: str(d['agent']) ?? e.agent });
      what = `${who} halted agent ${str(d['agent']) ?? e.agent}: ${str(d['reason']) ?? '(no reason given)'}`;
      break;
    case 'human.resume':
      Object.assign(details, { agent: str(d['agent']) ?? null });
      what = `${who} resumed agent ${str(d['agent']) ?? '(none named)'}${str(d['reason']) === undefined ? '' : `: ${str(d['reason'])}`}`;
      break;
  }
  return { kind, misplaced: wrong.length === 0 ? undefined : wrong.join(' and '), what, details };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** One end of a `[first, last]` leaf range as purge records list them. */
function leafOf(range: unknown, end: 0 | 1): number | undefined {
  const v = Array.isArray(range) ? (range as unknown[])[end] : undefined;
  return typeof v === 'number' ? v : undefined;
}
