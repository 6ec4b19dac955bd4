import { isWellFormedString, strictParse } from '../core/index.js';
import { extraCallParams } from './era.js';
import { ErrorCode } from './error-codes.js';

/**
 * Newline-delimited JSON-RPC framing, as the MCP stdio transport defines it: one message per
 * line, UTF-8, no embedded newlines. The proxy reads frames itself (rather than through the SDK's
 * transports, which parse, validate and drop what they do not understand) so that every frame it
 * does not need to change is forwarded byte for byte (but for raw CRs, see oneLine), and a line that
 * is not JSON can be answered.
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

/**
 * A line as it may be written to the other side: every raw carriage return (CR) replaced by a space.
 *
 * Lines are framed at LF, as MCP's stdio transport says and the TypeScript SDK reads. But JSON
 * allows a raw CR as white space between tokens, and many stdio readers also end a line at a lone
 * CR: the official MCP Python SDK (a TextIOWrapper with universal newlines), Node's readline,
 * Java's BufferedReader, .NET's ReadLine. To them, one line the gateway read as a single message can
 * be two or three, and a tools/call hidden between two CRs inside a frame the gateway passes on
 * unread (an unknown notification, a ping) would run unrecorded; a response hidden the same way in
 * a server line would reach the client unrecorded. JSON allows no raw control character inside a
 * string, so in a line JSON.parse accepted every CR is white space, and a space is too: the line
 * means exactly what it meant, to every JSON parser, and nothing else in it changes. A line that is
 * not JSON (only a server's is ever forwarded) stays one line. No other character needs this:
 * LF is the frame end itself, and the other characters some text readers treat as line ends
 * (U+0085, U+2028, U+2029, which Python's str.splitlines also splits at) can occur in valid JSON
 * only inside a string, where a split cannot leave a message on either side.
 */
export function oneLine(line: string): string {
  return line.includes('\r') ? line.replace(/\r/g, ' ') : line;
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
  return classifyMessage(message);
}

/** What kind of JSON-RPC message an already parsed value is. */
export function classifyMessage(message: unknown): Exclude<Frame, { type: 'invalid' }> {
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

/** A JSON-RPC error response as an object, which the relay hands its ports (see Wire). */
export function errorMessage(id: JsonRpcId | null, code: number, message: string, data?: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } };
}

/** The same, serialized: for an HTTP answer written by the gateway itself. */
export function errorResponse(id: JsonRpcId | null, code: number, message: string, data?: unknown): string {
  return JSON.stringify(errorMessage(id, code, message, data));
}

export function resultMessage(id: JsonRpcId, result: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', id, result };
}

export function resultResponse(id: JsonRpcId, result: unknown): string {
  return JSON.stringify(resultMessage(id, result));
}

/**
 * One JSON-RPC message on its way through the relay, parsed at most once per hop. A frame read from
 * a byte stream (stdio) keeps its text, which a byte stream on the other side gets unchanged (but
 * for raw CRs, see oneLine); a message that a transport delivered parsed (HTTP), or that the relay
 * built, keeps its object, which a transport on the other side gets as it is. The other form is
 * made only when a port asks for it, once: a stdio frame going to an HTTP client is not parsed
 * again, and an HTTP message going to a stdio server is serialized once.
 */
export class Wire {
  private line: string | undefined;

  private constructor(
    /** The text as read, when the message came from a byte stream. */
    private readonly source: string | undefined,
    private readonly parsed: unknown,
    /** False for a line that is not JSON (only a server's is ever forwarded, and only to a byte stream). */
    readonly json: boolean,
  ) {}

  /** A frame read from a byte stream, with what it parsed to (`json` false when it is not JSON). */
  static read(text: string, value: unknown, json = true): Wire {
    return new Wire(text, value, json);
  }

  /** A message as an object: parsed by a transport, or built by the gateway. */
  static of(value: unknown): Wire {
    return new Wire(undefined, value, true);
  }

  /**
   * The line to write to a byte stream (without its newline). Every line the relay writes to
   * either side is made here, through oneLine, so that none holds a raw CR.
   */
  get text(): string {
    this.line ??= this.source !== undefined ? oneLine(this.source) : JSON.stringify(this.parsed);
    return this.line;
  }

  /** The message for a transport that takes objects; undefined for a line that is not JSON. */
  get value(): unknown {
    return this.json ? this.parsed : undefined;
  }
}

/** A tool result the model reads: how MCP says "this call failed" without a protocol error. */
export function toolErrorResult(text: string): { content: Array<{ type: 'text'; text: string }>; isError: true } {
  return { content: [{ type: 'text', text }], isError: true };
}

// ---------------------------------------------------------------- screening client messages

/**
 * Why a client message is refused before the relay looks at it further. A message is screened so
 * that no parser between the client and the server can read a call the gateway did not record:
 * the gateway reads a message with JSON.parse (a repeated key: the last value wins), but a server
 * may read the first value, match member names ignoring case (Go's encoding/json does), coerce a
 * method that is not a string, or run a "notification" of tools/call.
 */
export interface Refusal {
  /** The JSON-RPC error code of the answer: -32600 (Invalid Request) or -32602 (Invalid params). */
  rpcCode: number;
  /** The stable code recorded in the ledger. */
  code: 'invalid_request' | 'invalid_params' | 'ambiguous_keys';
  /** What is wrong, as a clause: `its id is true, and an id must be a string or an integer within ±(2^53−1)`. */
  problem: string;
  /**
   * The id to answer with: the message's own when it is a valid id, else null (JSON-RPC's rule);
   * undefined when nothing may be answered: a notification, or a message that is no request.
   */
  answerId: JsonRpcId | null | undefined;
  /** The method as the client wrote it, when it is a string (at most 200 characters). */
  method?: string;
  /** The tool, prompt or resource it names, when readable (at most 200 characters). */
  target?: string;
  /** It has a method and no id: a notification, dropped without an answer. */
  notification: boolean;
}

/** The methods whose requests the relay records: always tools/call, resources/read, prompts/get; list calls when configured. */
export function recordedMethods(recordLists: boolean): ReadonlySet<string> {
  return new Set(['tools/call', 'resources/read', 'prompts/get', ...(recordLists ? LIST_METHOD_NAMES : [])]);
}

export const LIST_METHOD_NAMES: readonly string[] = ['tools/list', 'resources/list', 'resources/templates/list', 'prompts/list'];

/** A request id as MCP allows it: a string, or an integer every JSON parser reads exactly (JSON-RPC: no fractions; MCP: no null). */
export function isRequestId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || Number.isSafeInteger(v);
}

/** The JSON-RPC 2.0 member names: a key that folds to one of these must be spelled exactly so. */
const ENVELOPE = new Set(['jsonrpc', 'id', 'method', 'params', 'result', 'error']);
/** The members of a request; a recorded request may have no other. */
const REQUEST_MEMBERS = new Set(['jsonrpc', 'id', 'method', 'params']);
/** Params members of the recorded methods: a key that folds to one of these must be spelled exactly so. */
const KNOWN_PARAMS = new Set(['name', 'arguments', 'uri', 'cursor', '_meta', 'task']);
/**
 * tools/call records only name and arguments (and _meta as a claim), so no other member may reach
 * a server that might read it (`args`, `input`). `task` (MCP 2025-11-25 task-augmented calls) only
 * asks for the result to be delivered later and is passed on.
 */
const TOOL_CALL_PARAMS = new Set(['name', 'arguments', '_meta', 'task']);

/** Printable ASCII without capitals: folds to itself, the common case, checked without allocating. */
const SELF_FOLDING = /^[\x21-\x40\x5b-\x7e]*$/;
const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;

/**
 * A name as a lenient reader might match it: Unicode compatibility forms unified (NFKC: the Kelvin
 * sign is K, the long s is s), white space, control and invisible format characters removed,
 * lower case. Two keys with the same fold are ambiguous; a fold equal to a protocol name must be
 * that name, spelled exactly.
 */
export function fold(name: string): string {
  if (SELF_FOLDING.test(name)) return name;
  if (PRINTABLE_ASCII.test(name)) return name.toLowerCase();
  return name
    .normalize('NFKC')
    .replace(/[\s\p{Cc}\p{Cf}]/gu, '')
    .toLowerCase();
}

/**
 * Screens one client message (already parsed with JSON.parse from `text`) and returns why it must
 * be refused, or undefined when the relay may handle it. Every message is checked for keys that
 * readers could take differently (a key repeated in one object; two keys that differ only in case
 * or invisible characters; a JSON-RPC member spelled another way, a method that is not a string).
 * A message naming a method in `recorded`, however spelled, must further be a well-formed request:
 * exactly that method, `jsonrpc: "2.0"`, an id that is a string or a safe integer, no other
 * members, params of the method's shape, and only values the ledger can hold exactly. Any other
 * method is not looked at further: unknown methods pass through.
 */
export function screenClientMessage(text: string, message: unknown, recorded: ReadonlySet<string>): Refusal | undefined {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) return undefined;
  const m = message as Record<string, unknown>;
  const keys = Object.keys(m);
  const method = typeof m['method'] === 'string' ? m['method'] : undefined;
  const named = method !== undefined && recorded.has(fold(method));
  const requestLike = keys.some((k) => fold(k) === 'method') && keys.some((k) => fold(k) === 'id');
  const answerId = requestLike ? (isRequestId(m['id']) ? m['id'] : null) : undefined;
  const params = m['params'];
  const target =
    typeof params === 'object' && params !== null ? [(params as Record<string, unknown>)['name'], (params as Record<string, unknown>)['uri']].find((v) => typeof v === 'string') : undefined;
  const notification = !requestLike && keys.some((k) => fold(k) === 'method');
  const about = { answerId, notification, ...(method === undefined ? {} : { method: method.slice(0, 200) }), ...(typeof target === 'string' ? { target: target.slice(0, 200) } : {}) };
  const refuse = (code: Refusal['code'], problem: string, override: Partial<Refusal> = {}): Refusal => ({
    rpcCode: code === 'invalid_params' ? ErrorCode.InvalidParams : ErrorCode.InvalidRequest,
    code,
    problem,
    ...about,
    ...override,
  });

  const walked = walk(m, named);
  if (walked.members !== countMembers(text)) {
    // Which value of a repeated id was meant cannot be known: JSON-RPC answers such a request with id null.
    return refuse('ambiguous_keys', `${repeatedKey(text)}, and servers disagree on which value counts`, requestLike ? { answerId: null } : {});
  }
  if (walked.collision !== undefined) {
    const [a, b, where] = walked.collision;
    return refuse('ambiguous_keys', `its keys ${quote(a)} and ${quote(b)}${where === '' ? '' : ` in ${where}`} differ only in case or invisible characters, and servers disagree on which one counts`);
  }
  for (const k of keys) {
    const f = fold(k);
    if (ENVELOPE.has(f) && k !== f) return refuse('invalid_request', `its member ${quote(k)} is not spelled ${quote(f)}`);
  }
  if ('method' in m && method === undefined) return refuse('invalid_request', `its method is ${describeValue(m['method'])}, not a string`);
  if (method === undefined || !named) return undefined;
  const canonical = fold(method);
  if (method !== canonical) return refuse('invalid_request', `its method ${quote(method)} is not spelled ${quote(canonical)}`);
  if (m['jsonrpc'] !== '2.0') return refuse('invalid_request', 'jsonrpc' in m ? `its jsonrpc member is ${describeValue(m['jsonrpc'])}, not "2.0"` : 'it has no jsonrpc member ("2.0")');
  if (!('id' in m)) return refuse('invalid_request', `it has no id, so it is a notification, and a ${method} must be a request`);
  if (answerId === null) return refuse('invalid_request', `its id is ${describeValue(m['id'])}, and an id must be a string or an integer within ±(2^53−1)`);
  const extra = keys.find((k) => !REQUEST_MEMBERS.has(k));
  if (extra !== undefined) return refuse('invalid_request', `it has a member ${quote(extra)}, which a request does not have`);
  if (walked.unrepresentable !== undefined) return refuse('invalid_params', walked.unrepresentable);
  const wrong = paramsProblem(canonical, params, extraCallParams(m));
  return wrong === undefined ? undefined : refuse('invalid_params', wrong);
}

/**
 * What is wrong with the params of a recorded request, or undefined. `extra`: the tools/call
 * members the message's era adds (a modern MRTR retry's inputResponses and requestState, which
 * the relay records with the call).
 */
function paramsProblem(method: string, params: unknown, extra: ReadonlySet<string>): string | undefined {
  const lists = LIST_METHOD_NAMES.includes(method);
  if (params === undefined) return lists ? undefined : `it has no params, and ${method} needs ${method === 'resources/read' ? 'params.uri' : 'params.name'}`;
  if (!isPlainObject(params)) return `its params is ${describeValue(params)}, not an object`;
  for (const k of Object.keys(params)) {
    const f = fold(k);
    if (KNOWN_PARAMS.has(f) && k !== f) return `its params member ${quote(k)} is not spelled ${quote(f)}`;
    if (method === 'tools/call' && !TOOL_CALL_PARAMS.has(k) && !extra.has(k))
      return `its params has a member ${quote(k)}, which Witness would not record (tools/call takes name, arguments, _meta and task${extra.size === 0 ? '' : `, and ${[...extra].join(' and ')} in this protocol revision`})`;
  }
  const named = (key: string): string | undefined => {
    const v = params[key];
    return typeof v === 'string' && v !== '' ? undefined : `its params.${key} is ${describeValue(v)}, not a non-empty string`;
  };
  const object = (key: string): string | undefined => (params[key] === undefined || isPlainObject(params[key]) ? undefined : `its params.${key} is ${describeValue(params[key])}, not an object`);
  const state = params['requestState'] === undefined || typeof params['requestState'] === 'string' ? undefined : `its params.requestState is ${describeValue(params['requestState'])}, not a string`;
  if (method === 'tools/call') return named('name') ?? object('arguments') ?? object('_meta') ?? object('inputResponses') ?? state;
  if (method === 'prompts/get') return named('name') ?? object('arguments') ?? object('_meta');
  if (method === 'resources/read') return named('uri') ?? object('_meta');
  const cursor = params['cursor'];
  return cursor === undefined || typeof cursor === 'string' ? object('_meta') : `its params.cursor is ${describeValue(cursor)}, not a string`;
}

interface Walked {
  /** Object members in the parsed message; fewer than in the text means a key was repeated. */
  members: number;
  /** Two keys of one object with the same fold, and where that object is. */
  collision?: [string, string, string];
  /** Why a value cannot be recorded exactly (checked only when `values` is set). */
  unrepresentable?: string;
}

/**
 * One pass over the parsed message, with an explicit stack (JSON.parse accepts nesting deeper than
 * the call stack). `values`: also look for what the ledger cannot hold exactly (integers past
 * 2^53, which JSON.parse has already rounded; lone surrogates), so that such a call is refused
 * with a reason rather than failing to record.
 */
function walk(root: Record<string, unknown>, values: boolean): Walked {
  const out: Walked = { members: 0 };
  interface Container {
    v: object;
    parent: Container | undefined;
    key: string | number;
  }
  const where = (parent: Container, key?: string | number): string => {
    const parts: Array<string | number> = key === undefined ? [] : [key];
    for (let it: Container | undefined = parent; it?.parent !== undefined; it = it.parent) parts.push(it.key);
    parts.reverse();
    const show = (p: string | number, i: number) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `${i === 0 ? '' : '.'}${p}` : `[${quote(p)}]`);
    // A path thousands of levels deep is named by its ends.
    if (parts.length > 12)
      return `${parts.slice(0, 6).map(show).join('')}…(${parts.length - 10} levels)…${parts
        .slice(-4)
        .map((p, i) => show(p, i + 1))
        .join('')}`;
    return parts.map(show).join('');
  };
  const stack: Container[] = [{ v: root, parent: undefined, key: '' }];
  const visit = (c: unknown, parent: Container, key: string | number): void => {
    if (c !== null && typeof c === 'object') stack.push({ v: c, parent, key });
    else if (values && out.unrepresentable === undefined) {
      if (typeof c === 'number') {
        // canonical JSON's rule: below 1e21 JavaScript writes the rounded digits as if they were exact.
        if (Number.isInteger(c) && !Number.isSafeInteger(c) && Math.abs(c) < 1e21)
          out.unrepresentable = `its ${where(parent, key)} is an integer beyond ±(2^53−1), which JSON numbers do not carry exactly (send it as a string)`;
      } else if (typeof c === 'string' && !isWellFormedString(c)) {
        out.unrepresentable = `its ${where(parent, key)} contains a lone surrogate, which is not valid Unicode`;
      }
    }
  };
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const v = item.v;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) visit(v[i], item, i);
      continue;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    out.members += keys.length;
    // Keys that all fold to themselves cannot collide (a parsed object has no exact repeats).
    if (keys.length > 1 && out.collision === undefined && !keys.every((k) => SELF_FOLDING.test(k))) {
      const seen = new Map<string, string>();
      for (const k of keys) {
        const f = fold(k);
        const first = seen.get(f);
        if (first !== undefined) {
          out.collision = [first, k, where(item)];
          break;
        }
        seen.set(f, k);
      }
    }
    for (const k of keys) {
      if (values && out.unrepresentable === undefined && !isWellFormedString(k)) out.unrepresentable = `a key in ${where(item) || 'the message'} contains a lone surrogate, which is not valid Unicode`;
      visit(o[k], item, k);
    }
  }
  return out;
}

/**
 * The number of object members written in a JSON text that JSON.parse accepted: in valid JSON every
 * ':' outside a string separates a member name from its value.
 */
function countMembers(text: string): number {
  let n = 0;
  const len = text.length;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: to the next quote not escaped by an odd run of backslashes.
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i === -1) return n;
        let b = i - 1;
        while (text.charCodeAt(b) === 0x5c) b--;
        if ((i - b) % 2 === 1) break;
      }
    } else if (c === 0x3a) n++;
  }
  return n;
}

/** Names the first repeated key (the strict parser finds it, with its offset), for the refusal. */
function repeatedKey(text: string): string {
  try {
    strictParse(text);
  } catch (e) {
    const m = /duplicate property name ("(?:[^"\\]|\\.)*")/.exec(e instanceof Error ? e.message : '');
    if (m !== null) return `it gives the key ${m[1]!.slice(0, 80)} twice in one object`;
  }
  return 'it gives a key twice in one object';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * A name in a refusal, quoted, with every character outside printable ASCII written as a \u escape:
 * the point of many refusals is a character a person cannot see (a zero-width space) or cannot tell
 * apart (the Kelvin sign from K).
 */
function quote(s: string): string {
  const q = JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return q.length <= 60 ? q : `${q.slice(0, 56)}…"`;
}

/** A value as a person reads it in a refusal: true, null, an object, an array, 5.5, "…". */
function describeValue(v: unknown): string {
  if (v === undefined) return 'missing';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return 'a number too large to represent';
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) return 'an integer beyond ±(2^53−1)';
    return String(v);
  }
  if (Array.isArray(v)) return 'an array';
  if (v !== null && typeof v === 'object') return 'an object';
  return typeof v === 'string' ? quote(v) : String(v);
}

/** The JSON-RPC error message a refused client gets: one sentence. */
export function refusalMessage(r: Refusal): string {
  return `${r.code === 'invalid_params' ? 'Invalid params' : 'Invalid request'}: ${r.problem}; it was not sent to the server.`;
}

/** What the ledger keeps of a refusal: a sentence and the facts (the message's first 1,024 characters, not all of it). */
export function refusalRecord(r: Refusal, text: string): { message: string; data: Record<string, unknown> } {
  // Named by its method only when that is unambiguous and spelled as the protocol spells it.
  const plain = r.code !== 'ambiguous_keys' && r.method !== undefined && /^[a-z][\w/.-]{0,59}$/.test(r.method);
  const what = plain ? `${r.method}${r.notification ? ' notification' : ''}` : 'message';
  return {
    message: `Refused a ${what} from the client because ${r.problem}; it was not forwarded.`,
    data: {
      refused: true,
      problem: r.problem,
      ...(r.method === undefined ? {} : { method: r.method }),
      ...(r.target === undefined ? {} : { target: r.target }),
      ...(r.answerId === undefined || r.answerId === null ? {} : { jsonrpc_id: r.answerId }),
      ...(r.notification ? { notification: true } : {}),
      line: text.slice(0, 1024),
      chars: text.length,
    },
  };
}
