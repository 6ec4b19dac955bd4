/** The only place the CLI writes to the terminal, so tests can capture everything. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

/** What became of a standard stream this process writes to. */
interface StreamState {
  /** Nothing more can be written: the reader went away or the stream failed. */
  closed: boolean;
  /** A failure other than the reader going away (EPIPE): output the user asked for was lost. */
  failure: NodeJS.ErrnoException | undefined;
}

const streams = new WeakMap<NodeJS.WriteStream, StreamState>();

/**
 * The state of `stream`, listening for its errors from the first use. A pipe reports a write
 * failure as an 'error' event after the write returned; unheard, Node turns it into an uncaught
 * exception and exit code 1 — so `witness verify | head -1` could fail a passing ledger. A reader
 * that closes early (EPIPE, as `head` does) is no error of ours: what follows is dropped and the
 * command still exits with its verdict. Any other failure is kept for `outputFailure()`.
 */
function stateOf(stream: NodeJS.WriteStream): StreamState {
  let state = streams.get(stream);
  if (state === undefined) {
    const s: StreamState = { closed: false, failure: undefined };
    stream.on('error', (e: NodeJS.ErrnoException) => {
      s.closed = true;
      if (e.code !== 'EPIPE') s.failure ??= e;
    });
    streams.set(stream, s);
    state = s;
  }
  return state;
}

/** Writes to a standard stream unless it has closed; see `stateOf`. */
export function writeTo(stream: NodeJS.WriteStream, text: string): void {
  const state = stateOf(stream);
  if (state.closed || stream.destroyed) return;
  stream.write(text);
}

/** Listens for the standard streams' errors before anything is written (bin/witness.js calls it first). */
export function guardStandardStreams(): void {
  stateOf(process.stdout);
  stateOf(process.stderr);
}

/**
 * A write failure of standard output other than its reader going away (EIO, ENOSPC on a pipe's
 * far side, ...), or undefined: output was lost, so a command that succeeded must not say so.
 */
export function outputFailure(): NodeJS.ErrnoException | undefined {
  return streams.get(process.stdout)?.failure;
}

export const processIo: Io = {
  out: (t) => writeTo(process.stdout, t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => writeTo(process.stderr, t.endsWith('\n') ? t : `${t}\n`),
  isTTY: process.stdout.isTTY === true,
};

/** What a terminal acts on instead of printing (see `inert`), and the subset JSON.stringify leaves raw. */
const ACTIVE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
const hex4 = (c: string) => c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');

export function printJson(io: Io, value: unknown): void {
  io.out(jsonText(value));
}

/**
 * JSON with every character a terminal could act on written as a `\uXXXX` escape. JSON.stringify
 * already escapes C0 controls; DEL, C1 controls (U+009B is an 8-bit CSI to many terminals), bidi
 * overrides and line separators it leaves raw. They can only occur inside strings, where the escape
 * parses back to the same character, so the output stays exact JSON.
 */
export function jsonText(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(RAW_IN_JSON, (c) => `\\u${hex4(c)}`);
}

/** A JSON text serialised elsewhere (canonical JSON) with jsonText's escapes: the same JSON, inert on a terminal. */
export function inertJsonText(json: string): string {
  return json.replace(RAW_IN_JSON, (c) => `\\u${hex4(c)}`);
}

/**
 * Recorded text is agent-controlled: a tool result or note can hold ANSI CSI/OSC sequences that
 * clear the operator's screen, retitle the window, plant a hyperlink, or (with CR, backspace or a
 * newline) overwrite and fake lines of our own output. Human-readable output shows every such
 * character as a visible stand-in instead of deleting it, so the attempt itself stays visible:
 * C0 controls and DEL as their Unicode control pictures (ESC as ␛, LF as ␊, BEL as ␇), C1
 * controls, bidi controls and line separators as `<U+XXXX>`. `keepNewlines` lets the CLI's own
 * multi-line output through; values interpolated into one line never keep them.
 */
export function inert(text: string, keepNewlines = false): string {
  return text.replace(ACTIVE, (c) => {
    if (c === '\n' && keepNewlines) return c;
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return '\u2421';
    return `<U+${hex4(c)}>`;
  });
}

/** The same Io with everything written through `inert` (keeping the CLI's own newlines). */
export function inertIo(io: Io): Io {
  return { out: (t) => io.out(inert(t, true)), err: (t) => io.err(inert(t, true)), isTTY: io.isTTY };
}

/** A plain aligned table; cells are made inert and cut, to keep one event per line. */
export function table(headers: string[], rows: string[][], maxWidth = 48): string {
  const cut = (raw: string) => {
    const s = inert(raw);
    return s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s;
  };
  const cells = [headers, ...rows].map((r) => r.map(cut));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A one-line progress indicator on a TTY; silent otherwise (logs stay clean). */
export function progress(io: Io, label: string): { update: (done: number, total: number) => void; done: () => void } {
  if (!io.isTTY || process.stderr.isTTY !== true) return { update: () => undefined, done: () => undefined };
  let last = 0;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      writeTo(process.stderr, `\r${label} ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} (${pct}%)`);
    },
    done() {
      writeTo(process.stderr, '\r\x1b[K');
    },
  };
}
