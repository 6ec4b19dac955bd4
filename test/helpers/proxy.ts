import { spawn } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { BIN, REPO_ROOT } from './ledger.js';

/** The command line of `witness proxy` for agent support-bot, recording into `store`, in front of `server` (command first). */
export function proxyArgs(store: string, server: readonly string[], extra: readonly string[] = []): string[] {
  return [process.execPath, BIN, 'proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, ...extra, '--', ...server];
}

/** A real MCP SDK client, connected over stdio to `args` (command first), introducing itself as `clientName` version 9.9.9. */
export async function stdioClient(args: readonly string[], clientName = 'test-client'): Promise<Client> {
  const [command, ...rest] = args as [string, ...string[]];
  const client = new Client({ name: clientName, version: '9.9.9' });
  await client.connect(new StdioClientTransport({ command, args: rest, cwd: REPO_ROOT, stderr: 'pipe' }));
  return client;
}

type Message = Record<string, unknown>;

/** A `witness proxy` driven line by line. */
export interface RawProxy {
  /** Writes one line (a frame, or anything a hostile client would send) to the proxy's stdin. */
  send(line: string): void;
  /** The next response the proxy writes to stdout (a message with an `id`); server notifications before it are skipped. */
  next(): Promise<Message>;
  /** Every message written to stdout, notifications included, up to and including the answer to `id` (at most 15 s). */
  until(id: number): Promise<Message[]>;
  /** Ends stdin and resolves with the exit code. */
  close(): Promise<number | null>;
  /** Ends stdin without waiting for the exit (a client that hangs up, then perhaps signals). */
  endInput(): void;
  /** Sends the proxy a signal (what a client's SDK does when the proxy is slow to exit). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves with the exit code when the process ends by itself. */
  exited: Promise<number | null>;
  /** What the proxy has written to stderr so far. */
  stderr(): string;
}

/**
 * Runs `witness <args>` (a proxy) for frames and input no well-behaved SDK client would send.
 * Every line it writes to stdout must be JSON: a line that is not fails the next read.
 */
export function rawProxy(args: string[]): RawProxy {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const messages: Message[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  let stderr = '';
  let notJson: string | undefined;
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        messages.push(JSON.parse(line) as Message);
      } catch {
        notJson ??= line;
      }
      waiters.splice(0).forEach((w) => w());
    }
  });
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const readable = (): void => {
    if (notJson !== undefined) throw new Error(`the proxy wrote a line that is not JSON to stdout: ${notJson}`);
  };
  const hasId = (m: Message, id?: number): boolean => m !== null && typeof m === 'object' && 'id' in m && (id === undefined || m['id'] === id);
  return {
    send: (line: string) => child.stdin.write(`${line}\n`),
    async next(): Promise<Message> {
      for (;;) {
        readable();
        const at = messages.findIndex((m) => hasId(m));
        if (at !== -1) return messages.splice(0, at + 1)[at]!;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    async until(id: number): Promise<Message[]> {
      const deadline = Date.now() + 15_000;
      for (;;) {
        readable();
        const at = messages.findIndex((m) => hasId(m, id));
        if (at !== -1) return messages.splice(0, at + 1);
        if (Date.now() > deadline) throw new Error(`no answer to ${id}; got ${JSON.stringify(messages)}; stderr: ${stderr}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise((r) => setTimeout(r, 100))]);
      }
    },
    async close(): Promise<number | null> {
      child.stdin.end();
      return exited;
    },
    endInput: () => child.stdin.end(),
    kill: (signal) => child.kill(signal),
    exited,
    stderr: () => stderr,
  };
}
