import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { META, claimedVersion } from './era.js';
import type { JsonRpcId } from './jsonrpc.js';
import { StdioUpstream, type UpstreamExit } from './upstream-stdio.js';

const SUBSCRIPTION_ID = META.subscriptionId;

/**
 * One 2026-07-28 ("modern") request to an upstream MCP server over Streamable HTTP: one POST per
 * client POST, its answer read as JSON or as an SSE stream and handed on message by message.
 * There is no session to keep: the modern era has no initialize and no Mcp-Session-Id, so each
 * request stands alone, and cancelling it is closing it (the signal aborts the POST).
 */

export interface ModernPostOptions {
  url: string;
  /** Every header of the upstream POST (the caller chose them: the client's MCP headers, the server's configured ones). */
  headers: Record<string, string>;
  /** The JSON-RPC message, serialized. */
  body: string;
  signal: AbortSignal;
  /** The largest message the answer may carry, in bytes (a JSON body, or one SSE event): past it the POST is aborted. */
  maxBytes: number;
  /** Each JSON-RPC message of the answer, parsed, in the order received. */
  onMessage: (message: unknown) => void;
  /** The upstream's HTTP status, once its headers arrive (before any message). */
  onStatus?: ((status: number) => void) | undefined;
  /** An SSE comment (the upstream's keep-alive on a long stream). */
  onComment?: (() => void) | undefined;
}

export interface ModernPostOutcome {
  status: number;
  /** Messages handed to onMessage. */
  messages: number;
  /**
   * Set when the upstream refused the POST without a JSON-RPC answer for it (a non-2xx status with
   * no body, a redirect, or a JSON-RPC error with id null, which a 2025-only server sends for a
   * request it cannot place in a session): why, in one sentence.
   */
  refusal?: string;
  /** The record code of a refusal: upstream_redirect, else upstream_refused. */
  code?: string;
}

/** An upstream answer (a JSON body, or one SSE event) over the byte limit: the POST was aborted. */
export class UpstreamTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the upstream MCP server's answer is over the ${limit}-byte limit of a message (max_frame_bytes), so it was cut off and not passed on`);
  }
}

/**
 * Sends one message; rejects when the upstream cannot be reached, when its answer is over
 * maxBytes (UpstreamTooLarge) or when the signal aborted. Over node:http rather than fetch, for
 * three reasons: fetch follows redirects (carrying the configured credentials and the body to
 * wherever the upstream points), it gives up on an answer after 300 s (undici's headers and body
 * timeouts, while a tool call may rightly take longer: the client's closing its POST is what
 * cancels), and its text() keeps an answer of any size.
 */
export async function postModern(o: ModernPostOptions): Promise<ModernPostOutcome> {
  const res = await request(o);
  o.onStatus?.(res.statusCode ?? 0);
  const status = res.statusCode ?? 0;
  if (status >= 300 && status < 400) {
    res.resume();
    const location = res.headers.location;
    const where = location === undefined ? '' : ` to ${publicUrl(location, o.url)}`;
    return {
      status,
      messages: 0,
      refusal: `The upstream MCP server answered HTTP ${status}, a redirect${where}, which the gateway does not follow (it would carry the server's credentials and the request elsewhere).`,
      code: 'upstream_redirect',
    };
  }
  const type = String(res.headers['content-type'] ?? '').toLowerCase();
  if (type.includes('text/event-stream')) {
    let messages = 0;
    await readSse(
      res,
      o.signal,
      o.maxBytes,
      (data) => {
        const parsed = parseJson(data);
        if (parsed === undefined) return;
        messages += 1;
        o.onMessage(parsed);
      },
      o.onComment,
    );
    return { status, messages };
  }
  const text = await readAll(res, o.maxBytes);
  const parsed = text.trim() === '' ? undefined : parseJson(text);
  const isNullIdError = isObject(parsed) && parsed['id'] === null && isObject(parsed['error']);
  if (parsed !== undefined && !isNullIdError && isObject(parsed)) {
    o.onMessage(parsed);
    return { status, messages: 1 };
  }
  const ok = status >= 200 && status < 300;
  if (status === 202 || (ok && parsed === undefined)) return { status, messages: 0 };
  const said = isNullIdError ? String((parsed['error'] as Record<string, unknown>)['message'] ?? '').slice(0, 300) : text.slice(0, 300).replace(/\s+/g, ' ');
  return { status, messages: 0, refusal: `The upstream MCP server answered HTTP ${status}${said === '' ? '' : ` (${said.replace(/\.$/, '')})`}.` };
}

/** The upstream POST, resolved once its response headers arrive. No timeouts: the signal ends it. */
function request(o: ModernPostOptions): Promise<IncomingMessage> {
  const url = new URL(o.url);
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: 'POST', headers: { ...o.headers, 'content-length': String(Buffer.byteLength(o.body)) }, signal: o.signal }, resolve);
    req.once('error', reject);
    req.end(o.body);
  });
}

/**
 * fetch() over node:http, for the official SDK's client transport (the 2025 path): Node's own
 * fetch gives up on an answer after 300 s (undici's headers and body timeouts), which would record
 * a slow tool call as unreachable although it ran; here only the signal ends a request. It takes
 * what the SDK sends (a string body or none) and never follows a redirect: with `redirect: 'error'`
 * a 3xx rejects, otherwise it is returned for the caller to judge.
 */
export function nodeFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  if (input instanceof Request) return Promise.reject(new TypeError('nodeFetch takes a URL and RequestInit, not a Request'));
  const url = new URL(String(input));
  const headers = Object.fromEntries(new Headers(init.headers).entries());
  const body = init.body === undefined || init.body === null ? undefined : typeof init.body === 'string' ? init.body : null;
  if (body === null) return Promise.reject(new TypeError('nodeFetch sends string bodies only'));
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: init.method ?? 'GET',
        headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(init.signal ? { signal: init.signal } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && init.redirect === 'error') {
          res.resume();
          return reject(new TypeError(`the upstream answered HTTP ${status}, a redirect, which the gateway does not follow`));
        }
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) out.append(k, one);
        const empty = status === 204 || status === 304 || init.method === 'HEAD';
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers: out }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** A whole (non-SSE) body as text, refused past `max` bytes. */
async function readAll(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > max) {
      res.destroy();
      throw new UpstreamTooLarge(max);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A URL as it may be shown to clients and recorded: no user, password, query or fragment (where credentials hide). */
export function publicUrl(url: string, base?: string): string {
  try {
    const u = new URL(url, base);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString();
  } catch {
    return '(an invalid URL)';
  }
}

/** Reads an SSE body: each event's data lines joined, each comment reported; stops at the end or on abort. An event over `max` bytes is refused. */
async function readSse(body: IncomingMessage, signal: AbortSignal, max: number, onData: (data: string) => void, onComment: (() => void) | undefined): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  // Characters of the event being read (its data lines so far): a JS string's length is at most its UTF-8 bytes.
  let size = 0;
  const line = (l: string) => {
    if (l === '') {
      if (data.length > 0) onData(data.join('\n'));
      data = [];
      size = 0;
      return;
    }
    if (l.startsWith(':')) return onComment?.();
    const colon = l.indexOf(':');
    const field = colon === -1 ? l : l.slice(0, colon);
    let value = colon === -1 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field !== 'data') return;
    size += value.length + 1;
    if (size > max) throw new UpstreamTooLarge(max);
    data.push(value);
  };
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (signal.aborted) return;
      buffer += decoder.decode(chunk, { stream: true });
      let at: number;
      while ((at = buffer.search(/\r\n|\r|\n/)) !== -1) {
        const nl = buffer[at] === '\r' && buffer[at + 1] === '\n' ? 2 : 1;
        line(buffer.slice(0, at));
        buffer = buffer.slice(at + nl);
      }
      if (buffer.length + size > max) throw new UpstreamTooLarge(max);
    }
    if (buffer !== '') line(buffer);
    line('');
  } catch (e) {
    body.destroy();
    throw e;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ---------------------------------------------------------------- stdio: one child per group

export interface SharedStdioOptions {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  stopTimeoutMs?: number | undefined;
  onLog?: ((message: string) => void) | undefined;
}

/** What one forwarded request receives back: its messages (ids and tokens restored), or the server's end. */
export interface StdioRoute {
  onMessage(message: unknown): void;
  /** The server exited before the request was answered. */
  onGone(message: string): void;
}

interface OpenRoute extends StdioRoute {
  id: JsonRpcId;
  token: unknown;
  /** The request's own envelope, for the notifications/cancelled that cancels it (a claim-less line would pin the server to 2025). */
  envelope: Record<string, unknown>;
}

/**
 * A stdio MCP server shared by the 2026-07-28 requests of one group. Requests from different
 * clients of a group carry ids (and progress tokens) chosen by each client, which may collide, so
 * each is sent under an id of the gateway's own (`witness-<n>`, also its progress token) and every
 * answer, progress notification and listen notification (stamped with the listen's id as
 * subscriptionId) is mapped back before it goes to the request's route. The first line the child
 * reads carries the modern envelope, which pins it to the 2026-07-28 era.
 */
export class SharedStdioUpstream {
  private readonly child: StdioUpstream;
  private readonly routes = new Map<string, OpenRoute>();
  private next = 0;
  private gone: string | undefined;
  /** Set once the child has been sent a line with the modern claim (every request has one): it speaks 2026-07-28. */
  private pinned = false;
  readonly exited: Promise<UpstreamExit>;

  constructor(private readonly o: SharedStdioOptions) {
    this.child = new StdioUpstream({
      command: o.command,
      args: o.args,
      env: o.env,
      cwd: o.cwd,
      stopTimeoutMs: o.stopTimeoutMs,
      onLine: (line) => this.received(line),
    });
    this.exited = this.child.exited.then((exit) => {
      this.gone = this.child.describe(exit);
      for (const route of [...this.routes.values()]) route.onGone(this.gone);
      this.routes.clear();
      return exit;
    });
  }

  get commandLine(): string {
    return this.child.commandLine;
  }

  /** Sends a request under a fresh id; returns the function that cancels it (notifications/cancelled to the server). */
  request(message: Record<string, unknown>, route: StdioRoute): () => void {
    if (this.gone !== undefined) {
      route.onGone(this.gone);
      return () => undefined;
    }
    const wire = `witness-${++this.next}`;
    const params = isObject(message['params']) ? message['params'] : {};
    const meta = isObject(params['_meta']) ? params['_meta'] : {};
    const { progressToken, ...envelope } = meta;
    const mapped = { ...message, id: wire, params: { ...params, _meta: progressToken === undefined ? envelope : { ...envelope, progressToken: wire } } };
    this.routes.set(wire, { ...route, id: message['id'] as JsonRpcId, token: progressToken, envelope });
    this.pinned = true;
    this.child.send(JSON.stringify(mapped));
    return () => {
      if (!this.routes.delete(wire)) return;
      this.child.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: wire, reason: 'The client closed its HTTP request.', _meta: envelope } }));
    };
  }

  /**
   * A client notification other than a cancellation (those name the client's ids, which the server
   * never saw). Until the child has read a line with the 2026-07-28 claim, one without it is
   * dropped: as the first line it would pin the child to the 2025 era for the whole group.
   */
  notify(message: Record<string, unknown>): void {
    if (this.gone !== undefined) return;
    if (!this.pinned && claimedVersion(message) === undefined) {
      return this.o.onLog?.(
        `witness gateway: a ${String(message['method']).slice(0, 100)} without the protocol version claim was not sent to ${this.commandLine}, which has not read a 2026-07-28 message yet.`,
      );
    }
    this.pinned = true;
    this.child.send(JSON.stringify(message));
  }

  private received(line: string): void {
    const m = parseJson(line);
    if (!isObject(m)) return this.o.onLog?.(`witness gateway: ${this.commandLine} wrote a line that is not a JSON-RPC message; it was dropped.`);
    const params = isObject(m['params']) ? m['params'] : undefined;
    if ('id' in m && !('method' in m)) {
      const key = String(m['id']);
      const route = this.routes.get(key);
      if (route === undefined) return;
      this.routes.delete(key);
      return route.onMessage({ ...m, id: route.id });
    }
    if (typeof m['method'] !== 'string' || 'id' in m || params === undefined) {
      // The 2026-07-28 era has no server-to-client requests on stdio (input goes through results).
      return this.o.onLog?.(`witness gateway: ${this.commandLine} sent ${String(m['method']).slice(0, 100)} outside any request; it was dropped.`);
    }
    const token = params['progressToken'];
    if (m['method'] === 'notifications/progress' && typeof token === 'string' && this.routes.has(token)) {
      const route = this.routes.get(token)!;
      return route.onMessage({ ...m, params: { ...params, progressToken: route.token } });
    }
    const meta = isObject(params['_meta']) ? params['_meta'] : undefined;
    const sub = meta?.[SUBSCRIPTION_ID];
    if (typeof sub === 'string' && this.routes.has(sub)) {
      const route = this.routes.get(sub)!;
      return route.onMessage({ ...m, params: { ...params, _meta: { ...meta, [SUBSCRIPTION_ID]: route.id } } });
    }
    this.o.onLog?.(`witness gateway: ${this.commandLine} sent ${m['method'].slice(0, 100)} for no open request; it was dropped.`);
  }

  /** One sentence saying how the server ended, for records. */
  describe(exit: UpstreamExit): string {
    return this.child.describe(exit);
  }

  async stop(): Promise<void> {
    await this.child.stop();
    await this.exited;
  }
}
