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
   * no body, or a JSON-RPC error with id null, which a 2025-only server sends for a request it
   * cannot place in a session): why, in one sentence.
   */
  refusal?: string;
}

/** Longest SSE event kept while its blank line has not come (a frame larger than this is refused). */
const MAX_EVENT_CHARS = 64 * 1024 * 1024;

/** Sends one message; rejects only when the upstream cannot be reached (or the signal aborted). */
export async function postModern(o: ModernPostOptions): Promise<ModernPostOutcome> {
  const res = await fetch(o.url, { method: 'POST', headers: o.headers, body: o.body, signal: o.signal });
  o.onStatus?.(res.status);
  const type = (res.headers.get('content-type') ?? '').toLowerCase();
  if (type.includes('text/event-stream') && res.body !== null) {
    let messages = 0;
    await readSse(
      res.body,
      o.signal,
      (data) => {
        const parsed = parseJson(data);
        if (parsed === undefined) return;
        messages += 1;
        o.onMessage(parsed);
      },
      o.onComment,
    );
    return { status: res.status, messages };
  }
  const text = await res.text();
  const parsed = text.trim() === '' ? undefined : parseJson(text);
  const isNullIdError = isObject(parsed) && parsed['id'] === null && isObject(parsed['error']);
  if (parsed !== undefined && !isNullIdError && isObject(parsed)) {
    o.onMessage(parsed);
    return { status: res.status, messages: 1 };
  }
  if (res.status === 202 || (res.ok && parsed === undefined)) return { status: res.status, messages: 0 };
  const said = isNullIdError ? String((parsed['error'] as Record<string, unknown>)['message'] ?? '').slice(0, 300) : text.slice(0, 300).replace(/\s+/g, ' ');
  return { status: res.status, messages: 0, refusal: `The upstream MCP server answered HTTP ${res.status}${said === '' ? '' : ` (${said.replace(/\.$/, '')})`}.` };
}

/** Reads an SSE body: each event's data lines joined, each comment reported; stops at the end or on abort. */
async function readSse(body: ReadableStream<Uint8Array>, signal: AbortSignal, onData: (data: string) => void, onComment: (() => void) | undefined): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const line = (l: string) => {
    if (l === '') {
      if (data.length > 0) onData(data.join('\n'));
      data = [];
      return;
    }
    if (l.startsWith(':')) return onComment?.();
    const colon = l.indexOf(':');
    const field = colon === -1 ? l : l.slice(0, colon);
    let value = colon === -1 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
  };
  const reader = body.getReader();
  try {
    for (;;) {
      if (signal.aborted) return;
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let at: number;
      while ((at = buffer.search(/\r\n|\r|\n/)) !== -1) {
        const nl = buffer[at] === '\r' && buffer[at + 1] === '\n' ? 2 : 1;
        line(buffer.slice(0, at));
        buffer = buffer.slice(at + nl);
      }
      if (buffer.length > MAX_EVENT_CHARS) throw new Error(`an SSE line over ${MAX_EVENT_CHARS} characters`);
    }
    if (buffer !== '') line(buffer);
    line('');
  } finally {
    reader.releaseLock();
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
