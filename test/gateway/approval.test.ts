import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { argumentsDigest } from '../../src/gateway/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { BIN, REPO_ROOT, runBin, runCli, verifyFile, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Human approval end to end: the official SDK Client talks to the real `witness proxy` binary in
 * front of the real server-everything; `witness approvals` / `approve` / `deny` run as other
 * processes on the same SQLite ledger, as a person at another terminal would.
 */

const dir = tempDir('witness-approval-');
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const SERVER = ['node', EVERYTHING, 'stdio'];
const POLICY = path.join(dir, 'review-big-sums.yaml');
fs.writeFileSync(
  POLICY,
  [
    'version: 1',
    'default: allow',
    'rules:',
    '  - id: big-sums-need-review',
    '    match: { tool: get-sum }',
    '    when: args.a > 100',
    '    effect: review',
    '    reason: Sums over 100 need a supervisor.',
    '',
  ].join('\n'),
);

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

async function proxied(store: string, extra: string[] = []): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'proxy', '--agent', 'support-bot', '--server', 'everything', '--policy', POLICY, '--store', `sqlite:${store}`, ...extra, '--', ...SERVER],
    cwd: REPO_ROOT,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'approval-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}


interface Pending {
  request: string;
  status: string;
  tool: string;
  arguments: unknown;
  arguments_digest: string;
  session: string;
}

/** Polls `witness approvals --json` (another process's view of the ledger) until `n` requests are pending. */
async function waitForPending(store: string, n = 1): Promise<Pending[]> {
  for (let i = 0; i < 200; i++) {
    const r = await runCli(['approvals', '--store', `sqlite:${store}`, '--json']);
    if (r.code === 0) {
      const list = JSON.parse(r.stdout) as Pending[];
      if (list.length >= n) return list;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('no approval request appeared');
}

const text = (r: object) => ((r as { content: Array<{ text: string }> }).content)[0]!.text;

describe('human approval through witness proxy', () => {
  it('holds a review call, keeps the client alive with progress, and forwards it once a named person approves it from another process [R-GW-APPROVAL]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    const progress: unknown[] = [];
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 500, b: 25 } }, undefined, { onprogress: (p) => progress.push(p), resetTimeoutOnProgress: true });
      const [pending] = await waitForPending(store);
      expect(pending).toMatchObject({ status: 'pending', tool: 'get-sum', arguments: { a: 500, b: 25 }, arguments_digest: argumentsDigest({ a: 500, b: 25 }) });
      // The table a person reads names the request, the tool and the arguments.
      const listed = await runCli(['approvals', '--store', `sqlite:${store}`]);
      expect(listed.stdout).toContain(pending!.request);
      expect(listed.stdout).toContain('{"a":500,"b":25}');

      const approved = await runBin(['approve', pending!.request.slice(0, 13), '--as', 'alice@corp', '--reason', 'checked with the customer', '--role', 'supervisor', '--store', `sqlite:${store}`]);
      expect(approved.stderr).toBe('');
      expect(approved.code).toBe(0);
      expect(approved.stdout).toMatch(/^Approved request .* as alice@corp; recorded as event [0-9a-f-]{36}\.\n$/);
      const result = await call;
      expect(result.isError ?? false).toBe(false);
      expect(text(result)).toContain('525');
      expect(progress.length).toBeGreaterThanOrEqual(1);
      expect(progress[0]).toMatchObject({ progress: 1, message: expect.stringContaining(pending!.request) });
    } finally {
      await client.close();
    }

    const evs = await readEvents(store);
    const kinds = evs.map((e) => `${e.kind}:${String(e.data?.['decision'] ?? '')}`);
    expect(kinds).toEqual(['session.start:', 'tool.call:', 'policy.decision:review', 'approval.request:', 'approval.decision:approved', 'policy.decision:allow', 'tool.result:', 'session.end:']);
    const [, call, review, request, decision, release, result] = evs as unknown as [StoredEvent, StoredEvent, StoredEvent, StoredEvent, StoredEvent, StoredEvent, StoredEvent];
    expect(call.data).toMatchObject({ tool: 'get-sum', requires_approval: true });
    expect(review.policy).toMatchObject({ decision: 'review', rule: 'big-sums-need-review' });
    expect(request.parent).toBe(call.id);
    expect(request.data).toMatchObject({ request_id: request.id, arguments: { a: 500, b: 25 }, arguments_digest: argumentsDigest({ a: 500, b: 25 }), session: call.stream, call_id: call.id, policy_version: review.data?.['policy_version'] });
    const lifetime = Date.parse(String(request.data?.['expires_at'])) - Date.parse(request.ts);
    expect(lifetime).toBeGreaterThan(5 * 60_000 - 1000);
    expect(lifetime).toBeLessThanOrEqual(5 * 60_000);
    // The person's act: their identity, the digest they approved, in the call's own session.
    expect(decision.stream).toBe(call.stream);
    expect(decision.parent).toBe(request.id);
    expect(decision.agent.id).toBe('support-bot');
    expect(decision.principal).toEqual({ id: 'alice@corp', kind: 'human' });
    expect(decision.data).toMatchObject({ decision: 'approved', approver: 'alice@corp', role: 'supervisor', reason: 'checked with the customer', arguments_digest: request.data?.['arguments_digest'] });
    // The gateway's release consumes the grant and names it.
    expect(release.parent).toBe(call.id);
    expect(release.policy).toMatchObject({ decision: 'allow', approver: 'alice@corp' });
    expect(release.data).toMatchObject({ approval: { request_id: request.id, decision_id: decision.id, approver: 'alice@corp' } });
    expect(release.approvals).toEqual([expect.objectContaining({ approver: 'alice@corp', decision: 'approved', args_digest: request.data?.['arguments_digest'] })]);
    expect(result).toMatchObject({ parent: call.id, outcome: 'success' });

    const listed = JSON.parse((await runCli(['approvals', '--all', '--json', '--store', `sqlite:${store}`])).stdout) as Array<{ status: string; used_by?: string }>;
    expect(listed).toEqual([expect.objectContaining({ status: 'consumed', used_by: release.id })]);
    expect((await verifyFile(store)).ok).toBe(true);
  });

  it('answers a denied review with a tool error naming the person and the reason, and the server never sees the call', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 900, b: 1 } });
      const [pending] = await waitForPending(store);
      const denied = await runCli(['deny', pending!.request, '--as', 'bob@corp', '--reason', 'not a valid order', '--store', `sqlite:${store}`]);
      expect(denied.code).toBe(0);
      const result = await call;
      expect(result.isError).toBe(true);
      expect(text(result)).toContain('denied by bob@corp: not a valid order');
      expect(text(result)).not.toContain('901');
      // An approver who comes late finds the request decided.
      const late = await runCli(['approve', pending!.request, '--as', 'carol@corp', '--store', `sqlite:${store}`]);
      expect(late.code).toBe(1);
      expect(late.stderr).toMatch(/already denied by bob@corp/);
    } finally {
      await client.close();
    }
    const evs = await readEvents(store);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'policy.decision', 'approval.request', 'approval.decision', 'tool.result', 'session.end']);
    expect(evs[5]).toMatchObject({ outcome: 'denied', data: { is_error: true } });
    expect((await verifyFile(store)).ok).toBe(true);
  });

  it('refuses a review call that nobody decides before the timeout and records the expiry as the gateway', async () => {
    const store = tempDb(dir);
    const client = await proxied(store, ['--approval-timeout', '600ms']);
    try {
      const result = await client.callTool({ name: 'get-sum', arguments: { a: 101, b: 1 } });
      expect(result.isError).toBe(true);
      expect(text(result)).toMatch(/was not approved within 600 ms \(approval request [0-9a-f-]{36}\), so it was not made\./);
      const late = await runCli(['approve', (await readEvents(store)).find((e) => e.kind === 'approval.request')!.id, '--as', 'alice@corp', '--store', `sqlite:${store}`]);
      expect(late.code).toBe(1);
      expect(late.stderr).toMatch(/already expired/);
    } finally {
      await client.close();
    }
    const decision = (await readEvents(store)).find((e) => e.kind === 'approval.decision')!;
    expect(decision.data).toMatchObject({ decision: 'expired', approver: 'witness-gateway' });
    expect(decision.outcome).toBe('denied');
  });

  it('refuses to let the agent approve its own call, and refuses a reviewed digest that differs from the request [R-GW-APPROVAL-BINDING]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store, ['--approval-timeout', '3s']);
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 200, b: 2 } });
      const [pending] = await waitForPending(store);
      const self = await runCli(['approve', pending!.request, '--as', 'support-bot', '--store', `sqlite:${store}`]);
      expect(self.code).toBe(1);
      expect(self.stderr).toMatch(/^witness: support-bot is the agent that made this call and cannot decide its own approval request/);
      const other = await runCli(['approve', pending!.request, '--as', 'alice@corp', '--digest', argumentsDigest({ a: 200, b: 3 }), '--store', `sqlite:${store}`]);
      expect(other.code).toBe(1);
      expect(other.stderr).toMatch(/not the .* you reviewed; nothing was recorded\./);
      const result = await call;
      expect(result.isError).toBe(true);
    } finally {
      await client.close();
    }
    const decisions = (await readEvents(store)).filter((e) => e.kind === 'approval.decision');
    expect(decisions.map((d) => d.data?.['approver'])).toEqual(['witness-gateway']);
  });

  it('does not release a call with a decision bound to other arguments, and records the mismatch', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 300, b: 3 } });
      const [pending] = await waitForPending(store);
      // A decision written straight into the ledger (not through `witness approve`) that approved
      // other arguments: the gateway checks the binding itself and does not trust the writer.
      const w = await openWitness({ store: `sqlite:${store}`, strict: true });
      try {
        await w.recordStrict(pending!.session, {
          agent: { id: 'support-bot' },
          kind: 'approval.decision',
          parent: pending!.request,
          data: { request_id: pending!.request, decision: 'approved', approver: 'mallory@corp', arguments_digest: argumentsDigest({ a: 3, b: 3 }) },
        });
      } finally {
        await w.close();
      }
      const result = await call;
      expect(result.isError).toBe(true);
      expect(text(result)).toMatch(/does not match it \(the decision approved arguments with digest [0-9a-f]{64}, but the request's arguments have digest/);
    } finally {
      await client.close();
    }
    const evs = await readEvents(store);
    expect(evs.find((e) => e.data?.['code'] === 'approval_mismatch')).toBeDefined();
    expect(evs.filter((e) => e.kind === 'tool.result').map((e) => e.outcome)).toEqual(['denied']);
  });

  it('keeps an approval across a gateway restart: the identical retry is released once, a retry with other arguments is not', async () => {
    const store = tempDb(dir);
    const first = await proxied(store);
    let request: Pending;
    try {
      const abandoned = first.callTool({ name: 'get-sum', arguments: { a: 700, b: 7 } }).catch((e: unknown) => e);
      [request] = (await waitForPending(store)) as [Pending];
      await first.close(); // the gateway exits with the call still held
      await abandoned;
    } finally {
      await first.close().catch(() => undefined);
    }
    // Approved while no gateway runs: the session has ended, so the decision goes to the approvals stream.
    const approved = await runCli(['approve', request.request, '--as', 'alice@corp', '--json', '--store', `sqlite:${store}`]);
    expect(approved.code).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({ stream: 'witness.approvals', approver: 'alice@corp' });

    const second = await proxied(store, ['--approval-timeout', '700ms']);
    try {
      // Other arguments are not released by the grant (the mismatch is recorded); it waits, and times out.
      const other = await second.callTool({ name: 'get-sum', arguments: { a: 701, b: 7 } });
      expect(other.isError).toBe(true);
      expect(text(other)).toMatch(/not approved within/);
      const retry = await second.callTool({ name: 'get-sum', arguments: { a: 700, b: 7 } });
      expect(retry.isError ?? false).toBe(false);
      expect(text(retry)).toContain('707');
      // Consumed once: the same call again needs a new approval (none comes: it times out).
      const again = await second.callTool({ name: 'get-sum', arguments: { a: 700, b: 7 } });
      expect(again.isError).toBe(true);
    } finally {
      await second.close();
    }
    const evs = await readEvents(store);
    const releases = evs.filter((e) => e.kind === 'policy.decision' && e.data?.['decision'] === 'allow');
    expect(releases).toHaveLength(1);
    expect(releases[0]!.data).toMatchObject({ approval: { request_id: request.request, approver: 'alice@corp', stream: 'witness.approvals' } });
    expect(evs.filter((e) => e.kind === 'tool.result' && e.outcome === 'success')).toHaveLength(1);
    // The first session recorded the abandoned call as such.
    expect(evs.find((e) => e.kind === 'tool.result' && e.stream === request.session)?.data).toMatchObject({ error: { code: 'client_disconnected' } });
    expect(evs.some((e) => e.data?.['code'] === 'approval_mismatch')).toBe(true);
    const report = await verifyFile(store);
    expect(report.failures).toEqual([]);
  });
});
