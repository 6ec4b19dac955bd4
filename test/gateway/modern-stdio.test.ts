import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as V1StdioTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { NOT_RECORDED, StdioProxy } from '../../src/gateway/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { person } from '../helpers/approvers.js';
import { driverOf, readEvents, REPO_ROOT, runBin, runCli, verifyFile } from '../helpers/ledger.js';
import { proxyArgs, rawProxy } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { MODERN, V2_SCRIPT_EVENTS, V2_SERVER, eventLabel, v2Script, v2StdioClient, type Negotiation } from '../helpers/v2.js';

/**
 * `witness proxy` in the 2026-07-28 era, with real parts only: the official v2 SDK Client over its
 * stdio transport launches the real binary (bin/witness.js → dist/, so build first), which spawns
 * the real dual-era v2 McpServer (test/fixtures/children/mcp-v2-server.mjs) and records into a
 * temporary SQLite ledger. In auto mode the v2 transport launches the proxy twice: a probe run
 * that only sends server/discover, then the real one.
 */

const dir = tempDir('witness-modern-stdio-');
const SERVER = ['node', V2_SERVER, 'stdio'];
const EVERYTHING = ['node', path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js'), 'stdio'];
const CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

type Ev = StoredEvent & { pos: number };

/** The ledger's events grouped by session (stream), sessions in the order they started. */
async function sessions(store: string): Promise<Ev[][]> {
  const by = new Map<string, Ev[]>();
  for (const e of await readEvents(store)) by.set(e.stream, [...(by.get(e.stream) ?? []), e]);
  return [...by.values()];
}

/** The one session that is not a version probe (the auto-mode probe run only discovers). */
async function mainSession(store: string): Promise<Ev[]> {
  const all = await sessions(store);
  const real = all.filter((s) => s.some((e) => e.kind === 'tool.call'));
  expect(real).toHaveLength(1);
  return real[0]!;
}

const kinds = (evs: Ev[]) => evs.map(eventLabel);

interface ProxyRun {
  extra?: string[];
  server?: readonly string[];
  negotiation?: Negotiation;
  env?: Record<string, string>;
  name?: string;
  options?: NonNullable<Parameters<typeof v2StdioClient>[1]>['options'];
}

/** A v2 client (auto mode unless told) launching `witness proxy` for agent support-bot in front of `server` (the v2 fixture by default). */
function v2Proxy(store: string, o: ProxyRun = {}) {
  return v2StdioClient(proxyArgs(store, o.server ?? SERVER, o.extra ?? []), {
    negotiation: o.negotiation ?? 'auto',
    name: o.name ?? 'v2-test',
    ...(o.env === undefined ? {} : { env: o.env }),
    ...(o.options === undefined ? {} : { options: o.options }),
  });
}

describe('witness proxy in the 2026-07-28 era (v2 SDK client and server over stdio)', () => {
  it('negotiates 2026-07-28 in auto mode and answers calls, errors, progress, resources and prompts byte for byte as a direct connection does, recording each under the configured agent', async () => {
    const store = tempDb(dir);
    const direct = await v2StdioClient(SERVER);
    const proxied = await v2Proxy(store);
    let viaDirect: string[];
    let viaProxy: string[];
    try {
      expect(direct.client.getNegotiatedProtocolVersion()).toBe(MODERN);
      expect(proxied.client.getNegotiatedProtocolVersion()).toBe(MODERN);
      viaDirect = await v2Script(direct.client, 'refund order A-1042');
      viaProxy = await v2Script(proxied.client, 'refund order A-1042');
    } finally {
      await Promise.all([direct.client.close(), proxied.client.close()]);
    }
    expect(viaProxy).toEqual(viaDirect);
    expect(viaProxy[1]).toContain('refund order A-1042');
    expect(viaProxy[4]).toMatch(/^error -32602 .*Tool nope not found/);
    expect(JSON.parse(viaProxy[8]!)).toHaveLength(2);

    const evs = await mainSession(store);
    expect(kinds(evs)).toEqual(V2_SCRIPT_EVENTS);
    expect(new Set(evs.map((e) => e.agent.id))).toEqual(new Set(['support-bot']));
    expect(evs[0]!.data?.['labels']).toMatchObject({ transport: 'stdio' });
    const echo = evs[1]!;
    expect(echo.data).toMatchObject({
      tool: 'echo',
      arguments: { text: 'refund order A-1042' },
      client_claims: { era: 'modern', protocolVersion: MODERN, clientInfo: { name: 'v2-test', version: '2.0.0' } },
    });
    expect(evs[2]!).toMatchObject({ parent: echo.id, outcome: 'success' });
    expect(evs[2]!.data).toMatchObject({ output: { content: [{ type: 'text', text: 'refund order A-1042' }], resultType: 'complete' } });
    expect(evs[4]!.outcome).toBe('error');
    expect(evs[6]!.data).toMatchObject({ is_error: true, output: { content: [{ text: 'thrown inside tool' }] } });
    expect(evs[8]!.data).toMatchObject({ is_error: true, error: { code: -32602 } });
    expect(evs[11]!.data).toMatchObject({ target: 'mem://counter' });
    expect(evs[13]!.data).toMatchObject({ target: 'greet', arguments: { name: 'greet', arguments: { name: 'Ada' } } });
    expect(evs.at(-1)!.data).toMatchObject({ reason: 'completed' });
    expect((await verifyFile(store)).ok).toBe(true);
  });

  it('speaks 2026-07-28 to a client that pins it', async () => {
    const store = tempDb(dir);
    const { client } = await v2Proxy(store, { negotiation: { pin: MODERN } });
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
      expect(await client.callTool({ name: 'echo', arguments: { text: 'pinned' } })).toMatchObject({ content: [{ type: 'text', text: 'pinned' }] });
    } finally {
      await client.close();
    }
    expect(kinds(await mainSession(store))).toEqual(['session.start', 'tool.call:echo', 'tool.result:echo', 'session.end']);
  });

  it('records the auto-mode probe run as a short session that ends completed, with a note, and no error', async () => {
    const store = tempDb(dir);
    const { client } = await v2Proxy(store);
    // The real run needs no handshake in this era, so connect() returns as soon as it is launched.
    // Under load its proxy may not have opened the ledger yet, and a client that closes at once
    // kills it before it records anything (nothing was forwarded either): wait for its session.
    await untilValue(async () => ((await sessions(store)).length === 2 ? true : undefined), "the real run's session.start");
    await client.close();
    // close() does not wait for the proxy to finish writing: wait until both sessions have ended.
    const all = await untilValue(async () => {
      const s = await sessions(store);
      return s.length === 2 && s.every((evs) => evs.at(-1)?.kind === 'session.end') ? s : undefined;
    }, 'both runs to end their sessions');
    expect(all).toHaveLength(2);
    const [probe, real] = all as [Ev[], Ev[]];
    expect(kinds(probe)).toEqual(['session.start', 'note', 'session.end']);
    expect(probe[1]!.data).toMatchObject({ probe: true, method: 'server/discover' });
    expect(probe.at(-1)!.data).toMatchObject({ reason: 'completed' });
    expect(kinds(real)).toEqual(['session.start', 'session.end']);
    expect(real.at(-1)!.data).toMatchObject({ reason: 'completed' });
  });

  it('does not take a run for a version probe because it opened with several server/discover requests: once it calls a tool it is a real session', async () => {
    const store = tempDb(dir);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', ...SERVER]);
    const env = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
    for (let id = 1; id <= 4; id++) {
      p.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'server/discover', params: { _meta: env } }));
      expect(await p.next()).toMatchObject({ id });
    }
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', arguments: { text: 'real work' }, _meta: env } }));
    expect(await p.next()).toMatchObject({ id: 5, result: { content: [{ text: 'real work' }] } });
    expect(await p.close()).toBe(0);
    const [run] = (await sessions(store)) as [Ev[]];
    expect(kinds(run)).toEqual(['session.start', 'tool.call:echo', 'tool.result:echo', 'session.end']);
  });

  it('ends a session completed when its client closed stdin and then signalled the proxy (as the SDKs do 2 s later), and cancelled when the signal came first', async () => {
    // A server kept alive for 4 s after its stdin closes, so the proxy is still stopping it when the signal arrives.
    const slow = [
      'node',
      '--input-type=module',
      '-e',
      `process.argv[2] = 'stdio'; process.stdin.on('end', () => setTimeout(() => process.exit(0), 4000)); await import(${JSON.stringify(V2_SERVER)});`,
    ];
    const env = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
    const run = async (order: 'close-then-signal' | 'signal-first'): Promise<Ev[]> => {
      const store = tempDb(dir);
      const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', ...slow]);
      p.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: order }, _meta: env } }));
      expect(await p.next()).toMatchObject({ id: 1, result: { content: [{ text: order }] } });
      if (order === 'close-then-signal') {
        p.endInput();
        await new Promise((r) => setTimeout(r, 500));
        p.kill('SIGTERM');
      } else {
        p.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 500));
        p.endInput();
      }
      await p.exited;
      return mainSession(store);
    };
    const [closed, signalled] = await Promise.all([run('close-then-signal'), run('signal-first')]);
    expect(kinds(closed)).toEqual(['session.start', 'tool.call:echo', 'tool.result:echo', 'session.end']);
    expect(closed.at(-1)!.data).toMatchObject({ reason: 'completed' });
    expect(signalled.at(-1)!.data).toMatchObject({ reason: 'cancelled' });
  }, 60_000);

  it('ends the probe run completed before its client kills it, even in front of a server that outlives its stdin', async () => {
    const store = tempDb(dir);
    // The fixture, kept alive for 4 s after stdin closes: stopping it takes the proxy its full stop
    // timeout. (It then exits by itself: the probe's proxy is SIGKILLed before it can stop it.)
    const stubborn = [
      'node',
      '--input-type=module',
      '-e',
      `process.argv[2] = 'stdio'; process.stdin.on('end', () => setTimeout(() => process.exit(0), 4000)); setInterval(() => {}, 1000); await import(${JSON.stringify(V2_SERVER)});`,
    ];
    const { client } = await v2Proxy(store, { server: stubborn });
    try {
      expect(await client.callTool({ name: 'echo', arguments: { text: 'x' } })).toMatchObject({ content: [{ text: 'x' }] });
    } finally {
      await client.close();
    }
    const [probe] = (await sessions(store)) as [Ev[]];
    expect(kinds(probe)).toEqual(['session.start', 'note', 'session.end']);
    expect(probe.at(-1)!.data).toMatchObject({ reason: 'completed' });
  });

  it('forwards a cancellation (AbortSignal) to the server, whose handler stops, and records the call as cancelled', async () => {
    const store = tempDb(dir);
    const { client, stderr } = await v2Proxy(store, { env: { DEBUG: '1' } });
    const ac = new AbortController();
    let seen = 0;
    try {
      const call = client.callTool({ name: 'slow', arguments: { steps: 20 } }, { signal: ac.signal, onprogress: () => (seen += 1) });
      await until(() => seen >= 2, 'two progress frames');
      ac.abort('user cancelled');
      await expect(call).rejects.toThrow(/user cancelled/);
      await until(() => /slow aborted at \d+/.test(stderr()), "the server's handler to stop");
      // The connection goes on.
      expect(await client.callTool({ name: 'echo', arguments: { text: 'after' } })).toMatchObject({ content: [{ text: 'after' }] });
    } finally {
      await client.close();
    }
    const evs = await mainSession(store);
    expect(kinds(evs)).toEqual(['session.start', 'tool.call:slow', 'tool.result:slow', 'tool.call:echo', 'tool.result:echo', 'session.end']);
    expect(evs[2]!.data).toMatchObject({ is_error: true, error: { code: 'cancelled' } });
    expect(evs.some((e) => e.kind === 'error')).toBe(false);
  });

  it('passes a subscriptions/listen stream through: the update a touch fires reaches the client, and closing the subscription leaves nothing open', async () => {
    const store = tempDb(dir);
    const { client } = await v2Proxy(store);
    const updates: unknown[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params));
    let closed: unknown;
    try {
      const sub = await client.listen({ resourceSubscriptions: ['mem://counter'] });
      expect(sub.honoredFilter).toMatchObject({ resourceSubscriptions: ['mem://counter'] });
      await client.callTool({ name: 'touch', arguments: {} });
      await until(() => updates.length === 1, 'the resources/updated notification');
      await sub.close();
      closed = await sub.closed;
      expect(await client.callTool({ name: 'echo', arguments: { text: 'still here' } })).toMatchObject({ content: [{ text: 'still here' }] });
    } finally {
      await client.close();
    }
    expect(closed).toBe('local');
    expect(updates[0]).toMatchObject({ uri: 'mem://counter' });
    const evs = await mainSession(store);
    expect(kinds(evs)).toEqual(['session.start', 'tool.call:touch', 'tool.result:touch', 'tool.call:echo', 'tool.result:echo', 'session.end']);
    expect(evs.at(-1)!.data).toMatchObject({ reason: 'completed' });
  });

  it('ends the session completed when the client goes away with a subscription still open', async () => {
    const store = tempDb(dir);
    const { client } = await v2Proxy(store);
    await client.listen({ resourceSubscriptions: ['mem://counter'] });
    await client.callTool({ name: 'touch', arguments: {} });
    await client.close();
    const evs = await mainSession(store);
    expect(kinds(evs)).toEqual(['session.start', 'tool.call:touch', 'tool.result:touch', 'session.end']);
    expect(evs.at(-1)!.data).toMatchObject({ reason: 'completed' });
  });

  it('refuses a denied call without sending it (the server never ran it), hides hide-rule tools from tools/list, and records the decision', async () => {
    const store = tempDb(dir);
    const policy = path.join(dir, 'deny-touch.yaml');
    fs.writeFileSync(
      policy,
      [
        'version: 1',
        'default: allow',
        'rules:',
        '  - id: no-touch',
        '    match: { tool: touch }',
        '    effect: deny',
        '    reason: Counters are read-only for support agents.',
        '  - id: no-throws',
        '    match: { tool: throws }',
        '    effect: deny',
        '    hide: true',
        '',
      ].join('\n'),
    );
    const { client } = await v2Proxy(store, { extra: ['--policy', policy] });
    let refused;
    let tools: string[];
    let counter;
    try {
      refused = await client.callTool({ name: 'touch', arguments: {} });
      tools = (await client.listTools()).tools.map((t) => t.name);
      counter = await client.readResource({ uri: 'mem://counter' });
    } finally {
      await client.close();
    }
    expect(refused.isError).toBe(true);
    expect((refused.content as Array<{ text: string }>)[0]!.text).toContain('Counters are read-only for support agents.');
    expect(tools).toEqual(['echo', 'fail', 'slow', 'touch']);
    // touch bumps the counter: it is still 0, so the server never ran the call.
    expect(counter.contents).toEqual([{ uri: 'mem://counter', text: 'counter=0' }]);
    const evs = await mainSession(store);
    expect(kinds(evs).slice(0, 4)).toEqual(['session.start', 'tool.call:touch', 'policy.decision:touch', 'tool.result:touch']);
    expect(evs[2]!.outcome).toBe('denied');
    expect(evs[3]!.outcome).toBe('denied');
  });

  it('holds a review call until a person approves it, and refuses one a person denies, over the 2026-07-28 era', async () => {
    const store = tempDb(dir);
    const alice = person(dir, 'alice-modern');
    const policy = path.join(dir, 'review-slow.yaml');
    fs.writeFileSync(
      policy,
      [
        'version: 1',
        'default: allow',
        'approvers:',
        `  - { id: ${alice.name}, key: "${alice.vkey}" }`,
        'rules:',
        '  - id: long-runs-need-review',
        '    match: { tool: slow }',
        '    when: args.steps > 1',
        '    effect: review',
        '    reason: Long runs need a supervisor.',
        '',
      ].join('\n'),
    );
    const { client } = await v2Proxy(store, { extra: ['--policy', policy] });
    let approved;
    let denied;
    try {
      const first = client.callTool({ name: 'slow', arguments: { steps: 2 } });
      const a = await waitForPending(store);
      expect((await runBin(['approve', a.request, '--key', alice.file, '--reason', 'fine', '--store', `sqlite:${store}`])).code).toBe(0);
      approved = await first;
      const second = client.callTool({ name: 'slow', arguments: { steps: 3 } });
      const d = await waitForPending(store);
      expect((await runBin(['deny', d.request, '--key', alice.file, '--reason', 'too long', '--store', `sqlite:${store}`])).code).toBe(0);
      denied = await second;
    } finally {
      await client.close();
    }
    expect(approved).toMatchObject({ content: [{ type: 'text', text: 'done 2' }] });
    expect(denied.isError).toBe(true);
    expect((denied.content as Array<{ text: string }>)[0]!.text).toMatch(/denied/i);
    const evs = await mainSession(store);
    const results = evs.filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => e.outcome)).toEqual(['success', 'denied']);
    expect(evs.filter((e) => e.kind === 'approval.request')).toHaveLength(2);
  });

  it("records the configured agent whatever clientInfo or the request's _meta claim, and keeps the claims under client_claims only", async () => {
    const store = tempDb(dir);
    const { client } = await v2Proxy(store, { name: 'billing-admin' });
    try {
      await client.callTool({ name: 'echo', arguments: { text: 'hi' }, _meta: { [CLIENT_INFO]: { name: 'admin', version: '1' }, agent: 'admin' } });
    } finally {
      await client.close();
    }
    const all = (await sessions(store)).flat();
    expect(new Set(all.map((e) => e.agent.id))).toEqual(new Set(['support-bot']));
    const call = all.find((e) => e.kind === 'tool.call')!;
    expect(call.data?.['client_claims']).toMatchObject({ clientInfo: { name: 'admin', version: '1' }, _meta: { agent: 'admin' } });
    expect(JSON.stringify({ ...call, data: { ...call.data, client_claims: undefined } })).not.toContain('admin');
  });

  it('passes an input_required (MRTR) tool result through untouched, recorded as pending, and records the retry with its input responses', async () => {
    const store = tempDb(dir);
    const { client } = await v2Proxy(store, { server: MRTR_SERVER, options: { capabilities: { elicitation: {} } } });
    let result;
    try {
      client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { ok: true } }));
      result = await client.callTool({ name: 'confirm', arguments: { what: 'refund' } });
    } finally {
      await client.close();
    }
    expect(result).toMatchObject({ content: [{ type: 'text', text: 'confirmed refund' }] });
    const evs = await mainSession(store);
    expect(kinds(evs)).toEqual(['session.start', 'tool.call:confirm', 'tool.result:confirm', 'tool.call:confirm', 'tool.result:confirm', 'session.end']);
    expect(evs[2]!.outcome).toBe('pending');
    expect(evs[2]!.data).toMatchObject({ is_error: false, output: { resultType: 'input_required' } });
    expect(evs[3]!.data).toMatchObject({ input_responses: { ok: { action: 'accept', content: { ok: true } } }, request_state: 'opaque-state' });
    expect(evs[4]!.outcome).toBe('success');
  });

  it('answers a request claiming a protocol version the gateway does not speak with -32022 naming the versions it does, and never forwards it', async () => {
    const store = tempDb(dir);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', ...SERVER]);
    p.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'touch', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2099-01-01', 'io.modelcontextprotocol/clientCapabilities': {} } },
      }),
    );
    expect(await p.next()).toMatchObject({ id: 1, error: { code: -32022, data: { supported: [MODERN], requested: '2099-01-01' } } });
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'touch', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': 2026 } } }));
    expect(await p.next()).toMatchObject({ id: 3, error: { code: -32602, message: expect.stringContaining('must be a string') } });
    const env = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
    // Neither touch ran: the counter is still 0.
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'mem://counter', _meta: env } }));
    expect(await p.next()).toMatchObject({ id: 2, result: { contents: [{ text: 'counter=0' }] } });
    expect(await p.close()).toBe(0);
    const evs = (await sessions(store))[0]!;
    expect(kinds(evs)).toEqual(['session.start', 'error', 'error', 'tool.call:resources/read', 'tool.result:resources/read', 'session.end']);
    expect(evs[1]!.data).toMatchObject({ code: 'unsupported_protocol_version', requested: '2099-01-01', supported: [MODERN] });
    expect(evs[2]!.data).toMatchObject({ code: 'unsupported_protocol_version', requested: null });
  });

  it('refuses a modern tool call it cannot record and never forwards it (fail closed): a listening client hears no update from it', async () => {
    const store = tempDb(dir);
    const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 0, seal: { enabled: false } });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines: Array<Record<string, unknown>> = [];
    let buf = '';
    output.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
      }
    });
    const [command, ...args] = SERVER as [string, ...string[]];
    const proxy = new StdioProxy({ witness, agent: { id: 'support-bot' }, command, args, input, output });
    await proxy.start();
    const env = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
    // A listen is passed through unrecorded; its acknowledgement shows the server is serving it.
    input.write(`${JSON.stringify({ jsonrpc: '2.0', id: 'listen:0', method: 'subscriptions/listen', params: { _meta: env, notifications: { resourceSubscriptions: ['mem://counter'] } } })}\n`);
    await until(() => lines.some((l) => l['method'] === 'notifications/subscriptions/acknowledged'), 'the listen acknowledgement');
    // The ledger goes away under the running proxy.
    await driverOf(witness).close();
    input.write(`${JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'touch', arguments: {}, _meta: env } })}\n`);
    await until(() => lines.some((l) => l['id'] === 7), 'the answer to the call');
    await new Promise((r) => setTimeout(r, 500));
    input.end();
    await proxy.done;
    expect(lines.find((l) => l['id'] === 7)).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: NOT_RECORDED } });
    // touch would have fired notifications/resources/updated on the listen: the server never ran it.
    expect(lines.filter((l) => l['method'] === 'notifications/resources/updated')).toEqual([]);
  });

  it('passes a tools/list a policy narrows as cacheScope private, so no shared cache hands one agent the list of another, and leaves it public without a policy', async () => {
    const policy = path.join(dir, 'hide-b.yaml');
    fs.writeFileSync(policy, ['version: 1', 'default: allow', 'rules:', '  - id: no-b', '    match: { tool: b }', '    effect: deny', '    hide: true', ''].join('\n'));
    const list = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
      params: { _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} } },
    });
    const answers: Array<Record<string, unknown>> = [];
    for (const extra of [['--policy', policy], []]) {
      const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${tempDb(dir)}`, ...extra, '--', ...PUBLIC_SERVER]);
      p.send(list);
      answers.push(asRecord((await p.next())['result']));
      expect(await p.close()).toBe(0);
    }
    const [narrowed, plain] = answers as [Record<string, unknown>, Record<string, unknown>];
    expect((narrowed['tools'] as Array<{ name: string }>).map((t) => t.name)).toEqual(['a']);
    expect(narrowed).toMatchObject({ resultType: 'complete', ttlMs: 60000, cacheScope: 'private' });
    expect((plain['tools'] as Array<{ name: string }>).map((t) => t.name)).toEqual(['a', 'b']);
    expect(plain).toMatchObject({ cacheScope: 'public' });
  });

  it('serves a v1 SDK client in front of the v2 server as 2025-11-25', async () => {
    const store = tempDb(dir);
    const [command, ...args] = proxyArgs(store, SERVER) as [string, ...string[]];
    const client = new V1Client({ name: 'v1', version: '1.0.0' });
    await client.connect(new V1StdioTransport({ command, args, cwd: REPO_ROOT, stderr: 'pipe' }));
    try {
      expect(await client.callTool({ name: 'echo', arguments: { text: 'old' } })).toEqual({ content: [{ type: 'text', text: 'old' }] });
    } finally {
      await client.close();
    }
    const all = await sessions(store);
    expect(all).toHaveLength(1);
    expect(kinds(all[0]!)).toEqual(['session.start', 'tool.call:echo', 'tool.result:echo', 'session.end']);
    expect(all[0]![1]!.data?.['client_claims']).toMatchObject({ clientInfo: { name: 'v1' } });
  });

  it('lets an auto-mode v2 client fall back to 2025-11-25 in front of a 2025-only server, and records the probe without an error', async () => {
    const store = tempDb(dir);
    const { client } = await v2Proxy(store, { server: EVERYTHING });
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25');
      expect(await client.callTool({ name: 'echo', arguments: { message: 'fallback' } })).toMatchObject({ content: [{ type: 'text', text: 'Echo: fallback' }] });
    } finally {
      await client.close();
    }
    const all = await sessions(store);
    expect(all).toHaveLength(2);
    expect(kinds(all[0]!)).toEqual(['session.start', 'note', 'session.end']);
    expect(all[0]![1]!.data).toMatchObject({ probe: true, method: 'server/discover' });
    expect(all.flat().some((e) => e.kind === 'error')).toBe(false);
    expect(kinds(all[1]!)).toEqual(['session.start', 'tool.call:echo', 'tool.result:echo', 'session.end']);
  });
});

/** A real v2 McpServer with one MRTR tool: `confirm` asks for an elicitation, then completes. Run from the repository root, so its imports resolve. */
const MRTR_SERVER = [
  'node',
  '--input-type=module',
  '-e',
  [
    "import { McpServer, inputRequired } from '@modelcontextprotocol/server';",
    "import { serveStdio } from '@modelcontextprotocol/server/stdio';",
    "import { z } from 'zod';",
    'serveStdio(() => {',
    "  const s = new McpServer({ name: 'mrtr', version: '1.0.0' }, { capabilities: { tools: {} } });",
    "  s.registerTool('confirm', { inputSchema: z.object({ what: z.string() }) }, async ({ what }, ctx) => {",
    '    const answers = ctx.mcpReq.inputResponses;',
    "    if (answers === undefined) return inputRequired({ inputRequests: { ok: inputRequired.elicit({ message: 'Sure?', requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } } } }) }, requestState: 'opaque-state' });",
    "    return { content: [{ type: 'text', text: `confirmed ${what}` }] };",
    '  });',
    '  return s;',
    '});',
  ].join('\n'),
];

/** A real v2 McpServer whose tools/list (tools a and b) says any cache may share it (cacheScope public). */
const PUBLIC_SERVER = [
  'node',
  '--input-type=module',
  '-e',
  [
    "import { McpServer } from '@modelcontextprotocol/server';",
    "import { serveStdio } from '@modelcontextprotocol/server/stdio';",
    "import { z } from 'zod';",
    'serveStdio(() => {',
    "  const s = new McpServer({ name: 'pub', version: '1.0.0' }, { capabilities: { tools: {} }, cacheHints: { 'tools/list': { ttlMs: 60000, cacheScope: 'public' } } });",
    "  s.registerTool('a', { inputSchema: z.object({}) }, async () => ({ content: [] }));",
    "  s.registerTool('b', { inputSchema: z.object({}) }, async () => ({ content: [] }));",
    '  return s;',
    '});',
  ].join('\n'),
];

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

async function until(ok: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What `check` resolves to once it is not undefined, asked every 20 ms; fails naming `what` after `ms`. */
async function untilValue<T>(check: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Polls `witness approvals --json` until a request this test has not seen is pending. */
const seenRequests = new Set<string>();
async function waitForPending(store: string): Promise<{ request: string }> {
  for (let i = 0; i < 300; i++) {
    const r = await runCli(['approvals', '--store', `sqlite:${store}`, '--json']);
    if (r.code === 0) {
      const fresh = (JSON.parse(r.stdout) as Array<{ request: string }>).find((p) => !seenRequests.has(p.request));
      if (fresh !== undefined) {
        seenRequests.add(fresh.request);
        return fresh;
      }
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('no approval request appeared');
}
