import { z } from 'zod';
import { WitnessError, isGovernanceRecord, isKind, textField, type StoredEvent } from '../core/index.js';
import { RECORDER_VERSION, systemWriter, type Witness } from '../recorder/index.js';
import type { LedgerReader } from '../store/index.js';
import { APPROVAL_STREAM } from './protocol.js';

/**
 * The stop button (EU AI Act Art. 14): a person halts an agent, every gateway refuses that agent's
 * calls until a person resumes it. Like approvals, it lives entirely in the ledger, so the process
 * that halts (`witness halt`, the server) and the gateways that obey need share nothing but the
 * ledger, on one host (SQLite) or many (PostgreSQL).
 *
 * Halts and resumes are written to the human-oversight system stream, `witness.approvals`
 * (core's SYSTEM_STREAMS, which agents cannot write through the server), attributed to the halted
 * agent (`agent.id`, and `data.agent`) with the person as `principal`, so `witness query --agent X`
 * and an agent-scoped evidence bundle hold them.
 *
 * The state of an agent is read from the events alone: it is halted when its latest halt comes
 * after its latest resume (ledger position). Only halts and resumes a person recorded count: in the
 * oversight stream, stamped by the CLI or the server (core's isGovernanceRecord). A resume an
 * agent's process appended anywhere (its SDK refuses to, but whoever can write the database can)
 * would otherwise lift its own halt, and a halt it appended would stop another agent.
 */

/** Where halts and resumes are recorded: the human-oversight stream the approvals use. */
export const HALT_STREAM = APPROVAL_STREAM;

export interface HaltView {
  /** The human.halt event's id. */
  id: string;
  agent: string;
  /** The person who halted the agent. */
  actor: string;
  reason: string;
  ts: string;
  pos: number;
  stream: string;
}

export interface ResumeView {
  id: string;
  agent: string;
  actor: string;
  reason: string | undefined;
  ts: string;
  pos: number;
}

export type HaltState = { agent: string; halted: true; halt: HaltView } | { agent: string; halted: false; resumed?: ResumeView };

type Row<K extends 'human.halt' | 'human.resume'> = StoredEvent<K> & { pos: number };

/** The agent's halts or resumes that count (see above), in any order. */
async function every<K extends 'human.halt' | 'human.resume'>(reader: LedgerReader, kind: K, agent: string): Promise<Row<K>[]> {
  const out: Row<K>[] = [];
  let cursor: string | undefined;
  do {
    const page = await reader.query({ kind, agent, stream: HALT_STREAM, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) if (isKind(e, kind) && isGovernanceRecord(e)) out.push(e);
    cursor = page.next;
  } while (cursor !== undefined);
  return out;
}

function latest<T extends { pos: number }>(rows: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const r of rows) if (best === undefined || r.pos > best.pos) best = r;
  return best;
}

/**
 * Whether `agent` is halted now, by whom and why, read through the Ledger interface (both drivers).
 * A read that fails throws: a failed read is never "not halted".
 */
export async function haltState(reader: LedgerReader, agent: string): Promise<HaltState> {
  const [halts, resumes] = await Promise.all([every(reader, 'human.halt', agent), every(reader, 'human.resume', agent)]);
  // A halt or resume names its agent in data.agent; one without it (written so, or its payload
  // gone) acts on the event's own agent, so a missing payload never flips the state.
  const named = (e: Row<'human.halt'> | Row<'human.resume'>) => (textField(e.data?.agent) ?? e.agent.id) === agent;
  const h = latest(halts.filter(named));
  const r = latest(resumes.filter(named));
  const resumed: ResumeView | undefined =
    r === undefined ? undefined : { id: r.id, agent, actor: textField(r.data?.actor) ?? r.principal?.id ?? 'unknown', reason: textField(r.data?.reason), ts: r.ts, pos: r.pos };
  if (h !== undefined && (r === undefined || r.pos < h.pos)) {
    const halt: HaltView = {
      id: h.id,
      agent,
      actor: textField(h.data?.actor) ?? h.principal?.id ?? 'unknown',
      reason: textField(h.data?.reason) ?? '(no reason recorded)',
      ts: h.ts,
      pos: h.pos,
      stream: h.stream,
    };
    return { agent, halted: true, halt };
  }
  return { agent, halted: false, ...(resumed === undefined ? {} : { resumed }) };
}

/** What an agent (and the person at its console) reads when a gateway refuses its call; `what` is e.g. "this call to refund". */
export function haltedMessage(halt: HaltView, what: string): string {
  const why = halt.reason.replace(/[.!?\s]+$/, '');
  return `Agent ${halt.agent} was halted by ${halt.actor} at ${halt.ts} (${why}), so ${what} was not sent to the server; a person lifts the halt with \`witness resume --agent ${halt.agent}\`.`;
}

const agentId = z.string().trim().min(1, 'give the id of the agent to halt').max(512, 'an agent id is at most 512 characters');
const person = z.string().trim().min(1, 'the person acting must be named').max(512);

const HaltInput = z.strictObject({
  agent: agentId,
  actor: person,
  reason: z.string().trim().min(1, 'say why the agent is halted (--reason)').max(4096, 'a reason is at most 4096 characters'),
  recorder: z.enum(['cli', 'server']).default('cli'),
  /** How the person was authenticated (the server: which API key or sign-in), recorded with the act as `via` (a field named credential would be redacted). */
  via: z.string().max(1024).optional(),
});
const ResumeInput = z.strictObject({
  agent: agentId,
  actor: person,
  reason: z.string().trim().min(1).max(4096, 'a reason is at most 4096 characters').optional(),
  recorder: z.enum(['cli', 'server']).default('cli'),
  via: z.string().max(1024).optional(),
});

export type HaltInput = z.input<typeof HaltInput>;
export type ResumeInput = z.input<typeof ResumeInput>;

function parsed<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.');
  throw new WitnessError('invalid_argument', `Cannot ${what}: ${field === '' ? '' : `${field}: `}${issue.message}; nothing was recorded.`);
}

export interface Halted {
  /** The halt in force: the one just recorded, or the one already in force (`already`). */
  halt: HaltView;
  /** True when the agent was already halted: nothing was recorded, the halt in force stands. */
  already: boolean;
}

/**
 * Records `actor`'s halt of `agent` (a human.halt in the oversight stream) and returns it once
 * durable. An agent already halted is not halted twice: the halt in force is returned with
 * `already` and nothing is recorded, so one resume always lifts what a person sees.
 */
export async function recordHalt(witness: Witness, input: HaltInput): Promise<Halted> {
  const i = parsed(HaltInput, input, 'halt the agent');
  const now = await haltState(witness.reader, i.agent);
  if (now.halted) return { halt: now.halt, already: true };
  const ts = new Date().toISOString();
  const receipt = await systemWriter(witness, i.recorder).recordStrict(HALT_STREAM, {
    agent: { id: i.agent },
    principal: { id: i.actor, kind: 'human' },
    recorder: { kind: i.recorder, version: RECORDER_VERSION },
    kind: 'human.halt',
    action: 'halt',
    outcome: 'success',
    ts,
    data: { actor: i.actor, reason: i.reason, agent: i.agent, ...(i.via === undefined ? {} : { via: i.via }) },
  });
  return { halt: { id: receipt.id, agent: i.agent, actor: i.actor, reason: i.reason, ts, pos: receipt.pos, stream: HALT_STREAM }, already: false };
}

export interface Resumed {
  /** The human.resume event's id. */
  id: string;
  /** The halt it lifted. */
  halt: HaltView;
}

/**
 * Records `actor`'s resume of a halted agent (a human.resume naming the halt it ends). Refuses with
 * `conflict`, recording nothing, when the agent is not halted.
 */
export async function recordResume(witness: Witness, input: ResumeInput): Promise<Resumed> {
  const i = parsed(ResumeInput, input, 'resume the agent');
  const now = await haltState(witness.reader, i.agent);
  if (!now.halted) {
    const last = now.resumed === undefined ? '' : ` (${now.resumed.actor} resumed it at ${now.resumed.ts})`;
    throw new WitnessError('conflict', `Agent ${i.agent} is not halted${last}, so there is nothing to resume; nothing was recorded.`, {
      details: { refusal: 'not_halted', agent: i.agent },
    });
  }
  const receipt = await systemWriter(witness, i.recorder).recordStrict(HALT_STREAM, {
    agent: { id: i.agent },
    principal: { id: i.actor, kind: 'human' },
    recorder: { kind: i.recorder, version: RECORDER_VERSION },
    kind: 'human.resume',
    parent: now.halt.id,
    action: 'resume',
    outcome: 'success',
    data: {
      actor: i.actor,
      agent: i.agent,
      halt: now.halt.id,
      ...(i.reason === undefined ? {} : { reason: i.reason }),
      ...(i.via === undefined ? {} : { via: i.via }),
    },
  });
  return { id: receipt.id, halt: now.halt };
}

/** Every agent halted now (oldest halt first): the agents any halt names, each read as `haltState` reads it. */
export async function haltedAgents(reader: LedgerReader): Promise<HaltView[]> {
  const agents = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await reader.query({ kind: 'human.halt', stream: HALT_STREAM, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) if (isKind(e, 'human.halt') && isGovernanceRecord(e)) agents.add(textField(e.data?.agent) ?? e.agent.id);
    cursor = page.next;
  } while (cursor !== undefined);
  const states = await Promise.all([...agents].map((a) => haltState(reader, a)));
  return states.flatMap((s) => (s.halted ? [s.halt] : [])).sort((a, b) => a.pos - b.pos);
}
