import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, readEvents } from '../helpers/ledger.js';
import { EVERYTHING, requireBuild } from '../helpers/gateway.js';
import { startInProcessGateway, type InProcessGateway } from '../helpers/http-gateway.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The README's "Connecting MCP clients" snippets, run as written: each fenced block marked
 * `<!-- mcp-client-config: <client> -->` must be valid JSON in its client's shape; its stdio entry
 * is launched through the official SDK client's stdio transport (as the editor would launch it),
 * with only `npx witness` and `npx -y @modelcontextprotocol/server-everything` resolved to this
 * checkout's bin/witness.js and installed server-everything, and the store moved to a temporary
 * file; its HTTP entry is connected to a real in-process `witness gateway` with the header as the
 * client would expand it. The ledger must hold the call under the agent the snippet names. The
 * Claude Code and MCP Inspector command lines are run the same way.
 */

requireBuild();
const README = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
const KEY = 'wk_docs-test-key-000000000000000000000000000000000';
const GATEWAY_AGENT = 'gateway-docs-bot';
const dir = tempDir('witness-docs-clients-');

/** How each client writes the key variable in a header, and the variables it fills in paths. */
const CLIENTS: Record<string, { key?: string; vars: string[] }> = {
  'claude-desktop': { vars: [] },
  'claude-code': { key: '${WITNESS_GATEWAY_KEY}', vars: ['${HOME}'] },
  cursor: { key: '${env:WITNESS_GATEWAY_KEY}', vars: ['${userHome}'] },
  vscode: { key: '${input:witness-key}', vars: ['${workspaceFolder}'] },
};

interface Entry {
  type?: string;
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  url?: string;
  headers?: Record<string, string>;
}

function snippets(): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of README.matchAll(/<!-- mcp-client-config: ([\w-]+) -->\n```json\n([\s\S]*?)\n```/g)) found.set(m[1]!, m[2]!);
  return found;
}

/** The entry's command line with this checkout's witness and server-everything in place of the npx downloads, and the store in `store`. */
function resolveCommand(words: readonly string[], store: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === 'npx' && words[i + 1] === 'witness') {
      out.push(process.execPath, BIN);
      i += 1;
    } else if (w === 'npx' && words[i + 1] === '-y' && words[i + 2] === '@modelcontextprotocol/server-everything') {
      out.push(process.execPath, EVERYTHING);
      i += 2;
    } else if (w === '--store') {
      expect(words[i + 1], 'a --store value').toMatch(/^sqlite:(\/|\$\{[A-Za-z]+\}\/|\$HOME\/)/);
      out.push('--store', `sqlite:${store}`);
      i += 1;
    } else out.push(w);
  }
  return out;
}

/** Runs `argv` (command first) as a stdio MCP server through the SDK client, calls echo, and returns the agent the ledger recorded the call under. */
async function callOverStdio(argv: readonly string[], env: Record<string, string>, store: string, marker: string): Promise<{ agent: string; server: unknown }> {
  const [command, ...args] = argv as [string, ...string[]];
  const client = new Client({ name: 'docs-client', version: '1.0.0' });
  const transport = new StdioClientTransport({ command, args, cwd: REPO_ROOT, stderr: 'pipe', env: { ...(process.env as Record<string, string>), ...env } });
  let stderr = '';
  transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  try {
    await client.connect(transport);
    const r = await client.callTool({ name: 'echo', arguments: { message: marker } });
    expect(JSON.stringify(r.content)).toContain(marker);
  } catch (e) {
    throw new Error(`${argv.join(' ')} failed: ${e instanceof Error ? e.message : String(e)}\n${stderr}`, { cause: e });
  } finally {
    await client.close();
  }
  const events = await readEvents(store);
  const call = events.find((e) => e.kind === 'tool.call' && JSON.stringify(e.data).includes(marker));
  expect(call, `the ledger holds the call ${marker}`).toBeDefined();
  return { agent: call!.agent.id, server: (call!.data as { server?: unknown }).server };
}

let gw: InProcessGateway;

beforeAll(async () => {
  gw = await startInProcessGateway(dir, [{ id: GATEWAY_AGENT, key: KEY }], [{ name: 'everything', path: '/mcp/everything', script: EVERYTHING }]);
});

afterAll(() => gw?.close());

/** Connects to the README's gateway URL (its host and port replaced by the test gateway's) with `headers`, calls echo, returns the recorded agent. */
async function callOverHttp(url: string, headers: Record<string, string>, marker: string): Promise<string> {
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:8808\//);
  const client = new Client({ name: 'docs-client', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url.replace('http://127.0.0.1:8808', gw.url)), { requestInit: { headers } }));
  const r = await client.callTool({ name: 'echo', arguments: { message: marker } });
  expect(JSON.stringify(r.content)).toContain(marker);
  await client.close();
  const call = (await readEvents(gw.store)).find((e) => e.kind === 'tool.call' && JSON.stringify(e.data).includes(marker));
  expect(call, `the gateway recorded ${marker}`).toBeDefined();
  return call!.agent.id;
}

describe('the README configurations for MCP clients work as written', () => {
  it('the README has one marked JSON block for each of Claude Desktop, Claude Code, Cursor and VS Code, each valid JSON', () => {
    const found = snippets();
    expect([...found.keys()].sort()).toEqual(Object.keys(CLIENTS).sort());
    for (const [name, text] of found) expect(() => JSON.parse(text) as unknown, name).not.toThrow();
  });

  for (const [name, client] of Object.entries(CLIENTS)) {
    it(`${name}: every entry has its client's shape, the stdio entry runs witness proxy in front of server-everything, the HTTP entry reaches the gateway with the key header`, async () => {
      const json = JSON.parse(snippets().get(name)!) as { mcpServers?: Record<string, Entry>; servers?: Record<string, Entry>; inputs?: Array<{ id: string; password?: boolean }> };
      // VS Code's file has `servers` with a type on each; the others `mcpServers`.
      const entries = name === 'vscode' ? json.servers : json.mcpServers;
      expect(entries, `${name}'s top-level key`).toBeDefined();
      let stdio = 0;
      let httpEntries = 0;
      for (const [id, entry] of Object.entries(entries!)) {
        if (name === 'vscode' || name === 'claude-code') expect(['stdio', 'http'], `${id}.type`).toContain(entry.type);
        if (entry.command !== undefined) {
          stdio += 1;
          const store = tempDb(dir);
          const args = (entry.args ?? []).map((a) => client.vars.reduce((s, v) => s.replaceAll(v, dir), a));
          expect(args.slice(0, 2)).toEqual(['witness', 'proxy']);
          const env = Object.fromEntries(Object.entries(entry.env ?? {}).map(([k, v]) => [k, k === 'WITNESS_STORE' ? `sqlite:${store}` : v]));
          const agent = args[args.indexOf('--agent') + 1]!;
          const got = await callOverStdio(resolveCommand([entry.command, ...args], store), env, store, `${name} over stdio`);
          expect(got.agent).toBe(agent);
        } else {
          httpEntries += 1;
          expect(entry.url, `${id}.url`).toBeDefined();
          const auth = entry.headers?.['Authorization'];
          expect(auth).toBe(`Bearer ${client.key}`);
          if (name === 'vscode') expect(json.inputs).toContainEqual(expect.objectContaining({ id: 'witness-key', password: true }));
          const agent = await callOverHttp(entry.url!, { Authorization: auth!.replace(client.key!, KEY) }, `${name} over http`);
          expect(agent).toBe(GATEWAY_AGENT);
        }
      }
      expect(stdio).toBe(1);
      expect(httpEntries).toBe(client.key === undefined ? 0 : 1);
    });
  }

  it('the claude mcp add lines: the stdio one launches witness proxy, the http one reaches the gateway with its header', async () => {
    const stdioLine = /^ {4}claude mcp add --transport stdio \S+ -- (.*)$/m.exec(README);
    expect(stdioLine).not.toBeNull();
    const store = tempDb(dir);
    const words = stdioLine![1]!.replaceAll('$HOME', dir).split(' ');
    expect(words.slice(0, 3)).toEqual(['npx', 'witness', 'proxy']);
    expect((await callOverStdio(resolveCommand(words, store), {}, store, 'claude mcp add stdio')).agent).toBe('claude-code');

    const httpLine = /^ {4}claude mcp add --transport http \S+ (\S+) --header "Authorization: Bearer \$WITNESS_GATEWAY_KEY"$/m.exec(README);
    expect(httpLine).not.toBeNull();
    expect(await callOverHttp(httpLine![1]!, { Authorization: `Bearer ${KEY}` }, 'claude mcp add http')).toBe(GATEWAY_AGENT);
  });

  it('the MCP Inspector recipes: the command it is given has no second --, and witness proxy takes npx -y … as the server', async () => {
    const lines = [...README.matchAll(/^ {4}npx @modelcontextprotocol\/inspector (--cli )?-- (.*)$/gm)];
    expect(lines).toHaveLength(2);
    for (const [i, m] of lines.entries()) {
      // What the Inspector launches: everything after its own `--`, less its CLI mode's own options at the end.
      const words = m[2]!.replace(/ --method .*$/, '').split(' ');
      expect(
        words.filter((w) => w === '--'),
        'a second -- would be split again by the Inspector',
      ).toEqual([]);
      expect(words).toContain('-y');
      const store = tempDb(dir);
      // The recipe leaves the store to $WITNESS_STORE (or ./witness.db), as the Inspector would.
      const got = await callOverStdio(resolveCommand(words, store), { WITNESS_STORE: `sqlite:${store}` }, store, `inspector ${i}`);
      expect(got.agent).toBe('inspector');
    }
    const http = /^ {4}npx @modelcontextprotocol\/inspector --cli (http:\S+) --header "Authorization: Bearer \$WITNESS_GATEWAY_KEY"/m.exec(README);
    expect(http).not.toBeNull();
    expect(http![1]!).toMatch(/\/mcp$/);
    expect(await callOverHttp(http![1]!, { Authorization: `Bearer ${KEY}` }, 'inspector http')).toBe(GATEWAY_AGENT);
  });
});
