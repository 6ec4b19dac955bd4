import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';
import { argumentsDigest, canonicalize, type StoredEvent } from '../../src/core/index.js';
import { GATEWAY_STREAM, NOT_RECORDED, keySha256, parseGatewayConfig, startHttpGateway, type HttpGateway } from '../../src/gateway/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { driverOf, BIN, REPO_ROOT, oneSentence, readEvents, runBin, runCli, verifyFile } from '../helpers/ledger.js';
import { thrown } from '../helpers/errors.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness gateway` (Streamable HTTP) end to end, with real parts only: the gateway in process on a
 * free port, recording into a temporary SQLite ledger, in front of the real server-everything and
 * server-filesystem from npm; the official SDK Client connects over StreamableHTTPClientTransport.
 */

const dir = tempDir('witness-http-');
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const FILESYSTEM = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');
const FILES = fs.mkdtempSync(path.join(dir, 'files-'));
fs.writeFileSync(path.join(FILES, 'note.txt'), 'Refund approved for order A-1042.\nSecond line: ünïcödé ✓\n');

const SUPPORT_KEY = 'wk_support-test-key-0000000000000000000000000000';
const BILLING_KEY = 'wk_billing-test-key-0000000000000000000000000000';
const ACCEPT = 'application/json, text/event-stream';

function configText(extraServers: string[] = []): string {
  return [
    'listen: "127.0.0.1:0"',
    'agents:',
    `  - { id: support-bot, key_sha256: "${keySha256(SUPPORT_KEY)}" }`,
    `  - { id: billing-bot, key_sha256: "${keySha256(BILLING_KEY)}" }`,
    'max_body_bytes: 65536',
    'servers:',
    '  - name: everything',
    '    path: /mcp/everything',
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: ${JSON.stringify([EVERYTHING, 'stdio'])}`,
    '  - name: files',
    '    path: /mcp/files/',
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: ${JSON.stringify([FILESYSTEM, FILES])}`,
    ...extraServers,
    '',
  ].join('\n');
}

interface Running {
  gateway: HttpGateway;
  witness: Witness;
  store: string;
}

const running: Running[] = [];
afterAll(async () => {
  for (const r of running) {
    await r.gateway.close();
    await r.witness.close();
  }
});

async function startGateway(extraServers: string[] = [], settings = ''): Promise<Running> {
  const store = tempDb(dir);
  const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
  const gateway = await startHttpGateway(parseGatewayConfig(settings + configText(extraServers), { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
  const r = { gateway, witness, store };
  running.push(r);
  return r;
}

async function stopGateway(r: Running): Promise<void> {
  await r.gateway.close();
  await r.witness.close();
  running.splice(running.indexOf(r), 1);
}

async function httpClient(url: string, key: string | undefined, name = 'test-client'): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), key === undefined ? {} : { requestInit: { headers: { Authorization: `Bearer ${key}` } } });
  const client = new Client({ name, version: '9.9.9' });
  await client.connect(transport);
  return { client, transport };
}

async function stdioClient(args: string[]): Promise<Client> {
  const [command, ...rest] = args as [string, ...string[]];
  const client = new Client({ name: 'direct', version: '1' });
  await client.connect(new StdioClientTransport({ command, args: rest, cwd: REPO_ROOT, stderr: 'pipe' }));
  return client;
}

async function events(r: Running): Promise<StoredEvent[]> {
  await r.witness.flush();
  const ledger = SqliteLedger.open({ path: r.store, create: false, readonly: true });
  try {
    const page = await ledger.query({ limit: 1000 });
    return [...page.events].sort((a, b) => a.seq - b.seq);
  } finally {
    await ledger.close();
  }
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: ACCEPT, ...headers }, body });
}

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });

describe('witness gateway over Streamable HTTP', () => {
  it("returns the same echo result as a direct stdio connection and records the call under the key's agent, whatever the client claims [R-GW-IDENTITY]", async () => {
    const r = await startGateway();
    const direct = await stdioClient([process.execPath, EVERYTHING, 'stdio']);
    const { client, transport } = await httpClient(`${r.gateway.url}/mcp/everything`, SUPPORT_KEY, 'billing-admin');
    const mcpSession = transport.sessionId;
    try {
      const args = { name: 'echo', arguments: { message: 'refund order A-1042', agent: 'billing-bot' }, _meta: { agent: 'billing-bot' } };
      const [viaDirect, viaGateway] = await Promise.all([direct.callTool(args), client.callTool(args)]);
      expect(viaGateway).toEqual(viaDirect);
      expect(viaGateway.content).toEqual([{ type: 'text', text: 'Echo: refund order A-1042' }]);
      // DELETE ends the MCP session: session.end is written before anything else closes.
      await transport.terminateSession();
      await until(() => r.gateway.sessions === 0, 'the session to end');
    } finally {
      await Promise.all([direct.close(), client.close()]);
    }
    const evs = (await events(r)).filter((e) => e.stream !== GATEWAY_STREAM);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'tool.result', 'session.end']);
    expect(new Set(evs.map((e) => e.agent.id))).toEqual(new Set(['support-bot']));
    expect(evs[0]!.agent.credential).toBe(keySha256(SUPPORT_KEY).slice(0, 12));
    expect(evs[0]!.data).toMatchObject({ labels: { transport: 'streamable-http', path: '/mcp/everything', server: 'everything', mcp_session: mcpSession } });
    expect(evs[1]!.data).toMatchObject({
      tool: 'echo',
      arguments: { message: 'refund order A-1042', agent: 'billing-bot' },
      client_claims: { clientInfo: { name: 'billing-admin' }, _meta: { agent: 'billing-bot' } },
    });
    expect(evs[2]!.data).toMatchObject({ is_error: false, output: { content: [{ type: 'text', text: 'Echo: refund order A-1042' }] } });
    expect(evs[3]!.data).toMatchObject({ reason: 'completed' });
    await stopGateway(r);
    const report = await verifyFile(r.store);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('reads a file through server-filesystem exactly as a direct connection does', async () => {
    const r = await startGateway();
    const direct = await stdioClient([process.execPath, FILESYSTEM, FILES]);
    const { client } = await httpClient(`${r.gateway.url}/mcp/files`, SUPPORT_KEY);
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      const tool = tools.includes('read_text_file') ? 'read_text_file' : 'read_file';
      const args = { name: tool, arguments: { path: path.join(FILES, 'note.txt') } };
      const [viaDirect, viaGateway] = await Promise.all([direct.callTool(args), client.callTool(args)]);
      expect(viaGateway).toEqual(viaDirect);
      expect(JSON.stringify(viaGateway.content)).toContain('ünïcödé ✓');
    } finally {
      await Promise.all([direct.close(), client.close()]);
    }
  });

  it('answers a missing or unknown key with 401 and WWW-Authenticate, and records both without the key [R-GW-AUTH]', async () => {
    const r = await startGateway();
    const url = `${r.gateway.url}/mcp/everything`;
    const missing = await post(url, INIT);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toMatch(/Unauthorized: no API key/);
    const wrong = await post(url, INIT, { Authorization: 'Bearer wk_not-a-configured-key' });
    expect(wrong.status).toBe(401);
    // The SDK client surfaces it as an error too.
    await expect(httpClient(url, 'wk_also-wrong')).rejects.toThrow(/401|Unauthorized/);
    const gateEvents = (await events(r)).filter((e) => e.stream === GATEWAY_STREAM);
    expect(gateEvents.length).toBeGreaterThanOrEqual(3);
    expect(gateEvents.every((e) => e.kind === 'error' && e.agent.id === 'unauthenticated')).toBe(true);
    expect(gateEvents[0]!.data).toMatchObject({ code: 'unauthorized', source: 'gateway', path: '/mcp/everything', method: 'POST', reason: 'missing' });
    expect(gateEvents[1]!.data).toMatchObject({ code: 'unauthorized', reason: 'unknown', key_fingerprint: keySha256('wk_not-a-configured-key').slice(0, 12) });
    expect(JSON.stringify(gateEvents)).not.toContain('not-a-configured-key');
    await stopGateway(r);
    expect((await verifyFile(r.store)).ok).toBe(true);
  });

  it('answers a request naming a protocol version neither era serves with 400 and -32022 listing the versions served, and a 2026-07-28 header without its envelope with -32602', async () => {
    const r = await startGateway();
    const url = `${r.gateway.url}/mcp/everything`;
    const headers = { Authorization: `Bearer ${SUPPORT_KEY}`, 'MCP-Protocol-Version': '2099-01-01', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo' };
    const envelope = { 'io.modelcontextprotocol/protocolVersion': '2099-01-01', 'io.modelcontextprotocol/clientCapabilities': {} };
    const res = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' }, _meta: envelope } }), headers);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { jsonrpc: string; id: number; error: { code: number; message: string; data: { supported: string[]; requested: string } } };
    expect(body).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32022, message: 'Unsupported protocol version: 2099-01-01', data: { requested: '2099-01-01' } } });
    expect(body.error.data.supported).toEqual(expect.arrayContaining(['2026-07-28', '2025-06-18', '2025-11-25']));
    const bare = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } }), {
      ...headers,
      'MCP-Protocol-Version': '2026-07-28',
    });
    expect(bare.status).toBe(400);
    expect(((await bare.json()) as { error: { code: number } }).error.code).toBe(-32602);
  });

  it('answers an unknown path with 404 and a request without a session with 400', async () => {
    const r = await startGateway();
    const res = await post(`${r.gateway.url}/mcp/nothing-here`, INIT, { Authorization: `Bearer ${SUPPORT_KEY}` });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/no MCP server is exposed at \/mcp\/nothing-here/);
    const noSession = await post(`${r.gateway.url}/mcp/everything`, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), { Authorization: `Bearer ${SUPPORT_KEY}` });
    expect(noSession.status).toBe(400);
  });

  it('refuses an oversized body with 413 and a body that is not JSON with -32700, and records both', async () => {
    const r = await startGateway();
    const url = `${r.gateway.url}/mcp/everything`;
    const auth = { Authorization: `Bearer ${SUPPORT_KEY}` };
    const big = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(70_000) } }), auth);
    expect(big.status).toBe(413);
    const bad = await post(url, '{"jsonrpc": "2.0", "id": 1,', auth);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: number } }).error.code).toBe(-32700);
    const gateEvents = (await events(r)).filter((e) => e.stream === GATEWAY_STREAM);
    expect(gateEvents.map((e) => [e.agent.id, e.data?.['code']])).toEqual([
      ['support-bot', 'frame_too_large'],
      ['support-bot', 'parse_error'],
    ]);
  });

  it("keeps two agents' sessions in separate streams and refuses one agent's session id under another agent's key", async () => {
    const r = await startGateway();
    const url = `${r.gateway.url}/mcp/everything`;
    const a = await httpClient(url, SUPPORT_KEY);
    const b = await httpClient(url, BILLING_KEY);
    try {
      await Promise.all([a.client.callTool({ name: 'echo', arguments: { message: 'a' } }), b.client.callTool({ name: 'echo', arguments: { message: 'b' } })]);
      const stolen = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hijack' } } }), {
        Authorization: `Bearer ${BILLING_KEY}`,
        'Mcp-Session-Id': a.transport.sessionId!,
      });
      expect(stolen.status).toBe(404);
    } finally {
      await Promise.all([a.client.close(), b.client.close()]);
    }
    const evs = await events(r);
    const calls = evs.filter((e) => e.kind === 'tool.call');
    expect(calls.map((e) => e.agent.id).sort()).toEqual(['billing-bot', 'support-bot']);
    expect(new Set(calls.map((e) => e.stream)).size).toBe(2);
    expect(JSON.stringify(calls)).not.toContain('hijack');
    const forbidden = evs.filter((e) => e.stream === GATEWAY_STREAM);
    expect(forbidden.map((e) => [e.agent.id, e.data?.['code']])).toEqual([['billing-bot', 'forbidden']]);
  });

  it('forwards to an upstream MCP server over HTTP (a gateway in front of a gateway) with the same result as direct', async () => {
    const inner = await startGateway();
    const outer = await startGateway([
      '  - name: chained',
      '    path: /mcp/chained',
      `    url: ${JSON.stringify(`${inner.gateway.url}/mcp/everything`)}`,
      `    headers: { Authorization: "Bearer ${BILLING_KEY}" }`,
    ]);
    const direct = await stdioClient([process.execPath, EVERYTHING, 'stdio']);
    const { client, transport } = await httpClient(`${outer.gateway.url}/mcp/chained`, SUPPORT_KEY);
    try {
      const args = { name: 'get-sum', arguments: { a: 2, b: 40 } };
      const [viaDirect, viaChain] = await Promise.all([direct.callTool(args), client.callTool(args)]);
      expect(viaChain).toEqual(viaDirect);
      await transport.terminateSession();
      // Ending the outer session ends the inner one too (the HTTP upstream is sent DELETE).
      await until(() => outer.gateway.sessions === 0 && inner.gateway.sessions === 0, 'both sessions to end');
    } finally {
      await Promise.all([direct.close(), client.close()]);
    }
    const outerCalls = (await events(outer)).filter((e) => e.kind === 'tool.call');
    const innerCalls = (await events(inner)).filter((e) => e.kind === 'tool.call');
    expect(outerCalls.map((e) => [e.agent.id, e.data?.['tool']])).toEqual([['support-bot', 'get-sum']]);
    expect(innerCalls.map((e) => [e.agent.id, e.data?.['tool']])).toEqual([['billing-bot', 'get-sum']]);
    expect((await events(inner)).filter((e) => e.kind === 'session.end')).toHaveLength(1);
  });

  it("delivers progress on the request's own SSE stream and records a call the client cancels as cancelled", async () => {
    const r = await startGateway();
    const { client } = await httpClient(`${r.gateway.url}/mcp/everything`, SUPPORT_KEY);
    try {
      const seen: number[] = [];
      const done = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: (p) => seen.push(p.progress) });
      expect(done.isError).not.toBe(true);
      expect(seen).toEqual([1, 2, 3]);
      const abort = new AbortController();
      const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } }, undefined, { signal: abort.signal });
      setTimeout(() => abort.abort('changed my mind'), 150);
      await expect(call).rejects.toThrow();
      await until(async () => (await events(r)).filter((e) => e.kind === 'tool.result').length === 2, 'the cancelled call to be recorded');
    } finally {
      await client.close();
    }
    const results = (await events(r)).filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => e.outcome)).toEqual(['success', 'error']);
    expect(results[1]!.data).toMatchObject({ error: { code: 'cancelled' } });
  });

  it("records a client that drops the HTTP connection mid-call as disconnected, and still records the call's result", async () => {
    const r = await startGateway();
    const url = `${r.gateway.url}/mcp/everything`;
    const auth = { Authorization: `Bearer ${SUPPORT_KEY}` };
    const init = await post(url, INIT, auth);
    const session = init.headers.get('mcp-session-id')!;
    expect(await init.text()).toContain('"serverInfo"');
    const headers = { ...auth, 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-06-18' };
    await post(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
    const abort = new AbortController();
    const call = fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: ACCEPT, ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 0.5, steps: 1 } } }),
      signal: abort.signal,
    });
    const res = await call;
    expect(res.status).toBe(200);
    abort.abort();
    await until(async () => (await events(r)).some((e) => e.kind === 'tool.result'), 'the result of the abandoned call');
    const evs = (await events(r)).filter((e) => e.stream !== GATEWAY_STREAM);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'error', 'tool.result']);
    expect(evs[2]!.data).toMatchObject({ code: 'client_disconnected', source: 'gateway', jsonrpc_id: 5 });
  });

  it('answers a call pending when the upstream server crashes with a JSON-RPC error and records the crash and the failed call', async () => {
    // A minimal MCP server that answers initialize and dies on the first tool call.
    const dying = [
      'const rl = require("readline").createInterface({ input: process.stdin });',
      'rl.on("line", (l) => { const m = JSON.parse(l);',
      '  if (m.method === "initialize") process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "dying", version: "1" } } }) + "\\n");',
      '  if (m.method === "tools/call") process.exit(3); });',
    ].join('\n');
    const r = await startGateway(['  - name: dying', '    path: /mcp/dying', `    command: ${JSON.stringify(process.execPath)}`, `    args: ["-e", ${JSON.stringify(dying)}]`]);
    const { client } = await httpClient(`${r.gateway.url}/mcp/dying`, SUPPORT_KEY);
    try {
      await expect(client.callTool({ name: 'anything', arguments: {} })).rejects.toThrow(/exited with code 3/);
      await until(() => r.gateway.sessions === 0, 'the session to end');
    } finally {
      await client.close();
    }
    const evs = (await events(r)).filter((e) => e.stream !== GATEWAY_STREAM);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'tool.result', 'error', 'session.end']);
    expect(evs[2]!.data).toMatchObject({ is_error: true, error: { code: 'upstream_exited' } });
    expect(evs[3]!.data).toMatchObject({ code: 'upstream_exited', exit_code: 3 });
    expect(evs[4]!.data).toMatchObject({ reason: 'error' });
  });

  it('runs as the witness gateway command: prints where it listens, and on SIGTERM ends open sessions as cancelled and exits 0', async () => {
    const store = tempDb(dir);
    const file = path.join(dir, 'gateway.yaml');
    fs.writeFileSync(file, configText().replace('127.0.0.1:0', '127.0.0.1:0') + `store: ${JSON.stringify(`sqlite:${store}`)}\n`);
    const child = spawn(process.execPath, [BIN, 'gateway', '--config', file], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((res) => child.once('close', (code) => res(code)));
    await until(() => /listening on /.test(stderr), 'the gateway to listen', 10_000);
    const base = /listening on (http:\/\/\S+) /.exec(stderr)![1]!;
    expect(stderr).toMatch(/\/mcp\/everything \(everything\), \/mcp\/files \(files\)/);
    const { client } = await httpClient(`${base}/mcp/everything`, SUPPORT_KEY);
    await client.callTool({ name: 'echo', arguments: { message: 'before the stop' } });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await client.close();
    const ledger = SqliteLedger.open({ path: store, create: false, readonly: true });
    const evs = [...(await ledger.query({ limit: 100 })).events].sort((a, b) => a.seq - b.seq);
    await ledger.close();
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'tool.result', 'session.end']);
    expect(evs[3]!.data).toMatchObject({ reason: 'cancelled' });
    expect((await verifyFile(store)).ok).toBe(true);
  });

  it('fails at start on a bad configuration file with exit code 2 and one sentence naming the line', async () => {
    const file = path.join(dir, 'bad-gateway.yaml');
    fs.writeFileSync(file, ['agents:', `  - { id: a, key_sha256: "${keySha256('k')}" }`, 'servers:', '  - name: everything', '    path: /mcp/everything', '    comand: node', ''].join('\n'));
    const res = await runBin(['gateway', '--config', file, '--store', `sqlite:${tempDb(dir)}`]);
    expect(res.code).toBe(2);
    const sentence = oneSentence(res.stderr);
    expect(sentence).toMatch(/bad-gateway\.yaml line 6: "comand" is not a setting of servers\[0\]/);
  });

  it('refuses a new session over max_sessions with 503 and records it, and admits one again once a session is deleted', async () => {
    const r = await startGateway([], 'max_sessions: 1\n');
    const url = `${r.gateway.url}/mcp/everything`;
    const first = await httpClient(url, SUPPORT_KEY);
    await expect(httpClient(url, BILLING_KEY)).rejects.toThrow(/503|limit of 1 open MCP sessions/);
    await first.transport.terminateSession();
    await first.client.close();
    await until(() => r.gateway.sessions === 0, 'the first session to end');
    const second = await httpClient(url, BILLING_KEY);
    await second.client.close();
    const refused = (await events(r)).filter((e) => e.stream === GATEWAY_STREAM);
    expect(refused.map((e) => [e.agent.id, e.data?.['code']])).toEqual([['billing-bot', 'too_many_sessions']]);
  });

  it('refuses a call it cannot record with a JSON-RPC error and never forwards it (fail closed) [R-GW-FAIL-CLOSED]', async () => {
    const witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, retryForMs: 0, seal: { enabled: false } });
    const gateway = await startHttpGateway(parseGatewayConfig(configText(), { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
    const { client } = await httpClient(`${gateway.url}/mcp/everything`, SUPPORT_KEY);
    try {
      // The ledger goes away under the running gateway.
      await driverOf(witness).close();
      const refused = await client.callTool({ name: 'echo', arguments: { message: 'unrecorded' } }).then(
        () => undefined,
        (e: unknown) => e as { code?: number; message: string },
      );
      expect(refused?.code).toBe(NOT_RECORDED);
      expect(refused?.message).toMatch(/could not record this call to echo, so it was not sent to the server/);
    } finally {
      await client.close();
      await gateway.close();
      await witness.close().catch(() => undefined);
    }
  });

  it("takes before and after screenshots for a tool named in a server's capture settings, bound to the call, with the real Chromium", async () => {
    const { Capturer } = await import('../../src/capture/index.js');
    const http = await import('node:http');
    const seen: string[] = [];
    const pages = http.createServer((req, res) => {
      if (req.url === '/favicon.ico') return void res.writeHead(404).end();
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<title>Echo page</title><p>Message ${seen.length}</p>`);
    });
    await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
    const port = (pages.address() as { port: number }).port;
    const capturer = new Capturer();
    const store = tempDb(dir);
    const witness = await openWitness({ store: `sqlite:${store}` });
    const config = parseGatewayConfig(
      [
        'listen: "127.0.0.1:0"',
        'agents:',
        `  - { id: support-bot, key_sha256: "${keySha256(SUPPORT_KEY)}" }`,
        'servers:',
        '  - name: everything',
        '    path: /mcp/everything',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: ${JSON.stringify([EVERYTHING, 'stdio'])}`,
        '    capture:',
        `      echo: { url: "http://127.0.0.1:${port}/messages/{message}", viewport: { width: 800, height: 600 } }`,
        '',
      ].join('\n'),
      { source: 'gateway.yaml', baseDir: dir },
    );
    const gateway = await startHttpGateway(config, witness, { capturer, stopTimeoutMs: 500 });
    try {
      const { client, transport } = await httpClient(`${gateway.url}/mcp/everything`, SUPPORT_KEY);
      const r = await client.callTool({ name: 'echo', arguments: { message: 'refund A-1042' } });
      expect(r.content).toEqual([{ type: 'text', text: 'Echo: refund A-1042' }]);
      await transport.terminateSession();
      await client.close();
    } finally {
      await gateway.close();
      await witness.close();
      await capturer.close();
      pages.close();
    }
    expect(seen).toEqual(['/messages/refund%20A-1042', '/messages/refund%20A-1042']);
    const ledger = SqliteLedger.open({ path: store, create: false, readonly: true });
    try {
      const evs = [...(await ledger.query({ limit: 100 })).events].sort((a, b) => a.seq - b.seq);
      const call = evs.find((e) => e.kind === 'tool.call')!;
      const shots = evs.filter((e) => e.kind === 'capture');
      expect(shots.map((e) => [e.parent, e.data?.['role'], e.data?.['text']])).toEqual([
        [call.id, 'before', 'Message 1'],
        [call.id, 'after', 'Message 2'],
      ]);
      expect(shots.every((e) => e.artifacts?.[0]?.mime === 'image/png')).toBe(true);
      // The after shot is recorded before the result, which the client only got after it.
      expect(evs.map((e) => e.kind).filter((k) => k === 'capture' || k === 'tool.result')).toEqual(['capture', 'capture', 'tool.result']);
    } finally {
      await ledger.close();
    }
    expect((await verifyFile(store)).ok).toBe(true);
  });

  it("holds a review call over HTTP with progress on the request's stream until a person approves it with witness approve [R-GW-APPROVAL]", async () => {
    const policy = path.join(dir, 'review-refunds.yaml');
    // The approver's own key, listed in the policy (R-APPROVER-SIGNED).
    const { generateKey } = await import('../../src/core/index.js');
    const alice = generateKey('alice@corp');
    const aliceKey = path.join(dir, 'alice@corp.key');
    fs.writeFileSync(aliceKey, `${alice.signerKey}\n`, { mode: 0o600 });
    fs.writeFileSync(
      policy,
      [
        'version: 1',
        'default: allow',
        'approvers:',
        `  - { id: alice@corp, key: "${alice.verifierKey}" }`,
        'rules:',
        '  - id: refund-echo-needs-review',
        '    match: { tool: echo }',
        '    when: args.message startsWith "refund"',
        '    effect: review',
        '',
      ].join('\n'),
    );
    const r = await startGateway([], `policy: ${JSON.stringify(policy)}\napprovals: { poll_ms: 50, progress_ms: 200 }\n`);
    const { client, transport } = await httpClient(`${r.gateway.url}/mcp/everything`, SUPPORT_KEY);
    const progress: unknown[] = [];
    try {
      const call = client.callTool({ name: 'echo', arguments: { message: 'refund 650' } }, undefined, { onprogress: (p) => progress.push(p), resetTimeoutOnProgress: true });
      let requestId: string | undefined;
      await until(async () => {
        requestId = (await readEvents(r.store)).find((e) => e.kind === 'approval.request')?.id;
        return requestId !== undefined;
      }, 'the approval request');
      await until(() => progress.length >= 2, 'two progress notifications');
      const approved = await runCli(['approve', requestId!, '--key', aliceKey, '--store', `sqlite:${r.store}`]);
      expect(approved.code).toBe(0);
      expect((await call).content).toEqual([{ type: 'text', text: 'Echo: refund 650' }]);
      expect(progress[0]).toMatchObject({ progress: 1, message: expect.stringContaining(requestId!) });
      await transport.terminateSession();
    } finally {
      await client.close();
    }
    const evs = await events(r);
    expect(evs.filter((e) => e.kind !== 'session.start' && e.kind !== 'session.end').map((e) => e.kind)).toEqual([
      'tool.call',
      'policy.decision',
      'approval.request',
      'approval.decision',
      'policy.decision',
      'tool.result',
    ]);
    expect(evs.find((e) => e.kind === 'approval.decision')!.data).toMatchObject({ approver: 'alice@corp', decision: 'approved' });
    // The digest bound by request, decision and release is salted per request (README "Human
    // approval"): the headers, all a withheld export shows, never hold the arguments' plain hash.
    const args = { message: 'refund 650' };
    const request = evs.find((e) => e.kind === 'approval.request')!;
    const digest = argumentsDigest(String(request.data?.['arguments_salt']), args);
    expect(request.data?.['arguments_digest']).toBe(digest);
    expect(evs.filter((e) => e.approvals !== undefined).map((e) => [e.kind, e.approvals?.[0]?.args_digest])).toEqual([
      ['approval.decision', digest],
      ['policy.decision', digest],
    ]);
    const unsalted = createHash('sha256').update(canonicalize(args)).digest('hex');
    expect(evs.map(({ data: _data, ...header }) => JSON.stringify(header)).join('\n')).not.toContain(unsalted);
  });

  it('names the line and the field of each kind of configuration mistake in one sentence', () => {
    const h = keySha256('k');
    const cases: Array<[string, RegExp]> = [
      ['agents: []\nservers: []\n', /^g\.yaml line 1: agents must list at least one agent\.$/],
      [`agents:\n  - { id: a, key_sha256: "${h}" }\nservers:\n  - { name: a, path: /a, command: node, url: "http://x" }\n`, /^g\.yaml line 4: servers\[0\] needs exactly one of command .* or url /],
      [`agents:\n  - id: a\n    key_sha256: abc\nservers:\n  - { name: a, path: /a, command: node }\n`, /^g\.yaml line 3: agents\[0\]\.key_sha256 must be 64 hex digits/],
      [
        `agents:\n  - { id: a, key_sha256: "${h}" }\nservers:\n  - name: a\n    path: /a\n    command: node\n    max_frame_bytes: 1.5\n`,
        /^g\.yaml line 7: servers\[0\]\.max_frame_bytes must be a whole number\.$/,
      ],
      [
        `agents:\n  - { id: a, key_sha256: "${h}" }\nservers:\n  - { name: a, path: /a, command: node, on_record_failure: maybe }\n`,
        /^g\.yaml line 4: servers\[0\]\.on_record_failure must be refuse or forward\.$/,
      ],
      [`listen: "x:y"\nagents:\n  - { id: a, key_sha256: "${h}" }\nservers:\n  - { name: a, path: /a, command: node }\n`, /^g\.yaml line 1: listen must be host:port or a port/],
      [
        `agents:\n  - { id: a, key_sha256: "${h}" }\n  - { id: b, key_sha256: "${h}" }\nservers:\n  - { name: a, path: /a, command: node }\n`,
        /^g\.yaml line 3: agents\[1\]\.key_sha256 repeats the key hash/,
      ],
      [
        `agents:\n  - { id: a, key_sha256: "${h}" }\nservers:\n  - name: a\n    path: /a\n    command: node\n    capture:\n      refund: { url: "http://x/{id}", mask: ".card" }\n`,
        /^g\.yaml line 8: servers\[0\]\.capture\.refund\.mask /,
      ],
    ];
    for (const [text, expected] of cases) {
      const e = thrown(() => parseGatewayConfig(text, { source: 'g.yaml', baseDir: dir }));
      expect(e.code).toBe('invalid_argument');
      expect(oneSentence(e.message)).toMatch(expected);
    }
    const ok = parseGatewayConfig(
      `store: sqlite:./ledger.db\nagents:\n  - { id: a, key_sha256: "${h.toUpperCase()}" }\nservers:\n  - { name: a, path: /a/, url: "http://127.0.0.1:9/mcp", on_record_failure: forward }\n`,
      { source: 'g.yaml', baseDir: dir },
    );
    expect(ok).toMatchObject({
      host: '127.0.0.1',
      port: 8808,
      store: `sqlite:${path.join(dir, 'ledger.db')}`,
      agents: [{ id: 'a', keySha256: h }],
      servers: [{ path: '/a', failOpen: true, upstream: { kind: 'http' } }],
    });
  });
});
