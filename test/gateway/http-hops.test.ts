import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/index.js';
import { FRAME_TOO_LARGE, keySha256, parseGatewayConfig, startHttpGateway, type HttpGateway } from '../../src/gateway/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { REPO_ROOT, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * How a message travels through `witness gateway` (Streamable HTTP): the body is read, parsed and
 * screened once at the HTTP edge, and that parsed message is what the relay records and forwards.
 * In process, with a real SQLite ledger, in front of test/fixtures/children/proto-mcp-server.mjs,
 * which logs every tools/call's params exactly as it received them.
 */

const dir = tempDir('witness-http-hops-');
const SERVER = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'proto-mcp-server.mjs');
const KEY = 'wk_hops-test-key-00000000000000000000000000000000';
const ACCEPT = 'application/json, text/event-stream';
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'hops', version: '1' } } });

const open: Array<{ gateway: HttpGateway; witness: Witness }> = [];
afterAll(async () => {
  for (const r of open) {
    await r.gateway.close();
    await r.witness.close();
  }
});

async function start(log: string, maxFrameBytes: number): Promise<{ url: string; store: string; gateway: HttpGateway; witness: Witness }> {
  const store = tempDb(dir);
  const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
  const config = [
    'listen: "127.0.0.1:0"',
    'agents:',
    `  - { id: hops-bot, key_sha256: "${keySha256(KEY)}" }`,
    'max_body_bytes: 65536',
    'servers:',
    '  - name: proto',
    '    path: /mcp/proto',
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: ${JSON.stringify([SERVER, log])}`,
    `    max_frame_bytes: ${maxFrameBytes}`,
    '',
  ].join('\n');
  const gateway = await startHttpGateway(parseGatewayConfig(config, { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
  open.push({ gateway, witness });
  return { url: `${gateway.url}/mcp/proto`, store, gateway, witness };
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: ACCEPT, Authorization: `Bearer ${KEY}`, ...headers }, body, signal: AbortSignal.timeout(5000) });
}

/** The JSON-RPC messages of a response, whether it came as JSON or as an SSE stream. */
async function messages(res: Response): Promise<Array<Record<string, unknown>>> {
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    return text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
  }
  return text === '' ? [] : [JSON.parse(text) as Record<string, unknown>];
}

async function session(url: string): Promise<Record<string, string>> {
  const init = await post(url, INIT);
  expect(init.status).toBe(200);
  await init.text();
  const headers = { 'Mcp-Session-Id': init.headers.get('mcp-session-id')!, 'MCP-Protocol-Version': '2025-06-18' };
  expect((await post(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers)).status).toBe(202);
  return headers;
}

describe('a message through witness gateway (HTTP)', () => {
  it("is refused at once with a JSON-RPC error, recorded and not forwarded, when it is over the server's max_frame_bytes [R-GW-BAD-INPUT]", async () => {
    const log = path.join(dir, 'frame.log');
    const g = await start(log, 1024);
    const headers = await session(g.url);
    const big = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'wire', arguments: { memo: 'x'.repeat(2000) } } });
    const res = await post(g.url, big, headers);
    expect(res.status).toBe(413);
    expect(await messages(res)).toMatchObject([{ jsonrpc: '2.0', id: 7, error: { code: FRAME_TOO_LARGE, message: expect.stringContaining('limit of 1024 bytes') } }]);
    // The session still serves a call under the limit.
    const small = await post(g.url, JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'wire', arguments: { memo: 'ok' } } }), headers);
    expect((await messages(small)).map((m) => m['id'])).toEqual([8]);
    await g.witness.flush();
    const evs = await readEvents(g.store);
    expect(evs.filter((e) => e.kind === 'error').map((e) => e.data?.['code'])).toEqual(['frame_too_large']);
    expect(evs.filter((e) => e.kind === 'tool.call').map((e) => e.data?.['arguments'])).toEqual([{ memo: 'ok' }]);
    expect(fs.readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('reaches the server exactly as it was recorded, "__proto__" members included, with concurrent requests each answered on their own stream [R-GW-NO-SMUGGLE]', async () => {
    const log = path.join(dir, 'proto.log');
    const g = await start(log, 65536);
    const headers = await session(g.url);
    const calls = ['{"amount":10,"__proto__":"attacker-iban"}', '{"payment":{"amount":10,"__proto__":{"to":"attacker-iban"}}}', '{"memo":"__proto__"}'];
    const answers = await Promise.all(
      calls.map(async (args, i) => messages(await post(g.url, `{"jsonrpc":"2.0","id":${20 + i},"method":"tools/call","params":{"name":"wire","arguments":${args}}}`, headers))),
    );
    expect(answers.map((a) => a.map((m) => [m['id'], m['error']]))).toEqual(calls.map((_, i) => [[20 + i, undefined]]));
    const received = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => canonicalize((JSON.parse(l) as { params: { arguments: unknown } }).params.arguments));
    expect([...received].sort()).toEqual(calls.map((c) => canonicalize(JSON.parse(c))).sort());
    await g.witness.flush();
    const evs = await readEvents(g.store);
    expect(evs.filter((e) => e.kind === 'error')).toEqual([]);
    expect(evs.filter((e) => e.kind === 'tool.call').map((e) => canonicalize(e.data?.['arguments']))).toEqual(received);
  });

  it('is forwarded and recorded from the POST the transport accepted, never from a same-id POST it refused at the same time [R-GW-NO-SMUGGLE]', async () => {
    const log = path.join(dir, 'same-id.log');
    const g = await start(log, 65536);
    const headers = await session(g.url);
    const body = (id: number, memo: string) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'wire', arguments: { memo } } });
    // Each pair: first a POST the SDK transport refuses (406: its Accept header lacks
    // text/event-stream) after the edge has screened it, then the same id with other arguments.
    const pairs = Array.from({ length: 12 }, (_, i) => 100 + i);
    const results = await Promise.all(
      pairs.flatMap((id) => [
        post(g.url, body(id, `refused ${id}`), { ...headers, Accept: 'application/json' }).then(async (r) => ({ status: r.status, messages: await messages(r) })),
        post(g.url, body(id, `accepted ${id}`), headers).then(async (r) => ({ status: r.status, messages: await messages(r) })),
      ]),
    );
    expect(results.map((r) => r.status)).toEqual(pairs.flatMap(() => [406, 200]));
    const received = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { params: { arguments: { memo: string } } }).params.arguments.memo);
    expect([...received].sort()).toEqual(pairs.map((id) => `accepted ${id}`).sort());
    await g.witness.flush();
    const evs = await readEvents(g.store);
    expect(
      evs
        .filter((e) => e.kind === 'tool.call')
        .map((e) => (e.data?.['arguments'] as { memo: string }).memo)
        .sort(),
    ).toEqual(pairs.map((id) => `accepted ${id}`).sort());
  });
});
