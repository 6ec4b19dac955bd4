import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1HttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { GATEWAY_STREAM, NOT_RECORDED, keySha256, parseGatewayConfig, startHttpGateway, type HttpGateway } from '../../src/gateway/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { person } from '../helpers/approvers.js';
import { REPO_ROOT, driverOf, readEvents, runCli, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { MODERN, V2_SCRIPT_EVENTS, V2_SERVER, eventLabel, modernPost, startV2HttpServer, v2Client, v2HttpClient, v2Script, v2StdioClient, type V2HttpServer } from '../helpers/v2.js';

/**
 * `witness gateway` in the 2026-07-28 era over Streamable HTTP, real parts only: the official v2
 * SDK Client (auto negotiation) over its StreamableHTTPClientTransport → the gateway in process →
 * the real dual-era v2 McpServer over HTTP (test/fixtures/children/mcp-v2-server.mjs), recording
 * into a temporary SQLite ledger. Beside it, 2025 clients and a 2025-only upstream still work.
 */

const dir = tempDir('witness-modern-http-');
const SUPPORT_KEY = 'wk_support-test-key-0000000000000000000000000000';
const BILLING_KEY = 'wk_billing-test-key-0000000000000000000000000000';
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const HINT = 'dev.witness/session';

let upstream: V2HttpServer;
let upstreamUrl: string;
const alice = person(dir, 'alice@corp');

beforeAll(async () => {
  // DEBUG=1: the server says on stderr when a call's signal aborted (a cancellation that reached it).
  upstream = await startV2HttpServer({ DEBUG: '1' });
  upstreamUrl = upstream.url;
});

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
  upstream.child.kill();
});

function policyFile(): string {
  const file = path.join(dir, 'guarded.yaml');
  fs.writeFileSync(
    file,
    [
      'version: 1',
      'default: allow',
      'approvers:',
      `  - { id: alice@corp, key: "${alice.vkey}" }`,
      'rules:',
      '  - id: no-touching',
      '    match: { tool: touch }',
      '    effect: deny',
      '    hide: true',
      '    reason: Nobody touches the counter here.',
      '  - id: refunds-need-review',
      '    match: { tool: echo }',
      '    when: args.text startsWith "refund"',
      '    effect: review',
      '',
    ].join('\n'),
  );
  return file;
}

async function startGateway(settings = '', extraServers: string[] = []): Promise<Running> {
  const store = tempDb(dir);
  const text = [
    'listen: "127.0.0.1:0"',
    'agents:',
    `  - { id: support-bot, key_sha256: "${keySha256(SUPPORT_KEY)}" }`,
    `  - { id: billing-bot, key_sha256: "${keySha256(BILLING_KEY)}" }`,
    'approvals: { poll_ms: 50, progress_ms: 200 }',
    settings,
    'servers:',
    '  - name: v2',
    '    path: /mcp/v2',
    `    url: ${JSON.stringify(upstreamUrl)}`,
    '  - name: guarded',
    '    path: /mcp/guarded',
    `    url: ${JSON.stringify(upstreamUrl)}`,
    `    policy: ${JSON.stringify(policyFile())}`,
    '  - name: everything',
    '    path: /mcp/everything',
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: ${JSON.stringify([EVERYTHING, 'stdio'])}`,
    '  - name: v2stdio',
    '    path: /mcp/v2stdio',
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: ${JSON.stringify([V2_SERVER, 'stdio'])}`,
    ...extraServers,
    '',
  ].join('\n');
  const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
  const gateway = await startHttpGateway(parseGatewayConfig(text, { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
  const r = { gateway, witness, store };
  running.push(r);
  return r;
}

async function stop(r: Running): Promise<void> {
  await r.gateway.close();
  await r.witness.close();
  running.splice(running.indexOf(r), 1);
}

async function events(r: Running): Promise<StoredEvent[]> {
  await r.witness.flush();
  return readEvents(r.store);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

describe('witness gateway in the 2026-07-28 era (v2 SDK client and server over Streamable HTTP)', () => {
  it('negotiates 2026-07-28 in auto mode and answers discovery, calls, errors, progress, resources and prompts byte for byte as a direct connection does, recorded under the key’s agent', async () => {
    const r = await startGateway();
    const direct = v2Client('v2-test', 'auto');
    await direct.connect(new StreamableHTTPClientTransport(new URL(upstreamUrl)));
    const client = await v2HttpClient(`${r.gateway.url}/mcp/v2`, SUPPORT_KEY);
    let viaDirect: string[];
    let viaGateway: string[];
    try {
      expect(direct.getNegotiatedProtocolVersion()).toBe(MODERN);
      expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
      viaDirect = await v2Script(direct, 'order A-1042');
      viaGateway = await v2Script(client, 'order A-1042');
    } finally {
      await Promise.all([direct.close(), client.close()]);
    }
    expect(viaGateway).toEqual(viaDirect);
    expect(viaGateway[1]).toContain('order A-1042');
    expect(viaGateway[1]).toContain('"io.modelcontextprotocol/serverInfo":{"name":"v2-demo"');
    expect(viaGateway[4]).toMatch(/^error -32602 .*Tool nope not found/);
    expect(JSON.parse(viaGateway[8]!)).toHaveLength(2);
    await stop(r);

    const evs = (await readEvents(r.store)).filter((e) => e.stream !== GATEWAY_STREAM);
    // One group (no hint): one session, from the discovery probe to the gateway's close.
    expect(new Set(evs.map((e) => e.stream)).size).toBe(1);
    expect(evs.map(eventLabel)).toEqual(V2_SCRIPT_EVENTS);
    expect(new Set(evs.map((e) => e.agent.id))).toEqual(new Set(['support-bot']));
    expect(evs[0]!.data?.['labels']).toMatchObject({ transport: 'streamable-http', era: MODERN, path: '/mcp/v2', server: 'v2', upstream: upstreamUrl });
    expect(evs[1]!.data).toMatchObject({ tool: 'echo', arguments: { text: 'order A-1042' } });
    expect(evs[2]!).toMatchObject({ parent: evs[1]!.id, outcome: 'success' });
    expect(evs[4]!.outcome).toBe('error');
    expect(evs[8]!.data).toMatchObject({ is_error: true, error: { code: -32602 } });
    expect(evs[11]!.data).toMatchObject({ target: 'mem://counter' });
    expect(evs[13]!.data).toMatchObject({ target: 'greet' });
    expect(evs[15]!.data).toMatchObject({ reason: 'cancelled' });
    expect((await verifyFile(r.store)).ok).toBe(true);
  });

  it('records a call the client aborts as cancelled and stops it upstream [R-GW-PASSTHROUGH]', async () => {
    const r = await startGateway();
    const client = await v2HttpClient(`${r.gateway.url}/mcp/v2`, SUPPORT_KEY);
    const seen: number[] = [];
    try {
      const abort = new AbortController();
      const call = client.callTool({ name: 'slow', arguments: { steps: 20 } }, { signal: abort.signal, onprogress: (p) => seen.push(p.progress) });
      await until(() => seen.length >= 2, 'two progress notifications');
      abort.abort('changed my mind');
      await expect(call).rejects.toThrow();
      await until(async () => (await events(r)).some((e) => e.kind === 'tool.result'), 'the cancelled call to be recorded');
    } finally {
      await client.close();
    }
    const result = (await events(r)).find((e) => e.kind === 'tool.result')!;
    expect(result.outcome).toBe('error');
    expect(result.data).toMatchObject({ tool: 'slow', error: { code: 'cancelled' } });
    expect(seen.length).toBeLessThan(20);
    // The upstream POST was closed, which is how the modern era cancels: the server's handler saw its signal abort.
    await until(() => /slow aborted at \d+/.test(upstream.log()), 'the server to see the cancellation');
  });

  it('passes a subscriptions/listen stream through and delivers resources/updated after a touch', async () => {
    const r = await startGateway();
    const client = await v2HttpClient(`${r.gateway.url}/mcp/v2`, SUPPORT_KEY);
    const updates: unknown[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params));
    try {
      const sub = await client.listen({ resourceSubscriptions: ['mem://counter'] });
      expect(sub.honoredFilter).toMatchObject({ resourceSubscriptions: ['mem://counter'] });
      await client.callTool({ name: 'touch', arguments: {} });
      await until(() => updates.length === 1, 'the resources/updated notification');
      expect(updates[0]).toMatchObject({ uri: 'mem://counter' });
      await sub.close();
    } finally {
      await client.close();
    }
    const calls = (await events(r)).filter((e) => e.kind === 'tool.call');
    expect(calls.map((e) => e.data?.['tool'])).toEqual(['touch']);
  });

  it('enforces the policy on modern requests: a denied call is not forwarded, its tool is hidden, and review calls wait for a person who approves one and denies another [R-GW-DENY] [R-GW-APPROVAL]', async () => {
    const r = await startGateway();
    const client = await v2HttpClient(`${r.gateway.url}/mcp/guarded`, SUPPORT_KEY);
    const before = await client.readResource({ uri: 'mem://counter' });
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).not.toContain('touch');
      expect(tools).toContain('echo');
      const denied = await client.callTool({ name: 'touch', arguments: {} });
      expect(denied.isError).toBe(true);
      expect((denied.content as Array<{ text: string }>)[0]!.text).toMatch(/denied by policy rule "no-touching"/);
      // The counter did not move: the call never reached the server.
      expect(await client.readResource({ uri: 'mem://counter' })).toEqual(before);

      for (const [decision, text] of [
        ['approve', 'refund 650'],
        ['deny', 'refund 9000'],
      ] as const) {
        const progress: unknown[] = [];
        const call = client.callTool({ name: 'echo', arguments: { text } }, { onprogress: (p) => progress.push(p), resetTimeoutOnProgress: true });
        let requestId: string | undefined;
        await until(async () => {
          const pending = (await events(r)).filter((e) => e.kind === 'approval.request');
          requestId = pending[pending.length - 1]?.id;
          return pending.length === (decision === 'approve' ? 1 : 2);
        }, 'the approval request');
        await until(() => progress.length >= 1, 'an approval-wait progress notification');
        const decided = await runCli([decision, requestId!, '--key', alice.file, '--reason', 'checked', '--store', `sqlite:${r.store}`]);
        expect(decided.code).toBe(0);
        const answer = await call;
        if (decision === 'approve') expect(answer.content).toEqual([{ type: 'text', text }]);
        else expect(answer.isError).toBe(true);
      }
    } finally {
      await client.close();
    }
    const evs = await events(r);
    const decisions = evs.filter((e) => e.kind === 'approval.decision').map((e) => e.data?.['decision']);
    expect(decisions).toEqual(['approved', 'denied']);
    const results = evs.filter((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'echo');
    expect(results.map((e) => e.outcome)).toEqual(['success', 'denied']);
  });

  it('drops a client still waiting on a held call when the gateway stops, and records the call and its session as cancelled', async () => {
    const r = await startGateway();
    const waiting = modernPost(`${r.gateway.url}/mcp/guarded`, SUPPORT_KEY, { id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'refund 1' } } }).then(
      async (res) => res.text(),
      (e: unknown) => e,
    );
    await until(async () => (await events(r)).some((e) => e.kind === 'approval.request'), 'the approval request');
    await stop(r);
    expect(await waiting).toBeInstanceOf(Error);
    const evs = await readEvents(r.store);
    expect(evs.filter((e) => e.kind === 'tool.result').map((e) => [e.outcome, (e.data?.['error'] as { code?: string } | undefined)?.code])).toEqual([['error', 'cancelled']]);
    expect(evs.filter((e) => e.kind === 'session.end').map((e) => e.data?.['reason'])).toEqual(['cancelled']);
    expect((await verifyFile(r.store)).ok).toBe(true);
  });

  it('records spoofed identity in _meta as a claim only: the agent is the API key’s [R-GW-IDENTITY]', async () => {
    const r = await startGateway();
    const client = await v2HttpClient(`${r.gateway.url}/mcp/v2`, SUPPORT_KEY, 'billing-admin');
    try {
      await client.callTool({ name: 'echo', arguments: { text: 'hi' }, _meta: { agent: 'billing-bot', 'io.modelcontextprotocol/clientInfo': { name: 'billing-bot', version: '1' } } });
    } finally {
      await client.close();
    }
    const call = (await events(r)).find((e) => e.kind === 'tool.call')!;
    expect(call.agent.id).toBe('support-bot');
    expect(call.agent.credential).toBe(keySha256(SUPPORT_KEY).slice(0, 12));
    expect(JSON.stringify(call.data?.['client_claims'])).toContain('billing-bot');
  });

  it('refuses a modern call it cannot record with -32050 and never forwards it, in a started group and in a new one (fail closed) [R-GW-FAIL-CLOSED]', async () => {
    const witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, retryForMs: 0, seal: { enabled: false } });
    const text = [
      'listen: "127.0.0.1:0"',
      'agents:',
      `  - { id: support-bot, key_sha256: "${keySha256(SUPPORT_KEY)}" }`,
      'servers:',
      '  - name: v2',
      '    path: /mcp/v2',
      `    url: ${JSON.stringify(upstreamUrl)}`,
      '',
    ].join('\n');
    const gateway = await startHttpGateway(parseGatewayConfig(text, { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
    const client = await v2HttpClient(`${gateway.url}/mcp/v2`, SUPPORT_KEY);
    try {
      const before = await client.readResource({ uri: 'mem://counter' });
      // The ledger goes away under the running gateway.
      await driverOf(witness).close();
      const refused = await client.callTool({ name: 'touch', arguments: {} }).then(
        () => undefined,
        (e: unknown) => e as { code?: number; message: string },
      );
      expect(refused?.code).toBe(NOT_RECORDED);
      const fresh = await modernPost(`${gateway.url}/mcp/v2`, SUPPORT_KEY, { id: 9, method: 'tools/call', params: { name: 'touch', arguments: {} } }, { [HINT]: 'new-group' });
      expect(await fresh.json()).toMatchObject({ id: 9, error: { code: NOT_RECORDED } });
      // Neither touch reached the server.
      const direct = v2Client('direct', 'auto');
      await direct.connect(new StreamableHTTPClientTransport(new URL(upstreamUrl)));
      expect((await direct.readResource({ uri: 'mem://counter' })).contents).toEqual(before.contents);
      await direct.close();
    } finally {
      await client.close();
      await gateway.close();
      await witness.close().catch(() => undefined);
    }
  });

  it('refuses a wrong API key with 401 before anything is forwarded [R-GW-AUTH]', async () => {
    const r = await startGateway();
    await expect(v2HttpClient(`${r.gateway.url}/mcp/v2`, 'wk_not-a-configured-key')).rejects.toThrow();
    const res = await modernPost(`${r.gateway.url}/mcp/v2`, 'wk_not-a-configured-key', { id: 1, method: 'tools/call', params: { name: 'touch', arguments: {} } });
    expect(res.status).toBe(401);
    const evs = await events(r);
    expect(evs.filter((e) => e.stream !== GATEWAY_STREAM)).toEqual([]);
    expect(evs.every((e) => e.data?.['code'] === 'unauthorized')).toBe(true);
  });

  it('groups requests into Witness sessions by key, path and _meta hint: the same hint shares a session, another hint or another key does not', async () => {
    const r = await startGateway();
    const url = `${r.gateway.url}/mcp/v2`;
    const call = async (key: string, id: number, hint: string | undefined) => {
      const res = await modernPost(url, key, { id, method: 'tools/call', params: { name: 'echo', arguments: { text: `call ${id}` } } }, hint === undefined ? {} : { [HINT]: hint });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toMatchObject({ id, result: { content: [{ text: `call ${id}` }] } });
    };
    await call(SUPPORT_KEY, 1, 'ticket-1');
    await call(SUPPORT_KEY, 1, 'ticket-1');
    await call(SUPPORT_KEY, 2, 'ticket-2');
    await call(BILLING_KEY, 3, 'ticket-1');
    await call(SUPPORT_KEY, 4, undefined);
    const bad = await modernPost(url, SUPPORT_KEY, { id: 5, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }, { [HINT]: { other: 'agent' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ id: 5, error: { code: -32602 } });
    const calls = (await events(r)).filter((e) => e.kind === 'tool.call');
    const streams = calls.map((e) => e.stream);
    expect(streams).toHaveLength(5);
    expect(streams[0]).toBe(streams[1]);
    expect(new Set(streams).size).toBe(4);
    expect(calls.map((e) => e.agent.id)).toEqual(['support-bot', 'support-bot', 'support-bot', 'billing-bot', 'support-bot']);
    const starts = (await events(r)).filter((e) => e.kind === 'session.start');
    expect(starts.map((e) => (e.data?.['labels'] as Record<string, string>)['hint'])).toEqual(['ticket-1', 'ticket-2', 'ticket-1', undefined]);
    expect(r.gateway.sessions).toBe(4);
  });

  it('answers an unsupported version with 400 -32022 naming the versions served, and headers that disagree with the body with 400 -32020, and records both', async () => {
    const r = await startGateway();
    const url = `${r.gateway.url}/mcp/v2`;
    const old = await modernPost(url, SUPPORT_KEY, { id: 1, method: 'tools/list' }, { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' }, { 'MCP-Protocol-Version': '2099-01-01' });
    expect(old.status).toBe(400);
    const oldBody = (await old.json()) as { id: number; error: { code: number; data: { supported: string[]; requested: string } } };
    expect(oldBody).toMatchObject({ id: 1, error: { code: -32022, data: { requested: '2099-01-01' } } });
    expect(oldBody.error.data.supported).toEqual(expect.arrayContaining([MODERN, '2025-11-25']));
    const mismatch = await modernPost(url, SUPPORT_KEY, { id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }, {}, { 'Mcp-Name': 'touch' });
    expect(mismatch.status).toBe(400);
    expect(await mismatch.json()).toMatchObject({ id: 2, error: { code: -32020 } });
    const noEnvelope = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        Authorization: `Bearer ${SUPPORT_KEY}`,
        'MCP-Protocol-Version': MODERN,
        'Mcp-Method': 'tools/list',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
    });
    expect(noEnvelope.status).toBe(400);
    expect(await noEnvelope.json()).toMatchObject({ id: 3, error: { code: -32602 } });
    const gate = (await events(r)).filter((e) => e.stream === GATEWAY_STREAM);
    expect(gate.map((e) => [e.agent.id, e.data?.['code'], e.data?.['rpc_code']])).toEqual([
      ['support-bot', 'unsupported_protocol_version', -32022],
      ['support-bot', 'header_mismatch', -32020],
      ['support-bot', 'invalid_envelope', -32602],
    ]);
    expect((await events(r)).filter((e) => e.kind === 'tool.call')).toEqual([]);
  });

  it('still serves a v1 SDK client in a 2025 session in front of the same v2 server', async () => {
    const r = await startGateway();
    const client = new V1Client({ name: 'v1-client', version: '1.0.0' });
    const transport = new V1HttpTransport(new URL(`${r.gateway.url}/mcp/v2`), { requestInit: { headers: { Authorization: `Bearer ${SUPPORT_KEY}` } } });
    await client.connect(transport);
    try {
      const res = await client.callTool({ name: 'echo', arguments: { text: 'from 2025' } });
      expect(res.content).toEqual([{ type: 'text', text: 'from 2025' }]);
      expect(res).not.toHaveProperty('resultType');
      await transport.terminateSession();
    } finally {
      await client.close();
    }
    const evs = (await events(r)).filter((e) => e.stream !== GATEWAY_STREAM);
    expect(evs.map(eventLabel)).toEqual(['session.start', 'tool.call:echo', 'tool.result:echo', 'session.end']);
    expect(evs[0]!.data?.['labels']).toMatchObject({ transport: 'streamable-http', path: '/mcp/v2' });
    expect(evs[0]!.data?.['labels']).not.toHaveProperty('era');
  });

  it('serves 2026-07-28 requests to a stdio server through one child per group, byte for byte as a direct stdio connection', async () => {
    const r = await startGateway();
    const direct = await v2StdioClient([process.execPath, V2_SERVER, 'stdio']);
    const client = await v2HttpClient(`${r.gateway.url}/mcp/v2stdio`, SUPPORT_KEY);
    let viaDirect: string[];
    let viaGateway: string[];
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
      viaDirect = await v2Script(direct.client, 'order A-1042');
      viaGateway = await v2Script(client, 'order A-1042');
    } finally {
      await Promise.all([direct.client.close(), client.close()]);
    }
    expect(viaGateway).toEqual(viaDirect);
    expect(viaGateway[4]).toMatch(/^error -32602 .*Tool nope not found/);
    expect(JSON.parse(viaGateway[8]!)).toHaveLength(2);
    const evs = (await events(r)).filter((e) => e.stream !== GATEWAY_STREAM);
    expect(new Set(evs.map((e) => e.stream)).size).toBe(1);
    expect(evs.filter((e) => e.kind === 'tool.result').map((e) => e.outcome)).toEqual(['success', 'error', 'error', 'error', 'success', 'success', 'success']);
    expect(evs[0]!.data?.['labels']).toMatchObject({ era: MODERN, path: '/mcp/v2stdio', upstream: `${process.execPath} ${V2_SERVER} stdio` });
  });

  it('keeps concurrent requests of two clients in one stdio group apart though their JSON-RPC ids and progress tokens collide', async () => {
    const r = await startGateway();
    const a = await v2HttpClient(`${r.gateway.url}/mcp/v2stdio`, SUPPORT_KEY, 'client-a');
    const b = await v2HttpClient(`${r.gateway.url}/mcp/v2stdio`, SUPPORT_KEY, 'client-b');
    const progress: Record<string, number[]> = { a: [], b: [] };
    try {
      // Both clients number their requests from 0 and use the id as progress token: the same id 0 and token 0 at once.
      const [ra, rb] = await Promise.all([
        a.callTool({ name: 'slow', arguments: { steps: 2 } }, { onprogress: (p) => progress['a']!.push(p.progress) }),
        b.callTool({ name: 'slow', arguments: { steps: 4 } }, { onprogress: (p) => progress['b']!.push(p.progress) }),
      ]);
      expect(ra.content).toEqual([{ type: 'text', text: 'done 2' }]);
      expect(rb.content).toEqual([{ type: 'text', text: 'done 4' }]);
      expect(progress).toEqual({ a: [1, 2], b: [1, 2, 3, 4] });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    const calls = (await events(r)).filter((e) => e.kind === 'tool.call');
    expect(calls.map((e) => e.data?.['jsonrpc_id'])).toEqual([0, 0]);
    expect(new Set(calls.map((e) => e.stream)).size).toBe(1);
  });

  it('cancels a stdio call when its client aborts (recorded cancelled), delivers listen notifications, and the group’s child keeps serving', async () => {
    const r = await startGateway();
    const client = await v2HttpClient(`${r.gateway.url}/mcp/v2stdio`, SUPPORT_KEY);
    const updates: unknown[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params));
    try {
      const seen: number[] = [];
      const abort = new AbortController();
      const call = client.callTool({ name: 'slow', arguments: { steps: 20 } }, { signal: abort.signal, onprogress: (p) => seen.push(p.progress) });
      await until(() => seen.length >= 1, 'a progress notification');
      abort.abort('changed my mind');
      await expect(call).rejects.toThrow();
      const sub = await client.listen({ resourceSubscriptions: ['mem://counter'] });
      expect(sub.honoredFilter).toMatchObject({ resourceSubscriptions: ['mem://counter'] });
      expect((await client.callTool({ name: 'touch', arguments: {} })).content).toEqual([{ type: 'text', text: '1' }]);
      await until(() => updates.length === 1, 'the resources/updated notification');
      expect(updates[0]).toMatchObject({ uri: 'mem://counter' });
      await sub.close();
    } finally {
      await client.close();
    }
    const results = (await events(r)).filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => [e.data?.['tool'], e.outcome])).toEqual([
      ['slow', 'error'],
      ['touch', 'success'],
    ]);
    expect(results[0]!.data).toMatchObject({ error: { code: 'cancelled' } });
  });

  it('answers a call pending when the group’s stdio server dies with a JSON-RPC error, ends the group as error, and starts a new child for the next request', async () => {
    // A minimal 2026-07-28 stdio server that answers tools/list and dies on the first tool call.
    const dying = [
      'const rl = require("readline").createInterface({ input: process.stdin });',
      'rl.on("line", (l) => { const m = JSON.parse(l);',
      '  if (m.method === "tools/list") process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { tools: [], resultType: "complete" } }) + "\\n");',
      '  if (m.method === "tools/call") process.exit(3); });',
    ].join('\n');
    const r = await startGateway('', ['  - name: dying', '    path: /mcp/dying', `    command: ${JSON.stringify(process.execPath)}`, `    args: ["-e", ${JSON.stringify(dying)}]`]);
    const url = `${r.gateway.url}/mcp/dying`;
    const list = await modernPost(url, SUPPORT_KEY, { id: 1, method: 'tools/list' });
    expect(await list.json()).toEqual({ jsonrpc: '2.0', id: 1, result: { tools: [], resultType: 'complete' } });
    const call = await modernPost(url, SUPPORT_KEY, { id: 2, method: 'tools/call', params: { name: 'anything', arguments: {} } });
    expect(await call.json()).toMatchObject({ id: 2, error: { code: -32000, message: expect.stringMatching(/exited with code 3/) } });
    await until(async () => (await events(r)).some((e) => e.kind === 'session.end'), 'the group to end');
    const again = await modernPost(url, SUPPORT_KEY, { id: 3, method: 'tools/list' });
    expect(await again.json()).toMatchObject({ id: 3, result: { tools: [] } });
    const evs = (await events(r)).filter((e) => e.stream !== GATEWAY_STREAM);
    expect(evs.map(eventLabel)).toEqual(['session.start', 'tool.call:anything', 'tool.result:anything', 'error', 'session.end', 'session.start']);
    expect(evs[2]!.data).toMatchObject({ is_error: true, error: { code: 'upstream_exited' } });
    expect(evs[3]!.data).toMatchObject({ code: 'upstream_exited', exit_code: 3 });
    expect(evs[4]!.data).toMatchObject({ reason: 'error' });
    expect(evs[5]!.stream).not.toBe(evs[0]!.stream);
  });

  it('lets a v2 auto client fall back to a 2025 session in front of a 2025-only stdio server (server-everything), and that session works', async () => {
    const r = await startGateway();
    const client = await v2HttpClient(`${r.gateway.url}/mcp/everything`, SUPPORT_KEY);
    try {
      // The server itself answers the discovery probe with -32601, which makes the client fall back.
      expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25');
      const res = await client.callTool({ name: 'echo', arguments: { message: 'fallback' } });
      expect(res.content).toEqual([{ type: 'text', text: 'Echo: fallback' }]);
    } finally {
      await client.close();
    }
    const evs = await events(r);
    expect(evs.filter((e) => e.kind === 'tool.call').map((e) => e.data?.['tool'])).toEqual(['echo']);
    // The probe went to the 2026-07-28 group's own child; the calls are in the 2025 session.
    const starts = evs.filter((e) => e.kind === 'session.start').map((e) => (e.data?.['labels'] as Record<string, string>)['era']);
    expect(starts).toEqual(['2026-07-28', undefined]);
    expect(evs.find((e) => e.kind === 'tool.call')!.stream).toBe(evs.filter((e) => e.kind === 'session.start')[1]!.stream);
  });

  it('passes a 2025-only HTTP upstream’s 4xx refusal of the discovery probe on, so a v2 auto client falls back to a 2025 session that works', async () => {
    // server-everything over Streamable HTTP: a sessionful 1.x SDK server that refuses anything before initialize with 400.
    const port = await freePort();
    const everything = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PORT: String(port) } });
    try {
      let log = '';
      everything.stderr!.on('data', (c: Buffer) => (log += c.toString()));
      await until(() => /listening on port/.test(log), 'server-everything to listen');
      const r = await startGateway('', ['  - name: sessionful', '    path: /mcp/sessionful', `    url: "http://127.0.0.1:${port}/mcp"`]);
      const probe = await modernPost(`${r.gateway.url}/mcp/sessionful`, SUPPORT_KEY, { id: 'server-discover-probe-1', method: 'server/discover' });
      expect(probe.status).toBe(400);
      expect(await probe.json()).toMatchObject({ id: 'server-discover-probe-1', error: { code: -32000, message: expect.stringMatching(/HTTP 400 \(Bad Request: Server not initialized\)/) } });
      const client = await v2HttpClient(`${r.gateway.url}/mcp/sessionful`, SUPPORT_KEY);
      try {
        expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25');
        const res = await client.callTool({ name: 'echo', arguments: { message: 'after the fallback' } });
        expect(res.content).toEqual([{ type: 'text', text: 'Echo: after the fallback' }]);
      } finally {
        await client.close();
      }
      const calls = (await events(r)).filter((e) => e.kind === 'tool.call');
      expect(calls.map((e) => [e.agent.id, e.data?.['tool']])).toEqual([['support-bot', 'echo']]);
    } finally {
      everything.kill();
    }
  });

  it('ends a group’s session after session_idle_ms without a request, but not while a listen stream is open, and counts groups against max_sessions', async () => {
    const r = await startGateway('session_idle_ms: 300\nmax_sessions: 1\n');
    const url = `${r.gateway.url}/mcp/v2`;
    const client = await v2HttpClient(url, SUPPORT_KEY);
    try {
      const sub = await client.listen({ resourceSubscriptions: ['mem://counter'] });
      // A second group while the first is open: over max_sessions.
      const refused = await modernPost(url, BILLING_KEY, { id: 1, method: 'tools/list' });
      expect(refused.status).toBe(503);
      await new Promise((res) => setTimeout(res, 700));
      expect(r.gateway.sessions).toBe(1);
      expect((await events(r)).some((e) => e.kind === 'session.end')).toBe(false);
      await sub.close();
      await until(() => r.gateway.sessions === 0, 'the idle group to end');
    } finally {
      await client.close();
    }
    const evs = await events(r);
    expect(evs.filter((e) => e.kind === 'session.end').map((e) => e.data?.['reason'])).toEqual(['completed']);
    expect(evs.filter((e) => e.stream === GATEWAY_STREAM).map((e) => [e.agent.id, e.data?.['code']])).toEqual([['billing-bot', 'too_many_sessions']]);
    // Once it has ended, the next request starts a new group.
    const again = await modernPost(url, BILLING_KEY, { id: 2, method: 'tools/list' });
    expect(again.status).toBe(200);
  });
});
