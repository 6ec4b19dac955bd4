import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type { EventFields, Session } from '../recorder/index.js';

/** What the wrapper knows about a request before it is sent. */
export interface CallFacts {
  /** `anthropic`, `openai`, or the AI SDK model's provider id (`openai.chat`, `anthropic.messages`, …). */
  provider: string;
  /** The SDK method, e.g. `messages.create` (recorded as the event's action). */
  method: string;
  model: string;
  input: unknown[];
  /** Hashed, never stored: a string is hashed as its UTF-8 bytes, anything else as its RFC 8785 canonical JSON. */
  system?: unknown;
  /** Hashed as RFC 8785 canonical JSON, never stored. */
  tools?: unknown;
  parameters: Record<string, unknown>;
  stream: boolean;
}

/** What the provider answered (all of it, or as much as arrived). */
export interface Answer {
  responseModel?: string | undefined;
  output?: unknown;
  toolCalls?: Array<{ id?: string; name: string; arguments?: unknown }> | undefined;
  usage?: Record<string, unknown> | undefined;
  stopReason?: string | null | undefined;
  requestId?: string | null | undefined;
  /** A stream that ended before the provider finished it (cut, aborted, broken off by the caller). */
  partial?: boolean;
  error?: unknown;
  firstChunkMs?: number | undefined;
}

/** The provider's own call id of each requested tool call → the llm.call event that requested it, per session. */
const requested = new WeakMap<Session, Map<string, string>>();
/** Kept per session; an agent that never runs its tool calls must not grow this without bound. */
const MAX_LINKS = 4096;

/**
 * Event fields that link a tool call to the `llm.call` that requested it: `{ parent }` when
 * `toolCallId` (Anthropic's `tool_use` id, OpenAI's `tool_calls[].id` or `call_id`) was requested
 * by a call recorded through this session's wrapped client, else `{}`. Spread them into the
 * options of `session.tool(...)`.
 */
export function toolCallParent(session: Session, toolCallId: string | undefined): EventFields {
  if (toolCallId === undefined) return {};
  const parent = requested.get(session)?.get(toolCallId);
  return parent === undefined ? {} : { parent };
}

/**
 * Records one `llm.call`. The event id is chosen here and the requested tool calls are linked to it
 * before the record is written, so a tool call the agent runs next finds its parent at once, and
 * the caller never waits for the write: the recorder queues it ahead of anything the agent records
 * after, and reports its own faults to onError, never to the agent.
 */
export function recordCall(session: Session, facts: CallFacts, answer: Answer, latencyMs: number): void {
  try {
    const id = uuidv7();
    if (answer.toolCalls !== undefined && answer.toolCalls.length > 0) {
      let links = requested.get(session);
      if (links === undefined) requested.set(session, (links = new Map()));
      for (const c of answer.toolCalls) {
        if (c.id === undefined) continue;
        links.set(c.id, id);
        if (links.size > MAX_LINKS) links.delete(links.keys().next().value!);
      }
    }
    const error = answer.error === undefined ? undefined : errorInfo(answer.error);
    const data = {
      provider: facts.provider,
      model: facts.model,
      input: facts.input,
      ...(Object.keys(facts.parameters).length === 0 ? {} : { parameters: facts.parameters }),
      ...(facts.system === undefined ? {} : { system_prompt_sha256: digestOf(facts.system) }),
      ...(facts.tools === undefined ? {} : { tool_definitions_sha256: sha256(canonicalJson(facts.tools)) }),
      ...(answer.responseModel === undefined ? {} : { response_model: answer.responseModel }),
      ...(answer.output === undefined ? {} : { output: answer.output }),
      ...(answer.toolCalls === undefined || answer.toolCalls.length === 0 ? {} : { tool_calls: answer.toolCalls }),
      ...(answer.usage === undefined ? {} : { usage: answer.usage }),
      latency_ms: Math.round(latencyMs * 1000) / 1000,
      ...(answer.firstChunkMs === undefined ? {} : { first_chunk_ms: Math.round(answer.firstChunkMs * 1000) / 1000 }),
      ...(answer.stopReason === undefined || answer.stopReason === null ? {} : { stop_reason: answer.stopReason }),
      ...(answer.requestId === undefined || answer.requestId === null ? {} : { request_id: answer.requestId }),
      ...(facts.stream ? { stream: true } : {}),
      ...(answer.partial === true ? { partial: true } : {}),
      ...(error === undefined ? {} : { error }),
      ...(session.agent.version === undefined ? {} : { agent_version: session.agent.version }),
    };
    const fields: EventFields = { id, resource: facts.provider, action: facts.method, outcome: error === undefined ? 'success' : 'error' };
    // A strict recorder rejects instead of reporting; the agent's call must not fail for it.
    session.record('llm.call', data, fields).catch(() => undefined);
  } catch {
    // Recording never breaks the agent's call (a hostile getter, a cycle in its parameters).
  }
}

/** The error as the ledger keeps it: message, class name, the provider's error type or HTTP status, and the status. */
function errorInfo(err: unknown): { message: string; name?: string; code?: string | number; status?: number } {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as Record<string, unknown>;
  const status = typeof e['status'] === 'number' ? e['status'] : undefined;
  const body = e['error'] as { error?: { type?: unknown }; type?: unknown; code?: unknown } | undefined;
  // Anthropic's body is { type: 'error', error: { type } }; OpenAI's error carries its code itself.
  const type = body?.error?.type ?? e['code'] ?? body?.type ?? e['type'];
  // OpenAI's error classes keep the name "Error": their class name says which one it was.
  const cls = typeof e.constructor === 'function' ? e.constructor.name : '';
  const name = err instanceof Error ? (err.name === 'Error' && cls !== '' ? cls : err.name) : typeof e['name'] === 'string' ? e['name'] : undefined;
  return {
    message: typeof e['message'] === 'string' ? e['message'] : String(err),
    ...(name === undefined ? {} : { name }),
    ...(typeof type === 'string' || typeof type === 'number' ? { code: type } : status === undefined ? {} : { code: status }),
    ...(status === undefined ? {} : { status }),
  };
}

function digestOf(system: unknown): string {
  return sha256(typeof system === 'string' ? system : canonicalJson(system));
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * RFC 8785 canonical JSON of the plain JSON an SDK call is made of (what core's canonicalize
 * writes for the same value; test/integrations/canonical.test.ts compares them). Kept here because
 * src/integrations may import only the recorder: JSON.stringify writes strings and numbers as JCS
 * does, and members are ordered by UTF-16 code units, which is what Array.prototype.sort compares.
 */
export function canonicalJson(value: unknown): string {
  const out = write(value);
  return out === undefined ? 'null' : out;
}

function write(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') value = (value as { toJSON(): unknown }).toJSON();
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((v) => write(v) ?? 'null').join(',')}]`;
      const o = value as Record<string, unknown>;
      const members: string[] = [];
      for (const k of Object.keys(o).sort()) {
        const v = write(o[k]);
        if (v !== undefined) members.push(`${JSON.stringify(k)}:${v}`);
      }
      return `{${members.join(',')}}`;
    }
    default:
      return undefined;
  }
}

/** The request's parameters besides those recorded on their own (model, messages, system prompt, tools, stream). */
export function parametersOf(params: Record<string, unknown>, recordedElsewhere: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined && !recordedElsewhere.includes(k)) out[k] = v;
  return out;
}
