import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type { EventFields, Session } from '../recorder/index.js';

type ArtifactRef = Awaited<ReturnType<Session['storeJson']>>;

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
  /** The caller took the raw HTTP response (`.asResponse()`) and reads its body itself: the answer is not in the record. */
  rawResponse?: boolean;
}

/** What the recorder made of an llm.call by the time the caller is handed its answer. */
export interface Verdict {
  /** The recorder's error when it rejected the record (a strict recorder): the wrapper rethrows it. */
  refused?: unknown;
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
 * How many turns of the microtask queue the caller's answer waits for the recorder's verdict on
 * its llm.call. The recorder checks a record synchronously and settles a refused one within a few
 * turns (5 with this recorder, measured; test/integrations/wrapper-holes.test.ts fails if that
 * grows past this), while an accepted one settles only at its commit: the wait ends here, with no timer and no
 * I/O in it, so the caller never waits for the write.
 */
const VERDICT_TURNS = 16;

/**
 * Records one `llm.call`. The event id is chosen here and the requested tool calls are linked to it
 * before the record is written, so a tool call the agent runs next finds its parent at once, and
 * the caller never waits for the write: the recorder queues it ahead of anything the agent records
 * after. A record the recorder refuses (invalid, or the store gave up) takes its links back, so no
 * tool call is linked to an id the ledger does not hold; the refusal is reported to onError by the
 * recorder, or, strict, rejects the record, which the verdict carries for the wrapper to rethrow.
 * The verdict settles within VERDICT_TURNS microtask turns; await it before handing the caller the
 * answer, so that a refusal is known by then.
 */
export function recordCall(session: Session, facts: CallFacts, answer: Answer, latencyMs: number): Promise<Verdict> {
  try {
    const id = uuidv7();
    const linked: string[] = [];
    let links = requested.get(session);
    if (answer.toolCalls !== undefined && answer.toolCalls.length > 0) {
      if (links === undefined) requested.set(session, (links = new Map()));
      for (const c of answer.toolCalls) {
        if (c.id === undefined) continue;
        links.set(c.id, id);
        linked.push(c.id);
        if (links.size > MAX_LINKS) links.delete(links.keys().next().value!);
      }
    }
    const unlink = (): void => {
      for (const c of linked) if (links?.get(c) === id) links.delete(c);
    };
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
      ...(answer.rawResponse === true ? { raw_response: true } : {}),
      ...(error === undefined ? {} : { error }),
      ...(session.agent.version === undefined ? {} : { agent_version: session.agent.version }),
    };
    const cuts = bound(data);
    const fields: EventFields = { id, resource: facts.provider, action: facts.method, outcome: error === undefined ? 'success' : 'error' };
    const write = (): Promise<Verdict> => verdictOf(session.record('llm.call', data, fields), unlink);
    if (cuts.length === 0) return write();
    // The record waits for its cut parts to be stored, and the caller's answer for the record to be
    // queued: it stays ahead of anything the agent records next (the store's write of the parts is
    // the only I/O the caller waits for, and only for a call over LLM_CALL_INLINE_BYTES).
    return storeCuts(session, cuts).then((artifacts) => {
      if (artifacts.length > 0) fields.artifacts = artifacts;
      return write();
    });
  } catch {
    // Recording never breaks the agent's call (a hostile getter, a cycle in its parameters).
    return Promise.resolve({});
  }
}

/**
 * The recorder's verdict on a record it was handed (`receipt`, the promise `session.record`
 * returned), as far as it is known within VERDICT_TURNS microtask turns; `refused` runs when the
 * record is refused, whenever that is.
 */
export function verdictOf(receipt: Promise<unknown>, refused: () => void = () => undefined): Promise<Verdict> {
  const verdict = receipt.then(
    (r): Verdict => {
      if (r === undefined) refused();
      return {};
    },
    (err: unknown): Verdict => {
      refused();
      return { refused: err };
    },
  );
  return within(verdict, VERDICT_TURNS, {});
}

/** Rethrows a strict recorder's refusal of the record; anything else lets the caller's answer through. */
export async function surface(verdict: Promise<Verdict> | undefined): Promise<void> {
  const v = verdict === undefined ? undefined : await verdict;
  if (v?.refused !== undefined) throw v.refused;
}

/** `promise`'s value if it settles within `turns` turns of the microtask queue, else `otherwise`. */
function within<T>(promise: Promise<T>, turns: number, otherwise: T): Promise<T> {
  let late = Promise.resolve(otherwise);
  for (let i = 1; i < turns; i++) late = late.then((x) => x);
  return Promise.race([promise, late]);
}

/**
 * Bytes of an llm.call payload the wrappers record inline (its RFC 8785 JSON, before redaction):
 * under the ledger's default payload limit (maxPayloadBytes, 1 MiB), which would otherwise refuse
 * the whole record. The wrapper cannot see the recorder's options, so it keeps under the default.
 */
export const LLM_CALL_INLINE_BYTES = 768 * 1024;
/** The first bytes of a cut part kept in its marker, so a reader sees how it began. */
export const TRUNCATED_HEAD_BYTES = 4 * 1024;

interface Part {
  /** Where in `data`, as a path the ledger's reader can follow (`output`, `input[2]`, `tool_calls[0].arguments`). */
  path: string;
  value: unknown;
  text: string;
  bytes: number;
  set(marker: unknown): void;
}

/** A part replaced by its marker, to be stored whole. */
interface Cut {
  path: string;
  value: unknown;
  marker: Record<string, unknown>;
}

/**
 * Stores each cut part whole as an artifact (redacted, its RFC 8785 JSON) and names it in its
 * marker as `$artifact`, as a spilled tool output is named. A part that cannot be stored keeps a
 * marker without `$artifact`, which says so: the record is written either way.
 */
async function storeCuts(session: Session, cuts: Cut[]): Promise<ArtifactRef[]> {
  const refs = new Map<string, ArtifactRef>();
  for (const c of cuts) {
    try {
      const ref = await session.storeJson(c.value, `llm.call.${c.path}`);
      c.marker['$artifact'] = ref.sha256;
      if (!refs.has(ref.sha256)) refs.set(ref.sha256, ref);
    } catch {
      // Without it the marker still carries the part's size, digest and first bytes.
    }
  }
  return [...refs.values()];
}

/**
 * Keeps an llm.call within LLM_CALL_INLINE_BYTES: when it is over, its largest parts (input
 * messages one by one, the output, each requested tool call's arguments, the parameters) are
 * replaced, largest first, by a marker with the part's byte length, its SHA-256 (both of its RFC
 * 8785 JSON, so whoever holds the provider's own copy can check it) and its first bytes, and
 * `data.truncated` lists their paths. Over still (thousands of small messages), the whole input is
 * replaced by one marker. The agent's own objects are never changed: only `data`'s references.
 *
 * Returns the parts cut, for recordCall to store whole (session.storeJson).
 */
function bound(data: Record<string, unknown>): Cut[] {
  const size = estimate(data);
  // Most calls: far under by the upper bound, with no copy made. In between: the exact count.
  if (size.high <= LLM_CALL_INLINE_BYTES || (size.low <= LLM_CALL_INLINE_BYTES && inlineBytes(data) <= LLM_CALL_INLINE_BYTES)) return [];
  const parts: Part[] = [];
  const sent = data['input'] as unknown[];
  const input = [...sent];
  data['input'] = input;
  input.forEach((m, i) => parts.push(part(`input[${i}]`, m, (x) => (input[i] = x))));
  if (data['output'] !== undefined) parts.push(part('output', data['output'], (x) => (data['output'] = x)));
  const calls = data['tool_calls'] as Array<Record<string, unknown>> | undefined;
  if (calls !== undefined) {
    const copy = calls.map((c) => ({ ...c }));
    data['tool_calls'] = copy;
    copy.forEach((c, i) => {
      if (c['arguments'] !== undefined) parts.push(part(`tool_calls[${i}].arguments`, c['arguments'], (x) => (c['arguments'] = x)));
    });
  }
  if (data['parameters'] !== undefined) parts.push(part('parameters', data['parameters'], (x) => (data['parameters'] = x)));
  // Every part is written once (its RFC 8785 JSON, which a marker needs anyway); the rest of the
  // payload (model, usage, ids) is small. The separators between parts are left out: a few bytes.
  const skeleton = { ...data, input: [], output: null, parameters: null, tool_calls: calls?.map((c) => ({ ...c, arguments: null })) };
  let total = inlineBytes(skeleton) + parts.reduce((n, p) => n + p.bytes, 0);
  const cut = new Map<Part, Record<string, unknown>>();
  for (const p of [...parts].sort((a, b) => b.bytes - a.bytes)) {
    // A part not much larger than its marker saves nothing when cut.
    if (total <= LLM_CALL_INLINE_BYTES || p.bytes <= 2 * TRUNCATED_HEAD_BYTES) break;
    const m = marker(p);
    p.set(m);
    // The `$artifact` added once it is stored is a few bytes more than this counts.
    total -= p.bytes - Buffer.byteLength(JSON.stringify(m));
    cut.set(p, m);
  }
  let cuts: Cut[] = parts.filter((p) => cut.has(p)).map((p) => ({ path: p.path, value: p.value, marker: cut.get(p)! }));
  if (total > LLM_CALL_INLINE_BYTES) {
    const whole = `[${parts
      .filter((p) => p.path.startsWith('input['))
      .map((p) => p.text)
      .join(',')}]`;
    const m = marker({ path: 'input', value: sent, text: whole, bytes: Buffer.byteLength(whole), set: () => undefined });
    data['input'] = [m];
    cuts = [{ path: 'input', value: sent, marker: m }, ...cuts.filter((c) => !c.path.startsWith('input['))];
  }
  if (cuts.length > 0) data['truncated'] = cuts.map((c) => c.path);
  return cuts;
}

function part(path: string, value: unknown, set: (marker: unknown) => void): Part {
  const text = canonicalJson(value);
  return { path, value, text, bytes: Buffer.byteLength(text), set };
}

function marker(p: Part): Record<string, unknown> {
  return {
    $truncated: `Too large to record inline (the SDK wrappers keep an llm.call within ${LLM_CALL_INLINE_BYTES.toLocaleString('en-US')} bytes); bytes and sha256 are of its RFC 8785 JSON as sent, head is how that begins, and $artifact, when present, names the artifact that holds it whole, redacted.`,
    bytes: p.bytes,
    sha256: sha256(p.text),
    head: utf8Head(p.text, TRUNCATED_HEAD_BYTES),
  };
}

/**
 * Bounds on the payload's JSON length in UTF-8 bytes without writing it (a walk costs about a
 * microsecond on an ordinary call; JSON.stringify of a 5 MiB answer, tens of milliseconds): every
 * UTF-16 unit of a string is 1 to 6 bytes (3 in UTF-8, 6 as a \u escape), a number at most 24.
 */
function estimate(value: unknown): { low: number; high: number } {
  let low = 0;
  let high = 0;
  const walk = (v: unknown, depth: number): void => {
    // Over for certain, or unknowable here: stop (a cycle must not be walked 64 levels down every branch).
    if (low > LLM_CALL_INLINE_BYTES || high === Infinity) return;
    if (typeof v === 'string') {
      low += v.length + 2;
      high += v.length * 6 + 2;
    } else if (typeof v !== 'object' || v === null) {
      // A number, boolean, null or undefined; a BigInt or a function is for the exact count to find.
      low += 1;
      high += typeof v === 'bigint' || typeof v === 'function' ? Infinity : 24;
    } else if (depth > 64 || typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      // A cycle, or a value with its own toJSON: the exact count decides (and the recorder names a problem).
      high = Infinity;
    } else if (Array.isArray(v)) {
      low += 2 + v.length;
      high += 2 + v.length;
      for (const x of v as unknown[]) walk(x, depth + 1);
    } else {
      low += 2;
      high += 2;
      // for…in, not Object.entries: no array per object (2.5 µs against 9 µs for an ordinary call,
      // measured); an inherited enumerable member only makes the bounds larger than the JSON.
      for (const k in v) {
        low += k.length + 4;
        high += k.length * 6 + 4;
        walk((v as Record<string, unknown>)[k], depth + 1);
      }
    }
  };
  walk(value, 0);
  return { low, high };
}

/** The payload's JSON length, exact only when it could be over (a UTF-16 unit is 1 to 3 UTF-8 bytes). */
function inlineBytes(data: Record<string, unknown>): number {
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch {
    // A cycle or a BigInt: the recorder names the problem on the real record (an error event), so let it through.
    return 0;
  }
  return json.length * 3 <= LLM_CALL_INLINE_BYTES ? json.length : Buffer.byteLength(json);
}

/** At most `max` UTF-8 bytes of `text`, never half a character. */
function utf8Head(text: string, max: number): string {
  const head = Buffer.from(text.slice(0, max), 'utf8');
  let end = Math.min(max, head.length);
  while (end > 0 && (head[end]! & 0xc0) === 0x80) end--;
  return head.subarray(0, end).toString('utf8');
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
