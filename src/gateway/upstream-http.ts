import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { JsonRpcId } from './jsonrpc.js';
import { nodeFetch, publicUrl } from './upstream-modern.js';

/**
 * An MCP server reached over Streamable HTTP, through the official SDK's client transport (which
 * keeps the upstream Mcp-Session-Id, opens the GET stream after initialization and parses SSE).
 * One per gateway session, so the upstream sees one MCP session per client session.
 */

export interface HttpUpstreamOptions {
  url: string;
  /** Extra headers for every upstream request (e.g. the upstream's own credentials). */
  headers?: Record<string, string> | undefined;
  /** The largest message an answer may carry, in bytes (a JSON body, or one SSE event): past it the answer is cut off. */
  maxBytes: number;
  /** Every message the server sends, as the SDK's transport parsed it (handed on, not serialized again). */
  onMessage: (message: unknown) => void;
  /** A message could not be delivered; `id` is set for a request, which the relay then fails. */
  onFailure: (message: string, extra: Record<string, unknown>, id: JsonRpcId | undefined) => void;
  onLog?: ((message: string) => void) | undefined;
}

export class HttpUpstream {
  private readonly transport: StreamableHTTPClientTransport;
  /** The initialize POST: later messages wait for it, since they need the session id it returns. */
  private ready: Promise<unknown> = Promise.resolve();
  private initializeId: JsonRpcId | undefined;
  private stopped = false;
  /** The URL as clients and records may see it (no user, password or query). */
  private readonly shown: string;

  constructor(private readonly o: HttpUpstreamOptions) {
    this.shown = publicUrl(o.url);
    this.transport = new StreamableHTTPClientTransport(new URL(o.url), {
      // A redirect of a POST or DELETE fails it: following one would carry the configured credentials and the
      // message elsewhere (the SDK follows a GET stream's redirect only within the same origin).
      requestInit: { redirect: 'error', ...(o.headers === undefined ? {} : { headers: o.headers }) },
      // The SDK reads a JSON answer whole and an SSE event until its blank line: both are capped here.
      // Over node:http (nodeFetch): no 300 s limit on a slow answer, which Node's fetch would impose.
      fetch: async (url, init) => capped(await nodeFetch(url, init), o.maxBytes),
      // A lost GET stream is retried a few times, then given up: requests still work without it.
      reconnectionOptions: { initialReconnectionDelay: 500, maxReconnectionDelay: 5000, reconnectionDelayGrowFactor: 2, maxRetries: 3 },
    });
    this.transport.onmessage = (m) => this.received(m);
    this.transport.onerror = (e) => {
      if (!this.stopped) this.o.onLog?.(`witness gateway: upstream ${this.shown}: ${e.message.replaceAll(o.url, this.shown)}`);
    };
  }

  async start(): Promise<void> {
    await this.transport.start();
  }

  /** Sends one message (an object, as the relay holds it: it is not parsed again here). */
  send(value: unknown): void {
    if (this.stopped) return;
    const message = value as JSONRPCMessage;
    const isRequest = 'method' in message && 'id' in message;
    const id = isRequest ? (message as { id: JsonRpcId }).id : undefined;
    const method = 'method' in message ? message.method : undefined;
    const deliver = async () => {
      try {
        await this.transport.send(message);
      } catch (e) {
        if (this.stopped) return;
        // A 4xx whose body is a JSON-RPC error answering this very request is the server's answer
        // (a 2026-only server refusing initialize with -32022), not a failure to reach it: passed on as such.
        const answer = id === undefined ? undefined : errorAnswerIn(e, id);
        if (answer !== undefined) return this.received(answer);
        const why = `The upstream MCP server at ${this.shown} could not be reached or refused the message (${oneLine(e).replaceAll(this.o.url, this.shown)})`;
        this.o.onFailure(`${why}.`, { url: this.shown, ...(method === undefined ? {} : { method }), ...(id === undefined ? {} : { jsonrpc_id: id }) }, id);
      }
    };
    if (method === 'initialize') {
      this.initializeId = id;
      this.ready = deliver();
      return;
    }
    void this.ready.then(deliver);
  }

  private received(m: JSONRPCMessage): void {
    // The SDK Client would do this itself: later requests carry the negotiated version header.
    if ('result' in m && this.initializeId !== undefined && m.id === this.initializeId) {
      const v = (m.result as { protocolVersion?: unknown }).protocolVersion;
      if (typeof v === 'string') this.transport.setProtocolVersion(v);
    }
    this.o.onMessage(m);
  }

  /** Ends the upstream session (DELETE, best effort) and closes the connections. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.transport.sessionId !== undefined) {
      const timeout = new Promise<void>((r) => setTimeout(r, 2000).unref());
      await Promise.race([this.transport.terminateSession().catch(() => undefined), timeout]);
    }
    await this.transport.close();
  }
}

/** The JSON-RPC error response to request `id` that the SDK's error for a 4xx POST carries in its text, if it carries one. */
function errorAnswerIn(e: unknown, id: JsonRpcId): JSONRPCMessage | undefined {
  if (!(e instanceof StreamableHTTPError) || typeof e.code !== 'number' || e.code < 400 || e.code >= 500) return undefined;
  const at = e.message.indexOf('{');
  if (at === -1) return undefined;
  try {
    const m = JSON.parse(e.message.slice(at)) as Record<string, unknown>;
    const err = m['error'] as Record<string, unknown> | undefined;
    if (m['jsonrpc'] !== '2.0' || m['id'] !== id || 'result' in m || err === null || typeof err !== 'object' || typeof err['code'] !== 'number') return undefined;
    return m as unknown as JSONRPCMessage;
  } catch {
    return undefined;
  }
}

function oneLine(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.split('\n')[0]!.replace(/\.$/, '').slice(0, 300);
}

/**
 * A response whose body errors once it carries more than `max` bytes in one message: the whole
 * body for JSON, the bytes since the last blank line (one event) for an SSE stream, which may
 * rightly run for hours.
 */
function capped(res: Response, max: number): Response {
  if (res.body === null) return res;
  const sse = (res.headers.get('content-type') ?? '').toLowerCase().includes('text/event-stream');
  let size = 0;
  // The last two bytes seen, so that a blank line (\n\n, \r\r, \r\n\r\n) split across chunks still ends an event (to a byte or so).
  let tail = '';
  const body = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (sse) {
          const text = tail + Buffer.from(chunk).toString('latin1');
          const end = Math.max(text.lastIndexOf('\n\n'), text.lastIndexOf('\r\r'), text.lastIndexOf('\n\r\n'));
          size = end === -1 ? size + chunk.length : text.length - end - 2;
          tail = text.slice(-2);
        } else {
          size += chunk.length;
        }
        if (size > max) return controller.error(new Error(`the upstream MCP server's answer is over the ${max}-byte limit of a message (max_frame_bytes), so it was cut off and not passed on`));
        controller.enqueue(chunk);
      },
    }),
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
