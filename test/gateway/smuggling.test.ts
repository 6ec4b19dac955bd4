import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GATEWAY_STREAM, keySha256 } from '../../src/gateway/index.js';
import { BIN, REPO_ROOT, readEvents, runBin } from '../helpers/ledger.js';
import { rawProxy } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * An agent that controls its own client tries to get a call past the gateway unrecorded or
 * unevaluated: ids a lenient server accepts but the gateway did not treat as a request (true, null,
 * objects, fractions, numbers past 2^53, none at all), the method or a member spelled another way,
 * a key given twice (JSON.parse keeps the last value, many servers the first) or twice in different
 * case, malformed params, extra members. Behind the real `witness proxy` and `witness gateway`
 * processes sits a deliberately lenient MCP server (test/fixtures/children/lenient-mcp-server.mjs)
 * that executes anything resembling a call and logs every line it receives. The policy denies the
 * tool `wire`; every smuggling attempt tries to run it.
 */

const dir = tempDir('witness-smuggle-');
const LENIENT = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'lenient-mcp-server.mjs');
const POLICY = path.join(dir, 'policy.yaml');
fs.writeFileSync(POLICY, ['version: 1', 'default: allow', 'rules:', '  - id: no-wires', '    match: { tool: wire }', '    effect: deny', '    reason: Wires need a person.', ''].join('\n'));

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'smuggler', version: '1' } } });
const INITIALIZED = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });
const WIRE = '{"name":"wire","arguments":{"to":"attacker","amount":1000000}}';

interface Attempt {
  what: string;
  line: string;
  /** The JSON-RPC error the client must get, or 'dropped' for a notification (no answer at all). */
  answer: { id: string | number | null; code: number } | 'dropped';
  /** The code of the `error` event that records the refusal. */
  recorded: 'invalid_request' | 'invalid_params' | 'ambiguous_keys';
}

const REQ = -32600;
const PARAMS = -32602;

/** Each line is exactly what a hostile client writes; each one, as written, makes the lenient server run `wire`. */
const ATTEMPTS: Attempt[] = [
  { what: 'id true', line: `{"jsonrpc":"2.0","id":true,"method":"tools/call","params":${WIRE}}`, answer: { id: null, code: REQ }, recorded: 'invalid_request' },
  { what: 'id null', line: `{"jsonrpc":"2.0","id":null,"method":"tools/call","params":${WIRE}}`, answer: { id: null, code: REQ }, recorded: 'invalid_request' },
  { what: 'id an object', line: `{"jsonrpc":"2.0","id":{"n":3},"method":"tools/call","params":${WIRE}}`, answer: { id: null, code: REQ }, recorded: 'invalid_request' },
  { what: 'id an array', line: `{"jsonrpc":"2.0","id":[4],"method":"tools/call","params":${WIRE}}`, answer: { id: null, code: REQ }, recorded: 'invalid_request' },
  { what: 'id a fraction', line: `{"jsonrpc":"2.0","id":5.5,"method":"tools/call","params":${WIRE}}`, answer: { id: null, code: REQ }, recorded: 'invalid_request' },
  { what: 'id past 2^53', line: `{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/call","params":${WIRE}}`, answer: { id: null, code: REQ }, recorded: 'invalid_request' },
  { what: 'id overflowing to Infinity', line: `{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":${WIRE}}`, answer: { id: null, code: REQ }, recorded: 'invalid_request' },
  { what: 'no id (a notification)', line: `{"jsonrpc":"2.0","method":"tools/call","params":${WIRE}}`, answer: 'dropped', recorded: 'invalid_request' },
  { what: 'prompts/get as a notification', line: '{"jsonrpc":"2.0","method":"prompts/get","params":{"name":"secrets"}}', answer: 'dropped', recorded: 'invalid_request' },
  {
    what: 'resources/read with id null',
    line: '{"jsonrpc":"2.0","id":null,"method":"resources/read","params":{"uri":"file:///etc/shadow"}}',
    answer: { id: null, code: REQ },
    recorded: 'invalid_request',
  },
  { what: 'method in other case', line: `{"jsonrpc":"2.0","id":11,"method":"Tools/Call","params":${WIRE}}`, answer: { id: 11, code: REQ }, recorded: 'invalid_request' },
  { what: 'method with a leading space', line: `{"jsonrpc":"2.0","id":12,"method":" tools/call","params":${WIRE}}`, answer: { id: 12, code: REQ }, recorded: 'invalid_request' },
  { what: 'method with a zero-width space', line: `{"jsonrpc":"2.0","id":13,"method":"tools/\\u200bcall","params":${WIRE}}`, answer: { id: 13, code: REQ }, recorded: 'invalid_request' },
  { what: 'method not a string', line: `{"jsonrpc":"2.0","id":14,"method":["tools/call"],"params":${WIRE}}`, answer: { id: 14, code: REQ }, recorded: 'invalid_request' },
  { what: 'a notification with the method in capitals', line: `{"jsonrpc":"2.0","method":"TOOLS/CALL","params":${WIRE}}`, answer: 'dropped', recorded: 'invalid_request' },
  { what: '"Method" before "method"', line: `{"jsonrpc":"2.0","id":16,"Method":"tools/call","method":"ping","params":${WIRE}}`, answer: { id: 16, code: REQ }, recorded: 'ambiguous_keys' },
  { what: 'only "METHOD"', line: `{"jsonrpc":"2.0","id":17,"METHOD":"tools/call","params":${WIRE}}`, answer: { id: 17, code: REQ }, recorded: 'invalid_request' },
  { what: 'method given twice', line: `{"jsonrpc":"2.0","id":18,"method":"tools/call","method":"ping","params":${WIRE}}`, answer: { id: null, code: REQ }, recorded: 'ambiguous_keys' },
  {
    what: 'tool name given twice',
    line: '{"jsonrpc":"2.0","id":19,"method":"tools/call","params":{"name":"wire","name":"echo","arguments":{"to":"attacker"}}}',
    answer: { id: null, code: REQ },
    recorded: 'ambiguous_keys',
  },
  {
    what: 'an argument given twice',
    line: '{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"echo","arguments":{"amount":1000000,"amount":1}}}',
    answer: { id: null, code: REQ },
    recorded: 'ambiguous_keys',
  },
  {
    what: '"Name" before "name"',
    line: '{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"Name":"wire","name":"echo","arguments":{}}}',
    answer: { id: 21, code: REQ },
    recorded: 'ambiguous_keys',
  },
  {
    what: '"Arguments" instead of "arguments"',
    line: '{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{"name":"echo","Arguments":{"to":"attacker"}}}',
    answer: { id: 22, code: PARAMS },
    recorded: 'invalid_params',
  },
  {
    what: '"args", which Witness would not record',
    line: '{"jsonrpc":"2.0","id":23,"method":"tools/call","params":{"name":"echo","args":{"to":"attacker"}}}',
    answer: { id: 23, code: PARAMS },
    recorded: 'invalid_params',
  },
  { what: 'params an array', line: '{"jsonrpc":"2.0","id":24,"method":"tools/call","params":["wire",{"to":"attacker"}]}', answer: { id: 24, code: PARAMS }, recorded: 'invalid_params' },
  { what: 'params.name not a string', line: '{"jsonrpc":"2.0","id":25,"method":"tools/call","params":{"name":["wire"],"arguments":{}}}', answer: { id: 25, code: PARAMS }, recorded: 'invalid_params' },
  {
    what: 'params.arguments not an object',
    line: '{"jsonrpc":"2.0","id":26,"method":"tools/call","params":{"name":"wire","arguments":"to=attacker"}}',
    answer: { id: 26, code: PARAMS },
    recorded: 'invalid_params',
  },
  {
    what: 'an argument past 2^53',
    line: '{"jsonrpc":"2.0","id":27,"method":"tools/call","params":{"name":"echo","arguments":{"account":12345678901234567891}}}',
    answer: { id: 27, code: PARAMS },
    recorded: 'invalid_params',
  },
  { what: 'no jsonrpc member', line: `{"id":28,"method":"tools/call","params":${WIRE}}`, answer: { id: 28, code: REQ }, recorded: 'invalid_request' },
  { what: 'jsonrpc "1.0"', line: `{"jsonrpc":"1.0","id":29,"method":"tools/call","params":${WIRE}}`, answer: { id: 29, code: REQ }, recorded: 'invalid_request' },
  { what: 'an extra "result" member', line: `{"jsonrpc":"2.0","id":30,"method":"tools/call","params":${WIRE},"result":{}}`, answer: { id: 30, code: REQ }, recorded: 'invalid_request' },
  { what: '"URI" instead of "uri"', line: '{"jsonrpc":"2.0","id":31,"method":"resources/read","params":{"URI":"file:///etc/shadow"}}', answer: { id: 31, code: PARAMS }, recorded: 'invalid_params' },
];

function lenientLog(file: string): { received: Array<Record<string, unknown>>; executed: Array<Record<string, unknown>> } {
  const entries = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
  return {
    received: entries.filter((e) => 'received' in e).map((e) => JSON.parse(e['received'] as string) as Record<string, unknown>),
    executed: entries.filter((e) => 'executed' in e).map((e) => e['executed'] as Record<string, unknown>),
  };
}

function expectRefusalRecords(evs: Awaited<ReturnType<typeof readEvents>>): void {
  // Errors the gateway itself recorded (the server's -32601 for the unknown method is the server's).
  const refusals = evs.filter((e) => e.kind === 'error' && e.data?.['source'] === 'gateway');
  expect(refusals.map((e) => [e.data?.['code'], e.data?.['refused']])).toEqual(ATTEMPTS.map((a) => [a.recorded, true]));
  for (const [i, e] of refusals.entries()) {
    const a = ATTEMPTS[i]!;
    expect(e.data?.['source'], a.what).toBe('gateway');
    expect(e.data?.['message'], a.what).toMatch(/not forwarded/);
    expect(typeof e.data?.['problem'], a.what).toBe('string');
    if (a.answer === 'dropped') expect(e.data?.['notification'], a.what).toBe(true);
    else if (a.answer.id !== null) expect(e.data?.['jsonrpc_id'], a.what).toBe(a.answer.id);
  }
}

describe('witness proxy refuses calls smuggled past the recorder', () => {
  it('answers or drops every malformed tools/call, resources/read and prompts/get, records each as refused and never forwards one; the lenient server runs only the well-formed call [R-GW-NO-SMUGGLE]', async () => {
    const store = tempDb(dir);
    const log = path.join(dir, `lenient-${path.basename(store)}.log`);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--policy', POLICY, '--store', `sqlite:${store}`, '--', process.execPath, LENIENT, log]);
    p.send(INIT);
    expect((await p.until(1))[0]).toMatchObject({ id: 1, result: { serverInfo: { name: 'lenient' } } });
    p.send(INITIALIZED);
    for (const a of ATTEMPTS) p.send(a.line);
    // Well-formed: denied by policy (answered by the gateway), an unknown method (passes through), an allowed call.
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 100, method: 'tools/call', params: { name: 'wire', arguments: { to: 'attacker', amount: 1 } } }));
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 101, method: 'witness/no-such-method', params: {} }));
    p.send(JSON.stringify({ jsonrpc: '2.0', id: 102, method: 'tools/call', params: { name: 'echo', arguments: { message: 'after all that' } } }));
    const answers = await p.until(102);
    expect(await p.close()).toBe(0);

    const expected = ATTEMPTS.flatMap((a) => (a.answer === 'dropped' ? [] : [{ what: a.what, id: a.answer.id, code: a.answer.code }]));
    const refusals = answers.slice(0, expected.length);
    expect(refusals.map((m, i) => ({ what: expected[i]!.what, id: m['id'], code: (m['error'] as { code?: number } | undefined)?.code }))).toEqual(expected);
    for (const m of refusals) expect((m['error'] as { message: string }).message).toMatch(/not sent to the server\.$/);
    expect(answers.slice(expected.length)).toMatchObject([
      { id: 100, result: { isError: true } },
      { id: 101, error: { code: -32601, message: 'lenient: no method witness/no-such-method' } },
      { id: 102, result: { content: [{ type: 'text', text: 'executed echo {"message":"after all that"}' }] } },
    ]);

    const upstream = lenientLog(log);
    expect(upstream.received.map((m) => m['method'])).toEqual(['initialize', 'notifications/initialized', 'witness/no-such-method', 'tools/call']);
    expect(upstream.executed).toEqual([{ method: 'tools/call', name: 'echo', arguments: { message: 'after all that' } }]);

    const evs = await readEvents(store);
    expectRefusalRecords(evs);
    expect(evs.filter((e) => e.kind === 'tool.call').map((e) => [e.data?.['tool'], e.data?.['jsonrpc_id']])).toEqual([
      ['wire', 100],
      ['echo', 102],
    ]);
    const verify = await runBin(['verify', '--store', `sqlite:${store}`]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('forwards a recorded call as the compact JSON of what it recorded, not the bytes the client wrote, and records a call without arguments as arguments null [R-GW-NO-SMUGGLE]', async () => {
    const store = tempDb(dir);
    const log = path.join(dir, `lenient-${path.basename(store)}.log`);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', process.execPath, LENIENT, log]);
    p.send(INIT);
    await p.until(1);
    // Whitespace, escapes and number spellings that parsers read alike only if they are careful.
    p.send('{ "jsonrpc" : "2.0", "id" : 7, "method" : "tools\\/call", "params" : { "name" : "\\u0065cho", "arguments" : { "amount" : 1.50, "n" : 1e2, "note" : "caf\\u00e9" } } }');
    expect((await p.until(7)).at(-1)).toMatchObject({ id: 7, result: { content: [{ text: 'executed echo {"amount":1.5,"n":100,"note":"café"}' }] } });
    // MCP makes arguments optional: such a call is recorded (arguments: null), not refused as unrecordable.
    p.send('{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo"}}');
    expect((await p.until(8)).at(-1)).toMatchObject({ id: 8, result: { content: [{ text: 'executed echo null' }] } });
    expect(await p.close()).toBe(0);
    const received = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { received?: string })
      .filter((e) => e.received !== undefined)
      .map((e) => e.received);
    const [call, bare] = (await readEvents(store)).filter((e) => e.kind === 'tool.call');
    expect(call!.data).toMatchObject({ tool: 'echo', arguments: { amount: 1.5, n: 100, note: 'café' }, jsonrpc_id: 7 });
    expect(bare!.data).toMatchObject({ tool: 'echo', arguments: null, jsonrpc_id: 8 });
    expect(received[1]).toBe(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { amount: 1.5, n: 100, note: 'café' } } }));
  });
});

// ------------------------------------------------------------------ over Streamable HTTP

const KEY = 'wk_smuggler-test-key-000000000000000000000000000';

/** The body of an answer: plain JSON, or the data lines of an SSE stream. */
function messagesOf(text: string): Array<Record<string, unknown>> {
  const t = text.trim();
  if (t === '') return [];
  if (t.startsWith('{')) return [JSON.parse(t) as Record<string, unknown>];
  return t
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
}

describe('witness gateway refuses calls smuggled past the recorder', () => {
  it('answers every malformed tools/call, resources/read and prompts/get with 400 and a JSON-RPC error, records each in the session as refused and never forwards one [R-GW-NO-SMUGGLE]', async () => {
    const store = tempDb(dir);
    const log = path.join(dir, `lenient-http-${path.basename(store)}.log`);
    const config = path.join(dir, `gateway-${path.basename(store)}.yaml`);
    fs.writeFileSync(
      config,
      [
        'listen: "127.0.0.1:0"',
        `store: ${JSON.stringify(`sqlite:${store}`)}`,
        `policy: ${JSON.stringify(POLICY)}`,
        'agents:',
        `  - { id: support-bot, key_sha256: "${keySha256(KEY)}" }`,
        'servers:',
        '  - name: lenient',
        '    path: /mcp/lenient',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: ${JSON.stringify([LENIENT, log])}`,
        '',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [BIN, 'gateway', '--config', config], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const deadline = Date.now() + 15_000;
    while (!/listening on /.test(stderr)) {
      if (Date.now() > deadline) throw new Error(`the gateway did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const url = `${/listening on (http:\/\/\S+) /.exec(stderr)![1]!}/mcp/lenient`;
    let session = '';
    const post = async (body: string) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${KEY}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          ...(session === '' ? {} : { 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-06-18' }),
        },
        body,
      });
      return { status: res.status, headers: res.headers, messages: messagesOf(await res.text()) };
    };
    try {
      const init = await post(INIT);
      expect(init.status).toBe(200);
      session = init.headers.get('mcp-session-id')!;
      expect(session).toBeTruthy();
      expect((await post(INITIALIZED)).status).toBe(202);
      for (const a of ATTEMPTS) {
        const r = await post(a.line);
        const want = a.answer === 'dropped' ? { id: null, code: REQ } : a.answer;
        expect({ what: a.what, status: r.status, id: r.messages[0]?.['id'], code: (r.messages[0]?.['error'] as { code?: number } | undefined)?.code }).toEqual({ what: a.what, status: 400, ...want });
      }
      const denied = await post(JSON.stringify({ jsonrpc: '2.0', id: 100, method: 'tools/call', params: { name: 'wire', arguments: { to: 'attacker', amount: 1 } } }));
      expect(denied.messages).toMatchObject([{ id: 100, result: { isError: true } }]);
      const echo = await post(JSON.stringify({ jsonrpc: '2.0', id: 102, method: 'tools/call', params: { name: 'echo', arguments: { message: 'after all that' } } }));
      expect(echo.messages).toMatchObject([{ id: 102, result: { content: [{ text: 'executed echo {"message":"after all that"}' }] } }]);
      const del = await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${KEY}`, 'Mcp-Session-Id': session } });
      expect(del.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);

    const upstream = lenientLog(log);
    expect(upstream.received.map((m) => m['method'])).toEqual(['initialize', 'notifications/initialized', 'tools/call']);
    expect(upstream.executed).toEqual([{ method: 'tools/call', name: 'echo', arguments: { message: 'after all that' } }]);

    const evs = (await readEvents(store)).filter((e) => e.stream !== GATEWAY_STREAM);
    expectRefusalRecords(evs);
    expect(evs.filter((e) => e.kind === 'tool.call').map((e) => e.data?.['tool'])).toEqual(['wire', 'echo']);
    const verify = await runBin(['verify', '--store', `sqlite:${store}`]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
