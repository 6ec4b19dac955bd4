import { v7 as uuidv7 } from 'uuid';
import { WitnessError, canonicalize, sha256Hex, type AgentRef, type ArtifactRef, type EventKind, type EventInput, type Payload } from '../core/index.js';
import type { AppendReceipt } from '../store/index.js';

/** Fields of the header a session sets on every event, or a caller sets on one. */
export type EventFields = Partial<Omit<Extract<EventInput, { kind: 'note' }>, 'kind' | 'data' | 'agent'>>;

export interface SessionInit extends EventFields {
  agent: AgentRef;
  /** The session id (= stream); a UUIDv7 when omitted. */
  id?: string;
  purpose?: string;
  labels?: Record<string, string>;
}

export interface LlmCallInput {
  model: string;
  input: unknown[];
  output?: unknown;
  toolCalls?: Array<{ id?: string; name: string; arguments?: unknown }>;
  usage?: { input_tokens?: number; output_tokens?: number; total_tokens?: number; [k: string]: unknown };
  latencyMs?: number;
  /** The system prompt itself is not stored, only its SHA-256 (it may be proprietary). */
  systemPrompt?: string;
  provider?: string;
  responseModel?: string;
  parameters?: Record<string, unknown>;
  stopReason?: string;
  toolDefinitions?: unknown;
  dataSources?: Array<{ id: string; version?: string; digest?: string }>;
}

export interface ToolOptions extends EventFields {
  server?: string;
  requiresApproval?: boolean;
  /**
   * Screenshots around the call, taken by the recorder's capturer (`openWitness({ capturer })`):
   * `{ url: 'http://…/customers/{customer_id}', before: true, after: true, mask: ['.card-number'] }`.
   */
  capture?: unknown;
}

/** One screenshot, as src/capture's Capturer returns it. */
export interface CaptureShot {
  png: Uint8Array;
  role: string;
  url: string;
  status?: number | undefined;
  title: string;
  text: string;
  viewport: { width: number; height: number };
  mask: readonly string[];
  ts: string;
  ms: number;
  /** An `after` shot: where it differs from the call's `before` shot, recorded as `changed_region`. */
  changedRegion?: Payload<'capture'>['changed_region'];
}

/**
 * Takes the screenshots a tool's capture spec asks for (src/capture's Capturer fits). `call` is
 * the tool.call event's id, the same for a call's before and after shots.
 */
export interface ToolCapturer {
  shoot(spec: unknown, args: unknown, role: 'before' | 'after', call?: string): Promise<CaptureShot | undefined>;
}

export interface EndInput {
  reason?: 'completed' | 'timeout' | 'max_iterations' | 'error' | 'cancelled';
  finalOutput?: unknown;
}

/** What a session needs from its recorder. */
export interface SessionHost {
  record(stream: string, input: EventInput): Promise<AppendReceipt | undefined>;
  storeOutput(kind: EventKind, value: unknown): Promise<{ value: unknown; artifact?: ArtifactRef }>;
  storeArtifact(bytes: Uint8Array, mime: string, role?: string): Promise<ArtifactRef>;
  /** `value` as a record stores it inside `data`: plain JSON, redacted (the Witness has it; a host without it cannot store JSON). */
  redactData?(value: unknown): unknown;
  readonly capturer?: ToolCapturer | undefined;
  sessionEnded(): Promise<void>;
  now(): number;
}

/**
 * One agent run = one stream = one hash chain. Every method resolves once its event is durable and
 * never rejects because of the recorder's own faults (those go to onError).
 */
export class Session {
  readonly id: string;
  readonly agent: AgentRef;
  private readonly defaults: EventFields;
  private ended = false;

  constructor(
    private readonly host: SessionHost,
    init: SessionInit,
  ) {
    const { id, agent, purpose: _p, labels: _l, ...defaults } = init;
    this.id = id ?? uuidv7();
    this.agent = agent;
    this.defaults = defaults;
  }

  /** Records any event kind; the typed helpers below cover the common ones. */
  async record<K extends EventKind>(kind: K, data: Payload<K>, fields: EventFields = {}): Promise<AppendReceipt | undefined> {
    // `{ ...this.defaults, ...fields, agent, kind, data }`, written with members ahead of the
    // spreads and set again after them: V8 (Node 20) builds a literal that opens with a spread as a
    // clone of that object, and members added to the clone cost 1-8 µs per record (measured), more
    // than the rest of the recorder's own work on it.
    const input: Record<string, unknown> = { agent: this.agent, kind, data, ...this.defaults, ...fields };
    input['agent'] = this.agent;
    input['kind'] = kind;
    input['data'] = data;
    return this.host.record(this.id, input as unknown as EventInput);
  }

  async llmCall(call: LlmCallInput, fields: EventFields = {}): Promise<AppendReceipt | undefined> {
    const stored = call.output === undefined ? { value: undefined } : await this.host.storeOutput('llm.call', call.output);
    const data: Payload<'llm.call'> = {
      model: call.model,
      input: call.input,
      ...(stored.value === undefined ? {} : { output: stored.value }),
      ...(call.toolCalls === undefined ? {} : { tool_calls: call.toolCalls }),
      ...(call.usage === undefined ? {} : { usage: call.usage }),
      ...(call.latencyMs === undefined ? {} : { latency_ms: call.latencyMs }),
      ...(call.systemPrompt === undefined ? {} : { system_prompt_sha256: sha256Hex(call.systemPrompt) }),
      ...(call.provider === undefined ? {} : { provider: call.provider }),
      ...(call.responseModel === undefined ? {} : { response_model: call.responseModel }),
      ...(call.parameters === undefined ? {} : { parameters: call.parameters }),
      ...(call.stopReason === undefined ? {} : { stop_reason: call.stopReason }),
      ...(call.toolDefinitions === undefined ? {} : { tool_definitions_sha256: sha256Hex(canonicalize(call.toolDefinitions)) }),
      ...(call.dataSources === undefined ? {} : { data_sources: call.dataSources }),
      ...(this.agent.version === undefined ? {} : { agent_version: this.agent.version }),
    };
    return this.record('llm.call', data, withArtifact(fields, stored.artifact));
  }

  /**
   * Records `tool.call`, runs the tool, records `tool.result` (or the thrown error, which is then
   * rethrown unchanged). The call record is durable before the tool runs, so a crash mid-tool still
   * leaves evidence that it was attempted.
   */
  async tool<T>(name: string, args: unknown, fn: () => T | Promise<T>, options: ToolOptions = {}): Promise<T> {
    const { server, requiresApproval, capture, ...fields } = options;
    const base = { resource: fields.resource ?? server ?? name.split('.')[0] ?? name, action: fields.action ?? name };
    const call = await this.record(
      'tool.call',
      {
        tool: name,
        arguments: args,
        ...(server === undefined ? {} : { server }),
        ...(requiresApproval === undefined ? {} : { requires_approval: requiresApproval }),
      },
      merged(fields, base, { outcome: 'pending' }),
    );
    const parent = call === undefined ? {} : { parent: call.id };
    if (capture !== undefined) await this.shoot(capture, args, 'before', call?.id, base);
    const started = this.host.now();
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const code = (e as { code?: unknown }).code;
      await this.record(
        'tool.result',
        {
          tool: name,
          ...(server === undefined ? {} : { server }),
          is_error: true,
          error: { message: e.message, name: e.name, ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}) },
          duration_ms: this.host.now() - started,
        },
        merged(fields, base, parent, { outcome: 'error' }),
      );
      if (capture !== undefined) await this.shoot(capture, args, 'after', call?.id, base);
      throw err;
    }
    const stored = await this.host.storeOutput('tool.result', result);
    await this.record(
      'tool.result',
      {
        tool: name,
        ...(server === undefined ? {} : { server }),
        ...(stored.value === undefined ? {} : { output: stored.value }),
        is_error: false,
        duration_ms: this.host.now() - started,
      },
      withArtifact(merged(fields, base, parent, { outcome: 'success' }), stored.artifact),
    );
    if (capture !== undefined) await this.shoot(capture, args, 'after', call?.id, base);
    return result;
  }

  /**
   * Takes one screenshot for a tool call and records it. A capture that fails is recorded as an
   * `error` event (source `capture`) and never fails the tool call.
   */
  private async shoot(spec: unknown, args: unknown, role: 'before' | 'after', callId: string | undefined, base: { resource: string; action: string }): Promise<void> {
    const capturer = this.host.capturer;
    const parent = callId === undefined ? {} : { parent: callId };
    if (capturer === undefined) {
      await this.record(
        'error',
        { message: 'This tool call asks for a capture, but the recorder has no capturer; pass openWitness({ capturer: new Capturer() }).', code: 'no_capturer', source: 'capture' },
        { ...parent, ...base, outcome: 'error' },
      );
      return;
    }
    await this.shootAndRecord(capturer, spec, args, role, { ...parent, ...base });
  }

  /**
   * Takes the `role` screenshot `spec` asks for and records it as a `capture` event with `fields`
   * (the call as parent). A failure is recorded as an `error` event (source `capture`) and
   * returned, never thrown: a capture must not fail the call it documents.
   */
  async shootAndRecord(capturer: ToolCapturer, spec: unknown, args: unknown, role: 'before' | 'after', fields: EventFields): Promise<Error | undefined> {
    try {
      const shot = await capturer.shoot(spec, args, role, fields.parent);
      if (shot !== undefined) await this.storeShot(shot, fields);
      return undefined;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const code = (e as { code?: unknown }).code;
      await this.record('error', { message: e.message, name: e.name, code: typeof code === 'string' ? code : 'capture_failed', source: 'capture', role }, { ...fields, outcome: 'error' });
      return e;
    }
  }

  /**
   * Stores a screenshot as an artifact and records the `capture` event that binds it into the
   * chain. Like every recording call it never rejects into the agent's code: a shot that cannot be
   * stored (the artifact store failing, a shot without PNG bytes) is recorded as an `error` event
   * (source `capture`, code `capture_failed`) and the promise resolves to undefined.
   */
  async capture(shot: CaptureShot, fields: EventFields = {}): Promise<AppendReceipt | undefined> {
    try {
      return await this.storeShot(shot, fields);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const o = (shot ?? {}) as Partial<Record<keyof CaptureShot, unknown>>;
      const role = typeof o.role === 'string' ? o.role.slice(0, 200) : undefined;
      const of = typeof o.url === 'string' ? ` of ${o.url.slice(0, 2048)}` : '';
      await this.record(
        'error',
        {
          message: `The ${role ?? ''}${role === undefined ? '' : ' '}screenshot${of} could not be stored: ${e.message}`,
          name: e.name,
          code: 'capture_failed',
          source: 'capture',
          ...(role === undefined ? {} : { role }),
        },
        { ...fields, outcome: 'error' },
      );
      return undefined;
    }
  }

  private async storeShot(shot: CaptureShot, fields: EventFields): Promise<AppendReceipt | undefined> {
    const artifact = await this.host.storeArtifact(shot.png, 'image/png', shot.role);
    return this.record(
      'capture',
      {
        role: shot.role,
        url: shot.url,
        viewport: shot.viewport,
        text: shot.text,
        title: shot.title,
        ...(shot.status === undefined ? {} : { http_status: shot.status }),
        ...(shot.mask.length === 0 ? {} : { masked_selectors: [...shot.mask] }),
        captured_at: shot.ts,
        capture_ms: Math.round(shot.ms * 10) / 10,
        ...(shot.changedRegion === undefined ? {} : { changed_region: shot.changedRegion }),
      },
      { ...fields, action: fields.action ?? `capture.${shot.role}`, outcome: 'success', artifacts: [...(fields.artifacts ?? []), artifact] },
    );
  }

  /**
   * Stores `value` whole in the content-addressed artifact store as its RFC 8785 JSON, redacted as
   * a record's data is, and returns its reference (sha256 of the stored bytes) for a record to
   * name. For what a record cannot hold inline, such as the parts of an llm.call the SDK wrappers
   * cut to keep it within the ledger's payload limit. Rejects when it cannot be stored.
   */
  async storeJson(value: unknown, role?: string): Promise<ArtifactRef> {
    if (this.host.redactData === undefined)
      throw new WitnessError('invalid_argument', 'This session cannot store JSON artifacts (its recorder does not redact them); record the value inline instead.');
    const text = canonicalize(this.host.redactData(value));
    return this.host.storeArtifact(Buffer.from(text, 'utf8'), 'application/json', role);
  }

  async note(text: string, fields: EventFields = {}): Promise<AppendReceipt | undefined> {
    return this.record('note', { text }, fields);
  }

  /** Records an error the agent met (a failed step, a refused request) without throwing it. */
  async error(err: unknown, fields: EventFields & { retryable?: boolean } = {}): Promise<AppendReceipt | undefined> {
    const { retryable, ...rest } = fields;
    const e = err instanceof Error ? err : new Error(String(err));
    return this.record('error', { message: e.message, name: e.name, source: 'agent', ...(retryable === undefined ? {} : { retryable }) }, { outcome: 'error', ...rest });
  }

  /** Records session.end (with the stream's count and last hash) and seals it into a checkpoint. */
  async end(input: EndInput = {}, fields: EventFields = {}): Promise<AppendReceipt | undefined> {
    if (this.ended) return undefined;
    this.ended = true;
    const r = await this.record('session.end', { reason: input.reason ?? 'completed', ...(input.finalOutput === undefined ? {} : { final_output: input.finalOutput }) }, fields);
    await this.host.sessionEnded();
    return r;
  }
}

function withArtifact(fields: EventFields, artifact: ArtifactRef | undefined): EventFields {
  return artifact === undefined ? fields : merged(fields, { artifacts: [...(fields.artifacts ?? []), artifact] });
}

/**
 * `{ ...a, ...b, ...c, ...d }`, opened with a spread of an empty literal: V8 (Node 20) builds a
 * literal that opens with a spread as a clone of that object and is slow to add members to it
 * (~1.9 µs for a tool call's fields, against 0.12 µs this way; measured).
 */
function merged(a: EventFields, b: EventFields, c?: EventFields, d?: EventFields): EventFields {
  return { ...{}, ...a, ...b, ...c, ...d };
}
