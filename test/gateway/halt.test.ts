import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { describe, expect, it } from 'vitest';
import { openLedger } from '../../src/store/index.js';
import { person, writeReviewPolicy } from '../helpers/approvers.js';
import { EVERYTHING, eventsOf, mcpClient, requireBuild, text, witnessProcesses, writeGatewayConfig } from '../helpers/gateway.js';
import { oneSentence, readEvents, runBin } from '../helpers/ledger.js';
import { proxyArgs, stdioClient } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { MODERN, V2_SERVER, v2StdioClient } from '../helpers/v2.js';

/**
 * The stop button end to end, with real parts only: a running `witness proxy` (dist/, a child
 * process) in front of the real server-everything, driven by the official SDK client, and
 * `witness halt` / `witness resume` run as other processes on the same ledger. The test waits one
 * second after `witness halt` returns, then asserts the very next call is refused: the gateway
 * must have learnt of the halt from the ledger within that second.
 */

requireBuild();
const dir = tempDir('witness-halt-gw-');
const SERVER = [process.execPath, EVERYTHING, 'stdio'];
const start = witnessProcesses();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One echo call as the agent makes it: its result's isError and text. */
type Echo = (message: string) => Promise<{ isError: boolean; text: string }>;
/** server-everything's echo through the v1 SDK client: it answers `Echo: <message>`. */
const everythingEcho =
  (c: Client): Echo =>
  async (message) => {
    const r = await c.callTool({ name: 'echo', arguments: { message } });
    return { isError: r.isError === true, text: text(r) };
  };

const HALTED =
  /^Agent support-bot was halted by \S+ at \d{4}-\d\d-\d\dT[\d:.]+Z \(refunding every order\), so this call to echo was not sent to the server; a person lifts the halt with `witness resume --agent support-bot`\.$/;

/** Halts, checks the next call after one second is refused and recorded, resumes, checks calls pass again. */
async function haltAndResume(echo: Echo, store: string, answer = (m: string) => `Echo: ${m}`): Promise<void> {
  expect(await echo('before')).toEqual({ isError: false, text: answer('before') });

  const halted = await runBin(['halt', '--agent', 'support-bot', '--reason', 'refunding every order', '--store', store]);
  expect(halted.code, halted.stderr).toBe(0);
  expect(halted.stdout).toMatch(/^Halted agent support-bot as \S+; recorded as event [0-9a-f-]{36}\./);
  await sleep(1000);
  const refused = await echo('while halted');
  expect(refused.isError).toBe(true);
  expect(oneSentence(refused.text)).toMatch(HALTED);

  // Halting twice records nothing and says who halted first.
  const twice = await runBin(['halt', '--agent', 'support-bot', '--reason', 'again', '--store', store, '--json']);
  expect(twice.code).toBe(0);
  expect(JSON.parse(twice.stdout)).toMatchObject({ agent: 'support-bot', halted: true, already: true, reason: 'refunding every order' });

  const resumed = await runBin(['resume', '--agent', 'support-bot', '--reason', 'rule fixed', '--store', store]);
  expect(resumed.code, resumed.stderr).toBe(0);
  await sleep(1000);
  expect(await echo('after')).toEqual({ isError: false, text: answer('after') });

  // A second resume is refused: the agent is not halted.
  const again = await runBin(['resume', '--agent', 'support-bot', '--store', store]);
  expect(again.code).toBe(1);
  expect(oneSentence(again.stderr)).toMatch(/^Agent support-bot is not halted \(\S+ resumed it at .*\), so there is nothing to resume; nothing was recorded\.$/);
}

/** The refused call is in the ledger: tool.call, a policy.decision deny for reason halted naming the halt, and a denied tool.result. */
async function refusalRecorded(store: string, arg = 'message'): Promise<void> {
  const reader = await openLedger(store, { create: false, readonly: true });
  try {
    const [halt] = await eventsOf(reader, 'human.halt');
    expect(halt).toMatchObject({ stream: 'witness.approvals', agent: { id: 'support-bot' }, data: { reason: 'refunding every order', agent: 'support-bot' } });
    const calls = (await eventsOf(reader, 'tool.call')).filter((e) => (e.data?.['arguments'] as Record<string, unknown> | undefined)?.[arg] === 'while halted');
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    const decision = (await eventsOf(reader, 'policy.decision')).find((e) => e.parent === call.id);
    expect(decision).toMatchObject({ outcome: 'denied', policy: { decision: 'deny', reason_code: 'halted' }, data: { decision: 'deny', reason: 'halted', tool: 'echo', halt: { id: halt!.id } } });
    const result = (await eventsOf(reader, 'tool.result')).find((e) => e.parent === call.id);
    expect(result).toMatchObject({ outcome: 'denied', data: { is_error: true } });
    const [resume] = await eventsOf(reader, 'human.resume');
    expect(resume).toMatchObject({ parent: halt!.id, data: { halt: halt!.id, agent: 'support-bot', reason: 'rule fixed' } });
    // Only the refused call was stopped: the others reached the server.
    expect((await eventsOf(reader, 'tool.result')).filter((e) => e.outcome === 'success')).toHaveLength(2);
  } finally {
    await reader.close();
  }
}

describe('the stop button [R-HALT]', () => {
  it('a halt from another process stops a running `witness proxy` within a second; the refusal is recorded; resume restores calls', async () => {
    const db = tempDb(dir);
    const client = await stdioClient(proxyArgs(db, SERVER));
    try {
      await haltAndResume(everythingEcho(client), `sqlite:${db}`);
    } finally {
      await client.close();
    }
    await refusalRecorded(`sqlite:${db}`);
    const kinds = (await readEvents(db)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'human.halt')).toHaveLength(1);
  }, 60_000);

  it('stops a `witness proxy` serving a 2026-07-28 client and server (v2 SDK) the same way', async () => {
    const db = tempDb(dir);
    const { client } = await v2StdioClient(proxyArgs(db, [process.execPath, V2_SERVER, 'stdio']), { negotiation: { pin: MODERN } });
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
      const echo: Echo = async (message) => {
        const r = (await client.callTool({ name: 'echo', arguments: { text: message } })) as { isError?: boolean; content: Array<{ text: string }> };
        return { isError: r.isError === true, text: r.content[0]!.text };
      };
      await haltAndResume(echo, `sqlite:${db}`, (m) => m);
    } finally {
      await client.close();
    }
    await refusalRecorded(`sqlite:${db}`, 'text');
  }, 60_000);

  it('a halt from another process stops the HTTP gateway (`witness gateway`) within a second, and resume restores it', async () => {
    const db = tempDb(dir);
    const store = `sqlite:${db}`;
    const policy = writeReviewPolicy(path.join(dir, 'policy.yaml'), [person(dir, 'alice@corp')]);
    const g = await start(['gateway', '--config', writeGatewayConfig(dir, { policy, pollMs: 250 }), '--store', store]);
    const client = await mcpClient(g.url, 'halt-test');
    try {
      await haltAndResume(everythingEcho(client), store);
    } finally {
      await client.close();
    }
    await refusalRecorded(store);
  }, 60_000);
});

/** What a request other than tools/call came to: its answer as JSON, or its JSON-RPC error code and message. */
async function outcome(fn: () => Promise<unknown>): Promise<{ ok: true } | { ok: false; code: unknown; message: string }> {
  try {
    await fn();
    return { ok: true };
  } catch (e) {
    return { ok: false, code: (e as { code?: unknown }).code, message: (e as Error).message };
  }
}

const haltedRequest = (method: string) =>
  new RegExp(
    `Agent support-bot was halted by \\S+ at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(reading every record\\), so this call to ${method.replace('/', '\\/')} was not sent to the server; a person lifts the halt with \`witness resume --agent support-bot\`\\.$`,
  );

/** Each refused request is in the ledger as a refused call is: the request (with its method), a policy.decision deny for reason halted, a denied result. */
async function requestsRefusedRecorded(store: string, methods: readonly string[]): Promise<void> {
  const reader = await openLedger(store, { create: false, readonly: true });
  try {
    const [halt] = await eventsOf(reader, 'human.halt');
    const decisions = await eventsOf(reader, 'policy.decision');
    const results = await eventsOf(reader, 'tool.result');
    const calls = await eventsOf(reader, 'tool.call');
    for (const method of methods) {
      const refused = calls.filter((c) => c.data?.['method'] === method && decisions.some((d) => d.parent === c.id));
      expect(refused, method).toHaveLength(1);
      const call = refused[0]!;
      expect(
        decisions.find((d) => d.parent === call.id),
        method,
      ).toMatchObject({
        outcome: 'denied',
        policy: { decision: 'deny', reason_code: 'halted' },
        data: { decision: 'deny', reason: 'halted', tool: method, halt: { id: halt!.id } },
      });
      const result = results.find((r) => r.parent === call.id);
      expect(result, method).toMatchObject({ outcome: 'denied', data: { is_error: true, error: { code: 'halted' } } });
      expect(String((result!.data?.['error'] as { message: string }).message)).toMatch(haltedRequest(method));
    }
  } finally {
    await reader.close();
  }
}

describe('a halted agent is refused every request that acts or reads through the server, not only tool calls [R-HALT]', () => {
  it('witness proxy (2025 era): resources/read, prompts/get and completion/complete are refused and recorded; the handshake, ping and the lists still answer; resume restores them', async () => {
    const db = tempDb(dir);
    const store = `sqlite:${db}`;
    const client = await stdioClient(proxyArgs(db, SERVER));
    try {
      const { resources } = await client.listResources();
      const uri = resources[0]!.uri;
      const read = () => client.readResource({ uri });
      const prompt = () => client.getPrompt({ name: 'simple-prompt' });
      const complete = () => client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'E' } });
      expect(await outcome(read)).toEqual({ ok: true });
      expect(await outcome(prompt)).toEqual({ ok: true });
      expect(await outcome(complete)).toEqual({ ok: true });

      expect((await runBin(['halt', '--agent', 'support-bot', '--reason', 'reading every record', '--store', store])).code).toBe(0);
      await sleep(1000);
      for (const [method, fn] of [
        ['resources/read', read],
        ['prompts/get', prompt],
        ['completion/complete', complete],
      ] as const) {
        const o = await outcome(fn);
        expect(o, method).toMatchObject({ ok: false, code: -32052 });
        expect(oneSentence((o as { message: string }).message), method).toMatch(haltedRequest(method));
      }
      // The client can still talk to the server about what exists, and is told why it may do nothing.
      expect(await outcome(() => client.ping())).toEqual({ ok: true });
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      expect((await client.listResources()).resources.length).toBeGreaterThan(0);
      expect((await client.listPrompts()).prompts.length).toBeGreaterThan(0);
      expect((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).isError).toBe(true);

      expect((await runBin(['resume', '--agent', 'support-bot', '--reason', 'done', '--store', store])).code).toBe(0);
      await sleep(1000);
      expect(await outcome(read)).toEqual({ ok: true });
      expect(await outcome(prompt)).toEqual({ ok: true });
    } finally {
      await client.close();
    }
    await requestsRefusedRecorded(store, ['resources/read', 'prompts/get', 'completion/complete']);
    // The reads before the halt and after the resume reached the server; the refused one did not.
    const reads = (await readEvents(db)).filter((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'resources/read').map((e) => e.outcome);
    expect(reads).toEqual(['success', 'denied', 'success']);
  }, 60_000);

  it('witness proxy (2026-07-28 era, v2 SDK): resources/read and prompts/get are refused and recorded the same way; discovery and lists still answer', async () => {
    const db = tempDb(dir);
    const store = `sqlite:${db}`;
    const { client } = await v2StdioClient(proxyArgs(db, [process.execPath, V2_SERVER, 'stdio']), { negotiation: { pin: MODERN } });
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
      const read = () => client.readResource({ uri: 'mem://counter' });
      const prompt = () => client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
      expect(await outcome(read)).toEqual({ ok: true });
      expect((await runBin(['halt', '--agent', 'support-bot', '--reason', 'reading every record', '--store', store])).code).toBe(0);
      await sleep(1000);
      for (const [method, fn] of [
        ['resources/read', read],
        ['prompts/get', prompt],
      ] as const) {
        const o = await outcome(fn);
        expect(o, method).toMatchObject({ ok: false, code: -32052 });
        expect(oneSentence((o as { message: string }).message), method).toMatch(haltedRequest(method));
      }
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      expect((await client.listResources()).resources.length).toBeGreaterThan(0);
      expect((await runBin(['resume', '--agent', 'support-bot', '--reason', 'done', '--store', store])).code).toBe(0);
      await sleep(1000);
      expect(await outcome(prompt)).toEqual({ ok: true });
    } finally {
      await client.close();
    }
    await requestsRefusedRecorded(store, ['resources/read', 'prompts/get']);
  }, 60_000);
});

describe('a call held for approval when its agent is halted [R-HALT]', () => {
  it('is refused with the halt, not forwarded, even when a person approves it afterwards', async () => {
    const db = tempDb(dir);
    const store = `sqlite:${db}`;
    const alice = person(dir, 'alice-held@corp');
    const policy = writeReviewPolicy(path.join(dir, 'held-policy.yaml'), [alice]);
    const client = await stdioClient(proxyArgs(db, SERVER, ['--server', 'everything', '--policy', policy]));
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 500, b: 25 } });
      const reader = await openLedger(store, { create: false, readonly: true });
      let request: string | undefined;
      try {
        for (let i = 0; i < 300 && request === undefined; i++) {
          request = (await eventsOf(reader, 'approval.request'))[0]?.id;
          if (request === undefined) await sleep(50);
        }
      } finally {
        await reader.close();
      }
      expect(request).toBeDefined();
      expect((await runBin(['halt', '--agent', 'support-bot', '--reason', 'refunding every order', '--store', store])).code).toBe(0);
      await sleep(1000);
      const approved = await runBin(['approve', request!, '--key', alice.file, '--reason', 'looks fine', '--store', store]);
      expect(approved.code, approved.stderr).toBe(0);
      const result = await call;
      expect(result.isError).toBe(true);
      expect(oneSentence(text(result))).toMatch(
        /^Agent support-bot was halted by \S+ at .* \(refunding every order\), so this approved call to get-sum was not sent to the server; a person lifts the halt with `witness resume --agent support-bot`\.$/,
      );
    } finally {
      await client.close();
    }
    const evs = await readEvents(db);
    const result = evs.find((e) => e.kind === 'tool.result');
    expect(result).toMatchObject({ outcome: 'denied', data: { tool: 'get-sum', is_error: true } });
    // The approval was not used: no release was recorded for the halted call.
    expect(evs.filter((e) => e.kind === 'policy.decision' && e.data?.['approval'] !== undefined)).toEqual([]);
  }, 60_000);
});

describe('witness halt and resume at the command line', () => {
  it('refuses missing flags as bad usage (exit 2) in one sentence, recording nothing', async () => {
    const db = tempDb(dir);
    const store = `sqlite:${db}`;
    await runBin(['init', '--store', store]);
    const noAgent = await runBin(['halt', '--reason', 'x', '--store', store]);
    expect(noAgent.code).toBe(2);
    expect(oneSentence(noAgent.stderr)).toBe('witness halt needs --agent <id> (the agent to halt); run `witness halt --help` for usage.');
    const noReason = await runBin(['halt', '--agent', 'support-bot', '--store', store]);
    expect(noReason.code).toBe(2);
    expect(oneSentence(noReason.stderr)).toBe('witness halt needs --reason <text> (why the agent is halted, recorded with the halt); run `witness halt --help` for usage.');
    const blank = await runBin(['halt', '--agent', 'support-bot', '--reason', '  ', '--store', store, '--json']);
    expect(blank.code).toBe(2);
    expect(JSON.parse(blank.stdout)).toMatchObject({ error: { code: 'invalid_argument' } });
    const resume = await runBin(['resume', '--store', store]);
    expect(resume.code).toBe(2);
    expect(oneSentence(resume.stderr)).toBe('witness resume needs --agent <id> (the halted agent); run `witness resume --help` for usage.');
    const notHalted = await runBin(['resume', '--agent', 'support-bot', '--store', store, '--json']);
    expect(notHalted.code).toBe(1);
    expect(JSON.parse(notHalted.stdout)).toMatchObject({ error: { code: 'conflict', message: 'Agent support-bot is not halted, so there is nothing to resume; nothing was recorded.' } });
    const state = await runBin(['halted', '--agent', 'support-bot', '--store', store, '--json']);
    expect(JSON.parse(state.stdout)).toEqual({ agent: 'support-bot', halted: false });
    expect((await readEvents(db)).filter((e) => e.kind.startsWith('human.'))).toEqual([]);
  }, 60_000);
});
