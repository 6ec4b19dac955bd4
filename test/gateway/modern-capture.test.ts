import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Capturer } from '../../src/capture/index.js';
import type { StoredEvent } from '../../src/core/index.js';
import { keySha256, parseGatewayConfig, startHttpGateway } from '../../src/gateway/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { readEvents, REPO_ROOT, verifyFile } from '../helpers/ledger.js';
import { proxyArgs } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { MODERN, V2_SERVER, startV2HttpServer, v2HttpClient, v2StdioClient, type V2HttpServer } from '../helpers/v2.js';

/**
 * Screenshots around a tool call in the 2026-07-28 era, real parts only: the official v2 SDK Client
 * (auto negotiation) → `witness proxy --capture` (stdio, the real binary from dist/) or `witness
 * gateway` with a server's `capture:` map (HTTP, in process) → the real dual-era v2 McpServer; the
 * pages are served by a local HTTP server and shot by the real Chromium. The 2025-era counterpart
 * is the screenshot test in test/gateway/http.test.ts.
 */

const dir = tempDir('witness-modern-capture-');
const SUPPORT_KEY = 'wk_support-test-key-0000000000000000000000000000';
const ARGS = { text: 'refund A-1042' };
const PNG_SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex');

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

type Ev = StoredEvent & { pos: number };

/** Requests to the page server, in order, each with the time it arrived. */
let seen: Array<{ url: string; at: number }> = [];
let pages: http.Server;
let pageBase: string;
let upstream: V2HttpServer;
let upstreamUrl: string;

beforeAll(async () => {
  pages = http.createServer((req, res) => {
    if (req.url === '/favicon.ico') return void res.writeHead(404).end();
    seen.push({ url: req.url ?? '', at: performance.now() });
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<title>Order page</title><p>View ${seen.length}</p>`);
  });
  await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
  pageBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;

  upstream = await startV2HttpServer();
  upstreamUrl = upstream.url;
});

beforeEach(() => {
  seen = [];
});

afterAll(async () => {
  upstream.child.kill();
  await new Promise<void>((r) => pages.close(() => r()));
});

/** The capture settings for the v2 fixture's echo tool, one page per order. */
const captureSpec = () => ({ url: `${pageBase}/orders/{text}`, viewport: { width: 800, height: 600 } });

/** The echo call's answer from a direct v2 connection (auto mode, so 2026-07-28) to the fixture over stdio. */
async function directAnswer(): Promise<unknown> {
  const direct = await v2StdioClient(['node', V2_SERVER, 'stdio']);
  try {
    expect(direct.client.getNegotiatedProtocolVersion()).toBe(MODERN);
    return await direct.client.callTool({ name: 'echo', arguments: ARGS });
  } finally {
    await direct.client.close();
  }
}

/**
 * Calls echo and, the moment its answer is in the client's hands, reads the ledger file through a
 * second read-only handle (no flush): whatever the gateway recorded before answering is there.
 */
async function callAndLook(client: Client, store: string): Promise<{ answer: unknown; answeredAt: number; atAnswer: Ev[] }> {
  const answer = await client.callTool({ name: 'echo', arguments: ARGS });
  const answeredAt = performance.now();
  return { answer, answeredAt, atAnswer: await readEvents(store) };
}

/** Everything asserted about one captured call, for either binary. */
async function expectCaptured(store: string, evs: Ev[], atAnswer: Ev[], answeredAt: number): Promise<void> {
  // The page was shot twice, for the same order; the after shot finished loading before the answer reached the client.
  expect(seen.map((s) => s.url)).toEqual(['/orders/refund%20A-1042', '/orders/refund%20A-1042']);
  expect(seen[1]!.at).toBeLessThan(answeredAt);

  const calls = evs.filter((e) => e.kind === 'tool.call');
  expect(calls.map((e) => e.data?.['tool'])).toEqual(['echo']);
  const call = calls[0]!;
  const shots = evs.filter((e) => e.kind === 'capture');
  expect(shots.map((e) => [e.parent, e.stream, e.data?.['role'], e.data?.['text'], e.agent.id])).toEqual([
    [call.id, call.stream, 'before', 'View 1', 'support-bot'],
    [call.id, call.stream, 'after', 'View 2', 'support-bot'],
  ]);
  for (const s of shots) {
    expect(s.data).toMatchObject({ url: `${pageBase}/orders/refund%20A-1042`, title: 'Order page', http_status: 200, viewport: { width: 800, height: 600 } });
    expect(s.artifacts).toEqual([expect.objectContaining({ mime: 'image/png', role: s.data?.['role'] })]);
  }
  // The after shot names where it differs from the before shot: the view counter's digit, a small part of the page.
  expect(shots[0]!.data?.['changed_region']).toBeUndefined();
  const changed = shots[1]!.data?.['changed_region'] as { width: number; height: number };
  expect(changed).toMatchObject({ image_width: 800, image_height: 600 });
  expect(changed.width * changed.height).toBeLessThan((800 * 600) / 100);
  // In the ledger: call, before, after, then the result (the result is recorded after the answer is sent).
  expect(evs.filter((e) => ['tool.call', 'capture', 'tool.result'].includes(e.kind)).map((e) => `${e.kind}${e.kind === 'capture' ? `:${e.data?.['role']}` : ''}`)).toEqual([
    'tool.call',
    'capture:before',
    'capture:after',
    'tool.result',
  ]);
  // Both shots were durable when the client had the answer: the after shot was recorded before it was sent.
  expect(atAnswer.filter((e) => e.kind === 'capture').map((e) => [e.id, e.data?.['role']])).toEqual(shots.map((e) => [e.id, e.data?.['role']]));

  // The stored artifacts are the PNGs the events name, at the configured viewport.
  const ledger = SqliteLedger.open({ path: store, create: false, readonly: true });
  try {
    for (const s of shots) {
      const ref = s.artifacts![0]!;
      const bytes = await ledger.readArtifact(ref.sha256);
      expect(bytes).toBeDefined();
      expect(bytes!.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      expect(createHash('sha256').update(bytes!).digest('hex')).toBe(ref.sha256);
      expect(bytes!.length).toBe(ref.bytes);
      const png = PNG.sync.read(bytes!);
      expect([png.width, png.height]).toEqual([800, 600]);
    }
  } finally {
    await ledger.close();
  }
  expect((await verifyFile(store)).ok).toBe(true);
}

describe('captures in the 2026-07-28 era', () => {
  it('witness proxy --capture takes before and after screenshots around a modern tool call with the real Chromium, recorded under the call before the answer is passed on, the answer unchanged [R-CAPTURE-BOUND]', async () => {
    const store = tempDb(dir);
    const file = path.join(dir, 'capture.yaml');
    fs.writeFileSync(file, `echo: ${JSON.stringify(captureSpec())}\n`);
    const expected = await directAnswer();

    const proxied = await v2StdioClient(proxyArgs(store, ['node', V2_SERVER, 'stdio'], ['--capture', file]));
    let looked: Awaited<ReturnType<typeof callAndLook>>;
    try {
      expect(proxied.client.getNegotiatedProtocolVersion()).toBe(MODERN);
      looked = await callAndLook(proxied.client, store);
    } finally {
      await proxied.client.close();
    }
    expect(looked.answer).toEqual(expected);
    expect(JSON.stringify(looked.answer)).toBe(JSON.stringify(expected));
    expect(proxied.stderr()).not.toMatch(/capture for echo failed/);

    // The auto-mode probe run only discovers; the call and its shots are in the one other session.
    const all = await readEvents(store);
    const streams = [...new Set(all.filter((e) => e.kind === 'tool.call').map((e) => e.stream))];
    expect(streams).toHaveLength(1);
    const evs = all.filter((e) => e.stream === streams[0]);
    expect(evs[0]!.data?.['labels']).toMatchObject({ transport: 'stdio' });
    await expectCaptured(store, evs, looked.atAnswer, looked.answeredAt);
  });

  for (const upstreamKind of ['http', 'stdio'] as const) {
    it(`witness gateway takes before and after screenshots around a modern tool call (upstream over ${upstreamKind}) with the real Chromium, recorded under the call before the answer is sent, the answer unchanged [R-CAPTURE-BOUND]`, async () => {
      const store = tempDb(dir);
      const expected = await directAnswer();
      const server = upstreamKind === 'http' ? [`    url: ${JSON.stringify(upstreamUrl)}`] : [`    command: ${JSON.stringify(process.execPath)}`, `    args: ${JSON.stringify([V2_SERVER, 'stdio'])}`];
      const config = parseGatewayConfig(
        [
          'listen: "127.0.0.1:0"',
          'agents:',
          `  - { id: support-bot, key_sha256: "${keySha256(SUPPORT_KEY)}" }`,
          'servers:',
          '  - name: v2',
          '    path: /mcp/v2',
          ...server,
          '    capture:',
          `      echo: ${JSON.stringify(captureSpec())}`,
          '',
        ].join('\n'),
        { source: 'gateway.yaml', baseDir: dir },
      );
      const capturer = new Capturer();
      const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
      const gateway = await startHttpGateway(config, witness, { capturer, stopTimeoutMs: 500 });
      let looked: Awaited<ReturnType<typeof callAndLook>>;
      try {
        const client = await v2HttpClient(`${gateway.url}/mcp/v2`, SUPPORT_KEY);
        try {
          expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
          looked = await callAndLook(client, store);
        } finally {
          await client.close();
        }
      } finally {
        await gateway.close();
        await witness.close();
        await capturer.close();
      }
      expect(looked.answer).toEqual(expected);
      expect(JSON.stringify(looked.answer)).toBe(JSON.stringify(expected));

      const all = await readEvents(store);
      const streams = [...new Set(all.filter((e) => e.kind === 'tool.call').map((e) => e.stream))];
      expect(streams).toHaveLength(1);
      await expectCaptured(
        store,
        all.filter((e) => e.stream === streams[0]),
        looked.atAnswer,
        looked.answeredAt,
      );
    });
  }
});
