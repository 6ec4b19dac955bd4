import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FRAME_TOO_LARGE, NOT_RECORDED, StdioProxy } from '../../src/gateway/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { driverOf, REPO_ROOT, runCli, verifyFile, readEvents } from '../helpers/ledger.js';
import { proxyArgs, rawProxy, stdioClient } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness proxy` end to end, with real parts only: the official SDK Client over its stdio
 * transport launches the real binary (bin/witness.js → dist/, so build first), which spawns the
 * real server-everything from npm and records into a temporary SQLite ledger.
 */

const dir = tempDir('witness-proxy-');
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const SERVER = ['node', EVERYTHING, 'stdio'];

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });

describe('witness proxy over stdio', () => {
  it('returns the same echo result as a direct connection and records the call under the configured agent, whatever clientInfo claims [R-GW-IDENTITY]', async () => {
    const store = tempDb(dir);
    const direct = await stdioClient(SERVER);
    const proxied = await stdioClient(proxyArgs(store, SERVER), 'billing-admin');
    try {
      const args = { name: 'echo', arguments: { message: 'refund order A-1042' } };
      const [viaDirect, viaProxy] = await Promise.all([direct.callTool(args), proxied.callTool(args)]);
      expect(viaProxy).toEqual(viaDirect);
      expect(viaProxy.content).toEqual([{ type: 'text', text: 'Echo: refund order A-1042' }]);
      expect((await proxied.listTools()).tools.map((t) => t.name)).toEqual((await direct.listTools()).tools.map((t) => t.name));
    } finally {
      await Promise.all([direct.close(), proxied.close()]);
    }

    const evs = await readEvents(store);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'tool.result', 'session.end']);
    expect(new Set(evs.map((e) => e.agent.id))).toEqual(new Set(['support-bot']));
    expect(evs.every((e) => e.recorder?.kind === 'gateway')).toBe(true);
    const call = evs[1]!;
    const result = evs[2]!;
    expect(call.data).toMatchObject({ tool: 'echo', arguments: { message: 'refund order A-1042' }, client_claims: { clientInfo: { name: 'billing-admin', version: '9.9.9' } } });
    expect(typeof call.data?.['jsonrpc_id']).toBe('number');
    expect(call.outcome).toBe('pending');
    expect(result.parent).toBe(call.id);
    expect(result.outcome).toBe('success');
    expect(result.data).toMatchObject({ tool: 'echo', is_error: false, output: { content: [{ type: 'text', text: 'Echo: refund order A-1042' }] } });
    expect(result.data?.['duration_ms']).toBeGreaterThanOrEqual(0);
    expect(evs[3]!.data).toMatchObject({ reason: 'completed' });

    const report = await verifyFile(store);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('answers a denied call itself with a tool error the model can read, never forwards it, hides hide-rule tools and records the decision [R-GW-DENY]', async () => {
    const store = tempDb(dir);
    const policy = path.join(dir, 'deny-echo.yaml');
    fs.writeFileSync(
      policy,
      [
        'version: 1',
        'default: allow',
        'rules:',
        '  - id: no-echo',
        '    match: { agent: support-*, tool: echo }',
        '    effect: deny',
        '    reason: Echoing is not allowed for support agents.',
        '  - id: no-env',
        '    match: { tool: get-env }',
        '    effect: deny',
        '    hide: true',
        '',
      ].join('\n'),
    );
    const client = await stdioClient(proxyArgs(store, SERVER, ['--policy', policy]));
    let refused;
    let allowed;
    let tools: string[];
    try {
      refused = await client.callTool({ name: 'echo', arguments: { message: 'hello' } });
      allowed = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
      tools = (await client.listTools()).tools.map((t) => t.name);
    } finally {
      await client.close();
    }
    expect(refused.isError).toBe(true);
    const text = (refused.content as Array<{ text: string }>)[0]!.text;
    expect(text).toContain('Echoing is not allowed for support agents.');
    expect(text).toContain('no-echo');
    expect(text).not.toContain('Echo: hello');
    expect(allowed.isError ?? false).toBe(false);
    expect(tools).toContain('echo');
    expect(tools).not.toContain('get-env');

    const evs = await readEvents(store);
    expect(evs.map((e) => `${e.kind}:${String(e.data?.['tool'] ?? '')}`)).toEqual([
      'session.start:',
      'tool.call:echo',
      'policy.decision:echo',
      'tool.result:echo',
      'tool.call:get-sum',
      'policy.decision:get-sum',
      'tool.result:get-sum',
      'session.end:',
    ]);
    const [, call, decision, result] = evs;
    expect(decision!.parent).toBe(call!.id);
    expect(decision!.outcome).toBe('denied');
    expect(decision!.policy).toMatchObject({ decision: 'deny', rule: 'no-echo', mode: 'enforce' });
    expect(decision!.data).toMatchObject({ decision: 'deny', rule: 'no-echo', reason: 'Echoing is not allowed for support agents.' });
    expect(decision!.data?.['policy_version']).toMatch(/^[0-9a-f]{64}$/);
    // The only result is the gateway's refusal: the server never answered, because it never saw the call.
    expect(result!.parent).toBe(call!.id);
    expect(result!.outcome).toBe('denied');
    expect(result!.data).toMatchObject({ is_error: true, output: { isError: true, content: [{ type: 'text', text }] } });
    expect(evs[5]!.data).toMatchObject({ decision: 'allow' });
    expect((await verifyFile(store)).ok).toBe(true);
  });

  it('answers a line that is not JSON with a -32700 parse error, records it, and keeps serving', async () => {
    const store = tempDb(dir);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', ...SERVER]);
    p.send('this is not json {');
    const parseError = await p.next();
    expect(parseError).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    p.send(INIT);
    const init = await p.next();
    expect(init).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: expect.any(Object) } });
    const code = await p.close();
    const stderr = p.stderr();
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/witness: /);
    const evs = await readEvents(store);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'error', 'session.end']);
    expect(evs[1]!.data).toMatchObject({ code: 'parse_error', source: 'gateway' });
  });

  it('refuses a batch, an oversized message and a response to a request never made, passes an unknown method to the server, records each, and keeps serving [R-GW-BAD-INPUT]', async () => {
    const store = tempDb(dir);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--max-frame-bytes', '2048', '--store', `sqlite:${store}`, '--', ...SERVER]);
    p.send(INIT);
    expect(await p.next()).toMatchObject({ id: 1, result: { serverInfo: expect.any(Object) } });
    p.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    p.send(JSON.stringify([{ jsonrpc: '2.0', id: 2, method: 'tools/list' }]));
    expect(await p.next()).toMatchObject({ id: null, error: { code: -32600, message: expect.stringContaining('batches are not supported') } });
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x'.repeat(5000) } } }));
    expect(await p.next()).toMatchObject({ id: 3, error: { code: FRAME_TOO_LARGE, message: expect.stringContaining("over this gateway's limit of 2048") } });
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 99, result: { forged: true } }));
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'witness/no-such-method', params: {} }));
    expect(await p.next()).toMatchObject({ id: 4, error: { code: -32601 } });
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', arguments: { message: 'after all that' } } }));
    expect(await p.next()).toMatchObject({ id: 5, result: { content: [{ type: 'text', text: 'Echo: after all that' }] } });
    const code = await p.close();
    expect(code).toBe(0);
    const evs = await readEvents(store);
    const errors = evs.filter((e) => e.kind === 'error').map((e) => e.data?.['code']);
    expect(errors).toEqual(['batch_refused', 'frame_too_large', 'unknown_response', -32601]);
    expect(evs.filter((e) => e.kind === 'tool.call').map((e) => (e.data?.['arguments'] as { message: string }).message)).toEqual(['after all that']);
    expect((await verifyFile(store)).ok).toBe(true);
  });

  it("records the client's claims of another identity in _meta and arguments as claims only, under the configured agent", async () => {
    const store = tempDb(dir);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', ...SERVER]);
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'billing-admin', version: '1' } } }));
    await p.next();
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi', agent: 'billing-admin' }, _meta: { agent: { id: 'billing-admin' } } } }));
    expect(await p.next()).toMatchObject({ id: 2, result: { content: [{ text: 'Echo: hi' }] } });
    await p.close();
    const evs = await readEvents(store);
    expect(new Set(evs.map((e) => e.agent.id))).toEqual(new Set(['support-bot']));
    expect(evs.find((e) => e.kind === 'tool.call')!.data).toMatchObject({ client_claims: { clientInfo: { name: 'billing-admin' }, _meta: { agent: { id: 'billing-admin' } } } });
  });

  it('exits 1 with one sentence and records it when the server command cannot be started', async () => {
    const store = tempDb(dir);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', path.join(dir, 'no-such-server')]);
    p.send(INIT);
    const code = await p.exited;
    expect(code).toBe(1);
    expect(p.stderr()).toMatch(/^witness: The MCP server ".*no-such-server" could not be started \(spawn .* ENOENT\)\.$/m);
    const evs = await readEvents(store);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'error', 'session.end']);
    expect(evs[1]!.data).toMatchObject({ code: 'upstream_spawn_failed' });
  });

  it('gives a pending request a JSON-RPC error and records an error event when the server exits mid-call', async () => {
    const store = tempDb(dir);
    const dying = ['node', '-e', 'process.stdin.once("data", () => process.exit(3))'];
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', ...dying]);
    p.send(INIT);
    const answer = await p.next();
    expect(answer).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -32000 } });
    expect(String((answer['error'] as { message: string }).message)).toContain('exited with code 3');
    const code = await p.exited;
    expect(code).toBe(1);
    expect(p.stderr()).toMatch(/^witness: The MCP server .* exited with code 3\.$/m);
    const evs = await readEvents(store);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'error', 'session.end']);
    expect(evs[1]!.data).toMatchObject({ code: 'upstream_exited', exit_code: 3 });
    expect(evs[2]!.data).toMatchObject({ reason: 'error' });
    expect((await verifyFile(store)).ok).toBe(true);
  });
});

describe('witness proxy configuration', () => {
  it('exits 2 with one line on stderr, before starting the server, for a missing or malformed policy file or a missing server command', async () => {
    const store = tempDb(dir);
    const bad = path.join(dir, 'bad-policy.yaml');
    fs.writeFileSync(bad, 'version: 1\ndefault: perhaps\n');
    for (const args of [['--policy', path.join(dir, 'missing.yaml'), '--', ...SERVER], ['--policy', bad, '--', ...SERVER], []]) {
      const r = await runCli(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr.trim().split('\n').length, r.stderr).toBeLessThanOrEqual(2);
    }
    expect(fs.existsSync(store)).toBe(false);
  });
});

/** Every line written to `output`, parsed as it arrives (each must be JSON). */
function jsonLines(output: NodeJS.ReadableStream): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  output.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  return lines;
}

describe('StdioProxy in-process', () => {
  it('refuses a tool call with a JSON-RPC error and never forwards it when the call cannot be recorded (fail closed) [R-GW-FAIL-CLOSED]', async () => {
    const store = tempDb(dir);
    const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 0, seal: { enabled: false } });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = jsonLines(output);
    const [command, ...args] = SERVER as [string, ...string[]];
    const proxy = new StdioProxy({ witness, agent: { id: 'support-bot' }, command, args, input, output });
    await proxy.start();
    // The ledger goes away under the running proxy.
    await driverOf(witness).close();
    input.write(`${JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'unrecorded' } } })}\n`);
    const until = Date.now() + 10_000;
    while (lines.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    input.end();
    await proxy.done;
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: NOT_RECORDED } });
    expect(JSON.stringify(lines[0])).not.toContain('Echo: unrecorded');
  });

  it('forwards a call it cannot record when configured to fail open, and says so on its log', async () => {
    const store = tempDb(dir);
    const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 0, seal: { enabled: false } });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = jsonLines(output);
    const log: string[] = [];
    const [command, ...args] = SERVER as [string, ...string[]];
    const proxy = new StdioProxy({ witness, agent: { id: 'support-bot' }, command, args, input, output, failOpen: true, onLog: (m) => log.push(m) });
    await proxy.start();
    input.write(`${INIT}\n`);
    await driverOf(witness).close();
    input.write(`${JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'unrecorded' } } })}\n`);
    const until = Date.now() + 10_000;
    while (lines.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    input.end();
    await proxy.done;
    expect(lines[1]).toMatchObject({ id: 7, result: { content: [{ type: 'text', text: 'Echo: unrecorded' }] } });
    expect(log.join('\n')).toMatch(/forwarded a call to echo that could not be recorded \(fail-open/);
  });
});
