import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { REPO_ROOT, readEvents, runBin } from '../helpers/ledger.js';
import { rawProxy, type RawProxy } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * What reaches a server from the agent besides its own requests — its answers to the server's
 * requests and its notifications — and how ids are matched, with real parts only: a running
 * `witness proxy` (dist/) driven line by line, in front of a server made with the official SDK
 * whose destructive tool acts only once the client confirms it through elicitation/create, and a
 * server that ignores cancellation (MCP allows it). `witness halt` runs as another process.
 */

requireBuild();
const dir = tempDir('witness-halt-srvreq-');
const ELICIT = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'elicit-mcp-server.mjs');
const LATE = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'late-answer-mcp-server.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const line = (m: Record<string, unknown>) => JSON.stringify(m);

function effectsOf(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}

/** A proxy in front of `server`, initialized as a client that can answer elicitations. */
async function started(store: string, server: string, effects: string): Promise<RawProxy> {
  const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', process.execPath, server, effects]);
  p.send(line({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: { elicitation: {} }, clientInfo: { name: 'raw', version: '1' } } }));
  expect(await p.next()).toMatchObject({ id: 1, result: { serverInfo: { name: expect.any(String) } } });
  p.send(line({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  return p;
}

/** Calls delete_orders and returns the server's elicitation/create as the agent receives it. */
async function elicited(p: RawProxy): Promise<Record<string, unknown>> {
  p.send(line({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'delete_orders', arguments: {} } }));
  const request = await p.next();
  expect(request).toMatchObject({ method: 'elicitation/create', params: { message: 'Really delete every order?' } });
  return request;
}

describe('a halted agent cannot complete a call through its answers to the server or its notifications', () => {
  it('a halt placed while a tool waits for the agent to confirm declines the confirmation for the agent: the tool does not act, the agent late accept is dropped, and both are recorded', async () => {
    const store = tempDb(dir);
    const effects = path.join(dir, `effects-${path.basename(store)}.txt`);
    const p = await started(store, ELICIT, effects);
    const request = await elicited(p);

    const halted = await runBin(['halt', '--agent', 'support-bot', '--reason', 'stop deleting', '--store', `sqlite:${store}`]);
    expect(halted.code, halted.stderr).toBe(0);
    await sleep(1000);
    // The relay answered the server itself: the tool ends, not confirmed, without the agent's word.
    const answered = await p.until(2);
    expect(answered.at(-1)).toMatchObject({ id: 2, result: { isError: true, content: [{ text: 'not confirmed: decline' }] } });
    // And told the agent its open elicitation is void.
    expect(answered).toContainEqual(expect.objectContaining({ method: 'notifications/cancelled', params: expect.objectContaining({ requestId: request['id'] }) }));

    // The halted agent confirms anyway, and sends a notification a server might act on.
    p.send(line({ jsonrpc: '2.0', id: request['id'], result: { action: 'accept', content: {} } }));
    p.send(line({ jsonrpc: '2.0', method: 'admin/wipe_database', params: {} }));
    p.send(line({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }));
    p.send(line({ jsonrpc: '2.0', id: 3, method: 'ping' }));
    expect(await p.next()).toMatchObject({ id: 3, result: {} });
    await sleep(300);
    expect(await p.close()).toBe(0);

    expect(effectsOf(effects)).toEqual(['ANSWER decline', 'NOTIFIED notifications/roots/list_changed']);
    const evs = await readEvents(store);
    const call = evs.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'delete_orders')!;
    const errors = evs.filter((e) => e.kind === 'error');
    const declined = errors.find(
      (e) => e.data?.['code'] === 'halted' && (e.data['server_request'] as Record<string, unknown> | undefined)?.['method'] === 'elicitation/create' && e.data['answered'] !== undefined,
    );
    expect(declined).toMatchObject({ parent: call.id, data: { refused: true, answered: { action: 'decline' }, halt: { actor: expect.any(String), reason: 'stop deleting' } } });
    const dropped = errors.find((e) => e.data?.['code'] === 'halted' && e.data['agent_answer'] !== undefined);
    expect(dropped).toMatchObject({ parent: call.id, data: { refused: true, agent_answer: { result: { action: 'accept' } }, server_request: { method: 'elicitation/create' } } });
    const notified = errors.find((e) => e.data?.['code'] === 'halted' && e.data['method'] === 'admin/wipe_database');
    expect(notified).toMatchObject({ data: { refused: true, notification: true } });
    expect(evs.find((e) => e.kind === 'tool.result' && e.parent === call.id)).toMatchObject({ outcome: 'error' });
  });

  it('a server request that arrives while the agent is halted is answered by the gateway and never reaches the agent; a notification outside the allowed ones is dropped', async () => {
    const store = tempDb(dir);
    const effects = path.join(dir, `effects-${path.basename(store)}.txt`);
    const p = await started(store, ELICIT, effects);
    const halted = await runBin(['halt', '--agent', 'support-bot', '--reason', 'stop deleting', '--store', `sqlite:${store}`]);
    expect(halted.code, halted.stderr).toBe(0);
    await sleep(1000);
    // A notification the halt lets through makes the server ask the agent a question of its own.
    p.send(line({ jsonrpc: '2.0', method: 'notifications/roots/list_changed', params: { ask: 'Delete every order now?' } }));
    await sleep(500);
    p.send(line({ jsonrpc: '2.0', method: 'notifications/tasks/status', params: {} }));
    p.send(line({ jsonrpc: '2.0', id: 3, method: 'ping' }));
    const seen = await p.until(3);
    expect(seen.filter((m) => m['method'] === 'elicitation/create')).toEqual([]);
    expect(seen.at(-1)).toMatchObject({ id: 3, result: {} });
    await sleep(300);
    expect(await p.close()).toBe(0);
    expect(effectsOf(effects)).toEqual(['NOTIFIED notifications/roots/list_changed', 'ASKED decline']);
    const evs = await readEvents(store);
    expect(evs.find((e) => e.kind === 'error' && e.data?.['answered'] !== undefined)).toMatchObject({
      outcome: 'denied',
      action: 'elicitation/create',
      data: { code: 'halted', refused: true, answered: { action: 'decline' }, server_request: { params: { message: 'Delete every order now?' } } },
    });
    expect(evs.find((e) => e.kind === 'error' && e.data?.['method'] === 'notifications/tasks/status')).toMatchObject({ outcome: 'denied', data: { code: 'halted', notification: true } });
  });

  it('when the agent is not halted its answer to an elicitation is forwarded and recorded as the call context, and unknown notifications pass', async () => {
    const store = tempDb(dir);
    const effects = path.join(dir, `effects-${path.basename(store)}.txt`);
    const p = await started(store, ELICIT, effects);
    const request = await elicited(p);
    p.send(line({ jsonrpc: '2.0', id: request['id'], result: { action: 'accept', content: {} } }));
    expect(await p.next()).toMatchObject({ id: 2, result: { content: [{ text: 'deleted' }] } });
    p.send(line({ jsonrpc: '2.0', method: 'admin/wipe_database', params: {} }));
    p.send(line({ jsonrpc: '2.0', id: 3, method: 'ping' }));
    expect(await p.next()).toMatchObject({ id: 3 });
    await sleep(300);
    expect(await p.close()).toBe(0);

    expect(effectsOf(effects)).toEqual(['ANSWER accept', 'DELETED ALL ORDERS', 'NOTIFIED admin/wipe_database']);
    const evs = await readEvents(store);
    const call = evs.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'delete_orders')!;
    const context = evs.find((e) => e.kind === 'note' && e.parent === call.id);
    expect(context).toMatchObject({
      action: 'elicitation/create',
      data: {
        server_request: { method: 'elicitation/create', jsonrpc_id: request['id'], params: { message: 'Really delete every order?' } },
        agent_answer: { result: { action: 'accept' } },
      },
    });
    expect(evs.filter((e) => e.kind === 'error')).toEqual([]);
  });
});

describe('ids are never matched to the wrong request', () => {
  it('a request reusing the id of a cancelled call the server has not answered is refused and recorded, and the call late answer never reaches the agent', async () => {
    const store = tempDb(dir);
    const effects = path.join(dir, `effects-${path.basename(store)}.txt`);
    const p = await started(store, LATE, effects);
    p.send(line({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'transfer', arguments: { amount: 1000 } } }));
    await sleep(150);
    p.send(line({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'user cancelled' } }));
    p.send(line({ jsonrpc: '2.0', id: 7, method: 'ping' }));
    expect(await p.next()).toMatchObject({ id: 7, error: { code: -32600, message: expect.stringMatching(/^Invalid request: id 7 is still in use/) } });
    // The transfer's answer comes after 600 ms: it must not arrive as an answer to anything.
    await sleep(900);
    p.send(line({ jsonrpc: '2.0', id: 8, method: 'ping' }));
    const rest = await p.until(8);
    expect(rest).toEqual([expect.objectContaining({ id: 8, result: {} })]);
    expect(await p.close()).toBe(0);

    expect(effectsOf(effects)).toEqual(['GOT initialize 1', 'GOT tools/call 7', 'TRANSFERRED', 'GOT ping 8']);
    const evs = await readEvents(store);
    const call = evs.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'transfer')!;
    expect(evs.find((e) => e.kind === 'tool.result' && e.parent === call.id)).toMatchObject({ data: { error: { code: 'cancelled' } } });
    const reused = evs.find((e) => e.kind === 'error' && e.data?.['code'] === 'duplicate_id');
    expect(reused).toMatchObject({ data: { refused: true, method: 'ping', jsonrpc_id: 7 } });
    const late = evs.find((e) => e.kind === 'error' && e.data?.['code'] === 'answered_after_cancel');
    expect(late).toMatchObject({ parent: call.id, data: { jsonrpc_id: 7, result: { content: [{ text: 'transfer ok, ref T-77' }] } } });
  });

  it('a request reusing the id of a call still waiting for its answer is refused and the call answer reaches the agent once', async () => {
    const store = tempDb(dir);
    const effects = path.join(dir, `effects-${path.basename(store)}.txt`);
    const p = await started(store, LATE, effects);
    p.send(line({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'transfer', arguments: { amount: 5 } } }));
    p.send(line({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'transfer', arguments: { amount: 5000 } } }));
    expect(await p.next()).toMatchObject({ id: 7, error: { code: -32600 } });
    expect(await p.next()).toMatchObject({ id: 7, result: { content: [{ text: 'transfer ok, ref T-77' }] } });
    expect(await p.close()).toBe(0);
    expect(effectsOf(effects).filter((l) => l === 'TRANSFERRED')).toHaveLength(1);
  });
});
