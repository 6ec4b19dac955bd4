import { spawn } from 'node:child_process';
import { BIN, REPO_ROOT, runBin } from './ledger.js';

/**
 * A real `witness serve` from the built dist/ that a test drives to its end (what the serve
 * --monitor tests share): started on a free loopback port, all it prints kept, stopped by SIGTERM
 * as an operator stops it, its exit code awaited.
 */

/** What `check` returns once it is not undefined, looked at every 100 ms; fails naming `what` after `ms`. */
export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A listening `witness serve`. */
export interface Serving {
  url: string;
  /** Its stdout and stderr so far. */
  out: () => string;
  err: () => string;
  /** Sends SIGTERM; `exited` then resolves to the exit code. */
  stop: () => void;
  exited: Promise<number | null>;
}

/**
 * Starts `witness serve --store <store> --port 0 <args>` and resolves once it prints `listening on
 * <url>`; when it does not within `ms`, kills it and fails with what it wrote on stderr.
 */
export async function startServe(store: string, args: string[], options: { env?: Record<string, string>; ms?: number } = {}): Promise<Serving> {
  const child = spawn(process.execPath, [BIN, 'serve', '--store', store, '--port', '0', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const stop = () => void child.kill('SIGTERM');
  try {
    const url = await waitFor(() => /listening on (http:\/\/\S+?) /.exec(out)?.[1], `serve to listen (${err})`, options.ms);
    return { url, out: () => out, err: () => err, stop, exited };
  } catch (e) {
    stop();
    throw e;
  }
}

/** A new API key with the auditor role (what /metrics asks for), made by `witness keys create`. */
export async function auditorKey(store: string): Promise<string> {
  const r = await runBin(['keys', 'create', '--role', 'auditor', '--name', 'dana', '--store', store, '--json']);
  return (JSON.parse(r.stdout) as { key: string }).key;
}
