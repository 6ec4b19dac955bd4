import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { LineSplitter } from './jsonrpc.js';

/**
 * An MCP server run as a child process speaking newline-delimited JSON-RPC on stdin/stdout: what
 * the stdio proxy wraps, and what the HTTP gateway starts once per MCP session. Framing is done on
 * bytes (LineSplitter), so every frame reaches the relay exactly as the server wrote it.
 */

export interface StdioUpstreamOptions {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  /** How long the server gets to exit after its stdin closes, before SIGTERM (then SIGKILL). */
  stopTimeoutMs?: number | undefined;
  /** The server's stderr: shared with ours (default) or dropped. */
  stderr?: 'inherit' | 'ignore';
  /** Every line the server writes to stdout. */
  onLine: (line: string) => void;
}

export interface UpstreamExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the command could not be started at all (ENOENT, EACCES). */
  spawnError?: Error;
}

export class StdioUpstream {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private spawnError: Error | undefined;
  /** Resolves once the process has exited and its stdout is closed. */
  readonly exited: Promise<UpstreamExit>;

  constructor(private readonly o: StdioUpstreamOptions) {
    const child = spawn(o.command, [...o.args], {
      stdio: ['pipe', 'pipe', o.stderr ?? 'inherit'],
      env: o.env ?? process.env,
      ...(o.cwd === undefined ? {} : { cwd: o.cwd }),
    }) as ChildProcessByStdio<Writable, Readable, null>;
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, ...(this.spawnError === undefined ? {} : { spawnError: this.spawnError }) })));
    child.once('error', (e) => {
      // ENOENT / EACCES: 'close' still follows; remember why.
      this.spawnError = e;
    });
    child.stdin.on('error', () => undefined); // EPIPE after the server died: 'close' reports it.
    const lines = new LineSplitter((line) => o.onLine(line));
    child.stdout.on('data', (chunk: Buffer) => lines.push(chunk));
    child.stdout.on('end', () => lines.end());
  }

  /** The command line, for labels and messages. */
  get commandLine(): string {
    return [this.o.command, ...this.o.args].join(' ');
  }

  send(line: string): void {
    const stdin = this.child.stdin;
    if (stdin.destroyed || !stdin.writable) return;
    stdin.write(`${line}\n`);
  }

  /** Closes the server's stdin, then SIGTERM, then SIGKILL, each after the stop timeout. */
  async stop(): Promise<void> {
    const wait = this.o.stopTimeoutMs ?? 1000;
    const exited = (ms: number) => Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    this.child.stdin.end();
    if (await exited(wait)) return;
    this.child.kill('SIGTERM');
    if (await exited(wait)) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** One sentence saying how the server ended, for records and for a person. */
  describe(exit: UpstreamExit): string {
    const how = exit.spawnError !== undefined ? `could not be started (${exit.spawnError.message})` : exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    return `The MCP server "${this.commandLine}" ${how}.`;
  }
}

/**
 * An upstream child's environment: ours plus its own, minus the ledger's secrets, which a server
 * must not see: Witness's own variables (WITNESS_*: the store URL, which may carry a password) and
 * libpq's (PG*: PGPASSWORD, PGPASSFILE, PGUSER, PGHOST, PGSERVICE, PGSSLKEY, …), which a
 * PostgreSQL ledger is opened with. A server that needs one of them gets it from its own `env`.
 * DATABASE_URL and the like are left alone: Witness never reads them, so they are the server's.
 */
export function childEnv(extra: Record<string, string> | undefined, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(from)) if (!isLedgerSecret(k)) env[k] = v;
  return { ...env, ...extra };
}

function isLedgerSecret(name: string): boolean {
  return name.startsWith('WITNESS_') || /^PG[A-Z_]+$/.test(name);
}
