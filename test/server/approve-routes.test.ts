import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_STREAM, approverKeysDir, createKey, storeApproverKey } from '../../src/server/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { heldRequest } from './approve-helpers.js';
import { serverFixture, type ServerFixture } from './fixture.js';

/** The approval routes over a real SQLite ledger, through app.request (no socket). */

interface Doc {
  id: string;
  status: string;
  agent: string;
  user?: string;
  tool: string;
  arguments: unknown;
  arguments_digest: string;
  rule?: string;
  seconds_left: number;
  approvers: Array<{ key: string; fingerprint: string }>;
  decision?: { approver: string; decision: string; role?: string; reason?: string; meaning?: string };
}

describe('approvals over HTTP', () => {
  const dir = tempDir('witness-approve-routes-');
  let f: ServerFixture;
  let alice: string;
  beforeAll(async () => {
    f = await serverFixture(dir);
    alice = storeApproverKey(approverKeysDir(f.ledger.info), f.ids.approver, { name: 'alice@corp' }).verifierKey;
  });
  afterAll(async () => f.close());

  it('[R-ACCESS-LOG] lists pending requests by default with the exact arguments, who asked, the rule and the time left, and records the read as audit.access', async () => {
    const id = await heldRequest(f.ledger, [alice], { args: { amount: 650, note: '<script>alert(1)</script>' } });
    const res = await f.call('GET', '/v1/approvals', { key: f.keys.auditor });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { approvals: Doc[]; truncated: boolean };
    const mine = body.approvals.find((a) => a.id === id)!;
    expect(mine).toMatchObject({
      status: 'pending',
      agent: 'support-bot',
      user: 'customer-12345',
      tool: 'billing.refund',
      arguments: { amount: 650, note: '<script>alert(1)</script>' },
      rule: 'refunds-over-500',
      approvers: [{ key: alice, fingerprint: expect.stringMatching(/^alice@corp\+/) }],
    });
    expect(mine.seconds_left).toBeGreaterThan(50);
    expect(mine.seconds_left).toBeLessThanOrEqual(60);
    expect(body.approvals.every((a) => a.status === 'pending')).toBe(true);
    const access = await f.ledger.readStream(ACCESS_STREAM);
    expect(access.at(-1)?.data).toMatchObject({ role: 'auditor', key_id: f.ids.auditor, operation: 'query', scope: { route: 'GET /v1/approvals' } });
  });

  it('[R-SERVER-APPROVE] approves as the signed-in approver: the decision names the key holder, then the request is approved and /v1/approvals/:id shows who and why', async () => {
    const id = await heldRequest(f.ledger, [alice]);
    const res = await f.call('POST', `/v1/approvals/${id}/approve`, { key: f.keys.approver, body: { reason: 'customer verified' } });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ request_id: id, decision: 'approved', approver: 'alice@corp', status: 'approved' });
    const one = (await (await f.call('GET', `/v1/approvals/${id.slice(0, 13)}`, { key: f.keys.approver })).json()) as Doc;
    expect(one).toMatchObject({
      id,
      status: 'approved',
      decision: { approver: 'alice@corp', decision: 'approved', role: 'approver', reason: 'customer verified', meaning: expect.stringContaining(`API key ${f.ids.approver}`) },
    });
    const access = await f.ledger.readStream(ACCESS_STREAM);
    expect(access.at(-1)?.data).toMatchObject({ role: 'approver', operation: 'view', scope: { route: 'GET /v1/approvals/:id' } });
    expect((await verifyLedger(f.ledger)).ok).toBe(true);
  });

  it('[R-SERVER-APPROVE] answers 409 for a request already decided or expired, 403 when the approver is the agent that asked, 404 for an unknown one, 400 for a bad body', async () => {
    const id = await heldRequest(f.ledger, [alice]);
    expect((await f.call('POST', `/v1/approvals/${id}/deny`, { key: f.keys.approver, body: { reason: 'no' } })).status).toBe(201);
    const again = await f.call('POST', `/v1/approvals/${id}/approve`, { key: f.keys.approver, body: {} });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'conflict', message: expect.stringMatching(/already denied by alice@corp/) });

    const expired = await heldRequest(f.ledger, [alice], { expiresInMs: -1000 });
    const late = await f.call('POST', `/v1/approvals/${expired}/approve`, { key: f.keys.approver, body: {} });
    expect(late.status).toBe(409);
    expect(((await late.json()) as { error: { message: string } }).error.message).toMatch(/already expired/);

    // An approver key whose held signing key names the requesting agent.
    const { key, record } = await createKey(f.ledger, { role: 'approver', name: 'support-bot' }, { who: 'test', recorder: 'cli' });
    const bot = storeApproverKey(approverKeysDir(f.ledger.info), record.id, { name: 'support-bot' }).verifierKey;
    const own = await heldRequest(f.ledger, [alice, bot]);
    const self = await f.call('POST', `/v1/approvals/${own}/approve`, { key, body: {} });
    expect(self.status).toBe(403);
    expect(((await self.json()) as { error: { details: { refusal: string } } }).error.details.refusal).toBe('approver_is_agent');

    // An approver key the server holds no signing key for.
    const { key: bare } = await createKey(f.ledger, { role: 'approver', name: 'bob@corp' }, { who: 'test', recorder: 'cli' });
    const nokey = await f.call('POST', `/v1/approvals/${own}/approve`, { key: bare, body: {} });
    expect(nokey.status).toBe(403);
    expect(((await nokey.json()) as { error: { details: { refusal: string } } }).error.details.refusal).toBe('no_approver_key');

    expect((await f.call('POST', '/v1/approvals/0123456789abcdef/approve', { key: f.keys.approver, body: {} })).status).toBe(404);
    expect((await f.call('POST', `/v1/approvals/${own}/approve`, { key: f.keys.approver, body: { reason: 'x', approver: 'mallory' } })).status).toBe(400);
    expect((await f.call('POST', `/v1/approvals/${own}/approve`, { key: f.keys.approver, body: { arguments_digest: 'f'.repeat(64) } })).status).toBe(409);
    expect((await f.call('GET', '/v1/approvals?status=maybe', { key: f.keys.approver })).status).toBe(400);
    expect((await f.call('GET', '/v1/approvals/zz', { key: f.keys.approver })).status).toBe(400);
    expect((await f.call('GET', `/v1/approvals/${own}`, { key: f.keys.approver }).then((r) => r.json())) as Doc).toMatchObject({ status: 'pending' });
  });

  it('/metrics counts the same pending approvals GET /v1/approvals lists, also right after a decision', async () => {
    const pendingMetric = async () => Number(/^witness_pending_approvals (\d+)$/m.exec(await (await f.call('GET', '/metrics', { key: f.keys.auditor })).text())![1]);
    const listed = async () => ((await (await f.call('GET', '/v1/approvals', { key: f.keys.auditor })).json()) as { approvals: Doc[] }).approvals.length;
    const id = await heldRequest(f.ledger, [alice]);
    // A scrape now caches the count for 30 s; the new request comes after it on purpose below.
    expect(await pendingMetric()).toBe(await listed());
    expect((await f.call('POST', `/v1/approvals/${id}/approve`, { key: f.keys.approver, body: {} })).status).toBe(201);
    expect(await pendingMetric()).toBe(await listed());
  });
});
