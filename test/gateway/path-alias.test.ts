import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1HttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySha256, parseGatewayConfig } from '../../src/gateway/index.js';
import { readEvents } from '../helpers/ledger.js';
import { startInProcessGateway, type InProcessGateway } from '../helpers/http-gateway.js';
import { tempDir } from '../helpers/tmp.js';
import { MODERN, V2_SERVER, v2Client } from '../helpers/v2.js';

/**
 * The gateway's three ways of naming a server — its configured path `/mcp/<name>`, the alias
 * `/<name>/mcp` (the MCP Inspector rewrites any URL whose path does not end in /mcp) and the bare
 * `/mcp` with a `Witness-Server: <name>` header — reach the same upstream under the same key and
 * are recorded identically. Real parts only: the gateway in process over a SQLite ledger, the
 * real dual-era v2 McpServer over stdio, the official v1 and v2 SDK clients over HTTP.
 */

const dir = tempDir('witness-path-alias-');
const KEY = 'wk_alias-test-key-00000000000000000000000000000000';
const OTHER_KEY = 'wk_alias-other-key-0000000000000000000000000000000';
let gw: InProcessGateway;

beforeAll(async () => {
  gw = await startInProcessGateway(
    dir,
    [
      { id: 'alias-bot', key: KEY },
      { id: 'other-bot', key: OTHER_KEY },
    ],
    [
      { name: 'demo', path: '/mcp/demo', script: V2_SERVER },
      { name: 'second', path: '/tools/second', script: V2_SERVER },
    ],
  );
});

afterAll(() => gw?.close());

type Route = { label: string; path: string; header?: string };
const ROUTES: Route[] = [
  { label: 'the configured path', path: '/mcp/demo' },
  { label: 'the /<name>/mcp alias', path: '/demo/mcp' },
  { label: 'the Witness-Server header on /mcp', path: '/mcp', header: 'demo' },
];

const headersOf = (r: Route, key = KEY): Record<string, string> => ({ Authorization: `Bearer ${key}`, ...(r.header === undefined ? {} : { 'Witness-Server': r.header }) });

/** The recorded tool.call and tool.result of the call whose argument text is `marker`, with the session's start. */
async function recordedCall(marker: string) {
  const events = await readEvents(gw.store);
  const call = events.find((e) => e.kind === 'tool.call' && JSON.stringify(e.data).includes(marker));
  expect(call, `a tool.call carrying ${marker}`).toBeDefined();
  const result = events.find((e) => e.kind === 'tool.result' && e.parent === call!.id);
  const start = events.find((e) => e.kind === 'session.start' && e.stream === call!.stream);
  return { call: call!, result, start };
}

describe('a server is reached by its path, by /<name>/mcp and by the Witness-Server header', () => {
  for (const route of ROUTES) {
    it(`[R-GW-IDENTITY] a v1 SDK client (2025 session) reaches the server through ${route.label}, recorded under the key's agent and the server's own path`, async () => {
      const client = new V1Client({ name: 'alias-v1', version: '1.0.0' });
      await client.connect(new V1HttpTransport(new URL(gw.url + route.path), { requestInit: { headers: headersOf(route) } }));
      const marker = `v1 via ${route.label}`;
      const r = await client.callTool({ name: 'echo', arguments: { text: marker } });
      expect(JSON.stringify(r.content)).toContain(marker);
      await client.close();
      const { call, result, start } = await recordedCall(marker);
      expect(call.agent.id).toBe('alias-bot');
      expect(call.data).toMatchObject({ tool: 'echo', arguments: { text: marker } });
      expect(result?.data).toMatchObject({ is_error: false });
      expect(start?.data).toMatchObject({ labels: { path: '/mcp/demo', server: 'demo', transport: 'streamable-http' } });
    });

    it(`[R-GW-IDENTITY] a v2 SDK client pinned to ${MODERN} (no session) reaches the server through ${route.label}, recorded under the key's agent and the server's own path`, async () => {
      const client = v2Client('alias-v2', { pin: MODERN });
      await client.connect(new StreamableHTTPClientTransport(new URL(gw.url + route.path), { requestInit: { headers: headersOf(route) } }));
      const marker = `v2 via ${route.label}`;
      const r = await client.callTool({ name: 'echo', arguments: { text: marker } });
      expect(JSON.stringify(r.content)).toContain(marker);
      await client.close();
      const { call, result, start } = await recordedCall(marker);
      expect(call.agent.id).toBe('alias-bot');
      expect(call.data).toMatchObject({ tool: 'echo', arguments: { text: marker } });
      expect(result?.data).toMatchObject({ is_error: false });
      expect(start?.data).toMatchObject({ labels: { path: '/mcp/demo', server: 'demo' } });
    });
  }

  it('the three routes record the same call the same way (apart from the text and the session)', async () => {
    const shapes = [];
    for (const route of ROUTES) {
      const { call, start } = await recordedCall(`v1 via ${route.label}`);
      shapes.push({
        kind: call.kind,
        agent: call.agent,
        tool: (call.data as { tool: string }).tool,
        labels: { ...(start!.data as { labels: Record<string, unknown> }).labels, mcp_session: null, client_address: null },
      });
    }
    expect(shapes[1]).toEqual(shapes[0]);
    expect(shapes[2]).toEqual(shapes[0]);
  });
});

describe('a name the gateway does not know, or that disagrees with the path, is 404 like an unknown path', () => {
  const initialize = (path: string, headers: Record<string, string>) =>
    fetch(gw.url + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });

  const cases: Array<[string, string, Record<string, string>]> = [
    ['an unknown name in /<name>/mcp', '/nosuch/mcp', {}],
    ['an unknown name in the header', '/mcp', { 'Witness-Server': 'nosuch' }],
    ['the bare /mcp without the header', '/mcp', {}],
    ['a header naming another server than the path', '/mcp/demo', { 'Witness-Server': 'second' }],
    ['a header naming another server than the alias', '/demo/mcp', { 'Witness-Server': 'second' }],
    ['a path under the alias', '/demo/mcp/extra', {}],
  ];
  for (const [what, path, headers] of cases) {
    it(`${what} gets the 404 of an unknown path, before the key is looked at`, async () => {
      const res = await initialize(path, { Authorization: `Bearer ${KEY}`, ...headers });
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: { code: number; message: string } };
      expect(body.error.code).toBe(-32600);
      expect(body.error.message).toMatch(/^Not found: no MCP server is exposed at /);
    });
  }

  it('a server whose configured path is not /mcp/<name> is reached by its path, its alias and the header too', async () => {
    for (const route of [
      { label: 'path', path: '/tools/second' },
      { label: 'alias', path: '/second/mcp' },
      { label: 'header', path: '/mcp', header: 'second' },
    ] as Route[]) {
      const res = await initialize(route.path, headersOf(route));
      expect(res.status, route.path).toBe(200);
      await res.body?.cancel();
    }
  });

  it("the alias keeps authentication: no key is 401, and the refusal is recorded with the server's own path", async () => {
    const res = await initialize('/demo/mcp', {});
    expect(res.status).toBe(401);
    const events = await readEvents(gw.store);
    const refusal = events.filter((e) => e.kind === 'error' && (e.data as { code?: string }).code === 'unauthorized').at(-1);
    expect(refusal?.data).toMatchObject({ path: '/mcp/demo' });
  });

  it("a session opened through one route is the same session through another, and still not another agent's", async () => {
    const res = await initialize('/demo/mcp', { Authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(200);
    const session = res.headers.get('mcp-session-id')!;
    await res.body?.cancel();
    const ping = (path: string, key: string, extra: Record<string, string> = {}) =>
      fetch(gw.url + path, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          Authorization: `Bearer ${key}`,
          'Mcp-Session-Id': session,
          'MCP-Protocol-Version': '2025-06-18',
          ...extra,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
      });
    const same = await ping('/mcp', KEY, { 'Witness-Server': 'demo' });
    expect(same.status).toBe(200);
    await same.body?.cancel();
    const other = await ping('/mcp/demo', OTHER_KEY);
    expect(other.status).toBe(404);
    await other.body?.cancel();
    const otherServer = await ping('/second/mcp', KEY);
    expect(otherServer.status).toBe(404);
    await otherServer.body?.cancel();
  });
});

describe("a configuration whose path is another server's alias is refused", () => {
  it('a path equal to /<other name>/mcp is refused in one sentence naming the line', () => {
    const config = [
      'agents:',
      `  - { id: alias-bot, key_sha256: "${keySha256(KEY)}" }`,
      'servers:',
      '  - name: demo',
      '    path: /mcp/demo',
      '    command: node',
      '  - name: shadow',
      '    path: /demo/mcp',
      '    command: node',
      '',
    ].join('\n');
    let message = '';
    try {
      parseGatewayConfig(config, { source: 'gateway.yaml', baseDir: dir });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/gateway\.yaml line \d+: .*\/demo\/mcp.*demo/);
  });
});
