import path from 'node:path';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as V1StdioTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport as V1HttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { GATEWAY_STREAM, keySha256, parseGatewayConfig, startHttpGateway, type HttpGateway } from '../../src/gateway/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { requireBuild, until } from '../helpers/gateway.js';
import { oneSentence, readEvents, REPO_ROOT } from '../helpers/ledger.js';
import { proxyArgs } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { MODERN, V2_SERVER, eventLabel, startV2HttpServer, v2Client, v2StdioClient, type V2HttpServer } from '../helpers/v2.js';

/**
 * The two mixed pairs MCP's version negotiation cannot serve, through `witness proxy` (stdio, the
 * built binary) and `witness gateway` (HTTP, in process), with real SDK clients and servers only:
 * a v2 client pinned to 2026-07-28 in front of a 2025-only server (server-everything), and a v1
 * (2025) client in front of a 2026-only server (the v2 fixture with LEGACY=reject). Each is refused
 * with one sentence of the gateway's naming the versions each side speaks and what to do, as
 * JSON-RPC error -32022 with `data.supported` and `data.requested`, and the ledger keeps what the
 * server itself answered.
 */

requireBuild();
const dir = tempDir('witness-modern-mixed-');
const KEY = 'wk_support-test-key-0000000000000000000000000000';
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const LEGACY_LIST = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05', '2024-10-07'];
/** What a pinned v2 client is told in front of a 2025-only server. */
const ONLY_2025 =
  /^The MCP server behind this gateway speaks only the 2025 revisions of MCP \(through initialize\), not 2026-07-28, as its answer to server\/discover shows \(error -32601 Method not found\): connect with a 2025 revision, which a v2 client in auto mode does by itself\.$/;
/** What a v1 client is told in front of a 2026-only server (the v1 SDK prefixes "MCP error -32022: "). */
const ONLY_2026 =
  /The MCP server behind this gateway speaks only 2026-07-28, not 2025-11-25 that this client asked for in initialize: connect with a client that speaks 2026-07-28 \(the v2 MCP SDK does, in auto mode or pinned to it\)\.$/;

let modernOnly: V2HttpServer;
beforeAll(async () => {
  modernOnly = await startV2HttpServer({ LEGACY: 'reject' });
});
const running: Array<{ gateway: HttpGateway; witness: Witness }> = [];
afterAll(async () => {
  for (const r of running) {
    await r.gateway.close();
    await r.witness.close();
  }
  modernOnly.child.kill();
});

/** A gateway in front of a 2025-only stdio server and two 2026-only servers (over HTTP and over stdio). */
async function gateway() {
  const store = tempDb(dir);
  const text = [
    'listen: "127.0.0.1:0"',
    'agents:',
    `  - { id: support-bot, key_sha256: "${keySha256(KEY)}" }`,
    'servers:',
    '  - name: everything',
    '    path: /mcp/everything',
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: ${JSON.stringify([EVERYTHING, 'stdio'])}`,
    '  - name: modern-http',
    '    path: /mcp/modern-http',
    `    url: ${JSON.stringify(modernOnly.url)}`,
    '  - name: modern-stdio',
    '    path: /mcp/modern-stdio',
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: ${JSON.stringify([V2_SERVER, 'stdio'])}`,
    '    env: { LEGACY: reject }',
    '',
  ].join('\n');
  const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
  const gw = await startHttpGateway(parseGatewayConfig(text, { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
  running.push({ gateway: gw, witness });
  return { url: gw.url, witness, store };
}

/** The error a connect failed with: its code, message and data. */
async function refusal(connect: Promise<unknown>): Promise<{ code: unknown; message: string; data: unknown }> {
  try {
    await connect;
  } catch (e) {
    const err = e as { code?: unknown; message: string; data?: unknown };
    return { code: err.code, message: err.message, data: err.data };
  }
  throw new Error('the client connected, but this pair must be refused');
}

/** The ledger's sessions once `n` of them have ended, each as its events. */
async function endedSessions(store: string, n: number): Promise<StoredEvent[][]> {
  return until(async () => {
    const by = new Map<string, StoredEvent[]>();
    for (const e of await readEvents(store)) by.set(e.stream, [...(by.get(e.stream) ?? []), e]);
    const all = [...by.values()];
    return all.length === n && all.every((s) => s.at(-1)?.kind === 'session.end') ? all : undefined;
  }, `${n} ended sessions`);
}

const authorized = { requestInit: { headers: { Authorization: `Bearer ${KEY}` } } };

describe('mixed pairs that share no era of MCP, refused with one sentence of the gateway’s', () => {
  it('witness proxy: a v2 client pinned to 2026-07-28 in front of a 2025-only server is told -32022 with the 2025 revisions, and the probe is recorded with the server’s own answer and no error', async () => {
    const store = tempDb(dir);
    const e = await refusal(v2StdioClient(proxyArgs(store, ['node', EVERYTHING, 'stdio']), { negotiation: { pin: MODERN } }));
    expect(e.code).toBe(-32022);
    expect(oneSentence(e.message)).toMatch(ONLY_2025);
    expect(e.data).toEqual({ supported: LEGACY_LIST, requested: MODERN });
    const [probe] = (await endedSessions(store, 1)) as [StoredEvent[]];
    expect(probe.map(eventLabel)).toEqual(['session.start', 'note', 'session.end']);
    expect(probe[1]!.data).toMatchObject({ probe: true, server_era: 'legacy', discover_error: { code: -32601, message: 'Method not found' } });
    expect(probe.at(-1)!.data).toMatchObject({ reason: 'completed' });
  });

  it('witness proxy: a v1 client in front of a 2026-only server is told -32022 naming 2026-07-28, and the server’s refusal of initialize is recorded', async () => {
    const store = tempDb(dir);
    const [command, ...args] = proxyArgs(store, ['node', V2_SERVER, 'stdio']) as [string, ...string[]];
    const client = new V1Client({ name: 'v1', version: '1.0.0' });
    const env = { ...(process.env as Record<string, string>), LEGACY: 'reject' };
    const e = await refusal(client.connect(new V1StdioTransport({ command, args, cwd: REPO_ROOT, stderr: 'pipe', env })));
    await client.close();
    expect(e.code).toBe(-32022);
    expect(oneSentence(e.message)).toMatch(ONLY_2026);
    expect(e.data).toEqual({ supported: [MODERN], requested: '2025-11-25' });
    const [run] = (await endedSessions(store, 1)) as [StoredEvent[]];
    expect(run.map(eventLabel)).toEqual(['session.start', 'error', 'session.end']);
    expect(run[1]!.data).toMatchObject({ code: -32022, method: 'initialize', message: 'The server answered initialize with an error: Unsupported protocol version: 2025-11-25' });
  });

  it('witness gateway: a v2 client pinned to 2026-07-28 in front of a 2025-only server is told -32022 with the 2025 revisions, and nothing is recorded as a call or an error', async () => {
    const g = await gateway();
    const client = v2Client('pinned', { pin: MODERN });
    const e = await refusal(client.connect(new StreamableHTTPClientTransport(new URL(`${g.url}/mcp/everything`), authorized)));
    expect(e.code).toBe(-32022);
    expect(oneSentence(e.message)).toMatch(ONLY_2025);
    expect(e.data).toEqual({ supported: LEGACY_LIST, requested: MODERN });
    await g.witness.flush();
    const evs = await readEvents(g.store);
    expect(evs.map(eventLabel)).toEqual(['session.start']);
    expect(evs[0]!.data?.['labels']).toMatchObject({ era: MODERN, path: '/mcp/everything' });
  });

  for (const upstream of ['modern-http', 'modern-stdio'] as const) {
    it(`witness gateway: a v1 client in front of a 2026-only server over ${upstream === 'modern-http' ? 'HTTP' : 'stdio'} is told -32022 naming 2026-07-28, and the server’s refusal of initialize is recorded in its session`, async () => {
      const g = await gateway();
      const client = new V1Client({ name: 'v1', version: '1.0.0' });
      const e = await refusal(client.connect(new V1HttpTransport(new URL(`${g.url}/mcp/${upstream}`), authorized)));
      await client.close();
      expect(e.code).toBe(-32022);
      expect(oneSentence(e.message)).toMatch(ONLY_2026);
      expect(e.data).toEqual({ supported: [MODERN], requested: '2025-11-25' });
      await g.witness.flush();
      const evs = (await readEvents(g.store)).filter((ev) => ev.stream !== GATEWAY_STREAM);
      expect(evs.map(eventLabel)).toEqual(['session.start', 'error']);
      expect(evs[0]!.data?.['labels']).toMatchObject({ path: `/mcp/${upstream}` });
      expect(evs[1]!.data).toMatchObject({ code: -32022, method: 'initialize', message: 'The server answered initialize with an error: Unsupported protocol version: 2025-11-25' });
    });
  }
});
