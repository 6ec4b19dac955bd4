import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { AgentRef, SystemStream } from '../core/index.js';
import { RECORDER_VERSION, systemWriter, type ToolCapturer, type Witness } from '../recorder/index.js';
import { KeyRing } from './http-auth.js';
import type { GatewayConfig, GatewayServerConfig } from './http-config.js';
import { ErrorCode, classifyMessage, errorMessage, errorResponse, recordedMethods, refusalMessage, refusalRecord, screenClientMessage, sniffId, type JsonRpcId, type Wire } from './jsonrpc.js';
import { DEFAULT_MAX_FRAME_CHARS, McpRelay, type RelayEnd } from './relay.js';
import { Inbox } from './inbox.js';
import { LEGACY_VERSIONS, ModernErrorCode, ModernGateway, childEnv, classifyPost, servedVersions } from './http-modern.js';
import { HttpUpstream } from './upstream-http.js';
import { publicUrl } from './upstream-modern.js';
import { StdioUpstream } from './upstream-stdio.js';

/**
 * `witness gateway`: the Streamable HTTP MCP audit gateway. Each configured upstream server is
 * exposed at its own path; each MCP session (created by initialize, named by Mcp-Session-Id) gets
 * its own SDK server transport, relay (recording, policy, approvals) and upstream (a child process
 * or an HTTP client session). The agent identity comes only from the bearer key.
 *
 * Beside those 2025 sessions it serves 2026-07-28 requests, which have no session: each POST's
 * era is decided on its body by the official SDK's rule, and a modern one is served on its own
 * (see http-modern.ts), recorded in the Witness session of its group.
 *
 * Before the SDK transport sees a request, the gateway routes it, authenticates it, checks the
 * protocol version, reads the body under its size limit and parses it, so that every refusal is
 * answered with a JSON-RPC error and recorded: the SDK would answer some of them, but silently.
 */

/** The stream that holds what happens outside any session: refused keys, unknown sessions, bad bodies. */
export const GATEWAY_STREAM: SystemStream = 'witness.gateway';

/** The request header that names the server on the bare `/mcp` path (Node lower-cases header names). */
export const SERVER_HEADER = 'witness-server';

export interface HttpGatewayOptions {
  onLog?: ((message: string) => void) | undefined;
  /** Takes the screenshots that servers' `capture` settings ask for; needed when any server has one. */
  capturer?: ToolCapturer | undefined;
  /** How long a stdio server gets to exit after its stdin closes, before SIGTERM (then SIGKILL). */
  stopTimeoutMs?: number;
  /** How often the gateway writes a keep-alive comment on an open 2026-07-28 listen stream (default 15 s). */
  keepAliveMs?: number;
}

export interface HttpGateway {
  /** Base URL, e.g. http://127.0.0.1:8808 (the servers are at url + path). */
  url: string;
  /** Number of Witness sessions not yet fully ended (session.end not yet written): 2025 MCP sessions and 2026-07-28 groups. */
  readonly sessions: number;
  /** Stops accepting, ends every session as cancelled, stops the upstreams. Leaves the witness open. */
  close(): Promise<void>;
}

interface GatewaySession {
  id: string;
  agent: AgentRef;
  server: GatewayServerConfig;
  transport: StreamableHTTPServerTransport;
  relay: McpRelay;
  upstream: { stop(): Promise<void> };
  /** Requests of this session still open (an SSE response or the GET stream). */
  open: number;
  idle: NodeJS.Timeout | undefined;
  closing: Promise<void> | undefined;
  /** Set when the upstream's end has been handed to the relay. */
  upstreamDone: Promise<void>;
  /** Messages parsed and screened at the edge, waiting for the SDK transport to accept them (see Inbox). */
  inbox: Inbox;
}

export async function startHttpGateway(config: GatewayConfig, witness: Witness, options: HttpGatewayOptions = {}): Promise<HttpGateway> {
  const g = new Gateway(config, witness, options);
  return g.listen();
}

class Gateway {
  private readonly keys: KeyRing;
  private readonly byPath: Map<string, GatewayServerConfig>;
  private readonly byName: Map<string, GatewayServerConfig>;
  private readonly sessions = new Map<string, GatewaySession>();
  /** Every session not yet fully ended, closing ones included (their records are still being written). */
  private readonly live = new Set<GatewaySession>();
  private readonly server: http.Server;
  private stopping = false;
  /** Sessions being opened (session.start not yet durable): counted against max_sessions. */
  private opening = 0;
  /** The 2026-07-28 requests: no MCP session, recorded in per-group Witness sessions. */
  private readonly modern: ModernGateway;

  constructor(
    private readonly config: GatewayConfig,
    private readonly witness: Witness,
    private readonly options: HttpGatewayOptions,
  ) {
    this.keys = new KeyRing(config.agents);
    this.byPath = new Map(config.servers.map((s) => [s.path, s]));
    this.byName = new Map(config.servers.map((s) => [s.name, s]));
    this.modern = new ModernGateway({
      witness,
      config,
      capturer: options.capturer,
      log: (m) => this.log(m),
      recordGateway: (agent, message, code, data) => this.recordGateway(agent, message, code, data),
      legacySessions: () => this.live.size + this.opening,
      stopTimeoutMs: options.stopTimeoutMs,
      keepAliveMs: options.keepAliveMs,
    });
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        this.log(`witness gateway: could not handle ${req.method} ${req.url}: ${e instanceof Error ? e.message : String(e)}`);
        if (!res.headersSent) reply(res, 500, errorResponse(null, ErrorCode.InternalError, 'Internal error in the Witness gateway; the request was not forwarded.'));
        else res.destroy();
      });
    });
  }

  async listen(): Promise<HttpGateway> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const live = this.live;
    const modern = this.modern;
    return {
      url: `http://${host}:${addr.port}`,
      get sessions() {
        return live.size + modern.size;
      },
      close: () => this.close(),
    };
  }

  private async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    await Promise.all([...[...this.live].map((s) => this.closeSession(s, 'cancelled', 'the gateway stopped')), this.modern.close()]);
    this.server.closeAllConnections();
    await closed;
  }

  // ---------------------------------------------------------------- one HTTP request

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const method = req.method ?? 'GET';
    const server = this.route(url.pathname, req.headers[SERVER_HEADER]);
    if (server === undefined) {
      return reply(res, 404, errorResponse(null, ErrorCode.InvalidRequest, `Not found: no MCP server is exposed at ${url.pathname.slice(0, 200)} on this gateway.`));
    }
    const where = { path: server.path, method, remote_address: req.socket.remoteAddress ?? 'unknown' };
    if (this.stopping) return reply(res, 503, errorResponse(null, ErrorCode.ConnectionClosed, 'The Witness gateway is shutting down; try again shortly.'));

    const auth = this.keys.authenticate(req.headers.authorization);
    if (!auth.ok) {
      const why = auth.reason === 'missing' ? 'no API key was presented' : auth.reason === 'malformed' ? 'the Authorization header is not "Bearer <key>"' : 'the API key is not known to this gateway';
      this.recordGateway({ id: 'unauthenticated' }, `Refused an unauthenticated ${method} to ${server.path}: ${why}.`, 'unauthorized', {
        ...where,
        reason: auth.reason,
        ...(auth.fingerprint === undefined ? {} : { key_fingerprint: auth.fingerprint }),
      });
      res.setHeader('WWW-Authenticate', 'Bearer realm="witness-gateway"');
      return reply(res, 401, errorResponse(null, ErrorCode.ConnectionClosed, `Unauthorized: ${why}; send Authorization: Bearer <key> with a key configured for your agent.`));
    }
    const agent: AgentRef = { id: auth.agent.id, credential: auth.agent.credential };

    // A POST's era is decided on its body (see post); GET and DELETE exist only in 2025 sessions.
    const version = headerOf(req, 'mcp-protocol-version');
    if (method !== 'POST' && version !== undefined && !LEGACY_VERSIONS.includes(version)) return this.unsupportedVersion(res, version, agent, where, server);

    const sessionId = headerOf(req, 'mcp-session-id');
    let session: GatewaySession | undefined;
    /** Set when the request names a session that is not the caller's to use: refused, unless it is a 2026-07-28 POST (see post). */
    let unknownSession: (() => void) | undefined;
    if (sessionId !== undefined) {
      session = this.sessions.get(sessionId);
      if (session === undefined || session.server !== server || session.agent.id !== agent.id) {
        const other = session;
        session = undefined;
        unknownSession = () => {
          if (other !== undefined) {
            // Someone else's session, or another path's: as unknown as a session that never existed.
            this.recordGateway(agent, `Refused a ${method} naming an MCP session that belongs to another agent or server.`, 'forbidden', { ...where, session: other.relay.sessionId });
          }
          reply(res, 404, errorResponse(null, ErrorCode.SessionNotFound, 'Session not found: this MCP session does not exist or has ended; initialize a new one.'));
        };
      }
    }

    // A 2026-07-28 request ignores Mcp-Session-Id (spec 2026-07-28), so a POST's era is decided first.
    if (method === 'POST') return this.post(req, res, server, agent, session, where, unknownSession);
    if (unknownSession !== undefined) return unknownSession();
    if (method === 'GET' || method === 'DELETE') {
      if (session === undefined) return reply(res, 400, errorResponse(null, ErrorCode.ConnectionClosed, `Bad request: ${method} needs the Mcp-Session-Id header of an initialized session.`));
      return this.delegate(session, req, res, undefined);
    }
    res.setHeader('Allow', 'GET, POST, DELETE');
    return reply(res, 405, errorResponse(null, ErrorCode.ConnectionClosed, `Method not allowed: an MCP endpoint takes POST, GET and DELETE, not ${method.slice(0, 20)}.`));
  }

  /**
   * The server a request is for: its configured path, else `/<name>/mcp` (the MCP Inspector takes a
   * URL whose path does not end in /mcp for the old SSE transport), else the bare `/mcp` with a Witness-Server header. A
   * header that names another server than the path picks, or is sent twice, finds none: a client
   * must never be recorded under a server it did not ask for.
   */
  private route(pathname: string, header: string | string[] | undefined): GatewayServerConfig | undefined {
    if (Array.isArray(header)) return undefined;
    const p = pathname.replace(/\/+$/, '') || '/';
    const alias = /^\/([^/]+)\/mcp$/.exec(p);
    const server = this.byPath.get(p) ?? (alias !== null ? this.byName.get(alias[1]!) : p === '/mcp' && header !== undefined ? this.byName.get(header) : undefined);
    return header !== undefined && server?.name !== header ? undefined : server;
  }

  private unsupportedVersion(res: ServerResponse, version: string, agent: AgentRef, where: Record<string, unknown>, server: GatewayServerConfig): void {
    this.recordGateway(agent, `Refused a request with MCP-Protocol-Version ${version.slice(0, 40)}, which this gateway cannot serve.`, 'unsupported_protocol_version', {
      ...where,
      protocol_version: version.slice(0, 100),
    });
    // -32022 with the versions served (spec 2026-07-28): a v2 client picks one, or falls back to a 2025 session.
    reply(
      res,
      400,
      errorResponse(null, ModernErrorCode.UnsupportedProtocolVersion, `Unsupported protocol version: ${version.slice(0, 100)}`, {
        supported: servedVersions(server),
        requested: version.slice(0, 100),
      }),
    );
  }

  private async post(
    req: IncomingMessage,
    res: ServerResponse,
    server: GatewayServerConfig,
    agent: AgentRef,
    session: GatewaySession | undefined,
    where: Record<string, unknown>,
    unknownSession: (() => void) | undefined,
  ): Promise<void> {
    const record = (message: string, code: string, data: Record<string, unknown>) =>
      session === undefined ? this.recordGateway(agent, message, code, { ...where, ...data }) : session.relay.recordError(message, code, data);

    const body = await readBody(req, this.config.maxBodyBytes);
    if (body.tooLarge) {
      record(`The client sent a request body over the ${this.config.maxBodyBytes}-byte limit; it was refused unread.`, 'frame_too_large', { bytes: body.bytes, limit: this.config.maxBodyBytes });
      res.setHeader('Connection', 'close');
      return reply(res, 413, errorResponse(null, ErrorCode.FrameTooLarge, `Request too large: the body is over this gateway's limit of ${this.config.maxBodyBytes} bytes; it was not forwarded.`));
    }
    const frameLimit = server.maxFrameBytes ?? DEFAULT_MAX_FRAME_CHARS;
    if (body.bytes > frameLimit) {
      // The server's own limit (max_frame_bytes), answered here like the body limit, on this POST.
      const head = body.text.slice(0, 512);
      const id = sniffId(head);
      record(`The client sent a message of ${body.bytes} bytes, over the ${frameLimit}-byte limit of ${server.name}; it was refused unread.`, 'frame_too_large', {
        bytes: body.bytes,
        limit: frameLimit,
        head: head.slice(0, 256),
        ...(id === null ? {} : { jsonrpc_id: id }),
      });
      return reply(
        res,
        413,
        errorResponse(id, ErrorCode.FrameTooLarge, `Request too large: the message is ${body.bytes} bytes, over this server's limit of ${frameLimit} bytes; it was not forwarded.`),
      );
    }
    let message: unknown;
    try {
      message = JSON.parse(body.text);
    } catch (e) {
      record('The client sent a request body that is not JSON.', 'parse_error', { body: body.text.slice(0, 1024), bytes: body.bytes, reason: e instanceof Error ? e.message : String(e) });
      return reply(res, 400, errorResponse(null, ErrorCode.ParseError, 'Parse error: the request body is not JSON.'));
    }
    if (Array.isArray(message)) {
      // Batches left MCP in 2025-06-18; refusing them keeps one request per POST, one record per call.
      record('The client sent a JSON-RPC batch, which was refused.', 'batch_refused', { size: message.length });
      return reply(res, 400, errorResponse(null, ErrorCode.InvalidRequest, 'Invalid request: JSON-RPC batches are not supported by this gateway; send one message per request.'));
    }
    // Screened on the body as sent (a repeated key is gone once parsed), before the SDK's transport,
    // which would accept a tools/call notification and answer other malformed requests unrecorded.
    const refusal = screenClientMessage(body.text, message, recordedMethods(server.recordLists));
    if (refusal !== undefined) {
      const refused = refusalRecord(refusal, body.text);
      record(refused.message, refusal.code, refused.data);
      // A notification gets no JSON-RPC answer, but over HTTP input that is not accepted is a 400 (MCP Streamable HTTP).
      return reply(res, 400, errorResponse(refusal.answerId ?? null, refusal.rpcCode, refusalMessage(refusal)));
    }
    // The era of this POST, by the official SDK's rule; a 2026-07-28 request has no MCP session.
    const era = classifyPost(req, message, server);
    if (era.era === 'refused') {
      const version = headerOf(req, 'mcp-protocol-version');
      record(`Refused a request: ${era.text.replace(/\.$/, '')}.`, era.reason, {
        rpc_code: era.code,
        ...(era.id === null ? {} : { jsonrpc_id: era.id }),
        ...(version === undefined ? {} : { protocol_version: version.slice(0, 100) }),
      });
      // Never a 5xx for an era refusal: a v2 client falls back to a 2025 session only on a 4xx.
      return reply(res, era.status, errorResponse(era.id, era.code, era.text, era.data));
    }
    if (era.era === 'modern') return this.modern.serve(req, res, server, agent, era, where);
    if (unknownSession !== undefined) return unknownSession();
    const isInitialize = typeof message === 'object' && message !== null && (message as { method?: unknown }).method === 'initialize';
    if (session === undefined) {
      if (!isInitialize) {
        return reply(res, 400, errorResponse(idOf(message), ErrorCode.ConnectionClosed, 'Bad request: send initialize first, then every request with the Mcp-Session-Id header it returns.'));
      }
      if (this.live.size + this.opening + this.modern.size >= this.config.maxSessions) {
        // Each session holds an upstream process or connection: a cap keeps one agent from exhausting the host.
        record(`Refused a new MCP session: the gateway already has ${this.live.size} open, its max_sessions limit.`, 'too_many_sessions', { limit: this.config.maxSessions });
        res.setHeader('Retry-After', '5');
        return reply(
          res,
          503,
          errorResponse(
            idOf(message),
            ErrorCode.ConnectionClosed,
            `Service unavailable: the gateway has reached its limit of ${this.config.maxSessions} open MCP sessions; close one (DELETE) or try again later.`,
          ),
        );
      }
      this.opening += 1;
      try {
        session = await this.openSession(server, agent, req);
      } finally {
        this.opening -= 1;
      }
    } else if (isInitialize) {
      return reply(res, 400, errorResponse(idOf(message), ErrorCode.InvalidRequest, 'Invalid request: this MCP session is already initialized; initialize without Mcp-Session-Id to start a new one.'));
    }
    return this.delegate(session, req, res, message);
  }

  /** Hands the request to the session's SDK transport, counting it as activity while it is open. */
  private async delegate(s: GatewaySession, req: IncomingMessage, res: ServerResponse, parsed: unknown): Promise<void> {
    s.open += 1;
    if (s.idle !== undefined) clearTimeout(s.idle);
    s.idle = undefined;
    const request = parsed !== undefined && typeof parsed === 'object' && parsed !== null && 'method' in parsed && 'id' in parsed ? (parsed as { id: JsonRpcId; method: unknown }) : undefined;
    res.once('close', () => {
      s.open -= 1;
      if (request !== undefined && !res.writableEnded && s.closing === undefined) {
        // The HTTP request was dropped before its answer went out: the call may still complete
        // upstream (its result is recorded), but the client never saw it.
        s.relay.recordError(`The client closed the connection before the answer to ${String(request.method).slice(0, 200)} was delivered.`, 'client_disconnected', { jsonrpc_id: request.id });
      }
      if (s.open === 0 && s.closing === undefined) this.armIdle(s);
    });
    if (parsed === undefined) return s.transport.handleRequest(req, res);
    const withdraw = s.inbox.put(parsed);
    try {
      await s.transport.handleRequest(req, res, parsed);
    } finally {
      // Not taken: the transport refused the POST itself, so the message must never reach the relay.
      withdraw();
    }
  }

  private armIdle(s: GatewaySession): void {
    s.idle = setTimeout(() => void this.closeSession(s, 'timeout', `idle for ${this.config.sessionIdleMs} ms`), this.config.sessionIdleMs);
    s.idle.unref();
  }

  // ---------------------------------------------------------------- sessions

  private async openSession(server: GatewayServerConfig, agent: AgentRef, req: IncomingMessage): Promise<GatewaySession> {
    const mcpSession = randomUUID();
    const up = server.upstream;
    // Assigned once below, after the relay whose ports close over it exists.
    // eslint-disable-next-line prefer-const
    let transport!: StreamableHTTPServerTransport;
    let upstream!: StdioUpstream | HttpUpstream;
    const relay = await McpRelay.open(
      {
        witness: this.witness,
        agent,
        server: server.name,
        policy: server.policy,
        recordLists: server.recordLists,
        ...(server.maxFrameBytes === undefined ? {} : { maxFrameChars: server.maxFrameBytes }),
        failOpen: server.failOpen,
        ...(server.capture === undefined || this.options.capturer === undefined ? {} : { capture: { capturer: this.options.capturer, tools: server.capture } }),
        ...(this.config.approvals === undefined ? {} : { approvals: this.config.approvals }),
        onLog: (m) => this.log(m),
        purpose: `MCP gateway session for ${server.name}`,
        labels: {
          transport: 'streamable-http',
          path: server.path,
          mcp_session: mcpSession,
          client_address: req.socket.remoteAddress ?? 'unknown',
          upstream: (up.kind === 'stdio' ? [up.command, ...up.args].join(' ') : publicUrl(up.url)).slice(0, 4096),
        },
      },
      {
        toClient: (message, related) => this.toClient(transport, message, related),
        // A stdio server gets the line (the client's object serialized once), an HTTP one the object.
        toServer: (message) => (upstream instanceof StdioUpstream ? upstream.send(message.text) : upstream.send(message.value)),
      },
    );

    transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => mcpSession });
    const s: GatewaySession = {
      id: mcpSession,
      agent,
      server,
      transport,
      relay,
      upstream: { stop: async () => undefined },
      open: 0,
      idle: undefined,
      closing: undefined,
      upstreamDone: Promise.resolve(),
      inbox: new Inbox(),
    };
    transport.onmessage = (accepted) => {
      const parsed = s.inbox.take(accepted);
      if (parsed !== undefined) return relay.fromClientMessage(parsed);
      // Every POST's message is put in the inbox before the transport sees it, and an accepted copy
      // equals its original: this cannot happen, but if it did, only a message screened at the edge
      // may go on, so it is dropped (and a request answered, so that its client does not wait).
      const frame = classifyMessage(accepted);
      this.log(`witness gateway: the MCP transport delivered a message the gateway did not screen; it was dropped.`);
      relay.recordError('The MCP transport delivered a message the gateway had not screened; it was dropped, not forwarded.', 'internal_error', {
        kind: frame.type,
        ...(frame.type === 'request' ? { jsonrpc_id: frame.id } : {}),
      });
      if (frame.type === 'request') {
        transport
          .send(errorMessage(frame.id, ErrorCode.InternalError, 'Internal error in the Witness gateway; the request was not forwarded.') as JSONRPCMessage, { relatedRequestId: frame.id })
          .catch(() => undefined);
      }
    };
    transport.onclose = () => void this.closeSession(s, 'completed', 'the MCP session was deleted');
    transport.onerror = () => undefined; // Every error it reports is also its HTTP answer.
    await transport.start();

    if (up.kind === 'stdio') {
      const stdio = new StdioUpstream({
        command: up.command,
        args: up.args,
        env: childEnv(up.env),
        cwd: up.cwd,
        stopTimeoutMs: this.options.stopTimeoutMs,
        onLine: (line) => relay.fromServer(line),
      });
      upstream = stdio;
      s.upstreamDone = stdio.exited.then(async (exit) => {
        const expected = s.closing !== undefined && exit.spawnError === undefined;
        const code = exit.spawnError !== undefined ? 'upstream_spawn_failed' : 'upstream_exited';
        await relay.upstreamGone(stdio.describe(exit), code, !expected, { exit_code: exit.code, signal: exit.signal });
        // Nothing more can be served: the client must start a new session.
        if (s.closing === undefined) void this.closeSession(s, 'error', 'the upstream server exited');
      });
    } else {
      const http = new HttpUpstream({
        url: up.url,
        headers: up.headers,
        maxBytes: server.maxFrameBytes ?? DEFAULT_MAX_FRAME_CHARS,
        onMessage: (message) => relay.fromServerMessage(message),
        // A request must still get an answer, or the client would wait forever.
        onFailure: (message, extra, id) => {
          const code = /-byte limit of a message/.test(message) ? 'frame_too_large' : 'upstream_unreachable';
          return id === undefined ? relay.recordError(message, code, extra) : relay.upstreamFailed(id, `${message.replace(/\.$/, '')}; the request was not answered.`, code);
        },
        onLog: (m) => this.log(m),
      });
      await http.start();
      upstream = http;
    }
    s.upstream = upstream;
    this.sessions.set(mcpSession, s);
    this.live.add(s);
    return s;
  }

  /** Ends a session once: open calls recorded as abandoned, the upstream stopped, session.end written. */
  private closeSession(s: GatewaySession, reason: RelayEnd, how: string): Promise<void> {
    s.closing ??= (async () => {
      this.sessions.delete(s.id);
      if (s.idle !== undefined) clearTimeout(s.idle);
      await s.relay.clientGone(how);
      await s.upstream.stop();
      await s.upstreamDone;
      await s.relay.end(reason);
      await s.transport.close();
    })()
      .catch((e: unknown) => this.log(`witness gateway: could not close session ${s.relay.sessionId} cleanly: ${String(e)}`))
      .finally(() => this.live.delete(s));
    return s.closing;
  }

  private toClient(transport: StreamableHTTPServerTransport, wire: Wire, related: JsonRpcId | undefined): void {
    // The object the relay already holds (parsed once, from the server's line or transport).
    const message = wire.value as JSONRPCMessage | undefined;
    // An upstream line that is not JSON: HTTP carries only messages, so it is dropped (the relay does not record it).
    if (message === undefined) return;
    // A response whose request stream is gone (client dropped, id null) cannot be delivered; the
    // relay has recorded the call's result either way, so it is dropped rather than crash the transport.
    transport.send(message, related === undefined ? undefined : { relatedRequestId: related }).catch(() => undefined);
  }

  private recordGateway(agent: AgentRef, message: string, code: string, data: Record<string, unknown>): void {
    void systemWriter(this.witness, 'gateway')
      .record(GATEWAY_STREAM, { agent, kind: 'error', outcome: 'error', recorder: { kind: 'gateway', version: RECORDER_VERSION }, data: { message, code, source: 'gateway', ...data } })
      .catch(() => undefined);
  }

  private log(message: string): void {
    try {
      this.options.onLog?.(message);
    } catch {
      // A logger that throws must not take the gateway down.
    }
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function idOf(message: unknown): JsonRpcId | null {
  const id = (message as { id?: unknown } | null)?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(body);
}

/** Reads a body up to `max` bytes; past that it stops keeping it (and the connection is closed after the answer). */
function readBody(req: IncomingMessage, max: number): Promise<{ text: string; bytes: number; tooLarge: boolean }> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    req.resume();
    return Promise.resolve({ text: '', bytes: declared, tooLarge: true });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > max) {
        // Answer now; the rest is read and thrown away, never buffered.
        req.off('data', onData);
        req.resume();
        resolve({ text: '', bytes, tooLarge: true });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), bytes, tooLarge: false }));
    req.once('error', reject);
  });
}
