import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';

/**
 * Newline-delimited JSON-RPC framing, as the MCP stdio transport defines it: one message per
 * line, UTF-8, no embedded newlines. The proxy reads frames itself (rather than through the SDK's
 * transports, which parse, validate and drop what they do not understand) so that every frame it
 * does not need to change is forwarded byte for byte, and a line that is not JSON can be answered.
 */

export { ErrorCode };

/** A JSON-RPC id as MCP allows it (no null for requests). */
export type JsonRpcId = string | number;

/**
 * Splits a byte stream into lines; a final line without a newline is delivered at end. A line
 * longer than `maxChars` is never buffered whole: its first characters and its size go to
 * `onOversize` and the rest is skipped up to the next newline, so a hostile peer cannot make the
 * gateway hold an unbounded line in memory.
 */
export class LineSplitter {
  private buffered = '';
  private readonly decoder = new TextDecoder('utf-8');
  /** Set while skipping the rest of an oversized line: its head and its length so far. */
  private skipping: { head: string; chars: number } | undefined;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxChars = Number.POSITIVE_INFINITY,
    private readonly onOversize: (head: string, chars: number) => void = () => undefined,
  ) {}

  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    if (this.skipping !== undefined) {
      const nl = text.indexOf('\n');
      if (nl === -1) {
        this.skipping.chars += text.length;
        return;
      }
      this.skipping.chars += nl;
      this.oversize();
      this.buffered = text.slice(nl + 1);
    } else {
      this.buffered += text;
    }
    let nl = this.buffered.indexOf('\n');
    while (nl !== -1) {
      const line = this.buffered.slice(0, nl).replace(/\r$/, '');
      this.buffered = this.buffered.slice(nl + 1);
      if (line.length > this.maxChars) {
        this.skipping = { head: line.slice(0, 512), chars: line.length };
        this.oversize();
      } else if (line.trim() !== '') this.onLine(line);
      nl = this.buffered.indexOf('\n');
    }
    if (this.buffered.length > this.maxChars) {
      this.skipping = { head: this.buffered.slice(0, 512), chars: this.buffered.length };
      this.buffered = '';
    }
  }

  end(): void {
    if (this.skipping !== undefined) return this.oversize();
    this.buffered += this.decoder.decode();
    const rest = this.buffered.replace(/\r$/, '');
    this.buffered = '';
    if (rest.length > this.maxChars) this.onOversize(rest.slice(0, 512), rest.length);
    else if (rest.trim() !== '') this.onLine(rest);
  }

  private oversize(): void {
    const s = this.skipping!;
    this.skipping = undefined;
    this.onOversize(s.head, s.chars);
  }
}

/** The JSON-RPC id of a frame read from its first characters only (for a frame too large to parse). */
export function sniffId(head: string): JsonRpcId | null {
  const m = /"id"\s*:\s*(-?\d{1,15}(?![\d.eE])|"(?:[^"\\]|\\.){0,256}")/.exec(head);
  if (m === null) return null;
  const raw = m[1]!;
  try {
    return raw.startsWith('"') ? (JSON.parse(raw) as string) : Number(raw);
  } catch {
    return null;
  }
}

/** What the proxy needs to know about a frame; anything else is forwarded without a look. */
export type Frame =
  | { type: 'request'; id: JsonRpcId; method: string; params: unknown; message: Record<string, unknown> }
  | { type: 'notification'; method: string; params: unknown; message: Record<string, unknown> }
  | { type: 'response'; id: JsonRpcId; result?: unknown; error?: unknown; message: Record<string, unknown> }
  | { type: 'batch'; message: unknown[] }
  | { type: 'other'; message: unknown }
  | { type: 'invalid'; reason: string };

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** Parses one line. Never throws: a line that is not JSON is `invalid` with the parser's reason. */
export function classify(line: string): Frame {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch (e) {
    return { type: 'invalid', reason: (e as Error).message };
  }
  if (Array.isArray(message)) return { type: 'batch', message };
  if (message === null || typeof message !== 'object') return { type: 'other', message };
  const m = message as Record<string, unknown>;
  if (typeof m['method'] === 'string') {
    if (isId(m['id'])) return { type: 'request', id: m['id'], method: m['method'], params: m['params'], message: m };
    if (!('id' in m)) return { type: 'notification', method: m['method'], params: m['params'], message: m };
    return { type: 'other', message };
  }
  if (isId(m['id']) && ('result' in m || 'error' in m)) {
    return { type: 'response', id: m['id'], ...('result' in m ? { result: m['result'] } : {}), ...('error' in m ? { error: m['error'] } : {}), message: m };
  }
  return { type: 'other', message };
}

/** A map key for an id: `1` and `"1"` are different requests. */
export function idKey(id: JsonRpcId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

export function errorResponse(id: JsonRpcId | null, code: number, message: string, data?: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } });
}

export function resultResponse(id: JsonRpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result });
}

/** A tool result the model reads: how MCP says "this call failed" without a protocol error. */
export function toolErrorResult(text: string): { content: Array<{ type: 'text'; text: string }>; isError: true } {
  return { content: [{ type: 'text', text }], isError: true };
}
