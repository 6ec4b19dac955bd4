import type { AgentRef, Payload } from '../core/index.js';
import { evaluate, visibleTools, type Evaluation, type Policy } from '../policy/index.js';
import { RECORDER_VERSION, systemWriter, type ToolCapturer, type Witness } from '../recorder/index.js';
import { DEFAULT_HALT_WATCH, HaltWatch, haltedMessage, type HaltCheck, type HaltView, type HaltWatchSettings } from '../approvals/index.js';
import { ApprovalDesk, type ApprovalSettings } from './approval-desk.js';
import {
  DISCOVER,
  LISTEN,
  UNSUPPORTED_PROTOCOL_VERSION,
  discoverySummary,
  envelopeClaims,
  eraMismatch,
  incompleteResult,
  isVersionProbe,
  ownResult,
  privateScope,
  requestedVersion,
  roundTrip,
  versionRefusal,
} from './era.js';
import {
  ErrorCode,
  LineSplitter,
  Wire,
  classify,
  classifyMessage,
  errorMessage,
  idKey,
  LIST_METHOD_NAMES,
  recordedMethods,
  refusalMessage,
  refusalRecord,
  resultMessage,
  screenClientMessage,
  sniffId,
  toolErrorResult,
  type Frame,
  type JsonRpcId,
  type Refusal,
} from './jsonrpc.js';
import { OrderedQueue } from './ordered-queue.js';
import { NOTIFICATIONS_WHILE_HALTED, SERVER_REQUESTS_WHILE_HALTED, answerOf, haltAnswer, type ServerRequest } from './halted-traffic.js';
import { GatewayRecorder, type CallKind, type CallStart } from './record.js';

/**
 * The transport-independent heart of the gateway: one MCP session between one client and one
 * upstream server. The stdio proxy and the HTTP gateway feed it JSON-RPC messages from each side
 * (lines from a byte stream, objects from a transport that parses) and deliver what it emits, as a
 * Wire that keeps whichever form it came in; it records, enforces policy, holds calls for approval
 * and forwards every frame it does not need to change unchanged. Each message is parsed once on
 * its way through: never serialized and parsed again between the two sides.
 *
 * Client frames are handled strictly in order up to the point of forwarding: a tools/call is held
 * until its tool.call record is durable, and frames behind it wait, so the server never sees them
 * out of order. A call held for human approval leaves that queue: frames behind it go on.
 */

export interface RelayOptions {
  witness: Witness;
  /** The agent identity, from the gateway's own configuration: never from anything the client sends. */
  agent: AgentRef;
  /** A name for the upstream server, used by policy rules (`match.server`) and in the records. */
  server?: string | undefined;
  policy?: Policy | undefined;
  /** Also record tools/list, resources/list, resources/templates/list and prompts/list. */
  recordLists?: boolean;
  /** A client frame larger than this (characters) is refused unread. Default 4 MiB. */
  maxFrameChars?: number;
  /**
   * When a call cannot be recorded: false (default) refuses it — unrecorded actions never reach the
   * server; true forwards it anyway (for non-critical servers) and the recorder records the gap.
   */
  failOpen?: boolean;
  approvals?: Partial<ApprovalSettings>;
  /** How the agent's halt state is read (approvals/halt-watch.ts); the defaults obey a halt within a second. */
  halts?: Partial<HaltWatchSettings>;
  /**
   * Screenshots around tool calls: a spec per tool name (see src/capture's CaptureSpec). The
   * `before` shot is taken and recorded before the call is forwarded, the `after` shot before the
   * result is passed back, so the agent cannot act on the page in between.
   */
  capture?: { capturer: ToolCapturer; tools: Readonly<Record<string, unknown>> } | undefined;
  /** Diagnostics for a person (stderr). Never the MCP channel. */
  onLog?: ((message: string) => void) | undefined;
  /** session.start purpose and labels (transport, command or URL, client address). */
  purpose: string;
  labels?: Record<string, string>;
}

export interface RelayPorts {
  /**
   * A message for the client; `related` is the client request it belongs to, when known (HTTP
   * routes by it). A byte stream writes `message.text`, a transport sends `message.value`.
   */
  toClient(message: Wire, related?: JsonRpcId): void;
  toServer(message: Wire): void;
}

/** Error code for a call refused because it could not be recorded (ErrorCode.NotRecorded). */
export const NOT_RECORDED = ErrorCode.NotRecorded;
/** Error code for a client frame over the size limit (ErrorCode.FrameTooLarge). */
export const FRAME_TOO_LARGE = ErrorCode.FrameTooLarge;

/** The default client frame limit (characters over stdio; bytes of the body over HTTP). */
export const DEFAULT_MAX_FRAME_CHARS = 4 * 1024 * 1024;

interface Pending {
  id: JsonRpcId;
  method: string;
  started: number;
  /** Set for recorded requests: the tool.call event id and what it named. */
  call?: { callId: string; tool: string };
  /** Arguments, kept for the `after` capture's URL template. */
  args?: unknown;
  /** The protocol version the request asked for (era.ts requestedVersion), for an answer that shows the two sides share no era. */
  version?: unknown;
}

export type RelayEnd = 'completed' | 'error' | 'cancelled' | 'timeout';

/** Why the agent may not act now, for the gateway's answers and records. */
interface Stop {
  code: 'halted' | 'halts_unreadable';
  halt?: HaltView;
  /** The reason, as a clause: "agent X was halted by Y at T (why)". */
  said: string;
}

/** A server's answer after a cancel is recorded whole up to this many characters, else its head. */
const MAX_LATE_ANSWER_CHARS = 64 * 1024;

export class McpRelay {
  private readonly pending = new Map<string, Pending>();
  /** Requests the server sent the client (sampling, elicitation, roots, ping), until answered: only their answers go back. */
  private readonly serverRequests = new Map<string, ServerRequest>();
  /** Server requests the gateway answered itself because the agent was halted: the agent's late answer is dropped. */
  private readonly answeredForHalt = new Map<string, ServerRequest>();
  /** While server requests are open, the halt is looked at on this timer, so that a halt answers them at once. */
  private openRequestsTimer: NodeJS.Timeout | undefined;
  /**
   * Requests the client cancelled that the server has not answered: their ids stay in use (a request
   * reusing one is refused, so a late answer can never pass for its answer), and a late answer is
   * recorded, not forwarded.
   */
  private readonly cancelled = new Map<string, Pending>();
  /** Ids of calls held for approval: in use until the desk answers, releases or drops the call. */
  private readonly heldIds = new Set<string>();
  /** Records this relay writes through the session itself (they name a parent): awaited at the end. */
  private readonly ownRecords = new Set<Promise<unknown>>();
  private claims: { clientInfo?: unknown; protocolVersion?: unknown } | undefined;
  /**
   * The distinct methods of the client's requests, at most two: enough to tell a version probe
   * (era.ts isVersionProbe). Distinct, so that requests repeating server/discover cannot push a
   * later tools/call out of view and make a real run look like a probe.
   */
  private readonly firstMethods: string[] = [];
  /** What the server's answer to server/discover said (era.ts discoverySummary). */
  private discovery: Record<string, unknown> | undefined;
  /** Client frames, handled one at a time up to forwarding (see the class comment). */
  private readonly clientQueue = new OrderedQueue((e) => this.log(`witness gateway: could not handle a client message: ${String(e)}`));
  /** Server frames that arrive while an `after` capture runs wait here, so their order is kept. */
  private readonly serverQueue = new OrderedQueue((e) => this.log(`witness gateway: could not handle a server message: ${String(e)}`));
  private clientGoneAt: number | undefined;
  private ended = false;
  /** False for a relay attached to a session it did not open (see attach): end() leaves that session open. */
  private ownsSession = true;
  private readonly desk: ApprovalDesk;
  /** The agent's halt state, read from the ledger by one watch per agent per process (the stop button). */
  private readonly halts: HaltWatch;
  /** The methods this relay records: a message naming one of them must be a well-formed request. */
  private readonly recorded: ReadonlySet<string>;
  private constructor(
    private readonly o: RelayOptions,
    /**
     * Where everything this relay sends goes, as a Wire: a line written to a byte stream is made by
     * Wire.text, through oneLine, so that no line either side receives holds a raw CR, which some
     * readers take for a line end. Forwarded frames, answers, refusals and approval progress all pass it.
     */
    private readonly ports: RelayPorts,
    readonly rec: GatewayRecorder,
  ) {
    this.recorded = recordedMethods(o.recordLists === true);
    this.halts = HaltWatch.acquire(o.witness.reader, o.agent.id, o.halts);
    this.desk = new ApprovalDesk(o.witness, rec, o.approvals ?? {}, {
      agent: o.agent.id,
      server: o.server,
      toClient: (message, related) => {
        // An answer ends the hold: the id is free again.
        if (related !== undefined && ('result' in message || 'error' in message)) this.heldIds.delete(idKey(related));
        this.ports.toClient(Wire.of(message), related);
      },
      // forwardCall's only await is the before shot, which records its own failure and resolves.
      release: (held) => {
        this.heldIds.delete(idKey(held.id));
        this.forwardCall(held.id, held.message, held.started, held.tool, held.args, held.callId).catch((e: unknown) =>
          this.log(`witness gateway: a released call could not be forwarded: ${e instanceof Error ? e.message : String(e)}`),
        );
      },
      // A halt placed while the call waited for its approval stops it too.
      stopped: (held) => {
        const halt = this.halts.current();
        if (halt.halted === true) return haltedMessage(halt.halt, `this approved call to ${held.tool}`);
        if (halt.halted === 'unreadable' && this.o.failOpen !== true) return this.haltsUnreadable(held.tool, halt.why);
        return undefined;
      },
      log: (m) => this.log(m),
    });
  }

  /** Records session.start; resolves once it is durable. */
  static async open(o: RelayOptions, ports: RelayPorts): Promise<McpRelay> {
    // The gateway's write path: its sessions hold policy decisions and approval requests, which the SDK's public path refuses.
    const session = await systemWriter(o.witness, 'gateway').session({
      agent: o.agent,
      recorder: { kind: 'gateway', version: RECORDER_VERSION },
      purpose: o.purpose.slice(0, 4096),
      labels: {
        ...o.labels,
        ...(o.server === undefined ? {} : { server: o.server }),
        ...(o.policy === undefined ? {} : { policy: o.policy.sha256, policy_mode: o.policy.mode }),
        ...(o.failOpen === true ? { on_record_failure: 'forward' } : {}),
      },
    });
    return new McpRelay(o, ports, new GatewayRecorder(o.witness, session, o.agent));
  }

  /**
   * A relay for one exchange inside a Witness session someone else owns (the 2026-07-28 era has no
   * protocol session: each HTTP request gets its own relay, so that JSON-RPC ids of different
   * requests never meet, while their records go to the session their group shares). `end()` of
   * such a relay waits for its records but leaves the session open: its owner ends it.
   */
  static attach(o: Omit<RelayOptions, 'purpose' | 'labels'>, ports: RelayPorts, rec: GatewayRecorder): McpRelay {
    const relay = new McpRelay({ ...o, purpose: '' }, ports, rec);
    relay.ownsSession = false;
    return relay;
  }

  get sessionId(): string {
    return this.rec.session.id;
  }

  get maxFrameChars(): number {
    return this.o.maxFrameChars ?? DEFAULT_MAX_FRAME_CHARS;
  }

  /** A line splitter for a client byte stream, with this relay's frame limit. */
  clientSplitter(): LineSplitter {
    return new LineSplitter(
      (line) => this.fromClient(line),
      this.maxFrameChars,
      (head, chars) => this.oversized(head, chars),
    );
  }

  /** A frame over the limit: answered (with its id when it can be read from its start) and recorded. */
  oversized(head: string, chars: number): void {
    const id = sniffId(head);
    this.toClient(errorMessage(id, ErrorCode.FrameTooLarge, `Request too large: the message is ${chars} characters, over this gateway's limit of ${this.maxFrameChars}; it was not forwarded.`));
    this.rec.error(`The client sent a message of ${chars} characters, over the ${this.maxFrameChars} limit; it was refused unread.`, 'frame_too_large', 'gateway', {
      chars,
      limit: this.maxFrameChars,
      head: head.slice(0, 256),
      ...(id === null ? {} : { jsonrpc_id: id }),
    });
  }

  // ---------------------------------------------------------------- client → server

  fromClient(line: string): void {
    if (this.ended) return;
    if (line.length > this.maxFrameChars) return this.oversized(line.slice(0, 512), line.length);
    const frame = classify(line);
    if (frame.type === 'invalid') {
      this.toClient(errorMessage(null, ErrorCode.ParseError, `Parse error: the message is not JSON (${frame.reason}).`));
      this.rec.error(`The client sent a message that is not JSON: ${frame.reason}.`, 'parse_error', 'gateway', { line: line.slice(0, 1024), chars: line.length });
      return;
    }
    if (frame.type === 'batch') return this.batch(frame.message.length);
    this.clientQueue.push(() => {
      const refusal = screenClientMessage(line, frame.message, this.recorded);
      if (refusal !== undefined) return this.refuse(refusal, line);
      return this.handleClient(frame, Wire.read(line, frame.message));
    });
  }

  private batch(size: number): void {
    // MCP (2025-06-18 on) has no batches, and a batch would let calls past the recorder unseen.
    this.toClient(errorMessage(null, ErrorCode.InvalidRequest, 'Invalid request: JSON-RPC batches are not supported by this gateway; send one message at a time.'));
    this.rec.error('The client sent a JSON-RPC batch, which was refused.', 'batch_refused', 'gateway', { size });
  }

  /**
   * One client message that the transport has already parsed and screened (see
   * screenClientMessage: the HTTP gateway screens each body as sent, since a repeated key is gone
   * once parsed) and refused when over the size limit, not JSON or a batch. The object itself is
   * recorded and forwarded: it is not serialized and parsed again on the way in. Messages are
   * handled in the order of these calls, interleaved with fromClient.
   */
  fromClientMessage(message: unknown): void {
    if (this.ended) return;
    const frame = classifyMessage(message);
    if (frame.type === 'batch') return this.batch(frame.message.length);
    this.clientQueue.push(() => this.handleClient(frame, Wire.of(message)));
  }

  /**
   * `wire` is the message as the client's transport delivered it: the line as sent (stdio),
   * forwarded byte for byte when nothing needs changing, or the parsed object (HTTP).
   */
  private async handleClient(frame: Exclude<Frame, { type: 'invalid' }>, wire: Wire): Promise<void> {
    if (frame.type === 'request') {
      const { method } = frame;
      if (this.firstMethods.length < 2 && !this.firstMethods.includes(method)) this.firstMethods.push(method);
      if (this.idInUse(frame.id)) return this.refuseReusedId(frame.id, method);
      const badVersion = versionRefusal(frame.message);
      if (badVersion !== undefined) {
        // -32022 names the versions served (a client retries with one); a malformed claim gets -32602 alone.
        const data = badVersion.code === UNSUPPORTED_PROTOCOL_VERSION ? badVersion.data : undefined;
        this.toClient(errorMessage(frame.id, badVersion.code, badVersion.message, data), frame.id);
        const what = badVersion.data.requested === null ? 'a protocol version that is not a string' : `protocol version ${badVersion.data.requested}, which this gateway does not speak`;
        this.rec.error(`Refused a ${method.slice(0, 200)} claiming ${what}; it was not forwarded.`, 'unsupported_protocol_version', 'gateway', {
          method: method.slice(0, 200),
          jsonrpc_id: frame.id,
          requested: badVersion.data.requested,
          supported: badVersion.data.supported,
        });
        return;
      }
      // A recorded request is forwarded as what was parsed and recorded (a stdio server gets its
      // compact JSON), not as the client's bytes: the server then reads exactly the values in the
      // ledger, however differently from JSON.parse its parser treats spellings of numbers, escapes
      // or white space.
      if (method === 'tools/call') return this.toolCall(frame.id, frame.params, Wire.of(frame.message));
      // tools/call checks the halt itself (it outranks the policy there); every other request that
      // acts or reads through the server is stopped here, before it is recorded as sent.
      if (!ALLOWED_WHILE_HALTED.has(method) && (await this.haltStops(frame.id, method, frame.params))) return;
      if (this.recorded.has(method)) return this.recordedRequest(frame.id, method, frame.params, Wire.of(frame.message));
      if (method === 'initialize') {
        const p = asObject(frame.params);
        this.claims = { ...(p['clientInfo'] === undefined ? {} : { clientInfo: p['clientInfo'] }), ...(p['protocolVersion'] === undefined ? {} : { protocolVersion: p['protocolVersion'] }) };
      }
      this.pending.set(idKey(frame.id), { id: frame.id, method, started: performance.now(), version: requestedVersion(frame.message) });
    } else if (frame.type === 'notification' && !NOTIFICATIONS_WHILE_HALTED.has(frame.method) && (await this.notificationStopped(frame.method, frame.params))) {
      return;
    } else if (frame.type === 'notification' && frame.method === 'notifications/cancelled') {
      const requestId = asObject(frame.params)['requestId'];
      if (typeof requestId === 'string' || typeof requestId === 'number') {
        const reason = asObject(frame.params)['reason'];
        const why = `The client cancelled the call${typeof reason === 'string' ? `: ${reason}` : ''}.`;
        // The SDK cancels with "Request timed out" when its own timeout fires: an auditor asks which it was.
        const code = typeof reason === 'string' && /timed? ?out/i.test(reason) ? 'timeout' : 'cancelled';
        // A call still held for approval never reached the server: nothing to forward.
        if (this.desk.cancel(requestId, why, code)) return void this.heldIds.delete(idKey(requestId));
        const p = this.pending.get(idKey(requestId));
        if (p !== undefined) {
          this.pending.delete(idKey(p.id));
          this.cancelled.set(idKey(p.id), p);
        }
        if (p?.call !== undefined) {
          this.rec.failed(p.call, this.o.server, p.started, why, code);
        }
      }
    } else if (frame.type === 'response') {
      return this.clientAnswer(frame, wire);
    }
    this.ports.toServer(wire);
  }

  /**
   * A client message that screening refused (see screenClientMessage): answered with a JSON-RPC
   * error unless it is a notification or no request, recorded as refused, never forwarded.
   */
  refuse(r: Refusal, text: string): void {
    if (r.answerId !== undefined) this.toClient(errorMessage(r.answerId, r.rpcCode, refusalMessage(r)), r.answerId ?? undefined);
    const { message, data } = refusalRecord(r, text);
    this.rec.error(message, r.code, 'gateway', data);
  }

  /** What the client claims about itself for one request: its envelope (modern), else initialize's claims and the request's _meta. */
  private claimsWith(meta: unknown): unknown {
    return envelopeClaims(meta) ?? (this.claims === undefined && meta === undefined ? undefined : { ...this.claims, ...(meta === undefined ? {} : { _meta: meta }) });
  }

  /**
   * When every request the client sent was server/discover (a v2 client's version probe, see
   * era.ts isVersionProbe) and all were answered: what the server said, for the run's note.
   */
  versionProbe(): Record<string, unknown> | undefined {
    if (!isVersionProbe(this.firstMethods) || this.pending.size > 0) return undefined;
    return { probe: true, method: DISCOVER, ...this.discovery };
  }

  private async toolCall(id: JsonRpcId, rawParams: unknown, message: Wire): Promise<void> {
    const params = asObject(rawParams);
    const tool = params['name'];
    if (typeof tool !== 'string' || tool === '') {
      this.toClient(errorMessage(id, ErrorCode.InvalidParams, 'Invalid params: tools/call needs params.name, the name of the tool to call.'), id);
      this.rec.error('The client sent a tools/call without a tool name, which was refused.', 'invalid_params', 'gateway', { jsonrpc_id: id });
      return;
    }
    // An absent `arguments` (MCP allows it) is recorded as null, as its digest has always been taken.
    const args = params['arguments'] ?? null;
    const server = this.o.server;
    const evaluation = this.o.policy === undefined ? undefined : evaluate(this.o.policy, { agent: this.o.agent.id, server, tool, args });
    const meta = params['_meta'];
    const started = performance.now();
    // The stop button outranks the policy: a halted agent's call is refused whatever a rule says.
    const halt = await this.halts.check();
    if (halt.halted === true) return this.refuseHalted(id, tool, rawParams, halt.halt, started, { args, claims: this.claimsWith(meta), extra: roundTrip(params) });
    if (halt.halted === 'unreadable') {
      // Refused like a call that cannot be recorded: unless fail-open is configured for this server.
      if (this.o.failOpen !== true) return this.refuseUnreadable(id, tool, halt.why, { args, claims: this.claimsWith(meta), extra: roundTrip(params) });
      this.log(`witness gateway: forwarded a call to ${tool} though the halt state could not be read (fail-open is configured for this server): ${halt.why}`);
    }
    const callId = await this.rec.call({ kind: 'tool', tool, server, args, jsonrpcId: id, claims: this.claimsWith(meta), evaluation, extra: roundTrip(params) });
    if (callId === undefined && !this.notRecorded(id, tool)) return;
    if (evaluation !== undefined && evaluation.enforced && evaluation.decision === 'review' && callId !== undefined) {
      this.heldIds.add(idKey(id));
      await this.desk.hold({
        id,
        message,
        callId,
        tool,
        args,
        evaluation,
        started,
        progressToken: asObject(meta)['progressToken'],
        session: this.sessionId,
        shape: (result) => ownResult(rawParams, result),
      });
      return;
    }
    if (evaluation !== undefined && evaluation.enforced && evaluation.decision !== 'allow') {
      const result = ownResult(rawParams, toolErrorResult(refusal(tool, evaluation)));
      this.toClient(resultMessage(id, result), id);
      if (callId !== undefined) this.rec.result({ callId, tool, server, output: result, isError: true, durationMs: performance.now() - started, outcome: 'denied' });
      return;
    }
    await this.forwardCall(id, message, started, tool, args, callId);
  }

  /** A call of a halted agent: recorded (tool.call, a policy.decision deny for reason `halted`, a denied result) and answered with a tool error saying who halted it and why. */
  private async refuseHalted(
    id: JsonRpcId,
    tool: string,
    rawParams: unknown,
    halt: HaltView,
    started: number,
    call: { args: unknown; claims: unknown; extra: Record<string, unknown> },
  ): Promise<void> {
    const server = this.o.server;
    const callId = await this.rec.call({ kind: 'tool', tool, server, jsonrpcId: id, evaluation: undefined, halt, ...call });
    const result = ownResult(rawParams, toolErrorResult(haltedMessage(halt, `this call to ${tool}`)));
    this.toClient(resultMessage(id, result), id);
    if (callId !== undefined) this.rec.result({ callId, tool, server, output: result, isError: true, durationMs: performance.now() - started, outcome: 'denied' });
    this.log(`witness gateway: refused a call to ${tool}: agent ${this.o.agent.id} is halted (by ${halt.actor}: ${halt.reason}).`);
  }

  /**
   * A request other than tools/call from a halted agent (resources/read, prompts/get, completion,
   * tasks/result…): refused with the halt, recorded as a refused call is (the request, a
   * policy.decision deny for reason `halted`, a denied result), and answered with a JSON-RPC error,
   * since only a tool call has a result that carries an error. True when it was stopped.
   */
  private async haltStops(id: JsonRpcId, method: string, rawParams: unknown): Promise<boolean> {
    const halt = await this.halts.check();
    if (halt.halted === false) return false;
    const params = asObject(rawParams);
    const target = typeof params['uri'] === 'string' ? params['uri'] : typeof params['name'] === 'string' ? params['name'] : undefined;
    const { _meta: meta, ...args } = params;
    const call = { kind: callKind(method), method, target, args, claims: this.claimsWith(meta) };
    if (halt.halted === 'unreadable') {
      if (this.o.failOpen === true) {
        this.log(`witness gateway: forwarded a ${method} though the halt state could not be read (fail-open is configured for this server): ${halt.why}`);
        return false;
      }
      await this.refuseUnreadable(id, method, halt.why, call);
      return true;
    }
    const started = performance.now();
    const server = this.o.server;
    const callId = await this.rec.call({ tool: method, server, jsonrpcId: id, evaluation: undefined, halt: halt.halt, ...call });
    const message = haltedMessage(halt.halt, `this call to ${method}`);
    this.toClient(errorMessage(id, ErrorCode.Halted, message), id);
    if (callId !== undefined) this.rec.result({ callId, tool: method, server, isError: true, error: { message, code: 'halted' }, durationMs: performance.now() - started, outcome: 'denied' });
    this.log(`witness gateway: refused a ${method}: agent ${this.o.agent.id} is halted (by ${halt.halt.actor}: ${halt.halt.reason}).`);
    return true;
  }

  private haltsUnreadable(tool: string, why: string): string {
    return `Witness could not read whether agent ${this.o.agent.id} is halted (${why.replace(/[.\s]+$/, '')}), so this call to ${tool} was not sent to the server (the gateway fails closed); try again once the ledger is readable.`;
  }

  /** The halt state could not be read: the call is refused as one that cannot be recorded is, and the refusal recorded when it can be. */
  private async refuseUnreadable(id: JsonRpcId, tool: string, why: string, call: Pick<CallStart, 'args' | 'claims'> & Partial<Pick<CallStart, 'kind' | 'method' | 'target' | 'extra'>>): Promise<void> {
    const message = this.haltsUnreadable(tool, why);
    const started = performance.now();
    this.toClient(errorMessage(id, ErrorCode.NotRecorded, message), id);
    const callId = await this.rec.call({ kind: 'tool', tool, server: this.o.server, evaluation: undefined, jsonrpcId: id, ...call });
    if (callId !== undefined) this.rec.failed({ callId, tool }, this.o.server, started, message, 'halts_unreadable');
    this.rec.error(`Could not read whether agent ${this.o.agent.id} is halted, so a call to ${tool} was refused: ${why}`, 'halts_unreadable', 'gateway', { tool, jsonrpc_id: id });
    this.log(`witness gateway: refused a call to ${tool} because the halt state could not be read: ${why}`);
  }

  /** Sends a tools/call to the server, after its `before` capture when one is configured. */
  private async forwardCall(id: JsonRpcId, message: Wire, started: number, tool: string, args: unknown, callId: string | undefined): Promise<void> {
    if (callId !== undefined && this.captureSpec(tool) !== undefined) await this.shoot(tool, args, 'before', callId);
    this.pending.set(idKey(id), { id, method: 'tools/call', started, ...(callId === undefined ? {} : { call: { callId, tool } }), args });
    this.ports.toServer(message);
  }

  private captureSpec(tool: string): unknown {
    const tools = this.o.capture?.tools;
    return tools !== undefined && Object.prototype.hasOwnProperty.call(tools, tool) ? tools[tool] : undefined;
  }

  /** One screenshot for a call, recorded with the call as parent; a failure is recorded and never fails the call. */
  private async shoot(tool: string, args: unknown, role: 'before' | 'after', callId: string): Promise<void> {
    const c = this.o.capture;
    const spec = this.captureSpec(tool);
    if (c === undefined || spec === undefined) return;
    const failed = await this.rec.session.shootAndRecord(c.capturer, spec, args, role, { parent: callId, resource: this.o.server ?? tool, action: tool });
    if (failed !== undefined) this.log(`witness: the ${role} capture for ${tool} failed: ${failed.message}`);
  }

  /** resources/read, prompts/get (and list calls when configured): recorded like a tool call, no policy. */
  private async recordedRequest(id: JsonRpcId, method: string, rawParams: unknown, message: Wire): Promise<void> {
    const params = asObject(rawParams);
    const target = typeof params['uri'] === 'string' ? params['uri'] : typeof params['name'] === 'string' ? params['name'] : undefined;
    const { _meta: meta, ...args } = params;
    const kind = callKind(method);
    const started = performance.now();
    const callId = await this.rec.call({ kind, tool: method, method, target, server: this.o.server, args, jsonrpcId: id, claims: this.claimsWith(meta), evaluation: undefined });
    if (callId === undefined && !this.notRecorded(id, method)) return;
    this.pending.set(idKey(id), { id, method, started, ...(callId === undefined ? {} : { call: { callId, tool: method } }) });
    this.ports.toServer(message);
  }

  /** A call that could not be recorded: refused (fail closed, returns false) or let through (fail open). */
  private notRecorded(id: JsonRpcId, what: string): boolean {
    if (this.o.failOpen === true) {
      this.log(`witness gateway: forwarded a call to ${what} that could not be recorded (fail-open is configured for this server).`);
      return true;
    }
    this.toClient(
      errorMessage(id, ErrorCode.NotRecorded, `Witness could not record this call to ${what}, so it was not sent to the server (the gateway fails closed); try again once the ledger is available.`),
      id,
    );
    this.log(`witness gateway: refused a call to ${what} because it could not be recorded.`);
    return false;
  }

  // ---------------------------------------------------------------- server → client

  /** A line the server wrote to its byte stream (stdio). */
  fromServer(line: string): void {
    const frame = classify(line);
    this.fromServerFrame(frame, Wire.read(line, frame.type === 'invalid' ? undefined : frame.message, frame.type !== 'invalid'));
  }

  /** A message the server's transport delivered parsed (HTTP). */
  fromServerMessage(message: unknown): void {
    this.fromServerFrame(classifyMessage(message), Wire.of(message));
  }

  private fromServerFrame(frame: Frame, wire: Wire): void {
    // While an `after` capture runs, later server frames wait behind it: their order is kept.
    if (this.serverQueue.busy) return this.serverQueue.push(() => this.handleServer(frame, wire));
    this.handleServer(frame, wire);
  }

  private handleServer(frame: Frame, wire: Wire): void {
    if (frame.type === 'request') return this.serverRequest(frame, wire);
    if (frame.type === 'notification') {
      const token = frame.method === 'notifications/progress' ? asObject(frame.params)['progressToken'] : undefined;
      return this.ports.toClient(wire, token === undefined ? undefined : this.relatedToToken(token));
    }
    if (frame.type !== 'response') return this.ports.toClient(wire);
    const key = idKey(frame.id);
    const p = this.pending.get(key);
    if (p === undefined) {
      const cancelled = this.cancelled.get(key);
      if (cancelled !== undefined) {
        this.cancelled.delete(key);
        return this.answeredAfterCancel(frame, cancelled);
      }
      if (this.clientGoneAt === undefined) {
        this.rec.error('The server sent a response to a request the client never made (or one already answered); it was not forwarded.', 'unknown_response', 'tool', { jsonrpc_id: frame.id });
      }
      return;
    }
    this.pending.delete(key);
    if (p.call !== undefined && this.captureSpec(p.call.tool) !== undefined && this.clientGoneAt === undefined) {
      const call = p.call;
      return this.serverQueue.push(async () => {
        await this.shoot(call.tool, p.args, 'after', call.callId);
        this.answer(frame, p, wire);
      });
    }
    this.answer(frame, p, wire);
  }

  /**
   * Passes a response to the client, then records the end of its request: the answer does not wait
   * for the result's redaction and preparation (its record was never awaited), and the client's
   * transport has serialized it before the recorder reads it.
   */
  private answer(frame: Extract<Frame, { type: 'response' }>, p: Pending, wire: Wire): void {
    const durationMs = performance.now() - p.started;
    const filtered = p.method === 'tools/list' && this.o.policy !== undefined && frame.error === undefined ? this.filterTools(frame) : undefined;
    // An error showing that client and server share no era is answered in the gateway's words (era.ts).
    const own = filtered ?? (frame.error === undefined ? undefined : eraMismatch(p.id, p.method, p.version, frame.error));
    if (own !== undefined) this.toClient(own, p.id);
    else this.ports.toClient(wire, p.id);
    if (p.call !== undefined) {
      const result = frame.result;
      const error = frame.error === undefined ? undefined : rpcError(frame.error);
      const isError = error !== undefined || asObject(result)['isError'] === true;
      // A modern result that asks for more input (MRTR) ends this round, not the action: pending.
      const incomplete = error === undefined ? incompleteResult(result) : undefined;
      this.rec.result({
        callId: p.call.callId,
        tool: p.call.tool,
        server: this.o.server,
        ...(result === undefined ? {} : { output: result }),
        isError,
        ...(error === undefined ? {} : { error }),
        durationMs,
        outcome: isError ? 'error' : incomplete !== undefined ? 'pending' : 'success',
        ...(incomplete === undefined ? {} : { resultType: incomplete }),
      });
    } else if (p.method === DISCOVER) {
      // An error here is a 2025-only server saying so (the client falls back), not a fault.
      this.discovery = discoverySummary(frame.result, frame.error);
    } else if (frame.error !== undefined) {
      const e = rpcError(frame.error);
      this.rec.error(`The server answered ${p.method} with an error: ${e.message}`, typeof e.code === 'number' ? e.code : 'rpc_error', 'tool', { method: p.method, jsonrpc_id: p.id });
    }
  }

  private relatedToToken(token: unknown): JsonRpcId | undefined {
    // Progress tokens are chosen by the client; the SDK uses the request id, so try that first.
    if (typeof token === 'number' || typeof token === 'string') {
      if (this.pending.has(idKey(token))) return token;
    }
    return undefined;
  }

  /**
   * Hides the tools the policy says this agent may never call, and keeps a modern list from being
   * cached across agents (era.ts privateScope); undefined when nothing changes.
   */
  private filterTools(frame: Extract<Frame, { type: 'response' }>): Record<string, unknown> | undefined {
    const result = asObject(frame.result);
    const tools = result['tools'];
    if (!Array.isArray(tools) || this.o.policy === undefined) return undefined;
    const named = tools.filter((t): t is { name: string } => typeof asObject(t)['name'] === 'string');
    const visible = new Set(visibleTools(this.o.policy, this.o.agent.id, this.o.server, named));
    const scoped = privateScope(result);
    if (visible.size === named.length && scoped === result) return undefined;
    const kept = visible.size === named.length ? tools : tools.filter((t) => typeof asObject(t)['name'] !== 'string' || visible.has(t as { name: string }));
    return { ...frame.message, result: { ...scoped, tools: kept } };
  }

  // ---------------------------------------------------------------- the server's requests, the agent's answers, its notifications

  /** A request of the server's for the agent: answered by the gateway while the agent is halted, passed on otherwise. */
  private serverRequest(frame: Extract<Frame, { type: 'request' }>, wire: Wire): void {
    const r: ServerRequest = { id: frame.id, method: frame.method, params: frame.params, call: this.openCall() };
    const stop = SERVER_REQUESTS_WHILE_HALTED.has(r.method) ? undefined : this.haltedNow();
    if (stop !== undefined) return this.answerForHalt(r, stop, false);
    this.serverRequests.set(idKey(r.id), r);
    this.watchOpenRequests();
    this.ports.toClient(wire);
  }

  /**
   * The agent's answer to a server's request: forwarded and recorded (a `note` under the call it
   * belongs to: what the server asked, what the agent answered — what it confirmed), unless the
   * agent is halted: then the server gets the gateway's own answer (haltAnswer) and the agent's is
   * recorded as dropped.
   */
  private async clientAnswer(frame: Extract<Frame, { type: 'response' }>, wire: Wire): Promise<void> {
    const key = idKey(frame.id);
    const r = this.serverRequests.get(key);
    if (r === undefined) return this.strayAnswer(frame);
    const stop = SERVER_REQUESTS_WHILE_HALTED.has(r.method) ? undefined : this.stopFrom(await this.halts.check());
    // The halt's timer may have answered it while the state was read.
    if (!this.serverRequests.delete(key)) return this.strayAnswer(frame);
    if (this.serverRequests.size === 0) this.unwatchOpenRequests();
    if (stop !== undefined) return this.answerForHalt(r, stop, false, answerOf(frame.message));
    this.ports.toServer(wire);
    if (r.method === 'ping') return;
    const answer = answerOf(frame.message);
    const action = asObject(answer['result'])['action'];
    this.record('note', r, {
      text: `The agent answered the server's ${r.method.slice(0, 200)}${typeof action === 'string' ? `: ${action.slice(0, 64)}` : ''}.`,
      server_request: { method: r.method, jsonrpc_id: r.id, params: r.params },
      agent_answer: answer,
    });
  }

  /** An answer to no open server request: one the gateway answered for a halt (dropped, recorded as such), or one never asked. */
  private strayAnswer(frame: Extract<Frame, { type: 'response' }>): void {
    const key = idKey(frame.id);
    const voided = this.answeredForHalt.get(key);
    if (voided === undefined) {
      // Forwarding it would answer a request the server never made (or a stale one): drop it, say so.
      this.rec.error('The client sent a response to a request the server never made; it was not forwarded.', 'unknown_response', 'gateway', { jsonrpc_id: frame.id });
      return;
    }
    this.answeredForHalt.delete(key);
    this.record('error', voided, {
      message: `The agent answered the server's ${voided.method.slice(0, 200)} after the gateway had answered it because the agent is halted; the agent's answer was not forwarded.`,
      code: 'halted',
      source: 'gateway',
      refused: true,
      server_request: { method: voided.method, jsonrpc_id: voided.id },
      agent_answer: answerOf(frame.message),
    });
  }

  /**
   * The gateway answers a server's request itself because the agent may not (haltAnswer: an
   * elicitation declined, anything else an error), and records it. `asked`: the agent has the request
   * and is told it is void; `agentAnswer`: what the agent had answered, dropped.
   */
  private answerForHalt(r: ServerRequest, stop: Stop, asked: boolean, agentAnswer?: Record<string, unknown>): void {
    const { message, answered } = haltAnswer(r.id, r.method, `The gateway answered this ${r.method.slice(0, 200)} itself because ${stop.said}; the agent's answer was not taken.`);
    this.ports.toServer(Wire.of(message));
    if (asked) {
      this.answeredForHalt.set(idKey(r.id), r);
      // The agent's client stops waiting to answer a request the server no longer takes.
      this.toClient({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: r.id, reason: `The gateway answered this request because ${stop.said}.` } });
    }
    const how = r.method === 'elicitation/create' ? 'declined' : 'refused with an error';
    this.record('error', r, {
      message: `The gateway ${how} the server's ${r.method.slice(0, 200)} for the agent because ${stop.said}${agentAnswer === undefined ? '' : "; the agent's own answer was not forwarded"}.`,
      code: stop.code,
      source: 'gateway',
      refused: true,
      server_request: { method: r.method, jsonrpc_id: r.id, params: r.params },
      answered,
      ...(agentAnswer === undefined ? {} : { agent_answer: agentAnswer }),
      ...(stop.halt === undefined ? {} : { halt: { id: stop.halt.id, actor: stop.halt.actor, reason: stop.halt.reason, ts: stop.halt.ts } }),
    });
    this.log(`witness gateway: ${how} the server's ${r.method} for agent ${this.o.agent.id}: ${stop.said}.`);
  }

  /** A notification outside NOTIFICATIONS_WHILE_HALTED from an agent that may not act: dropped and recorded (true). */
  private async notificationStopped(method: string, params: unknown): Promise<boolean> {
    const stop = this.stopFrom(await this.halts.check());
    if (stop === undefined) return false;
    this.record('error', undefined, {
      message: `The agent sent a ${method.slice(0, 200)} notification while ${stop.said}; it was not forwarded.`,
      code: stop.code,
      source: 'gateway',
      refused: true,
      notification: true,
      method: method.slice(0, 200),
      ...(params === undefined ? {} : { params_head: JSON.stringify(params).slice(0, 1024) }),
      ...(stop.halt === undefined ? {} : { halt: { id: stop.halt.id, actor: stop.halt.actor, reason: stop.halt.reason, ts: stop.halt.ts } }),
    });
    this.log(`witness gateway: dropped the notification ${method} of agent ${this.o.agent.id}: ${stop.said}.`);
    return true;
  }

  /** The agent may not act now: halted, or (unless fail-open) its halt state cannot be read. */
  private stopFrom(h: HaltCheck): Stop | undefined {
    if (h.halted === true) return { code: 'halted', halt: h.halt, said: `agent ${this.o.agent.id} was halted by ${h.halt.actor} at ${h.halt.ts} (${h.halt.reason.replace(/[.!?\s]+$/, '')})` };
    if (h.halted === 'unreadable' && this.o.failOpen !== true)
      return { code: 'halts_unreadable', said: `whether agent ${this.o.agent.id} is halted could not be read (${h.why.replace(/[.\s]+$/, '')})` };
    return undefined;
  }

  /** Halted as last read, without waiting: a state not read yet is not a halt here (the agent's answer is checked again, waiting). */
  private haltedNow(): Stop | undefined {
    const h = this.halts.current();
    return h.halted === true ? this.stopFrom(h) : undefined;
  }

  /** While the server waits for the agent, a halt answers its open requests within the watch's poll. */
  private watchOpenRequests(): void {
    if (this.openRequestsTimer !== undefined) return;
    this.openRequestsTimer = setInterval(() => {
      const stop = this.haltedNow();
      if (stop !== undefined) {
        for (const [key, r] of [...this.serverRequests]) {
          if (SERVER_REQUESTS_WHILE_HALTED.has(r.method)) continue;
          this.serverRequests.delete(key);
          this.answerForHalt(r, stop, true);
        }
      }
      if (this.serverRequests.size === 0) this.unwatchOpenRequests();
    }, this.o.halts?.pollMs ?? DEFAULT_HALT_WATCH.pollMs);
    this.openRequestsTimer.unref();
  }

  private unwatchOpenRequests(): void {
    if (this.openRequestsTimer !== undefined) clearInterval(this.openRequestsTimer);
    this.openRequestsTimer = undefined;
  }

  /** The one call open when a server request came, which it then belongs to (stdio does not say which). */
  private openCall(): ServerRequest['call'] {
    let only: ServerRequest['call'];
    for (const p of this.pending.values()) {
      if (p.call === undefined) continue;
      if (only !== undefined) return undefined;
      only = p.call;
    }
    return only;
  }

  /** An id the relay still matches answers by: a request waiting for its answer, a cancelled one the server has not answered, a held call. */
  private idInUse(id: JsonRpcId): boolean {
    const key = idKey(id);
    return this.pending.has(key) || this.cancelled.has(key) || this.heldIds.has(key);
  }

  /**
   * A request reusing an id in use: refused (-32600) and recorded, never forwarded. Forwarded, the
   * server's answer to the first request would be delivered as the answer to the second (and the
   * second's dropped), while the ledger says the first was cancelled or is still open.
   */
  private refuseReusedId(id: JsonRpcId, method: string): void {
    const key = idKey(id);
    const by = this.cancelled.has(key)
      ? 'a request the client cancelled, which the server has not answered yet'
      : this.heldIds.has(key)
        ? 'a call held for approval'
        : 'a request still waiting for its answer';
    this.toClient(errorMessage(id, ErrorCode.InvalidRequest, `Invalid request: id ${JSON.stringify(id)} is still in use by ${by}; send this ${method.slice(0, 200)} with an id of its own.`), id);
    this.rec.error(`Refused a ${method.slice(0, 200)} whose id is still in use by ${by}; it was not forwarded.`, 'duplicate_id', 'gateway', {
      refused: true,
      method: method.slice(0, 200),
      jsonrpc_id: id,
    });
  }

  /** The server answered a request the client had cancelled: not forwarded (the client stopped waiting), but recorded, since the server may have acted. */
  private answeredAfterCancel(frame: Extract<Frame, { type: 'response' }>, p: Pending): void {
    const answer = answerOf(frame.message);
    const chars = JSON.stringify(answer).length;
    this.record('error', p.call === undefined ? undefined : { id: p.id, method: p.method, params: undefined, call: p.call }, {
      message: `The server answered ${p.method.slice(0, 200)} after the client had cancelled it, so it may have acted; the answer was not forwarded.`,
      code: 'answered_after_cancel',
      source: 'tool',
      method: p.method.slice(0, 200),
      jsonrpc_id: p.id,
      ...(chars <= MAX_LATE_ANSWER_CHARS ? answer : { answer_head: JSON.stringify(answer).slice(0, 4096), answer_chars: chars }),
    });
  }

  /** An event with the call it belongs to as parent (GatewayRecorder's records name none), awaited by end(). */
  private record(kind: 'error' | 'note', about: ServerRequest | undefined, data: Record<string, unknown>): void {
    const fields = {
      ...(about?.call === undefined ? {} : { parent: about.call.callId }),
      ...(this.o.server === undefined ? {} : { resource: this.o.server }),
      ...(about === undefined ? {} : { action: about.method.slice(0, 200) }),
      outcome: kind === 'note' ? ('success' as const) : data['refused'] === true ? ('denied' as const) : ('error' as const),
    };
    const written = (kind === 'note' ? this.rec.session.record('note', data as Payload<'note'>, fields) : this.rec.session.record('error', data as Payload<'error'>, fields)).catch((e: unknown) =>
      this.log(`witness gateway: could not record ${kind === 'note' ? "the agent's answer to a server request" : 'a refusal'}: ${e instanceof Error ? e.message : String(e)}`),
    );
    this.ownRecords.add(written);
    void written.finally(() => this.ownRecords.delete(written));
  }

  // ---------------------------------------------------------------- ends

  /** Records a gateway-side error in this session (an HTTP-level refusal, an idle timeout). */
  recordError(message: string, code: string, extra: Record<string, unknown> = {}): void {
    this.rec.error(message, code, 'gateway', extra);
  }

  /**
   * One request could not be delivered to the upstream (an HTTP upstream refused or was
   * unreachable): the client gets a JSON-RPC error and the call is recorded as failed there, not as
   * answered by the server.
   */
  upstreamFailed(id: JsonRpcId, message: string, code = 'upstream_unreachable'): void {
    const key = idKey(id);
    const p = this.pending.get(key);
    if (p === undefined) return;
    this.pending.delete(key);
    if (this.clientGoneAt === undefined) this.toClient(errorMessage(id, ErrorCode.ConnectionClosed, message), id);
    if (p.call !== undefined) {
      this.rec.failed(p.call, this.o.server, p.started, message, code);
    } else {
      this.rec.error(message, code, 'gateway', { method: p.method, jsonrpc_id: id });
    }
  }

  /** Waits until every client frame received so far has been handled (recorded and forwarded). */
  async drained(): Promise<void> {
    await this.clientQueue.drained();
  }

  /**
   * The upstream server is gone (exited, crashed, unreachable): every open request is answered with
   * a well-formed error and every open call is recorded as failed. `unexpected` also records why.
   */
  async upstreamGone(message: string, code: string, unexpected: boolean, extra: Record<string, unknown> = {}): Promise<void> {
    await this.clientQueue.drained();
    for (const p of this.pending.values()) {
      if (this.clientGoneAt === undefined) this.toClient(errorMessage(p.id, ErrorCode.ConnectionClosed, `${message.replace(/\.$/, '')} before answering ${p.method}.`), p.id);
      if (p.call !== undefined) {
        this.rec.failed(p.call, this.o.server, p.started, message, code);
      }
    }
    this.pending.clear();
    this.desk.abandonAll(`${message.replace(/\.$/, '')} while the call waited for approval.`, code);
    if (unexpected) this.rec.error(message, code, 'tool', extra);
  }

  /** The client went away (stdin closed, HTTP session deleted or dropped): open calls are recorded as abandoned. */
  async clientGone(how: string): Promise<void> {
    if (this.clientGoneAt !== undefined) return;
    await this.clientQueue.drained();
    this.clientGoneAt = performance.now();
    const message = `The client disconnected (${how}) before the server answered.`;
    for (const p of this.pending.values()) {
      if (p.call !== undefined) {
        this.rec.failed(p.call, this.o.server, p.started, message, 'client_disconnected');
      }
    }
    this.pending.clear();
    this.desk.abandonAll(`The client disconnected (${how}) while the call waited for approval; the approval request stays open for a retry.`, 'client_disconnected');
  }

  /** Ends the session once every record has been written. */
  async end(reason: RelayEnd): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.clientQueue.drained();
    while (this.serverQueue.busy) await this.serverQueue.drained();
    this.unwatchOpenRequests();
    this.desk.close();
    this.halts.release();
    while (this.ownRecords.size > 0) await Promise.allSettled([...this.ownRecords]);
    await this.rec.settle();
    if (!this.ownsSession) return;
    await this.rec.session.end({ reason });
    await this.rec.settle();
  }

  /** A message the relay itself sends the client (an answer, a refusal). */
  private toClient(message: Record<string, unknown>, related?: JsonRpcId): void {
    this.ports.toClient(Wire.of(message), related);
  }

  private log(message: string): void {
    try {
      this.o.onLog?.(message);
    } catch {
      // A logger that throws must not take the gateway down.
    }
  }
}

/**
 * The requests a halted agent may still send (tools/call and every other request are refused):
 * the protocol's housekeeping, so a client can still connect, stay connected and show the halt's
 * message — the handshake and discovery, ping, the lists of what exists, the log level — and what
 * only stops or watches work: cancelling a task, a task's status, subscribing to change notices
 * (reading what changed is refused). Notifications and answers to the server's own requests are
 * not requests of the agent and pass as ever. Anything not named here, an unknown method too, is
 * refused: a halt must not depend on this list knowing every method a server offers.
 */
export const ALLOWED_WHILE_HALTED: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  DISCOVER,
  ...LIST_METHOD_NAMES,
  'logging/setLevel',
  'resources/subscribe',
  'resources/unsubscribe',
  LISTEN,
  'tasks/list',
  'tasks/get',
  'tasks/cancel',
]);

/** How a request other than tools/call is recorded: a resource read, a prompt fetch, a list, or any other request. */
function callKind(method: string): CallKind {
  if (method === 'resources/read') return 'resource';
  if (method === 'prompts/get') return 'prompt';
  return LIST_METHOD_NAMES.includes(method) ? 'list' : 'request';
}

/** What the model reads when a call is refused by policy. */
function refusal(tool: string, e: Evaluation): string {
  const rule = e.rule === undefined ? 'the policy default' : `policy rule "${e.rule}"`;
  return `The call to ${tool} was denied by ${rule}${e.reason === undefined ? '' : `: ${e.reason}`}${/[.!?]$/.test(e.reason ?? '') ? '' : '.'} It was not sent to the server.`;
}

export function asObject(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function rpcError(e: unknown): { message: string; code?: number; data?: unknown } {
  const o = asObject(e);
  const message = typeof o['message'] === 'string' ? o['message'] : 'The server answered with a malformed JSON-RPC error.';
  return { message, ...(typeof o['code'] === 'number' ? { code: o['code'] } : {}), ...(o['data'] === undefined ? {} : { data: o['data'] }) };
}
