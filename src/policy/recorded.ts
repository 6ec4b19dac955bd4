import { WitnessError, type StoredEvent } from '../core/index.js';
import type { RecordedCall, RecordedDecision } from './backtest.js';
import { EFFECTS, MODES, type Effect } from './types.js';

/**
 * What a recorded tool.call and policy.decision say to the backtest, read from the event as stored
 * (`callOf`, `decisionOf`), or from its stored texts the cheap way (`callOfTexts`,
 * `decisionOfTexts`): the same answer, parsing only what the answer reads. Pure; fields are read
 * whatever they hold, since a ledger may hold anything.
 */

export type RecordedCallFields = Omit<RecordedCall, 'recorded'>;

const PURGED = 'its payload is not in the ledger (purged under retention, or withheld)';

/**
 * A tool.call event as the backtest reads it; undefined for a recorded request that is not a
 * tools/call (a resource read, a prompt fetch, a list: no policy decides those).
 */
export function callOf(e: StoredEvent): RecordedCallFields | undefined {
  const base = { id: e.id, ts: e.ts, agent: e.agent.id };
  return e.data === null || e.data === undefined ? callOfHeader(base, e) : callOfPayload(base, e.data);
}

/** A purged or withheld call: what its header still says. */
function callOfHeader(base: Pick<RecordedCall, 'id' | 'ts' | 'agent'>, e: Pick<StoredEvent, 'action' | 'resource' | 'recorder'>): RecordedCallFields | undefined {
  const action = e.action;
  const gateway = e.recorder?.kind === 'gateway';
  // The gateway records other requests under their method (resources/read, prompts/get x, tools/list).
  if (gateway && (action === undefined || action.includes('/'))) return undefined;
  // The gateway's tool.call header: action = the tool, resource = the server, or the tool when the
  // upstream has no name (then the server may have been '' or a name equal to the tool's).
  const tool = gateway ? (action ?? null) : null;
  const server = gateway && e.resource !== undefined && e.resource !== action ? e.resource : null;
  return { ...base, server, tool, args: { missing: PURGED } };
}

function callOfPayload(base: Pick<RecordedCall, 'id' | 'ts' | 'agent'>, data: Record<string, unknown>): RecordedCallFields | undefined {
  if (typeof data['method'] === 'string') return undefined;
  return {
    ...base,
    server: typeof data['server'] === 'string' ? data['server'] : '',
    tool: typeof data['tool'] === 'string' ? data['tool'] : null,
    args: { value: data['arguments'] },
  };
}

/** The policy's decision as recorded: the header's `policy` (kept when a payload is purged), else the payload. */
export function decisionOf(e: Pick<StoredEvent, 'policy' | 'data'>): RecordedDecision | undefined {
  const data = e.data ?? {};
  const decision = e.policy?.decision ?? data['decision'];
  if (!(EFFECTS as readonly unknown[]).includes(decision)) return undefined;
  const rule = e.policy?.rule ?? data['rule'];
  const version = e.policy?.version ?? data['policy_version'];
  const mode = e.policy?.mode ?? data['mode'];
  // gateway/record.ts: a halted agent's call is denied with reason code `halted` in the header (kept when the payload is purged).
  const halted = e.policy?.reason_code === 'halted' || (data['reason'] === 'halted' && data['halt'] !== undefined);
  return {
    decision: decision as Effect,
    ...(typeof rule === 'string' ? { rule } : {}),
    ...(typeof version === 'string' ? { policyVersion: version } : {}),
    ...((MODES as readonly unknown[]).includes(mode) ? { mode: mode as 'enforce' | 'shadow' } : {}),
    ...(halted ? { halted: true } : {}),
  };
}

// ---------------------------------------------------------------- from the stored texts

/** A stored event's texts as a bulk read hands them over (the store's KindScanRow). */
export interface StoredTexts {
  readonly id: string;
  readonly ts: string;
  /** The agent column: the header's agent.id, which the store derives from it. */
  readonly agent: string;
  /** The header text; needed only where the payload is gone (a call) and always for a decision. */
  readonly header: string | null;
  readonly data: string | null;
}

/**
 * `callOf` from the texts: a call's payload holds everything the backtest reads, so its header is
 * parsed only when the payload is gone.
 */
export function callOfTexts(row: StoredTexts): RecordedCallFields | undefined {
  const base = { id: row.id, ts: row.ts, agent: row.agent };
  const data = row.data === null ? null : parseStored(row, row.data);
  if (data !== null) return callOfPayload(base, data as Record<string, unknown>);
  // A payload that is JSON null reads as none (as `callOf` reads it), but only a missing one brought its header along.
  if (row.header === null)
    throw new WitnessError('store_corrupt', `The stored payload of event ${row.id} is JSON null, which no recorder writes: the ledger was damaged or edited; run \`witness verify\`.`);
  return callOfHeader(base, parseStored(row, row.header) as StoredEvent);
}

/** Parses a stored text; one that is not JSON is a damaged ledger, as the store's own readers say. */
export function parseStored(row: Pick<StoredTexts, 'id'>, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new WitnessError('store_corrupt', `The stored event ${row.id} is not valid JSON: the ledger was damaged or edited; run \`witness verify\`.`);
  }
}

/** The parsed header of a decision: its parent (the call it decides) and its `policy`. */
export type DecisionHeader = Pick<StoredEvent, 'parent' | 'policy'>;

/**
 * `decisionOf` from a decision's parsed header and its payload text, which is parsed only when the
 * answer may read it: a header field is missing and the payload names it, or the payload may say
 * the agent was halted. The text is the payload's JCS, where a key appears as itself in quotes;
 * a backslash anywhere (an escape could spell a key) means parse.
 */
export function decisionOfTexts(id: string, header: DecisionHeader, data: string | null): RecordedDecision | undefined {
  const p = header.policy;
  // Whatever the header holds there: decisionOf reads it with ?., so a non-object has no fields.
  const q: Partial<Record<'decision' | 'rule' | 'version' | 'mode', unknown>> = typeof p === 'object' && p !== null ? p : {};
  const read =
    data !== null &&
    (data.includes('\\') ||
      data.includes('halted') ||
      (q.decision === undefined && data.includes('"decision"')) ||
      (q.rule === undefined && data.includes('"rule"')) ||
      (q.version === undefined && data.includes('"policy_version"')) ||
      (q.mode === undefined && data.includes('"mode"')));
  return decisionOf({ policy: p, data: read ? (parseStored({ id }, data) as Record<string, unknown> | null) : null });
}
