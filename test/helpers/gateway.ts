import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, expect } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { keySha256 } from '../../src/gateway/index.js';
import type { Ledger } from '../../src/store/index.js';
import { BIN, REPO_ROOT, oneSentence } from './ledger.js';

/**
 * Real `witness gateway` (and `witness serve`) processes from the built dist/, in front of the
 * real server-everything, with the official MCP SDK client: what the approval tests across
 * processes share.
 */

/** server-everything's entry point, run over stdio behind the gateway. */
export const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');

/** The API key agent `support-bot` calls the gateway with. */
export const AGENT_KEY = 'wk_support-test-key-0000000000000000000000000000';

/** Fails the test file at once, saying what to run, when dist/ (which bin/witness.js runs) has not been built. */
export function requireBuild(): void {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
  }
}

/**
 * Writes a gateway config into `dir` and returns its path: listening on a free loopback port,
 * `policy` applied, decisions looked for every `pollMs`, agent support-bot known by AGENT_KEY,
 * and server-everything mounted at /mcp/everything.
 */
export function writeGatewayConfig(dir: string, options: { policy: string; pollMs: number }): string {
  const config = path.join(dir, `gateway-${randomBytes(4).toString('hex')}.yaml`);
  fs.writeFileSync(
    config,
    [
      'listen: "127.0.0.1:0"',
      `policy: ${JSON.stringify(options.policy)}`,
      `approvals: { poll_ms: ${options.pollMs} }`,
      'agents:',
      `  - { id: support-bot, key_sha256: "${keySha256(AGENT_KEY)}" }`,
      'servers:',
      '  - name: everything',
      '    path: /mcp/everything',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: ${JSON.stringify([EVERYTHING, 'stdio'])}`,
      '',
    ].join('\n'),
  );
  return config;
}

/** A listening `witness` process: the URL it printed, and all it has written so far. */
export interface Listening {
  url: string;
  output: () => string;
}

/** Starts `witness <args>` and resolves once it prints `listening on <url>` on `stream` (the gateway says so on stderr, `witness serve` on stdout). */
export type StartWitness = (args: string[], options?: { env?: Record<string, string>; stream?: 'stdout' | 'stderr' }) => Promise<Listening>;

/**
 * For one test file: a way to start `witness` processes, every one of them killed after the
 * file's tests. Call it at the top of the file (it registers an afterAll hook).
 */
export function witnessProcesses(): StartWitness {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  return (args, { env = {}, stream = 'stderr' } = {}) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    return new Promise<Listening>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`witness ${args[0]} did not start: ${out}`)), 20_000);
      const seen = (c: Buffer) => {
        out += c.toString();
        const m = /listening on (http:\/\/[^\s,;]+)/.exec(out);
        if (m !== null) {
          clearTimeout(t);
          resolve({ url: m[1]!, output: () => out });
        }
      };
      child[stream].on('data', seen);
      child[stream === 'stdout' ? 'stderr' : 'stdout'].on('data', (c: Buffer) => void (out += c.toString()));
      child.once('exit', (code) => reject(new Error(`witness ${args[0]} exited (${code}): ${out}`)));
    });
  };
}

/** The official SDK client, connected to server-everything through the gateway at `url` as support-bot. */
export async function mcpClient(url: string, name: string): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp/everything`), { requestInit: { headers: { Authorization: `Bearer ${AGENT_KEY}` } } }));
  return client;
}

/** What `check` resolves to once it is not undefined, looked at every 20 ms; fails naming `what` after `ms`. */
export async function until<T>(check: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The ledger's events of `kind` (up to 1,000). */
export async function eventsOf(reader: Ledger, kind: string): Promise<StoredEvent[]> {
  return (await reader.query({ kind, limit: 1000 })).events;
}

/** The text of an MCP tool result's first content item. */
export const text = (r: object) => (r as { content: Array<{ text: string }> }).content[0]!.text;

/**
 * One round of the consume-once race between two gateways holding identical calls on one grant:
 * `c1`'s call to get-sum with `a` makes the approval request, `c2`'s identical call waits on it,
 * `decide` approves the request (in whatever process the test chooses) and gives the decision's
 * id. Asserts that exactly one call is released, that the other is refused in one sentence, and
 * that the ledger holds one release of the decision. True when the ledger's unique index refused
 * the loser, false when the loser read the consumption first.
 */
export async function raceOneGrant(clients: readonly [Client, Client], reader: Ledger, round: number, decide: (requestId: string) => Promise<string>): Promise<boolean> {
  const [c1, c2] = clients;
  const a = 1000 + round;
  // The first gateway's call makes the request; the second's identical call waits on it.
  const first = c1.callTool({ name: 'get-sum', arguments: { a, b: 1 } });
  const request = await until(async () => (await eventsOf(reader, 'approval.request')).find((e) => (e.data?.['arguments'] as { a?: number }).a === a), `round ${round}'s request`);
  const second = c2.callTool({ name: 'get-sum', arguments: { a, b: 1 } });
  await until(
    async () => (await eventsOf(reader, 'note')).find((e) => JSON.stringify(e.data).includes(`Waiting on approval request ${request.id}`)),
    `round ${round}'s second call to wait on the request`,
  );
  const decisionId = await decide(request.id);
  const answers = await Promise.all([first, second]);
  const ok = answers.filter((r) => r.isError !== true);
  const refused = answers.filter((r) => r.isError === true);
  expect(ok, `round ${round}`).toHaveLength(1);
  expect(text(ok[0]!)).toContain(String(a + 1));
  expect(refused, `round ${round}`).toHaveLength(1);
  expect(oneSentence(text(refused[0]!))).toMatch(
    /^The call to get-sum was not made: its approval \(request [0-9a-f-]+\) (has already released a call, and a grant is used once|does not match it \(the approval was already used by event [0-9a-f-]+\))\.$/,
  );
  const releases = (await eventsOf(reader, 'policy.decision')).filter((e) => (e.data?.['approval'] as { decision_id?: string } | undefined)?.decision_id === decisionId);
  expect(releases, `round ${round}`).toHaveLength(1);
  return /grant is used once/.test(text(refused[0]!));
}
