import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { FRAME_TOO_LARGE, GATEWAY_STREAM, keySha256, parseGatewayConfig, startHttpGateway, type HttpGateway } from '../../src/gateway/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { MODERN, eventLabel, modernPost, startV2HttpServer, v2HttpClient, type V2HttpServer } from '../helpers/v2.js';

/**
 * `witness gateway` governing 2026-07-28 requests over stateless Streamable HTTP as it governs 2025
 * sessions: a shadow-mode policy lets a call through and records the decision it would have made,
 * and a request over the server's max_frame_bytes is refused unread. Real parts only: the v2 SDK
 * client or raw modern POSTs, the gateway in process, the real v2 fixture server over HTTP.
 */

const dir = tempDir('witness-modern-governance-');
const KEY = 'wk_support-test-key-0000000000000000000000000000';

let upstream: V2HttpServer;
let gateway: HttpGateway;
let witness: Witness;
let store: string;

beforeAll(async () => {
  upstream = await startV2HttpServer();
  const policy = path.join(dir, 'shadow.yaml');
  fs.writeFileSync(
    policy,
    ['version: 1', 'default: allow', 'mode: shadow', 'rules:', '  - id: no-touching', '    match: { tool: touch }', '    effect: deny', '    reason: Nobody touches the counter here.', ''].join('\n'),
  );
  store = tempDb(dir);
  const text = [
    'listen: "127.0.0.1:0"',
    'agents:',
    `  - { id: support-bot, key_sha256: "${keySha256(KEY)}" }`,
    'servers:',
    '  - name: shadowed',
    '    path: /mcp/shadowed',
    `    url: ${JSON.stringify(upstream.url)}`,
    `    policy: ${JSON.stringify(policy)}`,
    '  - name: small',
    '    path: /mcp/small',
    `    url: ${JSON.stringify(upstream.url)}`,
    '    max_frame_bytes: 1024',
    '',
  ].join('\n');
  witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
  gateway = await startHttpGateway(parseGatewayConfig(text, { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
});

afterAll(async () => {
  await gateway.close();
  await witness.close();
  upstream.child.kill();
});

async function events(): Promise<StoredEvent[]> {
  await witness.flush();
  return readEvents(store);
}

/** The fixture's counter, read straight from the server (not through the gateway). */
async function counter(): Promise<number> {
  const res = await fetch(upstream.url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'resources/read', 'Mcp-Name': 'mem://counter' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'resources/read',
      params: { uri: 'mem://counter', _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} } },
    }),
  });
  const body = (await res.json()) as { result: { contents: Array<{ text: string }> } };
  return Number(/counter=(\d+)/.exec(body.result.contents[0]!.text)![1]);
}

describe('witness gateway governing 2026-07-28 requests over stateless HTTP', () => {
  it('lets a call a shadow-mode policy would deny through to the server, and records the decision it would have made', async () => {
    const before = await counter();
    const client = await v2HttpClient(`${gateway.url}/mcp/shadowed`, KEY);
    let answer;
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
      answer = await client.callTool({ name: 'touch', arguments: {} });
    } finally {
      await client.close();
    }
    // The server ran it: the counter moved, and its answer reached the client unchanged.
    expect(await counter()).toBe(before + 1);
    expect(answer).toMatchObject({ content: [{ type: 'text', text: String(before + 1) }] });
    expect(answer.isError).toBeUndefined();
    const evs = (await events()).filter((e) => e.stream !== GATEWAY_STREAM && (e.data?.['tool'] === 'touch' || e.kind === 'session.start'));
    expect(evs.map(eventLabel)).toEqual(['session.start', 'tool.call:touch', 'policy.decision:touch', 'tool.result:touch']);
    expect(evs[0]!.data?.['labels']).toMatchObject({ era: MODERN, path: '/mcp/shadowed' });
    expect(evs[2]!.policy).toMatchObject({ decision: 'deny', rule: 'no-touching', mode: 'shadow' });
    expect(evs[2]!.outcome).not.toBe('denied');
    expect(evs[3]!.outcome).toBe('success');
  });

  it('refuses a request over the server’s max_frame_bytes with 413 and JSON-RPC -32051 before reading it, records frame_too_large, and never forwards it', async () => {
    const before = await counter();
    const big = await modernPost(`${gateway.url}/mcp/small`, KEY, { id: 7, method: 'tools/call', params: { name: 'touch', arguments: { pad: 'x'.repeat(4000) } } });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ jsonrpc: '2.0', error: { code: FRAME_TOO_LARGE, message: expect.stringContaining('limit of 1024 bytes') } });
    // The server never saw it (touch would have moved the counter), and a request under the limit is still served.
    expect(await counter()).toBe(before);
    const small = await modernPost(`${gateway.url}/mcp/small`, KEY, { id: 8, method: 'tools/call', params: { name: 'echo', arguments: { text: 'ok' } } });
    expect(small.status).toBe(200);
    expect(await small.json()).toMatchObject({ id: 8, result: { content: [{ text: 'ok' }] } });
    const evs = await events();
    const refused = evs.filter((e) => e.kind === 'error' && e.data?.['code'] === 'frame_too_large');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.agent.id).toBe('support-bot');
    expect(evs.filter((e) => e.kind === 'tool.call' && e.resource === 'small').map((e) => e.data?.['arguments'])).toEqual([{ text: 'ok' }]);
  });
});
