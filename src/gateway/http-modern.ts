import type { IncomingMessage, ServerResponse } from 'node:http';
import { classifyInboundRequest } from '@modelcontextprotocol/server';
import type { AgentRef } from '../core/index.js';
import { RECORDER_VERSION, systemWriter, type ToolCapturer, type Witness } from '../recorder/index.js';
import { LEGACY_VERSIONS, MODERN_VERSIONS, isModernVersion } from './era.js';
import type { GatewayConfig, GatewayServerConfig } from './http-config.js';
import { ErrorCode, errorResponse, idKey, type JsonRpcId, type Wire } from './jsonrpc.js';
import { GatewayRecorder } from './record.js';
import { DEFAULT_MAX_FRAME_CHARS, McpRelay, type RelayEnd } from './relay.js';
import { SharedStdioUpstream, UpstreamTooLarge, postModern, publicUrl } from './upstream-modern.js';
import { childEnv } from './upstream-stdio.js';

/**
 * The 2026-07-28 ("modern") era of `witness gateway`: no initialize, no Mcp-Session-Id; every POST
 * is one request (or notification) that carries its protocol version and client claims in
 * `params._meta`. Each POST gets its own relay (recording, policy, approval holds: McpRelay.attach)
 * and its own upstream exchange (one POST to an HTTP server; one request, under an id of the
 * gateway's own, to the group's stdio child), so JSON-RPC ids of different requests never meet. The
 * records of requests go to the Witness session of their group (see groupFor): modern MCP has no
 * session, so the gateway makes one from what it knows itself (the agent of the API key, the
 * server path) and an optional hint the client may send.
 */

/** The 2026-07-28 method that opens a notification stream (it replaces the 2025 GET stream). */
const LISTEN = 'subscriptions/listen';
/** How often the gateway writes a comment on an open listen stream (the spec's servers use 15 s). */
const KEEPALIVE_MS = 15_000;

/** `_meta` key a client may set to split its requests into separate Witness sessions (a string of at most 200 characters). */
export const SESSION_HINT_META = 'dev.witness/session';
const MAX_HINT_CHARS = 200;
/** A UTF-16 surrogate without its pair (String.prototype.isWellFormed is Node 20's, but not in this project's ES2023 lib). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The 2025 versions the gateway serves in sessions (through the SDK's session transport). */
export { LEGACY_VERSIONS };

/** Error codes of the modern era (spec 2026-07-28), from the gateway's one table. */
export const ModernErrorCode = { HeaderMismatch: ErrorCode.HeaderMismatch, UnsupportedProtocolVersion: ErrorCode.UnsupportedProtocolVersion } as const;

/**
 * The protocol versions the gateway serves for one upstream (named in -32022 refusals). Every kind
 * of upstream is served in both eras: an HTTP one gets each request in its own era, a stdio one a
 * child per 2025 session and a child per 2026-07-28 group.
 */
export function servedVersions(_server: GatewayServerConfig): string[] {
  return [...MODERN_VERSIONS, ...LEGACY_VERSIONS];
}

export { childEnv };

export type Classified =
  | { era: 'legacy' }
  | { era: 'modern'; kind: 'request' | 'notification'; message: Record<string, unknown>; version: string; hint: string | undefined }
  | { era: 'refused'; status: number; code: number; text: string; data?: unknown; id: JsonRpcId | null; reason: string };

/**
 * Decides a POST's era with the official SDK's rule (classifyInboundRequest: the body's envelope
 * claim decides, a modern MCP-Protocol-Version header without one is an error), then checks what
 * that classifier leaves to the server: that the version is one served for this upstream
 * (-32022, with the versions that are), that the standard headers mirror the body (-32020), and
 * the Witness session hint (-32602). Policy later reads the body only, never the headers.
 */
export function classifyPost(req: IncomingMessage, body: unknown, server: GatewayServerConfig): Classified {
  const protocolVersionHeader = headerOf(req, 'mcp-protocol-version');
  const mcpMethodHeader = headerOf(req, 'mcp-method');
  const mcpNameHeader = headerOf(req, 'mcp-name');
  const out = classifyInboundRequest({
    httpMethod: 'POST',
    ...(protocolVersionHeader === undefined ? {} : { protocolVersionHeader }),
    ...(mcpMethodHeader === undefined ? {} : { mcpMethodHeader }),
    ...(mcpNameHeader === undefined ? {} : { mcpNameHeader }),
    body,
  });
  const id = echoId(body);
  const supported = servedVersions(server);
  const unsupported = (requested: string): Classified => ({
    era: 'refused',
    status: 400,
    code: ModernErrorCode.UnsupportedProtocolVersion,
    text: `Unsupported protocol version: ${requested.slice(0, 100)}`,
    data: { supported, requested: requested.slice(0, 100) },
    id,
    reason: 'unsupported_protocol_version',
  });
  if (out.kind === 'reject') {
    return { era: 'refused', status: out.httpStatus, code: out.code, text: out.message, ...(out.data === undefined ? {} : { data: out.data }), id, reason: rejectionReason(out.code) };
  }
  if (out.kind === 'legacy') {
    if (protocolVersionHeader !== undefined && isModernVersion(protocolVersionHeader) && isResponseBody(body)) {
      return {
        era: 'refused',
        status: 400,
        code: ErrorCode.InvalidRequest,
        text: 'Invalid request: the 2026-07-28 era has no server-to-client requests, so there is nothing to respond to; send requests and notifications only.',
        id,
        reason: 'invalid_request',
      };
    }
    // A 2025 request naming a version no era of this gateway knows (the SDK's session transport would refuse it unrecorded).
    if (protocolVersionHeader !== undefined && !LEGACY_VERSIONS.includes(protocolVersionHeader)) return unsupported(protocolVersionHeader);
    return { era: 'legacy' };
  }
  const message = out.message as unknown as Record<string, unknown>;
  const version = out.classification.revision ?? protocolVersionHeader ?? 'unknown';
  if (!isModernVersion(version) || !supported.includes(version)) return unsupported(version);
  if (out.messageKind === 'request') {
    const mismatch = headerMismatch(message, protocolVersionHeader, mcpMethodHeader, mcpNameHeader);
    if (mismatch !== undefined) {
      return {
        era: 'refused',
        status: 400,
        code: ModernErrorCode.HeaderMismatch,
        text: `Bad Request: the request headers and body disagree: ${mismatch.body}`,
        data: { mismatch },
        id,
        reason: 'header_mismatch',
      };
    }
  }
  const meta = asObject(asObject(message['params'])['_meta']);
  const hint = meta[SESSION_HINT_META];
  // Well-formed Unicode too: a lone surrogate cannot be stored in the session's labels.
  if (hint !== undefined && (typeof hint !== 'string' || hint.length > MAX_HINT_CHARS || LONE_SURROGATE.test(hint))) {
    return {
      era: 'refused',
      status: 400,
      code: ErrorCode.InvalidParams,
      text: `Invalid params: _meta["${SESSION_HINT_META}"] must be a well-formed string of at most ${MAX_HINT_CHARS} characters (it names the Witness session this request is recorded in).`,
      id,
      reason: 'invalid_session_hint',
    };
  }
  return { era: 'modern', kind: out.messageKind, message, version, hint };
}

/** A JSON-RPC response (a result or an error, no method): what a 2025 client posts to answer a server's request. */
function isResponseBody(body: unknown): boolean {
  const m = asObject(body);
  return !('method' in m) && ('result' in m || 'error' in m);
}

function rejectionReason(code: number): string {
  if (code === ModernErrorCode.HeaderMismatch) return 'header_mismatch';
  if (code === ModernErrorCode.UnsupportedProtocolVersion) return 'unsupported_protocol_version';
  if (code === ErrorCode.InvalidParams) return 'invalid_envelope';
  return 'invalid_request';
}

/** Which body field the Mcp-Name header mirrors, per method (spec 2026-07-28, standard request headers). */
const NAME_SOURCE: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/**
 * The standard-header check of a modern request (the v2 SDK's validateStandardRequestHeaders,
 * which its public surface does not export): MCP-Protocol-Version and Mcp-Method present, and
 * Mcp-Name (its `=?base64?…?=` form decoded) equal to the name or URI the body carries.
 */
function headerMismatch(message: Record<string, unknown>, version: string | undefined, method: string | undefined, name: string | undefined): { header: string; body: string } | undefined {
  const bodyMethod = String(message['method']);
  if (version === undefined) return { header: '(missing)', body: 'the body carries a modern per-request envelope but the required MCP-Protocol-Version header is absent' };
  if (method === undefined) return { header: '(missing)', body: `the body names method ${bodyMethod.slice(0, 100)} but the required Mcp-Method header is absent` };
  if (method.trim() !== bodyMethod) return { header: method.slice(0, 200), body: `the body names method ${bodyMethod.slice(0, 100)} but the Mcp-Method header names ${method.slice(0, 100)}` };
  const field = NAME_SOURCE[bodyMethod];
  if (field === undefined) return undefined;
  const value = asObject(message['params'])[field];
  const bodyValue = typeof value === 'string' ? value : undefined;
  if (name === undefined) return bodyValue === undefined ? undefined : { header: '(missing)', body: `the body carries params.${field} but the required Mcp-Name header is absent` };
  const decoded = decodeSentinel(name.trim());
  if (decoded === undefined) return { header: name.slice(0, 200), body: 'the Mcp-Name header carries an invalid Base64 sentinel value' };
  if (bodyValue !== undefined && decoded !== bodyValue)
    return { header: name.slice(0, 200), body: `the body carries params.${field}=${JSON.stringify(bodyValue.slice(0, 200))} but the Mcp-Name header names ${JSON.stringify(decoded.slice(0, 200))}` };
  return undefined;
}

function decodeSentinel(value: string): string | undefined {
  if (!(value.startsWith('=?base64?') && value.endsWith('?='))) return value;
  const b64 = value.slice(9, -2);
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- groups and exchanges

export interface ModernDeps {
  witness: Witness;
  config: GatewayConfig;
  capturer?: ToolCapturer | undefined;
  log(message: string): void;
  /** Records an event in the gateway stream (refusals outside any session). */
  recordGateway(agent: AgentRef, message: string, code: string, data: Record<string, unknown>): void;
  /** Sessions the 2025 side holds (and is opening): groups count against the same max_sessions. */
  legacySessions(): number;
  /** How long a stdio server gets to exit after its stdin closes, before SIGTERM (then SIGKILL). */
  stopTimeoutMs?: number | undefined;
  /** How often a comment is written on an open listen stream (default 15 s). */
  keepAliveMs?: number | undefined;
}

/** One Witness session shared by the modern requests of one (agent, server path, hint). */
interface Group {
  key: string;
  agent: AgentRef;
  server: GatewayServerConfig;
  /** Resolves to the group's recorder once session.start is durable (undefined when it could not be recorded). */
  ready: Promise<GatewayRecorder | undefined>;
  /** Exchanges still open (a response not yet ended: a slow call, a held one, a listen stream). */
  open: number;
  /** Of those, subscriptions/listen streams. */
  listens: number;
  idle: NodeJS.Timeout | undefined;
  /** Every exchange's end (its records settled), awaited before session.end. */
  exchanges: Set<Promise<void>>;
  /** Aborts every open exchange (the gateway is closing). */
  aborts: Set<() => void>;
  closing: Promise<void> | undefined;
  /** A stdio server's one child for this group (an HTTP server gets one POST per request instead). */
  stdio: SharedStdioUpstream | undefined;
}

/**
 * The headers of an upstream POST: the MCP ones the client sent (which mirror the body the
 * upstream gets unchanged) and the server's configured ones. Nothing else of the client's is
 * copied: not its Authorization (the gateway's API key), Mcp-Session-Id or hop-by-hop headers.
 */
function upstreamHeaders(req: IncomingMessage, server: GatewayServerConfig): Record<string, string> {
  const out: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  for (const name of ['mcp-protocol-version', 'mcp-method', 'mcp-name']) {
    const v = headerOf(req, name);
    if (v !== undefined) out[name] = v;
  }
  // Intermediaries must forward Mcp-Param-* headers they do not recognize (spec 2026-07-28).
  for (const [name, v] of Object.entries(req.headers)) {
    if (name.startsWith('mcp-param-') && v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  // The server's own credentials; never the client's Authorization (the gateway's API key).
  const configured = server.upstream.kind === 'http' ? server.upstream.headers : undefined;
  return { ...out, ...configured };
}

export class ModernGateway {
  private readonly groups = new Map<string, Group>();
  private stopping = false;

  constructor(private readonly d: ModernDeps) {}

  /** Groups whose session has not ended yet. */
  get size(): number {
    return this.groups.size;
  }

  /** Serves one classified modern POST (route, authentication and screening are done). */
  async serve(req: IncomingMessage, res: ServerResponse, server: GatewayServerConfig, agent: AgentRef, c: Extract<Classified, { era: 'modern' }>, where: Record<string, unknown>): Promise<void> {
    const group = this.groupFor(server, agent, c.hint, req, where);
    if (group === 'sessions') {
      res.setHeader('Retry-After', '5');
      return reply(
        res,
        503,
        errorResponse(echoId(c.message), ErrorCode.ConnectionClosed, `Service unavailable: the gateway has reached its limit of ${this.d.config.maxSessions} open sessions; try again later.`),
      );
    }
    if (group === 'agent') {
      const limit = this.d.config.maxGroupsPerAgent;
      res.setHeader('Retry-After', '5');
      return reply(
        res,
        429,
        errorResponse(
          echoId(c.message),
          ErrorCode.ConnectionClosed,
          `Too many sessions: your agent already holds ${limit} open sessions on this gateway (max_groups_per_agent); reuse a session hint, or try again once one has been idle long enough to end.`,
        ),
      );
    }
    const over = this.overGroupLimit(group, c);
    if (over !== undefined) {
      // The group's own client(s) asked too much at once: refused and recorded in its session, nothing forwarded.
      void group.ready.then((rec) => rec?.error(over.record, over.code, 'gateway', { ...where, limit: over.limit, method: String(c.message['method']).slice(0, 200) }));
      res.setHeader('Retry-After', '1');
      return reply(res, 429, errorResponse(echoId(c.message), ErrorCode.ConnectionClosed, over.text));
    }
    const listen = c.kind === 'request' && c.message['method'] === LISTEN;
    if (listen) group.listens += 1;
    group.open += 1;
    if (group.idle !== undefined) clearTimeout(group.idle);
    group.idle = undefined;
    const rec = await group.ready;
    if (rec === undefined) {
      if (listen) group.listens -= 1;
      this.release(group);
      const id = echoId(c.message);
      if (c.kind === 'notification') return reply(res, 202, '');
      return reply(
        res,
        200,
        errorResponse(
          id,
          ErrorCode.NotRecorded,
          'Witness could not record the start of this session, so the request was not sent to the server (the gateway fails closed); try again once the ledger is available.',
        ),
      );
    }
    const ended = this.exchange(req, res, server, agent, group, rec, c, listen);
    group.exchanges.add(ended);
    // A failure is reported through `await ended` below (the caller answers 500); this chain must not reject unhandled.
    ended
      .finally(() => {
        group.exchanges.delete(ended);
        if (listen) group.listens -= 1;
        this.release(group);
      })
      .catch(() => undefined);
    await ended;
  }

  /** Why a group's request limits refuse this request (open requests, listen streams), or undefined. */
  private overGroupLimit(group: Group, c: Extract<Classified, { era: 'modern' }>): { code: string; limit: number; text: string; record: string } | undefined {
    const { maxRequestsPerGroup: requests, maxListensPerGroup: listens } = this.d.config;
    if (c.kind === 'request' && c.message['method'] === LISTEN && group.listens >= listens) {
      return {
        code: 'too_many_listens',
        limit: listens,
        text: `Too many requests: this session already has ${listens} open subscriptions/listen streams (max_listens_per_group); close one first.`,
        record: `Refused a subscriptions/listen: the session already has ${listens} open listen streams, its max_listens_per_group limit.`,
      };
    }
    if (group.open >= requests) {
      return {
        code: 'too_many_requests',
        limit: requests,
        text: `Too many requests: this session already has ${requests} requests open (max_requests_per_group); try again once some are answered.`,
        record: `Refused a request: the session already has ${requests} requests open, its max_requests_per_group limit.`,
      };
    }
    return undefined;
  }

  /**
   * The group of a request: the agent of the API key, the server path, and the client's hint.
   * Everything in the key but the hint comes from the gateway itself, so nothing a client sends
   * can put its records into another agent's session. 'sessions' when max_sessions is reached,
   * 'agent' when this agent holds max_groups_per_agent groups already (hints are the client's to
   * choose, so without that limit one agent could take every slot).
   */
  private groupFor(server: GatewayServerConfig, agent: AgentRef, hint: string | undefined, req: IncomingMessage, where: Record<string, unknown>): Group | 'sessions' | 'agent' {
    const key = JSON.stringify([agent.id, agent.credential ?? null, server.path, hint ?? null]);
    const existing = this.groups.get(key);
    if (existing !== undefined && existing.closing === undefined) return existing;
    const mine = [...this.groups.values()].filter((g) => g.agent.id === agent.id).length;
    if (mine >= this.d.config.maxGroupsPerAgent) {
      this.d.recordGateway(agent, `Refused a new session: the agent already holds ${mine} open, its max_groups_per_agent limit.`, 'too_many_groups', {
        ...where,
        limit: this.d.config.maxGroupsPerAgent,
      });
      return 'agent';
    }
    if (this.d.legacySessions() + this.groups.size >= this.d.config.maxSessions) {
      this.d.recordGateway(agent, `Refused a new session: the gateway already has ${this.d.legacySessions() + this.groups.size} open, its max_sessions limit.`, 'too_many_sessions', {
        ...where,
        limit: this.d.config.maxSessions,
      });
      return 'sessions';
    }
    const up = server.upstream;
    const stdio =
      up.kind === 'stdio'
        ? new SharedStdioUpstream({ command: up.command, args: up.args, env: childEnv(up.env), cwd: up.cwd, stopTimeoutMs: this.d.stopTimeoutMs, onLog: (m) => this.d.log(m) })
        : undefined;
    const ready = systemWriter(this.d.witness, 'gateway')
      .session({
        agent,
        recorder: { kind: 'gateway', version: RECORDER_VERSION },
        purpose: `MCP gateway session for ${server.name} (2026-07-28 requests)`,
        labels: {
          transport: 'streamable-http',
          era: MODERN_VERSIONS[0]!,
          path: server.path,
          ...(hint === undefined ? {} : { hint }),
          client_address: req.socket.remoteAddress ?? 'unknown',
          upstream: (up.kind === 'stdio' ? [up.command, ...up.args].join(' ') : publicUrl(up.url)).slice(0, 4096),
          server: server.name,
          ...(server.policy === undefined ? {} : { policy: server.policy.sha256, policy_mode: server.policy.mode }),
          ...(server.failOpen ? { on_record_failure: 'forward' } : {}),
        },
      })
      .then(
        (session) => new GatewayRecorder(this.d.witness, session, agent),
        (e: unknown) => {
          this.d.log(`witness gateway: could not start a session for ${server.name}: ${e instanceof Error ? e.message : String(e)}`);
          // Nothing can be recorded in this group: the next request tries a new one.
          if (this.groups.get(key) === group) this.groups.delete(key);
          void stdio?.stop();
          return undefined;
        },
      );
    const group: Group = { key, agent, server, ready, open: 0, listens: 0, idle: undefined, exchanges: new Set(), aborts: new Set(), closing: undefined, stdio };
    this.groups.set(key, group);
    if (stdio !== undefined) {
      void stdio.exited.then(async (exit) => {
        if (group.closing !== undefined) return;
        // The server died under the group: its open requests were answered with errors; the next request starts a new group and child.
        const rec = await group.ready;
        const code = exit.spawnError !== undefined ? 'upstream_spawn_failed' : 'upstream_exited';
        rec?.error(stdio.describe(exit), code, 'tool', { exit_code: exit.code, signal: exit.signal });
        await this.closeGroup(group, 'error');
      });
    }
    return group;
  }

  private release(group: Group): void {
    group.open -= 1;
    if (group.open > 0 || group.closing !== undefined || this.stopping) return;
    group.idle = setTimeout(() => void this.closeGroup(group, 'completed'), this.d.config.sessionIdleMs);
    group.idle.unref();
  }

  /**
   * One POST: its own relay on the group's session and its own upstream POST. What the relay sends
   * the client goes back on this POST's response: one JSON answer when the final response comes
   * first, else an SSE stream (progress, approval waits, listen notifications) ended after the
   * final response. A client that closes the response first has cancelled: the upstream POST is
   * aborted and the relay told so by a notifications/cancelled of its own, which is not forwarded.
   */
  private async exchange(
    req: IncomingMessage,
    res: ServerResponse,
    server: GatewayServerConfig,
    agent: AgentRef,
    group: Group,
    rec: GatewayRecorder,
    c: Extract<Classified, { era: 'modern' }>,
    listen: boolean,
  ): Promise<void> {
    const up = server.upstream;
    const headers = upstreamHeaders(req, server);
    const abort = new AbortController();
    const requestId = c.kind === 'request' ? (c.message['id'] as JsonRpcId) : undefined;
    const writer = new ResponseWriter(res);
    let finished = false;
    let cancelled = false;
    let settle!: () => void;
    const over = new Promise<void>((r) => (settle = r));
    const finish = () => {
      if (finished) return;
      finished = true;
      settle();
    };

    const relay = McpRelay.attach(
      {
        witness: this.d.witness,
        agent,
        server: server.name,
        policy: server.policy,
        recordLists: server.recordLists,
        ...(server.maxFrameBytes === undefined ? {} : { maxFrameChars: server.maxFrameBytes }),
        failOpen: server.failOpen,
        ...(server.capture === undefined || this.d.capturer === undefined ? {} : { capture: { capturer: this.d.capturer, tools: server.capture } }),
        ...(this.d.config.approvals === undefined ? {} : { approvals: this.d.config.approvals }),
        onLog: (m) => this.d.log(m),
      },
      {
        toClient: (wire: Wire) => {
          const value = wire.value;
          if (finished || value === undefined) return;
          const final = requestId !== undefined && isResponseTo(value, requestId);
          writer.send(final ? completeResult(value) : value, final);
          if (final) finish();
        },
        toServer: (wire: Wire) => {
          const value = asObject(wire.value);
          // The relay's own record of a cancellation (below): the upstream learns of it from the closed POST.
          if (cancelled && value['method'] === 'notifications/cancelled') return;
          // The client closed its POST while the relay held the message (recording it, or waiting for an
          // approval): the call is recorded as cancelled, so it must never reach the server now.
          if (abort.signal.aborted) return;
          const isRequest = 'id' in value && 'method' in value;
          const forwardedId = isRequest ? (value['id'] as JsonRpcId) : undefined;
          if (group.stdio !== undefined) return toStdio(group.stdio, value, forwardedId, relay, abort.signal);
          if (up.kind !== 'http') return;
          const shown = publicUrl(up.url);
          postModern({
            url: up.url,
            headers,
            body: JSON.stringify(value),
            signal: abort.signal,
            maxBytes: server.maxFrameBytes ?? DEFAULT_MAX_FRAME_CHARS,
            onMessage: (m) => {
              if (abort.signal.aborted) return;
              const wrong = notModernServerMessage(m);
              // Dropped, not passed on: a 2026-07-28 client has no way to answer it, and it is the server's fault.
              if (wrong !== undefined) return relay.recordError(`The upstream MCP server at ${shown} sent ${wrong}; it was dropped.`, 'protocol_error', { head: preview(m) });
              relay.fromServerMessage(m);
            },
            // An upstream's 4xx (an era refusal, an unknown method) is passed on: a v2 client decides on it whether to fall back.
            onStatus: (status) => {
              if (forwardedId !== undefined && status >= 400 && status < 500) writer.status = status;
            },
            onComment: () => writer.comment(),
          }).then(
            (outcome) => {
              if (forwardedId === undefined || abort.signal.aborted || finished) return;
              // The upstream ended its answer without the response: the request must still be answered.
              const why = outcome.refusal ?? `The upstream MCP server at ${shown} ended its answer (HTTP ${outcome.status}) without a response to the request.`;
              relay.upstreamFailed(
                forwardedId,
                `${why.replace(/\.$/, '')}; the request was not answered.`,
                outcome.refusal === undefined ? 'upstream_no_response' : (outcome.code ?? 'upstream_refused'),
              );
            },
            (e: unknown) => {
              if (abort.signal.aborted) return;
              const tooLarge = e instanceof UpstreamTooLarge;
              const why = tooLarge ? `At ${shown}, ${e.message}` : `The upstream MCP server at ${shown} could not be reached (${e instanceof Error ? e.message.replaceAll(up.url, shown) : String(e)})`;
              const code = tooLarge ? 'frame_too_large' : 'upstream_unreachable';
              if (forwardedId !== undefined) relay.upstreamFailed(forwardedId, `${why}; the request was not answered.`, code);
              else relay.recordError(`${why}; a notification was not delivered.`, code, { url: shown, method: value['method'] });
            },
          );
        },
      },
      rec,
    );

    const onAbort = (reason: string) => {
      if (finished) return;
      cancelled = true;
      abort.abort();
      if (requestId !== undefined) relay.fromClientMessage({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason } });
      finish();
      // Ended by the gateway (stopping, or the group's server died) while the client still waits: drop its connection.
      if (!res.writableEnded && !res.destroyed) res.destroy();
    };
    const onClose = () => onAbort('the client closed the HTTP request before its answer');
    const onStop = () => onAbort('the gateway ended the session of this request (it stopped, or its server exited)');
    res.once('close', onClose);
    group.aborts.add(onStop);
    // A listen stream may stay silent for hours (a stdio server sends nothing between updates): a
    // comment every 15 s keeps proxies from dropping it, and a write to a dead socket closes it,
    // which ends the exchange and lets the group go idle.
    const keepAlive = listen ? setInterval(() => writer.keepAlive(), this.d.keepAliveMs ?? KEEPALIVE_MS) : undefined;
    keepAlive?.unref();
    relay.fromClientMessage(c.message);
    if (c.kind === 'notification') {
      // Accepted once forwarded (the upstream's own 202 is not awaited: a notification has no answer).
      await relay.drained();
      reply(res, 202, '');
      finish();
    }
    await over;
    if (keepAlive !== undefined) clearInterval(keepAlive);
    group.aborts.delete(onStop);
    res.off('close', onClose);
    await relay.end(cancelled ? 'cancelled' : 'completed');
  }

  /** Ends a group's session once every exchange in it has settled (and its stdio server has stopped). */
  private closeGroup(group: Group, reason: RelayEnd): Promise<void> {
    group.closing ??= (async () => {
      if (group.idle !== undefined) clearTimeout(group.idle);
      for (const abort of [...group.aborts]) abort();
      while (group.exchanges.size > 0) await Promise.allSettled([...group.exchanges]);
      await group.stdio?.stop();
      const rec = await group.ready;
      if (rec !== undefined) {
        await rec.session.end({ reason });
        await rec.settle();
      }
    })()
      .catch((e: unknown) => this.d.log(`witness gateway: could not end a 2026-07-28 session cleanly: ${String(e)}`))
      .finally(() => {
        if (this.groups.get(group.key) === group) this.groups.delete(group.key);
      });
    return group.closing;
  }

  /** Ends every group as cancelled (the gateway is stopping), open requests aborted. */
  async close(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.groups.values()].map((g) => this.closeGroup(g, 'cancelled')));
  }
}

/**
 * One message of an exchange to the group's stdio server: a request goes under the server's own
 * id (see SharedStdioUpstream) and is cancelled there when the client's POST closes; a client's
 * notifications/cancelled names an id the server never saw (and over HTTP closing the POST is the
 * cancellation), so it is not sent on.
 */
function toStdio(stdio: SharedStdioUpstream, value: Record<string, unknown>, id: JsonRpcId | undefined, relay: McpRelay, signal: AbortSignal): void {
  // Already cancelled (an abort listener added now would never fire): nothing may reach the server.
  if (signal.aborted) return;
  if (id === undefined) {
    if (value['method'] !== 'notifications/cancelled') stdio.notify(value);
    return;
  }
  const cancel = stdio.request(value, {
    onMessage: (m) => {
      if (!signal.aborted) relay.fromServerMessage(m);
    },
    onGone: (why) => {
      if (!signal.aborted) relay.upstreamFailed(id, `${why.replace(/\.$/, '')} before answering; the request was not answered.`, 'upstream_exited');
    },
  });
  signal.addEventListener('abort', cancel, { once: true });
}

/** Answers one POST: JSON when the final response is the first message, otherwise SSE frames. */
class ResponseWriter {
  /** The status of a JSON answer (an upstream's 4xx refusal is passed on, so a v2 client falls back). */
  status = 200;
  private sse = false;

  constructor(private readonly res: ServerResponse) {}

  send(message: unknown, final: boolean): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.sse && final) {
      this.res.statusCode = this.status;
      this.res.setHeader('Content-Type', 'application/json');
      this.res.end(JSON.stringify(message));
      return;
    }
    this.openStream();
    this.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    if (final) this.res.end();
  }

  /** The upstream's keep-alive, passed on once the stream is open (proxies drop silent streams). */
  comment(): void {
    if (this.sse && !this.res.writableEnded && !this.res.destroyed) this.res.write(': keepalive\n\n');
  }

  /** The gateway's own keep-alive on a listen stream: opens the SSE stream if no message has yet. */
  keepAlive(): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.openStream();
    this.res.write(': keepalive\n\n');
  }

  private openStream(): void {
    if (this.sse) return;
    this.sse = true;
    this.res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
  }
}

/**
 * A result the gateway made itself (a policy denial, a refusal as a tool error) carries no
 * resultType, which a 2026-07-28 client requires ("complete" unless the server asks for input);
 * an upstream's results have it and pass unchanged.
 */
function completeResult(message: unknown): unknown {
  const m = asObject(message);
  const result = m['result'];
  if (result === null || typeof result !== 'object' || Array.isArray(result) || 'resultType' in result) return message;
  return { ...m, result: { ...result, resultType: 'complete' } };
}

/**
 * What is wrong with a message an HTTP upstream sent in a 2026-07-28 answer that the era forbids:
 * a request (the era has no server-to-client requests; input goes through results) or a batch.
 */
function notModernServerMessage(m: unknown): string | undefined {
  if (Array.isArray(m)) return 'a JSON-RPC batch, which the 2026-07-28 era does not have';
  const o = asObject(m);
  if ('method' in o && 'id' in o) return `a request (${String(o['method']).slice(0, 100)}), which the 2026-07-28 era does not allow a server to send`;
  return undefined;
}

function preview(m: unknown): string {
  return JSON.stringify(m).slice(0, 1024);
}

function isResponseTo(message: unknown, id: JsonRpcId): boolean {
  const m = asObject(message);
  if (!('result' in m) && !('error' in m)) return false;
  const mid = m['id'];
  return (typeof mid === 'string' || typeof mid === 'number') && idKey(mid) === idKey(id);
}

function echoId(message: unknown): JsonRpcId | null {
  const id = asObject(message)['id'];
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

function asObject(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  if (body !== '') res.setHeader('Content-Type', 'application/json');
  res.end(body);
}
