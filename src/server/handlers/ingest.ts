import { AGENT_REFUSED_FIELDS, AGENT_REFUSED_KINDS, EVENT_KINDS, SYSTEM_STREAM_PREFIX, WitnessError, isWitnessError, type EventKind, type PreparedEvent } from '../../core/index.js';
import { type AppendRequest } from '../../store/index.js';
import { RECORDER_VERSION, Redactor } from '../../recorder/index.js';
import { HOOK_AGENTS, OTLP_STREAM_PREFIX, otlpStreamPrefix } from '../../integrations/index.js';
import type { RouteContext } from '../context.js';

// The kinds an agent key may not write, the header fields it may not set and the streams it may not name are core's (governance.ts): the SDK refuses the same.

// The same write-time redaction as every other way into the ledger: secrets never reach it.
const redactor = new Redactor();

/**
 * Which agent owns each stream this server has appended to: a batch for a stream known to be
 * another agent's is refused before any work. Only a shortcut: the rule itself (an agent appends
 * only to its own sessions) is the store's owner condition (AppendOptions.owner), checked inside
 * the append transaction, so two agents racing on one new stream cannot both write into it.
 * Bounded: the oldest entries go first.
 */
export class StreamOwners {
  private readonly owners = new Map<string, string>();
  constructor(private readonly max = 10_000) {}

  ownerOf(stream: string): string | undefined {
    return this.owners.get(stream);
  }

  remember(stream: string, agent: string): void {
    if (this.owners.size >= this.max) this.owners.delete(this.owners.keys().next().value as string);
    this.owners.set(stream, agent);
  }
}

/**
 * POST /v1/events: the identity is the key's, never the body's. `agent.id` and `agent.credential`
 * come from the key, `recorder` is this server, `ts` and `received_ts` are now (a `ts` in the body
 * is dropped); `policy`, `approvals` and `principal` are refused; an `agent.version` in the
 * body is kept as the agent's own claim about its software. The server assigns seq, prev, hash and
 * position; the batch is appended atomically or not at all.
 */
export async function ingest(ctx: RouteContext<unknown, unknown, { events: unknown[] }>, owners: StreamOwners): Promise<Response> {
  const caller = ctx.caller!;
  const agentId = caller.agent;
  if (agentId === undefined) throw new WitnessError('forbidden', 'This key has no agent identity to record under; ingest with an agent key.');
  const received = new Date().toISOString();
  const batch: AppendRequest[] = ctx.body.events.map((raw, i) => stamp(raw, i, agentId, caller.keyId, received));
  // Validated and committed to one by one, so that a refusal names its event; appended as one batch.
  const prepared = batch.map((e, i) => prepareOne(ctx, e, i));
  for (const stream of new Set(batch.map((e) => e.stream))) {
    const owner = owners.ownerOf(stream);
    if (owner !== undefined && owner !== agentId) {
      throw new WitnessError('forbidden', `Stream ${JSON.stringify(stream)} is another agent's session; record under a session id of your own.`, { details: { path: 'stream' } });
    }
  }
  const receipts = await ctx.ledger.appendPrepared(prepared, { owner: agentId });
  for (const e of batch) owners.remember(e.stream, agentId);
  ctx.metrics.appended += receipts.length;
  return ctx.c.json({ receipts: receipts.map((r) => ({ id: r.id, stream: r.stream, seq: r.seq, pos: r.pos, hash: r.hash })) }, 201);
}

function stamp(raw: unknown, i: number, agentId: string, keyId: string, received: string): AppendRequest {
  const at = `events[${i}]`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new WitnessError('invalid_event', `${at} must be a JSON object (an event); fix it and send the batch again.`, { details: { path: at } });
  }
  // `ts` is the server's clock: an agent key cannot backdate (or postdate) what it records.
  const { stream, agent, recorder: _recorder, received_ts: _received, ts: _ts, ...rest } = raw as Record<string, unknown>;
  if (typeof stream !== 'string' || stream.length === 0 || stream.length > 512) {
    throw new WitnessError('invalid_event', `${at}.stream must be the session id, 1 to 512 characters; fix it and send the batch again.`, { details: { path: `${at}.stream` } });
  }
  if (stream.startsWith(SYSTEM_STREAM_PREFIX)) {
    throw new WitnessError('forbidden', `${at}.stream ${JSON.stringify(stream)} is reserved for Witness (names starting with "${SYSTEM_STREAM_PREFIX}"); use a session id of your own.`, {
      details: { path: `${at}.stream` },
    });
  }
  // OTLP ingest's streams are namespaced by agent (handlers/otlp.ts); another agent's namespace is not this key's to open.
  if (stream.startsWith(OTLP_STREAM_PREFIX) && !stream.startsWith(otlpStreamPrefix(agentId))) {
    throw new WitnessError('forbidden', `${at}.stream ${JSON.stringify(stream)} is in another agent's OpenTelemetry namespace; use a session id of your own.`, { details: { path: `${at}.stream` } });
  }
  // Coding-agent hook streams (<agent kind>:<agent>:<session>) are written only by `witness hook`, straight into the ledger: no key opens, fills or ends one here (issue 16 review, H3).
  const hookKind = HOOK_AGENTS.find((k) => stream.startsWith(`${k}:`));
  if (hookKind !== undefined) {
    throw new WitnessError('forbidden', `${at}.stream ${JSON.stringify(stream)} is reserved for Witness's ${hookKind} hook (names starting with "${hookKind}:"); use a session id of your own.`, {
      details: { path: `${at}.stream` },
    });
  }
  const kind = rest['kind'];
  if (typeof kind === 'string' && (EVENT_KINDS as readonly string[]).includes(kind) && AGENT_REFUSED_KINDS.has(kind as EventKind)) {
    throw new WitnessError('forbidden', `${at}.kind ${kind} records what a person or Witness did, which an agent key may not write.`, { details: { path: `${at}.kind` } });
  }
  for (const field of AGENT_REFUSED_FIELDS) {
    if (rest[field] !== undefined) {
      throw new WitnessError('forbidden', `${at}.${field} states what a person or the Witness gateway did, which an agent key may not write; leave it out.`, {
        details: { path: `${at}.${field}` },
      });
    }
  }
  const version = typeof agent === 'object' && agent !== null ? (agent as { version?: unknown }).version : undefined;
  const input = {
    ...rest,
    agent: { id: agentId, ...(typeof version === 'string' ? { version } : {}), credential: keyId },
    recorder: { kind: 'server', version: RECORDER_VERSION },
    ts: received,
    received_ts: received,
  };
  const redacted = redactor.redactHeader({ ...input, data: redactor.redact((input as { data?: unknown }).data) });
  return { ...(redacted as unknown as AppendRequest), stream };
}

function prepareOne(ctx: RouteContext, event: AppendRequest, i: number): PreparedEvent {
  const at = `events[${i}]`;
  try {
    const [prepared] = ctx.ledger.prepare([event]);
    return prepared!;
  } catch (e) {
    if (!isWitnessError(e)) throw e;
    const path = typeof e.details?.['path'] === 'string' ? `${at}.${e.details['path'] as string}` : at;
    throw new WitnessError(e.code, `${at}: ${e.message.replace(/^Invalid event: /, '')}`, { details: { ...e.details, path }, cause: e });
  }
}
