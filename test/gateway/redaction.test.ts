import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { GATEWAY_STREAM, keySha256, parseGatewayConfig, startHttpGateway } from '../../src/gateway/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { REPO_ROOT, readEvents, runCli, verifyFile } from '../helpers/ledger.js';
import { proxyArgs, rawProxy, stdioClient } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Redaction on the gateway's paths, end to end with real parts only: the real `witness proxy`
 * binary (bin/witness.js → dist/, so build first) and the in-process HTTP gateway, in front of the
 * real server-everything and server-filesystem from npm, whose results carry secrets as JSON text.
 * Then every byte Witness wrote is searched for them: the SQLite file, its WAL and artifacts, the
 * exported evidence bundles, and a narrated video (real espeak-ng and ffmpeg) with its captions.
 */

const dir = tempDir('witness-gw-redaction-');
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const FILESYSTEM = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

// Fake secrets, each in a shape that cannot occur by chance in a hash, UUID or timestamp.
const FILE_PASSWORD = 'fs-hunter2-qwz-pw';
const FILE_API_KEY = 'fs-ak-qwz-7788-live';
const ECHO_PASSWORD = 'gw-echo-qwz-pass';
const ECHO_TOKEN = 'gw-tok-qwz-9911';
const PARSE_KEY = 'parse-qwz-key-3141';
const OVERSIZE_PASSWORD = 'oversize-qwz-pw-2718';
const HTTP_PASSWORD = 'http-echo-qwz-pw';
const HTTP_BODY_SECRET = 'http-body-qwz-secret';

/** Every file under `root`, recursively. */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** The ledger's database, WAL, shared memory and artifacts. */
function ledgerFiles(db: string): string[] {
  const files = [db, `${db}-wal`, `${db}-shm`].filter((f) => fs.existsSync(f));
  if (fs.existsSync(`${db}.artifacts`)) files.push(...filesUnder(`${db}.artifacts`));
  return files;
}

/** Which secrets occur in which files, as UTF-8 or JSON-escaped (once or twice). */
function leaks(files: readonly string[], secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const bytes = fs.readFileSync(file);
    for (const s of secrets) {
      const forms = [s, JSON.stringify(s).slice(1, -1), JSON.stringify(JSON.stringify(s)).slice(1, -1)];
      if (forms.some((f) => bytes.includes(Buffer.from(f, 'utf8')))) found.push(`${path.basename(file)}: ${s}`);
    }
  }
  return found;
}

describe('redaction on the gateway paths', () => {
  it('[R-REDACT] the stdio proxy records JSON-text results, string arguments and refused frames redacted, keeps progress tokens, and neither the bundle nor the narrated video carries a secret', async () => {
    const store = tempDb(dir);
    const files = fs.mkdtempSync(path.join(dir, 'files-'));
    const creds = path.join(files, 'creds.json');
    fs.writeFileSync(creds, `${JSON.stringify({ service: 'billing', password: FILE_PASSWORD, api_key: FILE_API_KEY, region: 'eu-west-1' }, null, 2)}\n`);

    // server-filesystem reads a file that is JSON with secrets: the result's content[].text is JSON text.
    const fsClient = await stdioClient(proxyArgs(store, ['node', FILESYSTEM, files], ['--server', 'files']), 'redaction-test');
    try {
      const read = await fsClient.callTool({ name: 'read_text_file', arguments: { path: creds } });
      // The client gets the file as it is: redaction is for the record, never for the traffic.
      expect(JSON.stringify(read.content)).toContain(FILE_PASSWORD);
    } finally {
      await fsClient.close();
    }

    // server-everything: a string argument that is JSON (echoed back inside prose), and a call with a
    // progress token, which the SDK puts in params._meta and the gateway keeps as a client claim.
    const everything = await stdioClient(proxyArgs(store, ['node', EVERYTHING, 'stdio'], ['--server', 'everything']), 'redaction-test');
    try {
      const message = JSON.stringify({ login: 'alice', password: ECHO_PASSWORD, note: `retry with token=${ECHO_TOKEN}` });
      const echoed = await everything.callTool({ name: 'echo', arguments: { message } });
      expect(JSON.stringify(echoed.content)).toContain(ECHO_PASSWORD);
      // With onprogress the SDK sends a progress token (how many notifications arrive before the result is not the point).
      await everything.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 } }, undefined, { onprogress: () => undefined });
    } finally {
      await everything.close();
    }

    // Frames the relay refuses keep their start in the record: one that is not JSON, one over the limit (cut off mid-JSON).
    const raw = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--max-frame-bytes', '1024', '--', 'node', EVERYTHING, 'stdio']);
    raw.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }));
    expect(await raw.next()).toMatchObject({ id: 1 });
    raw.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    raw.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"api_key":"${PARSE_KEY}"}},,}`);
    expect(await raw.next()).toMatchObject({ id: null, error: { code: -32700 } });
    raw.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { password: OVERSIZE_PASSWORD, pad: 'x'.repeat(2000) } } }));
    expect(await raw.next()).toMatchObject({ id: 3, error: {} });
    expect(await raw.close()).toBe(0);

    const events = await readEvents(store);
    const secrets = [FILE_PASSWORD, FILE_API_KEY, ECHO_PASSWORD, ECHO_TOKEN, PARSE_KEY, OVERSIZE_PASSWORD];
    const read = events.find((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'read_text_file')!;
    const text = (read.data?.['output'] as { content: Array<{ text: string }> }).content[0]!.text;
    expect(JSON.parse(text)).toEqual({ service: 'billing', password: '[REDACTED:key]', api_key: '[REDACTED:key]', region: 'eu-west-1' });
    const echoCall = events.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'echo')!;
    expect(JSON.parse((echoCall.data?.['arguments'] as { message: string }).message)).toEqual({ login: 'alice', password: '[REDACTED:key]', note: 'retry with token=[REDACTED:assigned-secret]' });
    const longCall = events.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'trigger-long-running-operation')!;
    // An MCP progress token correlates progress notifications; it is not a secret.
    expect(typeof (longCall.data?.['client_claims'] as { _meta: { progressToken: unknown } })._meta.progressToken).toBe('number');
    const refused = events.filter((e) => e.kind === 'error' && (e.data?.['code'] === 'parse_error' || e.data?.['code'] === 'frame_too_large'));
    expect(refused.map((e) => e.data?.['code'])).toEqual(['parse_error', 'frame_too_large']);
    expect(refused[0]!.data?.['line']).toContain('"api_key":"[REDACTED:assigned-secret]"');
    expect(refused[1]!.data?.['head']).toContain('"password":"[REDACTED:key]"');
    expect(leaks(ledgerFiles(store), secrets)).toEqual([]);
    expect((await verifyFile(store)).ok).toBe(true);

    // The evidence bundles of both tool sessions.
    const sessions = [read.stream, echoCall.stream];
    const bundles: string[] = [];
    for (const session of sessions) {
      const out = path.join(dir, `bundle-${session}`);
      const r = await runCli(['export', '--store', `sqlite:${store}`, '--session', session, '-o', out, '--as', 'auditor@example.com']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      bundles.push(...filesUnder(out));
    }
    expect(bundles.some((f) => f.endsWith('events.jsonl') && fs.readFileSync(f, 'utf8').includes('[REDACTED:key]'))).toBe(true);
    expect(leaks(bundles, secrets)).toEqual([]);

    // The narrated video of the file read: its captions summarise the result, which is where a secret would show.
    const mp4 = path.join(dir, 'files-session.mp4');
    const v = await runCli(['video', read.stream, '-o', mp4, '--store', `sqlite:${store}`, '--json']);
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    const vttPath = (JSON.parse(v.stdout) as { vttPath: string }).vttPath;
    const vtt = fs.readFileSync(vttPath, 'utf8');
    // Positive control: the captions do narrate the result's fields, with the secrets' values redacted.
    expect(vtt).toMatch(/service billing/);
    expect(vtt).toContain('REDACTED');
    expect(leaks([vttPath, mp4], secrets)).toEqual([]);
    expect(leaks(ledgerFiles(store), secrets)).toEqual([]);
  }, 180_000);

  it('[R-REDACT] the HTTP gateway records JSON-text arguments and results and a refused body redacted, and keeps progress tokens', async () => {
    const store = tempDb(dir);
    const key = 'wk_support-redaction-key-00000000000000000000000';
    const config = [
      'listen: "127.0.0.1:0"',
      'agents:',
      `  - { id: support-bot, key_sha256: "${keySha256(key)}" }`,
      'servers:',
      '  - name: everything',
      '    path: /mcp/everything',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: ${JSON.stringify([EVERYTHING, 'stdio'])}`,
      '',
    ].join('\n');
    const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
    const gateway = await startHttpGateway(parseGatewayConfig(config, { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
    const url = `${gateway.url}/mcp/everything`;
    try {
      const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${key}` } } });
      const client = new Client({ name: 'redaction-test', version: '1.0.0' });
      await client.connect(transport);
      try {
        const message = `{"db":{"user":"app","password":"${HTTP_PASSWORD}"}}`;
        const echoed = await client.callTool({ name: 'echo', arguments: { message } });
        expect(JSON.stringify(echoed.content)).toContain(HTTP_PASSWORD);
        await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 } }, undefined, { onprogress: () => undefined });
      } finally {
        await client.close();
      }
      const bad = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${key}` },
        body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"client_secret":"${HTTP_BODY_SECRET}"`,
      });
      expect(bad.status).toBe(400);
    } finally {
      await gateway.close();
      await witness.close();
    }

    const events = await readEvents(store);
    const echoCall = events.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'echo')!;
    expect(echoCall.data?.['arguments']).toEqual({ message: '{"db":{"user":"app","password":"[REDACTED:key]"}}' });
    const echoResult = events.find((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'echo')!;
    expect(JSON.stringify(echoResult.data?.['output'])).toContain('[REDACTED:');
    const longCall = events.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'trigger-long-running-operation')!;
    expect(typeof (longCall.data?.['client_claims'] as { _meta: { progressToken: unknown } })._meta.progressToken).toBe('number');
    const parseError = events.find((e) => e.stream === GATEWAY_STREAM && e.data?.['code'] === 'parse_error')!;
    expect(parseError.data?.['body']).toContain('"client_secret":"[REDACTED:key]"');
    expect(leaks(ledgerFiles(store), [HTTP_PASSWORD, HTTP_BODY_SECRET])).toEqual([]);
  }, 60_000);
});
