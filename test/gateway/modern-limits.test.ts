import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1HttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { GATEWAY_STREAM, StdioProxy, keySha256, parseGatewayConfig, startHttpGateway, type HttpGateway } from '../../src/gateway/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { person } from '../helpers/approvers.js';
import { driverOf, readEvents, runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { MODERN, V2_SERVER, modernPost, v2HttpClient } from '../helpers/v2.js';

/**
 * `witness gateway` in the 2026-07-28 era against upstreams and clients that misbehave: the limits
 * it keeps (answer sizes, groups per agent, open requests and listen streams per group), what it
 * refuses to pass on (redirects, server requests, secrets in URLs and in a child's environment),
 * and cancellations that must never reach a server late. Real parts only: the v2 SDK client, the
 * real v2 fixture server, and small real HTTP servers written here for the misbehaving upstreams.
 */

const dir = tempDir('witness-modern-limits-');
const SUPPORT_KEY = 'wk_support-test-key-0000000000000000000000000000';
const BILLING_KEY = 'wk_billing-test-key-0000000000000000000000000000';
const HINT = 'dev.witness/session';

interface Running {
  gateway: HttpGateway;
  witness: Witness;
  store: string;
  logs: string[];
}
const running: Running[] = [];
const servers: http.Server[] = [];

afterAll(async () => {
  for (const r of running) {
    await r.gateway.close();
    await r.witness.close();
  }
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((res) => s.close(res));
  }
});

const stdioServer = (name: string, args: string[], env?: Record<string, string>) => [
  `  - name: ${name}`,
  `    path: /mcp/${name}`,
  `    command: ${JSON.stringify(process.execPath)}`,
  `    args: ${JSON.stringify(args)}`,
  ...(env === undefined ? [] : [`    env: ${JSON.stringify(env)}`]),
];
const httpServer = (name: string, url: string, extra: string[] = []) => [`  - name: ${name}`, `    path: /mcp/${name}`, `    url: ${JSON.stringify(url)}`, ...extra];

async function startGateway(serverLines: string[], settings = '', keepAliveMs?: number): Promise<Running> {
  const store = tempDb(dir);
  const text = [
    'listen: "127.0.0.1:0"',
    'agents:',
    `  - { id: support-bot, key_sha256: "${keySha256(SUPPORT_KEY)}" }`,
    `  - { id: billing-bot, key_sha256: "${keySha256(BILLING_KEY)}" }`,
    settings,
    'servers:',
    ...serverLines,
    '',
  ].join('\n');
  const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
  const logs: string[] = [];
  const gateway = await startHttpGateway(parseGatewayConfig(text, { source: 'gateway.yaml', baseDir: dir }), witness, {
    stopTimeoutMs: 500,
    onLog: (m) => logs.push(m),
    ...(keepAliveMs === undefined ? {} : { keepAliveMs }),
  });
  const r = { gateway, witness, store, logs };
  running.push(r);
  return r;
}

async function events(r: Running): Promise<StoredEvent[]> {
  await r.witness.flush();
  return readEvents(r.store);
}

/** A small real HTTP server; `handle` answers each POST (its body read). Returns its URL and every request it got. */
async function upstreamServer(handle: (body: string, res: http.ServerResponse, req: http.IncomingMessage) => void | Promise<void>) {
  const seen: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      void handle(body, res, req);
    });
  });
  servers.push(srv);
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/mcp`, seen };
}

const connect = (url: string, key: string) => v2HttpClient(url, key, 'limits-test');

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

async function counter(url: string): Promise<string> {
  const res = await modernPost(url, SUPPORT_KEY, { id: 'read', method: 'resources/read', params: { uri: 'mem://counter' } });
  const body = (await res.json()) as { result: { contents: Array<{ text: string }> } };
  return body.result.contents[0]!.text;
}

describe('witness gateway 2026-07-28 limits and refusals', () => {
  it('reads the per-agent and per-group limits from the configuration, with defaults, and names a bad one by its line', () => {
    const base = ['agents:', `  - { id: a, key_sha256: "${keySha256(SUPPORT_KEY)}" }`, 'servers:', ...stdioServer('s', ['x'])];
    expect(parseGatewayConfig(base.join('\n'))).toMatchObject({ maxGroupsPerAgent: 32, maxRequestsPerGroup: 64, maxListensPerGroup: 8 });
    const set = parseGatewayConfig(['max_groups_per_agent: 3', 'max_requests_per_group: 5', 'max_listens_per_group: 2', ...base].join('\n'));
    expect(set).toMatchObject({ maxGroupsPerAgent: 3, maxRequestsPerGroup: 5, maxListensPerGroup: 2 });
    expect(() => parseGatewayConfig(['max_listens_per_group: 0', ...base].join('\n'), { source: 'gw.yaml' })).toThrow('gw.yaml line 1: max_listens_per_group must be a positive whole number.');
  });

  it('never sends a stdio server a call whose client closed its POST while the call was being recorded: recorded cancelled, and it did not run', async () => {
    const r = await startGateway(stdioServer('s', [V2_SERVER, 'stdio']));
    const url = `${r.gateway.url}/mcp/s`;
    expect(await counter(url)).toBe('counter=0');
    // A slow ledger (as a remote store can be): the tool.call record takes 400 ms to become durable.
    const ledger = driverOf(r.witness);
    const append = ledger.appendPrepared.bind(ledger);
    let slow = true;
    ledger.appendPrepared = async (evs) => {
      if (slow && evs.some((e) => JSON.stringify(e).includes('"tool.call"'))) await sleep(400);
      return append(evs);
    };
    const abort = new AbortController();
    const call = modernPost(url, SUPPORT_KEY, { id: 1, method: 'tools/call', params: { name: 'touch', arguments: {} } }, {}, {}, abort.signal).catch((e: unknown) => e);
    await sleep(150);
    abort.abort();
    await call;
    await sleep(700);
    slow = false;
    expect(await counter(url)).toBe('counter=0');
    const results = (await events(r)).filter((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'touch');
    expect(results.map((e) => e.data?.['error'])).toEqual([expect.objectContaining({ code: 'cancelled' })]);
  });

  it('consumes no grant and releases nothing for a held call whose client closed its POST while the desk was reading its approval', async () => {
    const alice = person(dir, 'alice@corp');
    const policy = path.join(dir, 'touch-review.yaml');
    fs.writeFileSync(
      policy,
      ['version: 1', 'default: allow', 'approvers:', `  - { id: alice@corp, key: "${alice.vkey}" }`, 'rules:', '  - id: touch-review', '    match: { tool: touch }', '    effect: review', ''].join(
        '\n',
      ),
    );
    const r = await startGateway([...stdioServer('s', [V2_SERVER, 'stdio']), `    policy: ${JSON.stringify(policy)}`], 'approvals: { poll_ms: 50 }');
    const url = `${r.gateway.url}/mcp/s`;
    expect(await counter(url)).toBe('counter=0');
    const abort = new AbortController();
    const call = modernPost(url, SUPPORT_KEY, { id: 2, method: 'tools/call', params: { name: 'touch', arguments: {} } }, {}, {}, abort.signal).catch((e: unknown) => e);
    let requestId: string | undefined;
    await until(async () => (requestId = (await events(r)).find((e) => e.kind === 'approval.request')?.id) !== undefined, 'the approval request');
    // The desk reads a decision with getEvent(request): held there (as a slow remote store would), the client leaves meanwhile.
    const ledger = driverOf(r.witness);
    const getEvent = ledger.getEvent.bind(ledger);
    let armed = true;
    ledger.getEvent = async (id) => {
      if (armed && id === requestId) {
        armed = false;
        setTimeout(() => abort.abort(), 100);
        await sleep(800);
      }
      return getEvent(id);
    };
    const decided = await runCli(['approve', requestId!, '--key', alice.file, '--reason', 'ok', '--store', `sqlite:${r.store}`]);
    expect(decided.code).toBe(0);
    await call;
    await until(() => !armed, 'the desk reading the decision');
    await sleep(1200);
    expect(await counter(url)).toBe('counter=0');
    const evs = (await events(r)).filter((e) => e.data?.['tool'] === 'touch');
    // Recorded cancelled, and no policy.decision after the review one: the grant was not consumed.
    expect(evs.filter((e) => e.kind === 'policy.decision').map((e) => e.data?.['decision'])).toEqual(['review']);
    expect(evs.filter((e) => e.kind === 'tool.result').map((e) => (e.data?.['error'] as { code?: string } | undefined)?.code)).toEqual(['cancelled']);
  });

  it('refuses an upstream answer larger than the server’s max_frame_bytes, as JSON and as an SSE event without its blank line, with a JSON-RPC error recorded as frame_too_large', async () => {
    const big = await upstreamServer((body, res) => {
      const m = JSON.parse(body) as { id: number; params: { arguments: { as: string } } };
      const text = 'x'.repeat(300_000);
      if (m.params.arguments.as === 'json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text }], resultType: 'complete' } }));
      }
      // data: lines that never end their event: the gateway must not keep them all.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < 30; i++) res.write(`data: ${'y'.repeat(10_000)}\n`);
      res.end();
    });
    const r = await startGateway(httpServer('big', big.url, ['    max_frame_bytes: 100000']));
    for (const [id, as] of [
      [1, 'json'],
      [2, 'sse'],
    ] as const) {
      const res = await modernPost(`${r.gateway.url}/mcp/big`, SUPPORT_KEY, { id, method: 'tools/call', params: { name: 'echo', arguments: { as } } });
      const body = await res.text();
      expect(body.length).toBeLessThan(2000);
      expect(JSON.parse(body.replace(/^event: message\ndata: /, ''))).toMatchObject({ id, error: { message: expect.stringMatching(/100000-byte limit/) } });
    }
    const results = (await events(r)).filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => (e.data?.['error'] as Record<string, unknown>)['code'])).toEqual(['frame_too_large', 'frame_too_large']);
  });

  it('refuses an over-large upstream answer in a 2025 session too, with a JSON-RPC error recorded as frame_too_large', async () => {
    // A minimal sessionful 2025 server: initialize, then a tools/call answered with 300 kB.
    const big = await upstreamServer((body, res) => {
      // The GET stream and DELETE: not offered.
      if (body === '') return void res.writeHead(405).end();
      const m = JSON.parse(body) as { id?: number; method: string; params?: { protocolVersion?: string } };
      if (m.id === undefined) return void res.writeHead(202).end();
      const result =
        m.method === 'initialize'
          ? { protocolVersion: m.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'big', version: '1' } }
          : { content: [{ type: 'text', text: 'x'.repeat(300_000) }] };
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'big-1' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
    });
    const r = await startGateway(httpServer('big', big.url, ['    max_frame_bytes: 100000']));
    const client = new V1Client({ name: 'v1', version: '1' });
    await client.connect(new V1HttpTransport(new URL(`${r.gateway.url}/mcp/big`), { requestInit: { headers: { Authorization: `Bearer ${SUPPORT_KEY}` } } }));
    try {
      await expect(client.callTool({ name: 'echo', arguments: {} })).rejects.toThrow(/100000-byte limit/);
    } finally {
      await client.close();
    }
    const result = (await events(r)).find((e) => e.kind === 'tool.result')!;
    expect(result.data?.['error']).toMatchObject({ code: 'frame_too_large' });
  });

  it('refuses an upstream redirect instead of following it with the configured credentials and the body, and records the refusal', async () => {
    const elsewhere = await upstreamServer((_body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const redirecting = await upstreamServer((_body, res) => {
      res.writeHead(307, { location: elsewhere.url });
      res.end();
    });
    const r = await startGateway(httpServer('r', redirecting.url, ['    headers: { X-Api-Key: upstream-secret }']));
    const res = await modernPost(`${r.gateway.url}/mcp/r`, SUPPORT_KEY, { id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'secret body' } } });
    expect(await res.json()).toMatchObject({ id: 1, error: { message: expect.stringMatching(/redirect/) } });
    expect(redirecting.seen).toHaveLength(1);
    expect(elsewhere.seen).toHaveLength(0);
    // A 2025 session's initialize is not followed there either.
    const v1 = new V1Client({ name: 'v1', version: '1' });
    await expect(v1.connect(new V1HttpTransport(new URL(`${r.gateway.url}/mcp/r`), { requestInit: { headers: { Authorization: `Bearer ${SUPPORT_KEY}` } } }))).rejects.toThrow(/redirect/);
    await v1.close();
    expect(redirecting.seen).toHaveLength(2);
    expect(elsewhere.seen).toHaveLength(0);
    const result = (await events(r)).find((e) => e.kind === 'tool.result')!;
    expect(result.data?.['error']).toMatchObject({ code: 'upstream_redirect' });
  });

  it('shows neither the user, password nor query of an upstream URL to clients or in the session’s labels', async () => {
    const r = await startGateway(httpServer('leaky', 'http://bob:hunter2@127.0.0.1:1/mcp?token=sekrit-token'));
    const res = await modernPost(`${r.gateway.url}/mcp/leaky`, SUPPORT_KEY, { id: 1, method: 'tools/list' });
    const text = await res.text();
    expect(text).toMatch(/could not be reached/);
    expect(text).not.toMatch(/hunter2|sekrit|bob/);
    const stored = JSON.stringify(await events(r));
    expect(stored).not.toMatch(/hunter2|sekrit-token|bob:/);
    expect(stored).toContain('http://127.0.0.1:1/mcp');
  });

  it('starts stdio servers without the ledger’s credentials (WITNESS_* and libpq PG* variables) but with the env the configuration gives them', async () => {
    const dump = [
      'const rl = require("readline").createInterface({ input: process.stdin });',
      'rl.on("line", (l) => { const m = JSON.parse(l); if (m.id === undefined) return;',
      '  const keys = Object.keys(process.env).filter((k) => /^(PG|WITNESS_)/.test(k)).sort();',
      '  process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: keys.join(",") }], resultType: "complete" } }) + "\\n"); });',
    ].join('\n');
    const saved = { ...process.env };
    Object.assign(process.env, { PGPASSWORD: 'ledger-pw', PGUSER: 'witness', PGSSLKEY: '/k', WITNESS_STORE: 'postgres://x' });
    try {
      const r = await startGateway(stdioServer('dump', ['-e', dump], { PGAPPNAME: 'mine' }));
      const res = await modernPost(`${r.gateway.url}/mcp/dump`, SUPPORT_KEY, { id: 1, method: 'tools/call', params: { name: 'env', arguments: {} } });
      expect(await res.json()).toMatchObject({ result: { content: [{ text: 'PGAPPNAME' }] } });
    } finally {
      for (const k of ['PGPASSWORD', 'PGUSER', 'PGSSLKEY', 'WITNESS_STORE']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('starts witness proxy’s server without the ledger’s credentials either', async () => {
    const dump = [
      'const rl = require("readline").createInterface({ input: process.stdin });',
      'rl.on("line", () => { process.stdout.write(JSON.stringify({ keys: Object.keys(process.env).filter((k) => /^(PG|WITNESS_)/.test(k)) }) + "\\n"); });',
    ].join('\n');
    const witness = await openWitness({ store: `sqlite:${tempDb(dir)}` });
    const input = new PassThrough();
    const output = new PassThrough();
    let out = '';
    output.on('data', (c: Buffer) => (out += c.toString()));
    const env = { ...process.env, PGPASSWORD: 'ledger-pw', PGHOST: 'db', WITNESS_STORE: 'postgres://x', KEEP_ME: '1' };
    const proxy = new StdioProxy({ witness, agent: { id: 'support-bot' }, command: process.execPath, args: ['-e', dump], input, output, env });
    await proxy.start();
    input.write('{"jsonrpc":"2.0","method":"notifications/ping"}\n');
    await until(() => out.includes('\n'), 'the server’s answer');
    input.end();
    await proxy.done;
    await witness.close();
    expect(JSON.parse(out)).toEqual({ keys: [] });
  });

  it('limits the groups one agent holds (max_groups_per_agent): a further hint is refused with 429 and recorded, another agent still gets a group', async () => {
    const up = await upstreamServer((body, res) => {
      const m = JSON.parse(body) as { id: number };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { tools: [], resultType: 'complete' } }));
    });
    const r = await startGateway(httpServer('u', up.url), 'max_groups_per_agent: 2');
    const url = `${r.gateway.url}/mcp/u`;
    for (const hint of ['a', 'b']) expect((await modernPost(url, SUPPORT_KEY, { id: 1, method: 'tools/list' }, { [HINT]: hint })).status).toBe(200);
    const refused = await modernPost(url, SUPPORT_KEY, { id: 3, method: 'tools/list' }, { [HINT]: 'c' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(await refused.json()).toMatchObject({ id: 3, error: { message: expect.stringMatching(/max_groups_per_agent|2 open sessions/) } });
    expect((await modernPost(url, BILLING_KEY, { id: 4, method: 'tools/list' }, { [HINT]: 'c' })).status).toBe(200);
    const refusals = (await events(r)).filter((e) => e.stream === GATEWAY_STREAM);
    expect(refusals.map((e) => [e.agent.id, e.data?.['code']])).toEqual([['support-bot', 'too_many_groups']]);
  });

  it('limits the listen streams and open requests of one group, refusing the next with 429 and recording it', async () => {
    const r = await startGateway(stdioServer('s', [V2_SERVER, 'stdio']), 'max_listens_per_group: 1\nmax_requests_per_group: 3');
    const url = `${r.gateway.url}/mcp/s`;
    const client = await connect(url, SUPPORT_KEY);
    try {
      const sub = await client.listen({ resourceSubscriptions: ['mem://counter'] });
      const second = await modernPost(url, SUPPORT_KEY, { id: 'l2', method: 'subscriptions/listen', params: { notifications: { resourceSubscriptions: ['mem://counter'] } } });
      expect(second.status).toBe(429);
      expect(await second.json()).toMatchObject({ id: 'l2', error: { message: expect.stringMatching(/listen/) } });
      // Two slow calls fill the group's three open requests beside the listen stream.
      const slow = [1, 2].map((id) => modernPost(url, SUPPORT_KEY, { id, method: 'tools/call', params: { name: 'slow', arguments: { steps: 8 } } }));
      await sleep(300);
      const fourth = await modernPost(url, SUPPORT_KEY, { id: 3, method: 'tools/list' });
      expect(fourth.status).toBe(429);
      await Promise.all(slow.map(async (p) => (await p).text()));
      expect((await modernPost(url, SUPPORT_KEY, { id: 4, method: 'tools/list' })).status).toBe(200);
      await sub.close();
    } finally {
      await client.close();
    }
    const codes = (await events(r)).filter((e) => e.kind === 'error').map((e) => e.data?.['code']);
    expect(codes).toEqual(['too_many_listens', 'too_many_requests']);
  });

  it('does not let a notification without the 2026-07-28 claim be the first line of a new group’s stdio child (which would pin it to 2025)', async () => {
    const r = await startGateway(stdioServer('s', [V2_SERVER, 'stdio']));
    const url = `${r.gateway.url}/mcp/s`;
    const note = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${SUPPORT_KEY}`, 'MCP-Protocol-Version': MODERN },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    expect(note.status).toBe(202);
    await sleep(200);
    // A child pinned to 2025 answers server/discover with -32601; one in the 2026-07-28 era answers it.
    const res = await modernPost(url, SUPPORT_KEY, { id: 2, method: 'server/discover' });
    expect(await res.json()).toMatchObject({ id: 2, result: { supportedVersions: expect.arrayContaining([MODERN]) } });
  });

  it('refuses a session hint that is not well-formed Unicode with -32602, so no session is left without its session.start', async () => {
    const r = await startGateway(stdioServer('s', [V2_SERVER, 'stdio']));
    const body = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"${MODERN}","io.modelcontextprotocol/clientCapabilities":{},"${HINT}":"\\ud800"}}}`;
    const res = await fetch(`${r.gateway.url}/mcp/s`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `Bearer ${SUPPORT_KEY}`, 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'tools/list' },
      body,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ id: 1, error: { code: -32602 } });
    const evs = await events(r);
    expect(evs.filter((e) => e.stream !== GATEWAY_STREAM)).toEqual([]);
    expect(evs.map((e) => e.data?.['code'])).toEqual(['invalid_session_hint']);
  });

  it('drops a server request and a batch an HTTP upstream sends in a 2026-07-28 answer (the era has no server-to-client requests) and records a protocol error', async () => {
    const up = await upstreamServer((body, res) => {
      const m = JSON.parse(body) as { id: number };
      const frame = (o: unknown) => `event: message\ndata: ${JSON.stringify(o)}\n\n`;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(frame({ jsonrpc: '2.0', id: 'srv-1', method: 'sampling/createMessage', params: { messages: [], maxTokens: 1 } }));
      res.write(frame([{ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } }]));
      res.end(frame({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'ok' }], resultType: 'complete' } }));
    });
    const r = await startGateway(httpServer('u', up.url));
    const res = await modernPost(`${r.gateway.url}/mcp/u`, SUPPORT_KEY, { id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } });
    const text = await res.text();
    expect(text).not.toContain('sampling/createMessage');
    expect(text).not.toContain('notifications/message');
    expect(JSON.parse(text.replace(/^event: message\ndata: /, '').trim())).toMatchObject({ id: 1, result: { content: [{ text: 'ok' }] } });
    const errors = (await events(r)).filter((e) => e.kind === 'error');
    expect(errors.map((e) => e.data?.['code'])).toEqual(['protocol_error', 'protocol_error']);
  });

  it('writes keep-alive comments on a listen stream a stdio server keeps silent, and a client that vanishes from it frees its group', async () => {
    const r = await startGateway(stdioServer('s', [V2_SERVER, 'stdio']), 'session_idle_ms: 200', 100);
    const abort = new AbortController();
    const res = await modernPost(
      `${r.gateway.url}/mcp/s`,
      SUPPORT_KEY,
      { id: 'l1', method: 'subscriptions/listen', params: { notifications: { resourceSubscriptions: ['mem://counter'] } } },
      {},
      {},
      abort.signal,
    );
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    while ((text.match(/: keepalive/g) ?? []).length < 2) text += decoder.decode((await reader.read()).value);
    expect(r.gateway.sessions).toBe(1);
    abort.abort();
    await until(() => r.gateway.sessions === 0, 'the group to end once its only client is gone');
  });

  it('ignores an Mcp-Session-Id header on a 2026-07-28 request, and answers a posted response in that era with -32600 rather than a version error', async () => {
    const r = await startGateway(stdioServer('s', [V2_SERVER, 'stdio']));
    const url = `${r.gateway.url}/mcp/s`;
    const res = await modernPost(url, SUPPORT_KEY, { id: 1, method: 'tools/list' }, {}, { 'Mcp-Session-Id': 'left-over-from-2025' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 1, result: { tools: expect.any(Array) } });
    const posted = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `Bearer ${SUPPORT_KEY}`, 'MCP-Protocol-Version': MODERN },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'srv-1', result: {} }),
    });
    expect(posted.status).toBe(400);
    expect(await posted.json()).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/no server-to-client requests/) } });
  });
});
