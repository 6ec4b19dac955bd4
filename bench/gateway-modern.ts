/**
 * Benchmark 7 — `witness gateway` in the MCP 2026-07-28 ("modern") era over stateless Streamable
 * HTTP (issue 11): what the gateway adds to a `tools/call` over a direct connection between the
 * official v2 SDK Client and a v2 McpServer, and how it compares with `mcp-proxy` (npm), which
 * serves 2026-07-28 on its stream endpoint too (it is built on the same v2 SDK).
 *
 * Sides, every one a v2 `Client` pinned to 2026-07-28 (asserted after connecting) calling the
 * fixture server's `echo` tool (test/fixtures/children/mcp-v2-server.mjs):
 *   direct:        Client → v2 server (`http`, the SDK's createMcpHandler);
 *   forwarder:     Client → an HTTP forwarder with no MCP awareness → the same server (context);
 *   witness:       Client → `witness gateway` (recording + policy) → the same server (`url:` upstream);
 *   mcp-proxy:     Client → `mcp-proxy` → the fixture in stdio mode, upstream leg in its default
 *                  2025 era, and again with `--upstreamProtocol modern`.
 * And one pair with the same upstream as mcp-proxy: the gateway in front of the fixture in stdio
 * mode, the client negotiating `auto`. A gateway that serves stdio upstreams in the 2025 era only
 * answers the 2026 probe -32022 with the 2025 versions and the client falls back to 2025-11-25; one
 * that serves them in both eras keeps one child per group and the client stays on 2026-07-28. The
 * section says which it measured.
 *
 * The issue sets no number for this, so the section reports measurements without verdicts. All
 * sides are open at once and called in turn, call by call (order rotating), like benchmark 6.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import Database from 'better-sqlite3';
import type { Config } from './config.js';
import { AGENT, POLICY_YAML, STAT_HEAD, add, countCalls, emptyStats, freePort, start, statRow, stop, waitForPort, writeGatewayConfig, type Proc, type Stats } from './gateway.js';
import { benchDir, fmtInt, fmtMs, fmtRatio, gc, log, mdTable, median, percentile, type Section } from './util.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'witness.js');
const V2_SERVER = path.join(ROOT, 'test', 'fixtures', 'children', 'mcp-v2-server.mjs');
const MCP_PROXY = path.join(ROOT, 'node_modules', 'mcp-proxy', 'dist', 'bin', 'mcp-proxy.mjs');
const NODE = process.execPath;
const MODERN = '2026-07-28';
/** The 2025 version a v2 Client falls back to. */
const LEGACY = '2025-11-25';

/**
 * A forwarder with no MCP awareness: each POST copied to the upstream with fetch (as the gateway
 * makes its upstream POST), the answer streamed back. What one more HTTP hop costs, for context.
 */
const HTTP_FORWARDER = `'use strict';
const http = require('node:http');
const { Readable } = require('node:stream');
const target = process.argv[2];
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (k === 'content-type' || k === 'accept' || k.startsWith('mcp-')) headers[k] = String(v);
    try {
      const up = await fetch(target, { method: req.method, headers, body: req.method === 'POST' ? Buffer.concat(chunks) : undefined });
      const type = up.headers.get('content-type');
      res.writeHead(up.status, type === null ? {} : { 'content-type': type });
      if (up.body === null) res.end();
      else Readable.fromWeb(up.body).pipe(res);
    } catch (e) {
      res.writeHead(502);
      res.end(String(e));
    }
  });
}).listen(Number(process.argv[3]), '127.0.0.1');
`;

interface Side {
  key: string;
  label: string;
  url: string;
  headers: Record<string, string>;
  /** How the client negotiates, and the versions it may end up with. */
  negotiation: 'pin' | 'auto';
  expect: readonly string[];
}

interface Conn {
  client: Client;
  version: string;
}

let callErrors = 0;
let firstError = '';

async function connect(s: Side): Promise<Conn> {
  const client = new Client({ name: 'witness-bench', version: '2.0.0' }, { versionNegotiation: { mode: s.negotiation === 'pin' ? { pin: MODERN } : 'auto' } });
  await client.connect(new StreamableHTTPClientTransport(new URL(s.url), { requestInit: { headers: s.headers } }));
  const version = client.getNegotiatedProtocolVersion();
  if (version === undefined || !s.expect.includes(version)) {
    await client.close();
    throw new Error(`${s.key}: the v2 Client negotiated ${version ?? '(nothing)'}, expected ${s.expect.join(' or ')}`);
  }
  return { client, version };
}

async function echo(c: Conn, i: number): Promise<void> {
  const text = `bench ${i}`;
  const r = await c.client.callTool({ name: 'echo', arguments: { text } });
  const got = (r.content as Array<{ text?: string }> | undefined)?.[0]?.text;
  if (r.isError === true || got !== text) {
    callErrors++;
    if (firstError === '') firstError = JSON.stringify(r).slice(0, 300);
  }
}

/** n sequential echo calls on each connection, interleaved call by call with the order rotating. */
async function interleaved(conns: readonly Conn[], n: number): Promise<number[][]> {
  const lat = conns.map(() => new Array<number>(n));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < conns.length; k++) {
      const j = (i + k) % conns.length;
      const t = performance.now();
      await echo(conns[j]!, i);
      lat[j]![i] = performance.now() - t;
    }
  }
  return lat;
}

/** A process listening on a free port of 127.0.0.1, started by `args(port)`. */
async function listening(what: string, args: (port: number) => string[]): Promise<{ proc: Proc; port: number }> {
  const port = await freePort();
  const proc = start(NODE, args(port));
  await waitForPort(proc, port, what);
  return { proc, port };
}

/** session.start events of the gateway's ledger, by era label. */
function sessionEras(db: string): { modern: number; other: number } {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const rows = d.prepare("SELECT data FROM events WHERE kind = 'session.start'").pluck().all() as string[];
    const modern = rows.filter((r) => r.includes(`"era":"${MODERN}"`)).length;
    return { modern, other: rows.length - modern };
  } finally {
    d.close();
  }
}

export async function benchGatewayModern(cfg: Config): Promise<Section> {
  callErrors = 0;
  firstError = '';
  const m = cfg.modern;
  const dir = path.join(benchDir(), 'gateway-modern');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of [BIN, V2_SERVER, MCP_PROXY]) if (!fs.existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing (npm install, npm run build)`);
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY_YAML);
  const forwarderJs = path.join(dir, 'http-forwarder.cjs');
  fs.writeFileSync(forwarderJs, HTTP_FORWARDER);

  const procs: Proc[] = [];
  try {
    // The one v2 server behind direct, the forwarder and the gateway.
    const upstream = await listening('the v2 server', (port) => [V2_SERVER, 'http', String(port)]);
    procs.push(upstream.proc);
    const upstreamUrl = `http://127.0.0.1:${upstream.port}/mcp`;
    const forwarder = await listening('the HTTP forwarder', (port) => [forwarderJs, upstreamUrl, String(port)]);
    procs.push(forwarder.proc);

    const key = randomBytes(24).toString('hex');
    const db = path.join(dir, 'gateway.db');
    const gwPort = await freePort();
    const config = writeGatewayConfig(path.join(dir, 'gateway.yaml'), gwPort, db, key, [
      { name: 'v2', path: '/mcp/v2', url: upstreamUrl },
      { name: 'v2stdio', path: '/mcp/v2stdio', command: NODE, args: [V2_SERVER, 'stdio'] },
    ]);
    const gateway = start(NODE, [BIN, 'gateway', '--config', config]);
    procs.push(gateway);
    await waitForPort(gateway, gwPort, 'witness gateway');
    const proxyLegacy = await listening('mcp-proxy', (port) => [MCP_PROXY, '--port', String(port), '--host', '127.0.0.1', '--server', 'stream', '--', NODE, V2_SERVER, 'stdio']);
    procs.push(proxyLegacy.proc);
    const proxyModern = await listening('mcp-proxy --upstreamProtocol modern', (port) => [
      MCP_PROXY,
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--server',
      'stream',
      '--upstreamProtocol',
      'modern',
      '--',
      NODE,
      V2_SERVER,
      'stdio',
    ]);
    procs.push(proxyModern.proc);

    const auth = { Authorization: `Bearer ${key}` };
    const pinned = { negotiation: 'pin', expect: [MODERN] } as const;
    const sides: Side[] = [
      { key: 'direct', label: 'v2 Client → v2 server (direct)', url: upstreamUrl, headers: {}, ...pinned },
      { key: 'forwarder', label: '_context:_ → HTTP forwarder (no MCP awareness, fetch upstream) → v2 server', url: `http://127.0.0.1:${forwarder.port}/mcp`, headers: {}, ...pinned },
      { key: 'witness', label: '**→ `witness gateway` (recording + policy) → v2 server over HTTP**', url: `http://127.0.0.1:${gwPort}/mcp/v2`, headers: auth, ...pinned },
      { key: 'mcp-proxy', label: '→ `mcp-proxy` → v2 server over stdio (upstream leg 2025, its default)', url: `http://127.0.0.1:${proxyLegacy.port}/mcp`, headers: {}, ...pinned },
      {
        key: 'mcp-proxy-modern',
        label: '→ `mcp-proxy --upstreamProtocol modern` → v2 server over stdio (upstream leg 2026-07-28)',
        url: `http://127.0.0.1:${proxyModern.port}/mcp`,
        headers: {},
        ...pinned,
      },
      { key: 'witness-stdio', label: '', url: `http://127.0.0.1:${gwPort}/mcp/v2stdio`, headers: auth, negotiation: 'auto', expect: [MODERN, LEGACY] },
    ];

    const stats = new Map<string, Stats>(sides.map((s) => [s.key, emptyStats()]));
    const added = new Map<string, number[]>(sides.map((s) => [s.key, []]));
    /** The versions the gateway's stdio route negotiated, over all repetitions. */
    const stdioEra = new Set<string>();
    for (let rep = 0; rep < m.reps; rep++) {
      const conns: Conn[] = [];
      try {
        for (const s of sides) conns.push(await connect(s));
        stdioEra.add(conns[sides.findIndex((s) => s.key === 'witness-stdio')]!.version);
        for (let i = 0; i < m.warmup; i++) for (const c of conns) await echo(c, i);
        gc();
        const lat = await interleaved(conns, m.calls);
        const directP50 = percentile(lat[0]!, 50);
        sides.forEach((s, i) => {
          add(stats.get(s.key)!, lat[i]!);
          added.get(s.key)!.push(percentile(lat[i]!, 50) - directP50);
        });
      } finally {
        for (const c of conns) await c.client.close();
      }
      log(`modern rep ${rep + 1}/${m.reps}: p50 ${sides.map((s) => `${s.key} ${fmtMs(stats.get(s.key)!.p50.at(-1)!)} ms`).join(' | ')}`);
    }

    if (stdioEra.size !== 1) throw new Error(`the gateway's stdio route negotiated different versions in different repetitions: ${[...stdioEra].join(', ')}`);
    const stdioModern = stdioEra.has(MODERN);
    sides.find((s) => s.key === 'witness-stdio')!.label = stdioModern
      ? '**→ `witness gateway` (recording + policy) → v2 server over stdio (2026-07-28)**'
      : '_context:_ → `witness gateway` → v2 server over stdio (served as 2025-11-25: the client falls back)';

    // Every call through the gateway is in its ledger, and the pinned client's in a 2026-07-28 session.
    await stop(gateway);
    const expected = m.reps * (m.warmup + m.calls) * 2;
    const recorded = countCalls(db);
    if (recorded !== expected) throw new Error(`witness gateway recorded ${recorded} tool.call events, expected ${expected}`);
    const eras = sessionEras(db);
    if (eras.modern < 1) throw new Error('witness gateway recorded no 2026-07-28 session');

    const p50 = (k: string) => median(stats.get(k)!.p50);
    const add50 = (k: string) => median(added.get(k)!);
    const rows = sides.map((s) => {
      const direct = s.key === 'direct';
      return statRow(s.label, stats.get(s.key)!).concat([direct ? '—' : `${add50(s.key) >= 0 ? '+' : ''}${fmtMs(add50(s.key))}`, direct ? '1.00×' : fmtRatio(p50(s.key) / p50('direct'))]);
    });
    const w = p50('witness');
    const body: string[] = [
      `${fmtInt(m.warmup)} warm-up calls per side, then ${fmtInt(m.calls)} sequential \`tools/call echo\` per side per repetition, the ${sides.length} sides open at once and called in turn, call by call (order rotating); ${m.reps} repetitions, each with new clients (the servers and the gateway run through all of them). Each cell is the median over repetitions; "added" is the median of each repetition's p50 difference to direct. Every client is checked to have negotiated the version shown, every answer to echo its text.`,
      mdTable(STAT_HEAD.concat(['added p50 vs direct ms', 'p50 vs direct']), rows),
      mdTable(
        ['comparison (p50)', 'ratio', 'difference ms'],
        [
          ['`witness gateway` (HTTP upstream) vs direct', fmtRatio(w / p50('direct')), `+${fmtMs(add50('witness'))}`],
          ['`witness gateway` (HTTP upstream) vs the HTTP forwarder', fmtRatio(w / p50('forwarder')), fmtMs(w - p50('forwarder'))],
          ['`witness gateway` (HTTP upstream) vs `mcp-proxy` (defaults)', fmtRatio(w / p50('mcp-proxy')), fmtMs(w - p50('mcp-proxy'))],
          ['`witness gateway` (HTTP upstream) vs `mcp-proxy --upstreamProtocol modern`', fmtRatio(w / p50('mcp-proxy-modern')), fmtMs(w - p50('mcp-proxy-modern'))],
          ...(stdioModern
            ? [
                ['`witness gateway` (stdio upstream) vs direct (HTTP)', fmtRatio(p50('witness-stdio') / p50('direct')), `+${fmtMs(add50('witness-stdio'))}`],
                ['`witness gateway` (stdio upstream) vs `mcp-proxy` (defaults)', fmtRatio(p50('witness-stdio') / p50('mcp-proxy')), fmtMs(p50('witness-stdio') - p50('mcp-proxy'))],
                [
                  '`witness gateway` (stdio upstream) vs `mcp-proxy --upstreamProtocol modern` (same upstream, same era on both legs)',
                  fmtRatio(p50('witness-stdio') / p50('mcp-proxy-modern')),
                  fmtMs(p50('witness-stdio') - p50('mcp-proxy-modern')),
                ],
              ]
            : [
                [
                  '_context:_ `witness gateway` → stdio (2025-11-25) vs `mcp-proxy` (defaults) (same upstream process kind, different client era)',
                  fmtRatio(p50('witness-stdio') / p50('mcp-proxy')),
                  fmtMs(p50('witness-stdio') - p50('mcp-proxy')),
                ],
              ]),
        ],
      ),
      `**What the gateway does per call.** A modern \`tools/call\` is one client POST and one upstream POST. The gateway authenticates the bearer key (its agent is the recorded agent), classifies the POST with the v2 SDK's \`classifyInboundRequest\`, checks the version and that \`MCP-Protocol-Version\`/\`Mcp-Method\`/\`Mcp-Name\` mirror the body, finds the Witness session of (agent, path, optional \`_meta\` hint) — here one per route for the whole run, since a group outlives the clients that use it (the run's ledger holds ${fmtInt(eras.modern)} sessions of the 2026-07-28 era) — and gives the POST its own relay: the request is screened, evaluated against the policy, and \`tool.call\` with \`policy.decision\` committed in one transaction **before** the request is forwarded (fetch, keep-alive, the body re-serialized, MCP headers copied, the client's key not); the upstream's JSON answer is parsed, passed back as one JSON response, and \`tool.result\` recorded. The run's ledger holds ${fmtInt(recorded)} \`tool.call\` events, one per call made through the gateway (both routes, warm-up included). The forwarder row is the cost of the extra HTTP hop alone (a process that copies each POST upstream with fetch and streams the answer back); the gateway's p50 minus the forwarder's, ${fmtMs(w - p50('forwarder'))} ms, is what the gateway's own work (parsing, screening, policy, recording before forwarding) adds on top of that hop.`,
      `**How the gateway and \`mcp-proxy\` differ here.** Both serve 2026-07-28 to the pinned v2 Client: \`mcp-proxy\` 6.7.19 does by default (\`--modern\`), through the v2 SDK's \`createMcpHandler\` with a new proxy \`Server\` instance per request, and forwards to one long-lived stdio child it multiplexes every request onto, spoken to in 2025-11-25 unless \`--upstreamProtocol modern\` is given. \`witness gateway\` with a \`url:\` upstream crosses two HTTP hops (client → gateway → v2 server, each a stateless POST the server answers with a fresh per-request McpServer) where \`mcp-proxy\` crosses one HTTP hop and a pipe. ${
        stdioModern
          ? 'With a `command:` upstream the gateway serves 2026-07-28 too, through one stdio child per Witness session group (the requests re-numbered with ids of its own and mapped back): that row is the like-for-like pair with `mcp-proxy --upstreamProtocol modern` (same upstream process, 2026-07-28 on both legs).'
          : 'The gateway serves its `command:` (stdio) upstreams in the 2025 era only (a 2026 request there is answered -32022 with the 2025 versions, so a v2 client in `auto` mode falls back): that row has the same upstream process as `mcp-proxy` but a different client era (initialize and an MCP session, with one server child per session; benchmark 6 measures that path against server-everything), so it is context, not a pair.'
      } The gateway records and evaluates policy on every call; \`mcp-proxy\` does neither.`,
    ];
    if (eras.other > 0) body.push(`The ledger also holds ${fmtInt(eras.other)} session(s) of the 2025 era: the stdio route's MCP sessions (one per client), not the modern route.`);
    if (callErrors > 0) body.push(`⚠️ ${callErrors} echo call(s) came back with an error or an unexpected text (first: \`${firstError}\`); the numbers above may be invalid.`);
    return {
      id: 'modern',
      title: '7. MCP audit gateway, protocol 2026-07-28 over stateless HTTP',
      method: [
        `Client: the official v2 SDK \`Client\` (\`@modelcontextprotocol/client\`) in the benchmark process over its \`StreamableHTTPClientTransport\`, \`versionNegotiation: { mode: { pin: '${MODERN}' } }\` (connect = one \`server/discover\`; no initialize, no session). Upstream: the repository's dual-era v2 \`McpServer\` (\`test/fixtures/children/mcp-v2-server.mjs\`, the SDK's \`createMcpHandler\` over \`http\`, \`serveStdio\` over \`stdio\`), its \`echo\` tool with a ~10-byte text. One \`http\` server process serves direct, the forwarder and the gateway.`,
        `Witness: \`node bin/witness.js gateway --config gateway.yaml\` with a \`url:\` server (the v2 server) and a \`command:\` server (the same fixture over stdio), bearer-key agent \`${AGENT}\`, default recorder settings (durability \`process\`, sealing every 1,000 events), the policy of benchmark 6:\n\n\`\`\`yaml\n${POLICY_YAML}\`\`\``,
        `\`mcp-proxy\` 6.7.19 (npm, built on the v2 SDK): \`node node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs --port <p> --host 127.0.0.1 --server stream [--upstreamProtocol modern] -- node test/fixtures/children/mcp-v2-server.mjs stdio\`, endpoint \`/mcp\`, otherwise defaults (its resumability event store serves 2025 sessions only, not stateless 2026 requests). The issue sets no target for this benchmark: the section reports measurements only (no verdicts).`,
      ],
      body,
      verdicts: [],
    };
  } finally {
    for (const p of procs) await stop(p);
  }
}
