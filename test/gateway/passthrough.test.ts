import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, verifyFile, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * What the proxy must carry without understanding it, against real servers from npm: progress
 * notifications, cancellation, server→client requests (sampling, elicitation), resources and
 * prompts — and server-filesystem, a second real server, byte-identical to a direct connection.
 */

const dir = tempDir('witness-passthrough-');
const MODULES = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol');
const EVERYTHING = ['node', path.join(MODULES, 'server-everything', 'dist', 'index.js'), 'stdio'];
const FS_ROOT = fs.realpathSync(tempDir('witness-fs-root-'));
fs.writeFileSync(path.join(FS_ROOT, 'invoice-1042.txt'), 'Invoice A-1042\nAmount: 650.00 EUR\nStatus: paid twice\n');
const FILESYSTEM = ['node', path.join(MODULES, 'server-filesystem', 'dist', 'index.js'), FS_ROOT];

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

type Capabilities = ConstructorParameters<typeof Client>[1];

async function connect(command: string[], capabilities: Capabilities = {}): Promise<Client> {
  const [cmd, ...args] = command as [string, ...string[]];
  const client = new Client({ name: 'passthrough-test', version: '1.0.0' }, capabilities);
  await client.connect(new StdioClientTransport({ command: cmd, args, cwd: REPO_ROOT, stderr: 'pipe' }));
  return client;
}

function viaProxy(store: string, server: string[], extra: string[] = []): string[] {
  return [process.execPath, BIN, 'proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, ...extra, '--', ...server];
}

describe('witness proxy passes through what it does not interpret', () => {
  it('delivers the server progress notifications of a long-running call to the client, in order [R-GW-PASSTHROUGH]', async () => {
    const store = tempDb(dir);
    const client = await connect(viaProxy(store, EVERYTHING));
    const seen: Array<{ progress: number; total?: number }> = [];
    try {
      const r = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: (p) => seen.push(p) });
      expect((r.content as Array<{ text: string }>)[0]!.text).toContain('Steps: 3');
    } finally {
      await client.close();
    }
    // The SDK client handles a notification a microtask later than a response, so when the last
    // progress and the result arrive in one read it drops that progress (directly connected too).
    const got = seen.map((p) => [p.progress, p.total]);
    expect(got.slice(0, 2)).toEqual([
      [1, 3],
      [2, 3],
    ]);
    expect(got.length === 2 || JSON.stringify(got[2]) === JSON.stringify([3, 3])).toBe(true);
    const result = (await readEvents(store)).find((e) => e.kind === 'tool.result')!;
    expect(result.outcome).toBe('success');
  });

  it('forwards a cancellation to the server and records the call as cancelled by the client', async () => {
    const store = tempDb(dir);
    const client = await connect(viaProxy(store, EVERYTHING));
    try {
      const abort = new AbortController();
      const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } }, undefined, { signal: abort.signal });
      await new Promise((r) => setTimeout(r, 150));
      abort.abort('the user pressed stop');
      await expect(call).rejects.toThrow();
      // The session still works after a cancellation, and a late answer from the server is dropped quietly.
      const echo = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
      expect((echo.content as Array<{ text: string }>)[0]!.text).toBe('Echo: still here');
      await new Promise((r) => setTimeout(r, 1200));
    } finally {
      await client.close();
    }
    const evs = await readEvents(store);
    const results = evs.filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => [e.data?.['tool'], e.outcome, (e.data?.['error'] as { code?: string } | undefined)?.code])).toEqual([
      ['trigger-long-running-operation', 'error', 'cancelled'],
      ['echo', 'success', undefined],
    ]);
    expect(evs.filter((e) => e.kind === 'error')).toEqual([]);
  });

  it('carries the server sampling request to the client and the client answer back', async () => {
    const store = tempDb(dir);
    const client = await connect(viaProxy(store, EVERYTHING), { capabilities: { sampling: {} } });
    const prompts: unknown[] = [];
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      prompts.push(req.params.messages);
      return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'The refund looks legitimate.' } };
    });
    try {
      const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'Is this refund legitimate?', maxTokens: 50 } });
      expect(JSON.stringify(r.content)).toContain('The refund looks legitimate.');
    } finally {
      await client.close();
    }
    expect(JSON.stringify(prompts)).toContain('Is this refund legitimate?');
  });

  it('carries an elicitation request to the client and the accepted form back', async () => {
    const store = tempDb(dir);
    const client = await connect(viaProxy(store, EVERYTHING), { capabilities: { elicitation: {} } });
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Alice Auditor' } }));
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toContain('trigger-elicitation-request');
      const r = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      expect(JSON.stringify(r.content)).toContain('Alice Auditor');
    } finally {
      await client.close();
    }
  });

  it('records resources/read and prompts/get with what they named, and list calls only when asked to', async () => {
    const quiet = tempDb(dir);
    const loud = tempDb(dir);
    for (const [store, extra] of [
      [quiet, []],
      [loud, ['--record-lists']],
    ] as const) {
      const client = await connect(viaProxy(store, EVERYTHING, [...extra]));
      const direct = await connect(EVERYTHING);
      try {
        const resources = (await client.listResources()).resources;
        const uri = resources[0]!.uri;
        expect(await client.readResource({ uri })).toEqual(await direct.readResource({ uri }));
        const prompt = (await client.listPrompts()).prompts.find((p) => (p.arguments ?? []).length === 0)!;
        expect(await client.getPrompt({ name: prompt.name })).toEqual(await direct.getPrompt({ name: prompt.name }));
      } finally {
        await Promise.all([client.close(), direct.close()]);
      }
    }
    const calls = (await readEvents(quiet)).filter((e) => e.kind === 'tool.call');
    expect(calls.map((e) => e.data?.['method'])).toEqual(['resources/read', 'prompts/get']);
    expect(calls[0]!.resource).toMatch(/^demo:\/\//);
    expect(calls[0]!.action).toBe('resources/read');
    expect(calls[1]!.action).toMatch(/^prompts\/get /);
    const results = (await readEvents(quiet)).filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => e.parent)).toEqual(calls.map((e) => e.id));
    expect(results[0]!.data?.['output']).toMatchObject({ contents: expect.any(Array) });
    const listed = (await readEvents(loud)).filter((e) => e.kind === 'tool.call').map((e) => e.data?.['method']);
    expect(listed).toEqual(['resources/list', 'resources/read', 'prompts/list', 'prompts/get']);
  });

  it('serves server-filesystem: results byte-identical to a direct connection, the ledger holds the calls, and it verifies', async () => {
    const store = tempDb(dir);
    const direct = await connect(FILESYSTEM);
    const proxied = await connect(viaProxy(store, FILESYSTEM, ['--server', 'files']));
    const file = path.join(FS_ROOT, 'invoice-1042.txt');
    try {
      const tool = (await direct.listTools()).tools.some((t) => t.name === 'read_text_file') ? 'read_text_file' : 'read_file';
      const calls = [
        { name: tool, arguments: { path: file } },
        { name: 'list_directory', arguments: { path: FS_ROOT } },
        { name: tool, arguments: { path: '/etc/passwd' } },
      ];
      for (const c of calls) expect(JSON.stringify(await proxied.callTool(c))).toBe(JSON.stringify(await direct.callTool(c)));
    } finally {
      await Promise.all([direct.close(), proxied.close()]);
    }
    const evs = await readEvents(store);
    const results = evs.filter((e) => e.kind === 'tool.result');
    expect(results).toHaveLength(3);
    expect(JSON.stringify(results[0]!.data?.['output'])).toContain('Amount: 650.00 EUR');
    // Outside the allowed directory: the server refuses, and the ledger says so.
    expect(results[2]).toMatchObject({ outcome: 'error', data: { is_error: true } });
    expect(evs.filter((e) => e.kind === 'tool.call').every((e) => e.resource === 'files' && e.agent.id === 'support-bot')).toBe(true);
    expect((await verifyFile(store)).ok).toBe(true);
  });
});
