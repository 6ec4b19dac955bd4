import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, describe, expect, it } from 'vitest';
import { openLedger, verifyLedger } from '../../src/store/index.js';
import { writeReviewPolicy } from '../helpers/approvers.js';
import { mcpClient, requireBuild, text, witnessProcesses, writeGatewayConfig } from '../helpers/gateway.js';
import { runBin } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { PG_URL, dropSchemas, requirePostgres } from '../store/postgres-driver.js';

/**
 * End to end, every part its own process: a real `witness gateway` holds a call to the real
 * server-everything under a review rule; an approver approves (or denies) it over HTTP through a
 * real listening `witness serve` on the same ledger, with the API key and the server-held approver
 * key `witness keys create --role approver` made; the MCP client then gets its answer.
 */

const dir = tempDir('witness-approve-gateway-');

requireBuild();
const schemas: string[] = [];
afterAll(() => dropSchemas(schemas));
// Registered after the schemas' hook, so (after-hooks run last first) the processes are killed before their schemas are dropped.
const start = witnessProcesses();

interface Setup {
  gateway: string;
  server: string;
  approverKey: string;
  client: Client;
}

/** An approver API key with its server-held signing key, a policy listing that key, a gateway and a server on `store`. */
async function setup(store: string, env: Record<string, string>): Promise<Setup> {
  const created = await runBin(['keys', 'create', '--role', 'approver', '--name', 'alice@corp', '--store', store, '--json'], { env });
  expect(created.code, created.stderr).toBe(0);
  const key = JSON.parse(created.stdout) as { key: string; approver: { name: string; public_key: string } };
  const policy = writeReviewPolicy(path.join(dir, `policy-${randomBytes(4).toString('hex')}.yaml`), [{ name: key.approver.name, vkey: key.approver.public_key, skey: '', file: '' }]);
  const config = writeGatewayConfig(dir, { policy, pollMs: 50 });
  const [gateway, server] = await Promise.all([start(['gateway', '--config', config, '--store', store], { env }), start(['serve', '--store', store, '--port', '0'], { env, stream: 'stdout' })]);
  const client = await mcpClient(gateway.url, 'approve-gateway-test');
  return { gateway: gateway.url, server: server.url, approverKey: key.key, client };
}

async function http(s: Setup, method: string, route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${s.server}${route}`, {
    method,
    headers: { authorization: `Bearer ${s.approverKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** The pending request for get-sum with `a`, as an approver finds it in GET /v1/approvals. */
async function pendingFor(s: Setup, a: number): Promise<{ id: string; arguments: { a: number; b: number }; rule: string; seconds_left: number }> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const list = await http(s, 'GET', '/v1/approvals');
    expect(list.status).toBe(200);
    const found = (list.json['approvals'] as Array<{ id: string; arguments: { a: number; b: number }; rule: string; seconds_left: number }>).find((x) => x.arguments.a === a);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no pending approval for a=${a}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function approveThenDeny(s: Setup): Promise<void> {
  try {
    const held = s.client.callTool({ name: 'get-sum', arguments: { a: 500, b: 7 } });
    const req = await pendingFor(s, 500);
    expect(req).toMatchObject({ arguments: { a: 500, b: 7 }, rule: 'big-sums-need-review' });
    expect(req.seconds_left).toBeGreaterThan(0);
    const approved = await http(s, 'POST', `/v1/approvals/${req.id}/approve`, { reason: 'sum checked' });
    expect(approved.status, JSON.stringify(approved.json)).toBe(201);
    expect(approved.json).toMatchObject({ approver: 'alice@corp', decision: 'approved' });
    const result = await held;
    expect(result.isError).not.toBe(true);
    expect(text(result)).toContain('507');
    // Released and used: deciding it again is a conflict.
    expect((await http(s, 'POST', `/v1/approvals/${req.id}/deny`, {})).status).toBe(409);

    const refused = s.client.callTool({ name: 'get-sum', arguments: { a: 600, b: 1 } });
    const req2 = await pendingFor(s, 600);
    const denied = await http(s, 'POST', `/v1/approvals/${req2.id}/deny`, { reason: 'not today' });
    expect(denied.status, JSON.stringify(denied.json)).toBe(201);
    const r2 = await refused;
    expect(r2.isError).toBe(true);
    expect(text(r2)).toBe(`The call to get-sum was denied by alice@corp: not today (approval request ${req2.id}). It was not sent to the server.`);
    expect(text(r2)).not.toContain('601');
  } finally {
    await s.client.close();
  }
}

describe('approving a held gateway call over the HTTP API', () => {
  it('[R-SERVER-APPROVE] an approver approves a call a running gateway holds through a running witness serve on the same SQLite ledger, and the call completes; a denial refuses the next', async () => {
    const file = tempDb(dir);
    const store = `sqlite:${file}`;
    await (await openLedger(store)).close();
    await approveThenDeny(await setup(store, {}));
    const ledger = await openLedger(store, { create: false, readonly: true });
    try {
      const decisions = (await ledger.query({ kind: 'approval.decision', limit: 10 })).events;
      expect(decisions.map((d) => d.data?.['decision'])).toEqual(['approved', 'denied']);
      expect(decisions.every((d) => d.data?.['approver'] === 'alice@corp' && d.data?.['role'] === 'approver')).toBe(true);
      expect((await verifyLedger(ledger)).ok).toBe(true);
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('[R-SERVER-APPROVE] does the same on PostgreSQL', async () => {
    await requirePostgres();
    const schema = `wt_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    const store = `${PG_URL}?schema=${schema}`;
    const keyFile = path.join(dir, `${schema}.key`);
    await (await openLedger(store, { keyFile })).close();
    const env = { WITNESS_SIGNING_KEY_FILE: keyFile, WITNESS_APPROVER_KEYS: path.join(dir, `${schema}.approvers`) };
    await approveThenDeny(await setup(store, env));
    expect(fs.statSync(path.join(dir, `${schema}.approvers`)).mode & 0o777).toBe(0o700);
  }, 60_000);
});
