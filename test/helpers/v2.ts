import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport, type ClientOptions } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { StoredEvent } from '../../src/core/index.js';
import { REPO_ROOT } from './ledger.js';

/**
 * Clients on the official v2 SDK (`@modelcontextprotocol/client`), for the 2026-07-28 era. The v2
 * Client speaks 2025-11-25 unless told otherwise, so every helper here takes the negotiation mode:
 * 'auto' probes with server/discover and falls back, `{ pin }` insists on one modern version.
 */

/** The real dual-era v2 McpServer the gateway tests stand in front of (`stdio` or `http 0`). */
export const V2_SERVER = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'mcp-v2-server.mjs');

/** How the v2 Client picks its protocol version. */
export type Negotiation = 'auto' | 'legacy' | { pin: string };

/** A v2 Client introducing itself as `name` version 2.0.0, negotiating as `negotiation`. */
export function v2Client(name = 'v2-test', negotiation: Negotiation = 'auto', options: Omit<ClientOptions, 'versionNegotiation'> = {}): Client {
  return new Client({ name, version: '2.0.0' }, { ...options, versionNegotiation: { mode: negotiation } });
}

export interface V2Stdio {
  client: Client;
  /** Everything the launched process wrote to stderr so far (the proxy's and, through it, the server's). */
  stderr(): string;
}

/** A v2 Client connected over stdio to `args` (command first), started in the repository root. */
export async function v2StdioClient(
  args: readonly string[],
  o: { name?: string; negotiation?: Negotiation; env?: Record<string, string>; options?: Omit<ClientOptions, 'versionNegotiation'> } = {},
): Promise<V2Stdio> {
  const [command, ...rest] = args as [string, ...string[]];
  const client = v2Client(o.name ?? 'v2-test', o.negotiation ?? 'auto', o.options ?? {});
  const transport = new StdioClientTransport({
    command,
    args: rest,
    cwd: REPO_ROOT,
    stderr: 'pipe',
    ...(o.env === undefined ? {} : { env: { ...(process.env as Record<string, string>), ...o.env } }),
  });
  let stderr = '';
  transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  await client.connect(transport);
  return { client, stderr: () => stderr };
}

/** The protocol version of the 2026-07-28 era. */
export const MODERN = '2026-07-28';

/** The `_meta` envelope a modern request carries (a raw client's, as `raw` version 1). */
const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } };

/** A raw modern POST (what the v2 client sends) as `key`'s agent, with `_meta` extras and header overrides. */
export function modernPost(
  url: string,
  key: string,
  body: { id?: number | string; method: string; params?: Record<string, unknown> },
  meta: Record<string, unknown> = {},
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  const params: Record<string, unknown> = { ...body.params, _meta: { ...ENVELOPE, ...meta } };
  const name = typeof params['name'] === 'string' ? params['name'] : typeof params['uri'] === 'string' ? params['uri'] : undefined;
  return fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      Authorization: `Bearer ${key}`,
      'MCP-Protocol-Version': MODERN,
      'Mcp-Method': body.method,
      ...(name === undefined ? {} : { 'Mcp-Name': name }),
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', ...(body.id === undefined ? {} : { id: body.id }), method: body.method, params }),
    ...(signal === undefined ? {} : { signal }),
  });
}

/** A v2 Client (auto mode) introducing itself as `name`, connected over Streamable HTTP to `url` with API key `key`. */
export async function v2HttpClient(url: string, key: string, name = 'v2-test'): Promise<Client> {
  const client = v2Client(name, 'auto');
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  return client;
}

/** The v2 fixture server listening over HTTP on a free loopback port. */
export interface V2HttpServer {
  url: string;
  child: ChildProcess;
  /** What it has written to stderr so far. */
  log(): string;
}

/** Starts V2_SERVER over HTTP (`http 0`), with `env` added to this process's, and resolves once it says where it listens. */
export async function startV2HttpServer(env: Record<string, string> = {}): Promise<V2HttpServer> {
  const child = spawn(process.execPath, [V2_SERVER, 'http', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the v2 server exited with ${code}: ${log}`)));
  });
  return { url, child, log: () => log };
}

/** An event as `kind[:tool]`, for comparing what a session recorded. */
export const eventLabel = (e: StoredEvent): string => `${e.kind}${typeof e.data?.['tool'] === 'string' ? `:${e.data['tool']}` : ''}`;

/**
 * The same calls to the v2 fixture in order, through whichever client (direct, or through Witness),
 * each answer (or error) as JSON text for a byte comparison, the progress notifications last:
 * tools/list, echo `echoText`, fail, throws, nope (no such tool), slow with progress, a resource
 * read and a prompt.
 */
export async function v2Script(client: Client, echoText: string): Promise<string[]> {
  const out: string[] = [];
  const step = async (fn: () => Promise<unknown>) => {
    try {
      out.push(JSON.stringify(await fn()));
    } catch (e) {
      out.push(`error ${String((e as { code?: unknown }).code)} ${(e as Error).message}`);
    }
  };
  const progress: unknown[] = [];
  await step(() => client.listTools());
  await step(() => client.callTool({ name: 'echo', arguments: { text: echoText } }));
  await step(() => client.callTool({ name: 'fail', arguments: {} }));
  await step(() => client.callTool({ name: 'throws', arguments: {} }));
  await step(() => client.callTool({ name: 'nope', arguments: {} }));
  await step(() => client.callTool({ name: 'slow', arguments: { steps: 2 } }, { onprogress: (p) => progress.push(p) }));
  await step(() => client.readResource({ uri: 'mem://counter' }));
  await step(() => client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } }));
  out.push(JSON.stringify(progress));
  return out;
}

/** The session v2Script leaves in the ledger, as eventLabel gives it: every call and its result, tools/list not among them. */
export const V2_SCRIPT_EVENTS = [
  'session.start',
  'tool.call:echo',
  'tool.result:echo',
  'tool.call:fail',
  'tool.result:fail',
  'tool.call:throws',
  'tool.result:throws',
  'tool.call:nope',
  'tool.result:nope',
  'tool.call:slow',
  'tool.result:slow',
  'tool.call:resources/read',
  'tool.result:resources/read',
  'tool.call:prompts/get',
  'tool.result:prompts/get',
  'session.end',
];
