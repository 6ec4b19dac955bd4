import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYLOADS, type StoredEvent } from '../../src/core/index.js';
import { demoPolicy, startApp, type RunningApp } from '../../src/demo/index.js';
import { person } from '../helpers/approvers.js';
import { BIN, REPO_ROOT, readEvents, runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * What `witness query --outcome` answers, tried as a new user tries it after the demo: the real
 * back office and its MCP server behind the real `witness proxy` with the demo's policy, a $650
 * refund held and then approved by one person, a $1,200 credit held and denied by another, each
 * decided with `witness approve` / `witness deny` on the same SQLite file. An auditor asking for
 * what was denied must not be shown the refund that was approved.
 */

const dir = tempDir('witness-outcomes-');
const alice = person(dir, 'alice@acme.example');
const bob = person(dir, 'bob@acme.example');

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'demo', 'mcp-server.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

let app: RunningApp;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

async function proxied(store: string, policy: string): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      BIN,
      'proxy',
      '--agent',
      'support-bot',
      '--server',
      'backoffice',
      '--policy',
      policy,
      '--approval-timeout',
      '60s',
      '--store',
      `sqlite:${store}`,
      '--',
      process.execPath,
      path.join(REPO_ROOT, 'dist', 'demo', 'mcp-server.js'),
    ],
    env: { PATH: process.env['PATH'] ?? '', BACKOFFICE_URL: app.url },
    cwd: REPO_ROOT,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'outcomes-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

/** Waits for the pending request for `customer` (as `witness approvals --json` lists it) and returns its id. */
async function pendingFor(store: string, customer: string): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const r = await runCli(['approvals', '--store', `sqlite:${store}`, '--json']);
    const hit = (JSON.parse(r.stdout) as Array<{ request: string; arguments: { customer_id?: string } }>).find((v) => v.arguments.customer_id === customer);
    if (hit !== undefined) return hit.request;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no approval request for ${customer} appeared`);
}

async function ids(store: string, outcome: string): Promise<string[]> {
  const r = await runCli(['query', '--outcome', outcome, '--limit', '1000', '--json', '--store', `sqlite:${store}`]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { events: StoredEvent[] }).events.map((e) => e.id);
}

/** A call's tool.call, every event it caused (policy decisions, request, result), and the decisions on its request. */
function callFamily(evs: readonly StoredEvent[], call: StoredEvent): Map<string, StoredEvent> {
  const out = new Map([[call.id, call]]);
  for (const e of evs) if (e.parent === call.id) out.set(e.id, e);
  const request = evs.find((e) => e.kind === 'approval.request' && e.parent === call.id);
  for (const e of evs) if (request !== undefined && e.parent === request.id) out.set(e.id, e);
  return out;
}

describe('witness query --outcome after a held refund', () => {
  it('does not list a $650 refund that was held and then approved under denied, lists it as pending while held and success once decided, and lists a denied credit under denied [R-OUTCOMES]', async () => {
    const store = tempDb(dir);
    const policy = path.join(dir, 'policy.yaml');
    fs.writeFileSync(policy, demoPolicy([alice, bob].map((p) => ({ id: p.name, key: p.vkey }))));
    const client = await proxied(store, policy);
    try {
      const refund = client.callTool({ name: 'billing.refund', arguments: { customer_id: 'C-1042', amount: 650, reason: 'Duplicate charge CH-9002.' } });
      const refundRequest = await pendingFor(store, 'C-1042');
      const approved = await runCli(['approve', refundRequest, '--key', alice.file, '--reason', 'Duplicate charge confirmed.', '--store', `sqlite:${store}`]);
      expect(approved.stderr).toBe('');
      expect((await refund).isError).not.toBe(true);

      const credit = client.callTool({ name: 'billing.refund', arguments: { customer_id: 'C-2077', amount: 1200, reason: 'Goodwill credit.' } });
      const creditRequest = await pendingFor(store, 'C-2077');
      const denied = await runCli(['deny', creditRequest, '--key', bob.file, '--reason', 'Needs a written manager request.', '--store', `sqlite:${store}`]);
      expect(denied.stderr).toBe('');
      expect((await credit).isError).toBe(true);
    } finally {
      await client.close();
    }

    const evs = await readEvents(store);
    // Every field the gateway and the approvals module wrote is declared in core/event.ts.
    expect(
      evs.flatMap((e) =>
        Object.keys(e.data ?? {})
          .filter((k) => !(k in PAYLOADS[e.kind].shape))
          .map((k) => `${e.kind}.${k}`),
      ),
    ).toEqual([]);
    const calls = evs.filter((e) => e.kind === 'tool.call');
    expect(calls.map((e) => (e.data?.['arguments'] as { amount: number }).amount)).toEqual([650, 1200]);
    const refund = callFamily(evs, calls[0]!);
    const credit = callFamily(evs, calls[1]!);
    const of = (family: Map<string, StoredEvent>, kind: string, pick: (e: StoredEvent) => boolean = () => true) => [...family.values()].find((e) => e.kind === kind && pick(e))!.id;

    const deniedIds = await ids(store, 'denied');
    expect(deniedIds.filter((id) => refund.has(id))).toEqual([]);
    // The credit: the person's denial and the refusal that followed it.
    expect(deniedIds).toEqual(expect.arrayContaining([of(credit, 'approval.decision'), of(credit, 'tool.result')]));
    expect(deniedIds.every((id) => credit.has(id))).toBe(true);

    // Held: the review and the request are pending (as is every tool.call, recorded before its answer).
    const pendingIds = await ids(store, 'pending');
    const review = (e: StoredEvent) => e.data?.['decision'] === 'review';
    expect(pendingIds).toEqual(expect.arrayContaining([of(refund, 'policy.decision', review), of(refund, 'approval.request'), of(credit, 'policy.decision', review), of(credit, 'approval.request')]));

    // Approved: the decision, the release that consumed it, and the refund's result succeeded.
    const successIds = await ids(store, 'success');
    const release = (e: StoredEvent) => e.data?.['decision'] === 'allow';
    expect(successIds).toEqual(expect.arrayContaining([of(refund, 'approval.decision'), of(refund, 'policy.decision', release), of(refund, 'tool.result')]));
    expect(successIds.filter((id) => credit.has(id))).toEqual([]);
  });
});
