import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { describe, expect, it } from 'vitest';
import { canonicalize, parseSignerKey, parseVerifierKey, type StoredEvent } from '../../src/core/index.js';
import { parseGatewayConfig } from '../../src/gateway/index.js';
import { openWitness, systemWriter } from '../../src/recorder/index.js';
import { person, writeReviewPolicy, type Person } from '../helpers/approvers.js';
import { driverOf, BIN, REPO_ROOT, runBin, runCli, tamper, verifyFile, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Human approval end to end: the official SDK Client talks to the real `witness proxy` binary in
 * front of the real server-everything; `witness approvals` / `approve` / `deny` run as other
 * processes on the same SQLite ledger, as a person at another terminal would, each holding their
 * own approver key. Decisions written straight into the ledger play the attacker who can write
 * the database but holds no approver's key.
 */

const dir = tempDir('witness-approval-');
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const SERVER = ['node', EVERYTHING, 'stdio'];

const alice = person(dir, 'alice@corp');
const bob = person(dir, 'bob@corp');
/** Listed by a careless operator, but it is the agent's own identity (in another case). */
const agentKey = person(dir, 'Support-Bot');
/** Holds a key, but the policy does not list her. */
const carol = person(dir, 'carol@corp');

const POLICY = writeReviewPolicy(path.join(dir, 'review-big-sums.yaml'), [alice, bob, agentKey]);

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

async function proxied(store: string, extra: string[] = [], policy = POLICY): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'proxy', '--agent', 'support-bot', '--server', 'everything', '--policy', policy, '--store', `sqlite:${store}`, ...extra, '--', ...SERVER],
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

const text = (r: object) => (r as { content: Array<{ text: string }> }).content[0]!.text;

/** The README's arguments digest, re-implemented here as an auditor would: SHA-256("witness/args/v1\n" ‖ salt ‖ JCS(arguments)). */
function saltedDigest(saltHex: string, args: unknown): string {
  return createHash('sha256').update('witness/args/v1\n').update(Buffer.from(saltHex, 'hex')).update(canonicalize(args)).digest('hex');
}

/** The README's approval message: "witness/approval/v1\n" ‖ JCS(data without approver_sig). */
function approvalMessage(data: Record<string, unknown>): Buffer {
  const { approver_sig: _sig, ...signed } = data;
  return Buffer.concat([Buffer.from('witness/approval/v1\n'), Buffer.from(canonicalize(signed))]);
}

function signatureVerifies(data: Record<string, unknown>): boolean {
  const v = parseVerifierKey(String(data['approver_key']));
  return v.verify(approvalMessage(data), Buffer.from(String(data['approver_sig']), 'hex'));
}

/** A decision written straight into the ledger (not through `witness approve`), as anyone who can write the database could. */
async function writeDecision(store: string, session: string, request: string, data: Record<string, unknown>): Promise<void> {
  const w = await openWitness({ store: `sqlite:${store}`, strict: true });
  try {
    // Past the SDK's refusal (approval.decision is a person's act), as a writer of the database could.
    await systemWriter(w, 'cli').recordStrict(session, { agent: { id: 'support-bot' }, kind: 'approval.decision', parent: request, data: { request_id: request, ...data } as never });
  } finally {
    await w.close();
  }
}

/** A decision that `who` really signed, binding what the request says, with `override` changed before signing. */
async function signedDecision(store: string, pending: Pending, who: Person, decision: 'approved' | 'denied', override: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const request = (await readEvents(store)).find((e) => e.id === pending.request)!;
  const rd = request.data!;
  const origin = (await readEvents(store)).length > 0 ? await ledgerOrigin(store) : '';
  const data: Record<string, unknown> = {
    request_id: request.id,
    decision,
    approver: who.name,
    approver_key: who.vkey,
    agent: request.agent.id,
    tool: rd['tool'],
    server: rd['server'],
    session: request.stream,
    call_id: rd['call_id'],
    arguments_digest: rd['arguments_digest'],
    policy_version: rd['policy_version'],
    rule: rd['rule'],
    expires_at: rd['expires_at'],
    origin,
    decided_at: new Date().toISOString(),
    ...override,
  };
  data['approver_sig'] = Buffer.from(parseSignerKey(who.skey).sign(approvalMessage(data))).toString('hex');
  return data;
}

async function ledgerOrigin(store: string): Promise<string> {
  const w = await openWitness({ store: `sqlite:${store}` });
  try {
    return driverOf(w).info.origin;
  } finally {
    await w.close();
  }
}

describe('human approval through witness proxy', () => {
  it('holds a review call, keeps the client alive with progress, and forwards it once a person approves it with their own key from another process [R-GW-APPROVAL] [R-APPROVER-SIGNED]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    const progress: unknown[] = [];
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 500, b: 25 } }, undefined, { onprogress: (p) => progress.push(p), resetTimeoutOnProgress: true });
      const [pending] = await waitForPending(store);
      expect(pending).toMatchObject({ status: 'pending', tool: 'get-sum', arguments: { a: 500, b: 25 }, arguments_digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
      // The table a person reads names the request, the tool and the arguments, and how to decide.
      const listed = await runCli(['approvals', '--store', `sqlite:${store}`]);
      expect(listed.stdout).toContain(pending!.request);
      expect(listed.stdout).toContain('{"a":500,"b":25}');
      expect(listed.stdout).toContain('--key');

      const approved = await runBin(['approve', pending!.request.slice(0, 13), '--key', alice.file, '--reason', 'checked with the customer', '--role', 'supervisor', '--store', `sqlite:${store}`]);
      expect(approved.stderr).toBe('');
      expect(approved.code).toBe(0);
      expect(approved.stdout).toMatch(/^Approved request .* as alice@corp \(key alice@corp\+[0-9a-f]{8}\); recorded as event [0-9a-f-]{36}\.\n$/);
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
    expect(review.data).toMatchObject({ approvers: ['alice@corp', 'bob@corp', 'Support-Bot'] });
    expect(review.data?.['arguments_digest']).toBe(saltedDigest(String(review.data?.['arguments_salt']), { a: 500, b: 25 }));
    expect(request.parent).toBe(call.id);
    const salt = String(request.data?.['arguments_salt']);
    expect(salt).toMatch(/^[0-9a-f]{64}$/);
    const digest = saltedDigest(salt, { a: 500, b: 25 });
    expect(request.data).toMatchObject({
      request_id: request.id,
      arguments: { a: 500, b: 25 },
      arguments_digest: digest,
      session: call.stream,
      call_id: call.id,
      policy_version: review.data?.['policy_version'],
      approvers: [alice.vkey, bob.vkey, agentKey.vkey],
    });
    const lifetime = Date.parse(String(request.data?.['expires_at'])) - Date.parse(request.ts);
    expect(lifetime).toBeGreaterThan(5 * 60_000 - 1000);
    expect(lifetime).toBeLessThanOrEqual(5 * 60_000);
    // The person's act: their identity, the digest they approved, signed with their key, in the call's own session.
    expect(decision.stream).toBe(call.stream);
    expect(decision.parent).toBe(request.id);
    expect(decision.agent.id).toBe('support-bot');
    expect(decision.principal).toEqual({ id: 'alice@corp', kind: 'human' });
    expect(decision.data).toMatchObject({
      decision: 'approved',
      approver: 'alice@corp',
      approver_key: alice.vkey,
      role: 'supervisor',
      reason: 'checked with the customer',
      arguments_digest: digest,
      policy_version: review.data?.['policy_version'],
      expires_at: request.data?.['expires_at'],
      request_id: request.id,
      origin: await ledgerOrigin(store),
    });
    expect(signatureVerifies(decision.data!)).toBe(true);
    // The gateway's release consumes the grant and names it.
    expect(release.parent).toBe(call.id);
    expect(release.policy).toMatchObject({ decision: 'allow', approver: 'alice@corp' });
    expect(release.data).toMatchObject({ arguments_digest: digest, approval: { request_id: request.id, decision_id: decision.id, approver: 'alice@corp', approver_key: alice.vkey } });
    expect(release.approvals).toEqual([expect.objectContaining({ approver: 'alice@corp', decision: 'approved', args_digest: digest })]);
    expect(result).toMatchObject({ parent: call.id, outcome: 'success' });
    // Held, then approved: pending while held, success once decided and released; nothing denied.
    expect([review, request, decision, release].map((e) => e.outcome)).toEqual(['pending', 'pending', 'success', 'success']);

    const listed = JSON.parse((await runCli(['approvals', '--all', '--json', '--store', `sqlite:${store}`])).stdout) as Array<{ status: string; used_by?: string }>;
    expect(listed).toEqual([expect.objectContaining({ status: 'consumed', used_by: release.id })]);
    // A person deciding after the grant was used is told who approved it and that it already ran.
    const late = await runBin(['deny', request.id, '--key', bob.file, '--reason', 'too late', '--store', `sqlite:${store}`]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(new RegExp(`^witness: Approval request ${request.id} is already approved by alice@corp at \\S+, and that approval has released the call; nothing was recorded\\.\n$`));
    expect((await verifyFile(store)).ok).toBe(true);
  });

  it('answers a denied review with a tool error naming the person and the reason, and the server never sees the call', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 900, b: 1 } });
      const [pending] = await waitForPending(store);
      const denied = await runCli(['deny', pending!.request, '--key', bob.file, '--reason', 'not a valid order', '--store', `sqlite:${store}`]);
      expect(denied.code).toBe(0);
      const result = await call;
      expect(result.isError).toBe(true);
      expect(text(result)).toContain('denied by bob@corp: not a valid order');
      expect(text(result)).not.toContain('901');
      // An approver who comes late finds the request decided.
      const late = await runCli(['approve', pending!.request, '--key', alice.file, '--store', `sqlite:${store}`]);
      expect(late.code).toBe(1);
      expect(late.stderr).toMatch(/already denied by bob@corp/);
    } finally {
      await client.close();
    }
    const evs = await readEvents(store);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'policy.decision', 'approval.request', 'approval.decision', 'tool.result', 'session.end']);
    expect(signatureVerifies(evs[4]!.data!)).toBe(true);
    // A held call is pending, a person's denial and the refusal that follows are denied.
    expect(evs.slice(2, 6).map((e) => e.outcome)).toEqual(['pending', 'pending', 'denied', 'denied']);
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
      const late = await runCli(['approve', (await readEvents(store)).find((e) => e.kind === 'approval.request')!.id, '--key', alice.file, '--store', `sqlite:${store}`]);
      expect(late.code).toBe(1);
      expect(late.stderr).toMatch(/already expired/);
    } finally {
      await client.close();
    }
    const decision = (await readEvents(store)).find((e) => e.kind === 'approval.decision')!;
    expect(decision.data).toMatchObject({ decision: 'expired', approver: 'witness-gateway' });
    // Nobody refused it: it ran out of time, and the call it held was never made.
    expect(decision.outcome).toBe('expired');
    const result = (await readEvents(store)).find((e) => e.kind === 'tool.result')!;
    expect(result).toMatchObject({ outcome: 'expired', data: { is_error: true } });
    // The newer outcome verifies, and is what `witness query --outcome expired` finds.
    expect((await verifyFile(store)).ok).toBe(true);
    const listed = await runCli(['query', '--outcome', 'expired', '--json', '--store', `sqlite:${store}`]);
    expect((JSON.parse(listed.stdout) as { events: StoredEvent[] }).events.map((e) => e.id).sort()).toEqual([decision.id, result.id].sort());
  });

  it('refuses the agent approving its own call whatever the case of its name, a key the policy does not list, --as naming someone else, and a reviewed digest that differs [R-GW-APPROVAL-BINDING] [R-APPROVER-ALLOWED]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store, ['--approval-timeout', '4s']);
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 200, b: 2 } });
      const [pending] = await waitForPending(store);
      const self = await runCli(['approve', pending!.request, '--key', agentKey.file, '--store', `sqlite:${store}`]);
      expect(self.code).toBe(1);
      expect(self.stderr).toMatch(/^witness: Support-Bot is the agent that made this call \(support-bot\) and cannot decide its own approval request/);
      const claimed = await runCli(['approve', pending!.request, '--key', alice.file, '--as', 'Support-Bot', '--store', `sqlite:${store}`]);
      expect(claimed.code).toBe(2);
      expect(claimed.stderr).toMatch(/^witness: --as Support-Bot does not match the holder of the key .*, alice@corp; /);
      const unlisted = await runCli(['approve', pending!.request, '--key', carol.file, '--store', `sqlite:${store}`]);
      expect(unlisted.code).toBe(1);
      expect(unlisted.stderr).toMatch(/^witness: carol@corp \(key carol@corp\+[0-9a-f]{8}\) is not among the approvers the policy allows for this request/);
      const other = await runCli(['approve', pending!.request, '--key', alice.file, '--digest', 'ab'.repeat(32), '--store', `sqlite:${store}`]);
      expect(other.code).toBe(1);
      expect(other.stderr).toMatch(/not the .* you reviewed; nothing was recorded\./);

      // The same two people, writing their (genuinely signed) decisions straight into the ledger.
      await writeDecision(store, pending!.session, pending!.request, await signedDecision(store, pending!, agentKey, 'approved'));
      await writeDecision(store, pending!.session, pending!.request, await signedDecision(store, pending!, carol, 'approved'));
      const result = await call;
      expect(result.isError).toBe(true);
      expect(text(result)).toMatch(/was not approved within 4 s/);
    } finally {
      await client.close();
    }
    const evs = await readEvents(store);
    expect(evs.filter((e) => e.kind === 'approval.decision').map((d) => d.data?.['approver'])).toEqual(['Support-Bot', 'carol@corp', 'witness-gateway']);
    const refused = evs.filter((e) => e.kind === 'error' && e.data?.['code'] === 'approver_not_allowed');
    expect(refused.map((e) => e.data?.['approver'])).toEqual(['Support-Bot', 'carol@corp']);
    expect(evs.some((e) => e.kind === 'policy.decision' && e.data?.['decision'] === 'allow')).toBe(false);
  });

  it('never releases a call on a decision nobody signed, signed by a key other than the one it names, or signed for other arguments; the genuine approval then releases it once [R-APPROVER-SIGNED]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    let genuine: string;
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 300, b: 3 } });
      const [pending] = await waitForPending(store);
      const request = (await readEvents(store)).find((e) => e.id === pending!.request)!;
      // Today's attack: an unsigned decision naming a person, with the request's own digest.
      await writeDecision(store, pending!.session, pending!.request, { decision: 'approved', approver: 'alice@corp', arguments_digest: request.data?.['arguments_digest'] });
      // alice's public key, carol's signature.
      const borrowed = await signedDecision(store, pending!, carol, 'approved', { approver: 'alice@corp', approver_key: alice.vkey });
      await writeDecision(store, pending!.session, pending!.request, borrowed);
      // alice really signed it, but for other arguments.
      await writeDecision(store, pending!.session, pending!.request, await signedDecision(store, pending!, alice, 'approved', { arguments_digest: 'cd'.repeat(32) }));
      await new Promise((r) => setTimeout(r, 1000));
      const still = await waitForPending(store);
      expect(still.map((p) => p.status)).toEqual(['pending']);

      const approved = await runCli(['approve', pending!.request, '--key', alice.file, '--json', '--store', `sqlite:${store}`]);
      expect(approved.code).toBe(0);
      genuine = (JSON.parse(approved.stdout) as { event: string }).event;
      const result = await call;
      expect(result.isError ?? false).toBe(false);
      expect(text(result)).toContain('303');
    } finally {
      await client.close();
    }
    const evs = await readEvents(store);
    expect(evs.filter((e) => e.kind === 'error').map((e) => e.data?.['code'])).toEqual(['approval_forged', 'approval_forged', 'approval_mismatch']);
    const releases = evs.filter((e) => e.kind === 'policy.decision' && e.data?.['decision'] === 'allow');
    expect(releases).toHaveLength(1);
    expect(releases[0]!.data).toMatchObject({ approval: { decision_id: genuine!, approver: 'alice@corp' } });
    expect((await verifyFile(store)).ok).toBe(true);
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
    // Approved while no gateway runs (the key from the environment): the session has ended, so the decision goes to the approvals stream.
    const approved = await runBin(['approve', request.request, '--json', '--store', `sqlite:${store}`], { env: { WITNESS_APPROVER_KEY: alice.file } });
    expect(approved.stderr).toBe('');
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

  it('never uses a grant twice in one gateway, even when someone who can write the database hides the row that consumed it [R-GW-APPROVAL-BINDING]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    try {
      const first = client.callTool({ name: 'get-sum', arguments: { a: 600, b: 1 } });
      const [p1] = await waitForPending(store);
      const approved = await runBin(['approve', p1!.request, '--key', alice.file, '--store', `sqlite:${store}`]);
      expect(approved.code, approved.stderr).toBe(0);
      expect(text(await first)).toContain('601');
      // The attacker relabels the release (the row that says the grant was used), as a note.
      tamper(store, (db) => {
        const hidden = db.prepare(`UPDATE events SET kind = 'note' WHERE kind = 'policy.decision' AND data LIKE '%decision_id%'`).run();
        expect(hidden.changes).toBe(1);
      });
      // The identical call again is not released by the old grant: it asks for a new approval.
      const again = client.callTool({ name: 'get-sum', arguments: { a: 600, b: 1 } });
      const [p2] = await waitForPending(store);
      expect(p2!.request).not.toBe(p1!.request);
      const denied = await runBin(['deny', p2!.request, '--key', bob.file, '--reason', 'once is enough', '--store', `sqlite:${store}`]);
      expect(denied.code, denied.stderr).toBe(0);
      const r = await again;
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(/denied by bob@corp/);
    } finally {
      await client.close();
    }
    const evs = await readEvents(store);
    expect(evs.filter((e) => e.kind === 'tool.result' && e.outcome === 'success')).toHaveLength(1);
  });

  it('lets the first of a concurrent approve and deny from two processes win, and tells the other it lost [R-APPROVAL-RACE]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 400, b: 4 } });
      const [pending] = await waitForPending(store);
      const [yes, no] = await Promise.all([
        runBin(['approve', pending!.request, '--key', alice.file, '--store', `sqlite:${store}`]),
        runBin(['deny', pending!.request, '--key', bob.file, '--reason', 'no', '--store', `sqlite:${store}`]),
      ]);
      expect([yes.code, no.code].sort()).toEqual([0, 1]);
      const [winner, loser] = yes.code === 0 ? [yes, no] : [no, yes];
      const won = yes.code === 0 ? 'approved' : 'denied';
      const by = yes.code === 0 ? 'alice@corp' : 'bob@corp';
      expect(winner.stdout).toMatch(/recorded as event/);
      expect(loser.stdout).toBe('');
      expect(loser.stderr).not.toMatch(/recorded as event/);
      expect(loser.stderr).toMatch(new RegExp(`^witness: .*(already ${won} by ${by}|${by} ${won} it first)`));
      const result = await call;
      expect(result.isError ?? false).toBe(won === 'denied');
      const decisions = (await readEvents(store)).filter((e) => e.kind === 'approval.decision');
      expect(decisions[0]!.data).toMatchObject({ decision: won, approver: by });
    } finally {
      await client.close();
    }
    const listed = JSON.parse((await runCli(['approvals', '--all', '--json', '--store', `sqlite:${store}`])).stdout) as Array<{ status: string }>;
    expect(listed.map((v) => v.status)).toEqual([(await readEvents(store)).some((e) => e.kind === 'tool.result' && e.outcome === 'success') ? 'consumed' : 'denied']);
  });

  it('refuses witness approve without an approver key, saying how to get one, and records nothing [R-APPROVER-KEY]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store, ['--approval-timeout', '2s']);
    try {
      const call = client.callTool({ name: 'get-sum', arguments: { a: 150, b: 1 } });
      const [pending] = await waitForPending(store);
      const r = await runBin(['approve', pending!.request, '--store', `sqlite:${store}`]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        'witness: witness approve needs your approver key to sign the decision: pass --key <file> or set WITNESS_APPROVER_KEY (make a key with `witness approver init --name <you>`).\n',
      );
      const asOnly = await runBin(['deny', pending!.request, '--as', 'alice@corp', '--store', `sqlite:${store}`]);
      expect(asOnly.code).toBe(2);
      expect((await call).isError).toBe(true);
    } finally {
      await client.close();
    }
    expect((await readEvents(store)).filter((e) => e.kind === 'approval.decision').map((e) => e.data?.['approver'])).toEqual(['witness-gateway']);
  });

  it('refuses to start a proxy or an HTTP gateway whose policy can hold a call but lists nobody who could release it [R-APPROVER-ALLOWED]', async () => {
    const bare = path.join(dir, 'no-approvers.yaml');
    fs.writeFileSync(bare, ['version: 1', 'default: allow', 'rules:', '  - id: big-sums-need-review', '    match: { tool: get-sum }', '    effect: review', ''].join('\n'));
    const sentence = `${bare} line 4: rules[0] holds calls for review, but the policy lists no approvers who could release them; add an approvers: list with their public keys (\`witness approver init\` makes one).`;
    const r = await runBin(['proxy', '--agent', 'support-bot', '--policy', bare, '--store', `sqlite:${tempDb(dir)}`, '--', ...SERVER]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`witness: ${sentence}\n`);
    const config = `policy: ${JSON.stringify(bare)}\nagents:\n  - { id: support-bot, key_sha256: "${'ab'.repeat(32)}" }\nservers:\n  - { name: everything, path: /mcp, command: node }\n`;
    expect(() => parseGatewayConfig(config, { source: 'gateway.yaml', baseDir: dir })).toThrow(expect.objectContaining({ code: 'invalid_policy', message: sentence }) as Error);
  });

  it('keeps a redacted PIN unguessable: digests are salted per call over the redacted arguments, and a withheld bundle shows nothing a guess can be tested against [R-DIGEST-SALTED]', async () => {
    const store = tempDb(dir);
    const client = await proxied(store);
    const args = { a: 500, b: 25, password: '4821' };
    try {
      for (let i = 0; i < 2; i++) {
        const call = client.callTool({ name: 'get-sum', arguments: args });
        const [pending] = await waitForPending(store);
        expect(await runCli(['approve', pending!.request, '--key', alice.file, '--store', `sqlite:${store}`])).toMatchObject({ code: 0 });
        expect(text(await call)).toContain('525');
      }
    } finally {
      await client.close();
    }
    const evs = await readEvents(store);
    const requests = evs.filter((e) => e.kind === 'approval.request');
    expect(requests).toHaveLength(2);
    // What is stored, and digested, is the redacted arguments; an auditor shown a payload recomputes its digest.
    for (const r of requests) {
      expect(JSON.stringify(r.data?.['arguments'])).not.toContain('4821');
      // The very arguments the tool.call recorded, redacted the same way.
      expect(r.data?.['arguments']).toEqual(evs.find((e) => e.id === r.parent)!.data?.['arguments']);
      expect(r.data?.['arguments_digest']).toBe(saltedDigest(String(r.data?.['arguments_salt']), r.data?.['arguments']));
    }
    // The same arguments twice: two salts, two digests.
    expect(requests[0]!.data?.['arguments_digest']).not.toBe(requests[1]!.data?.['arguments_digest']);

    const out = path.join(dir, `withheld-${path.basename(store)}`);
    const exported = await runCli(['export', '--store', `sqlite:${store}`, '--session', requests[0]!.stream, '-o', out, '--withhold-data']);
    expect(exported.code).toBe(0);
    const bundle = fs
      .readdirSync(out)
      .filter((f) => f.endsWith('.json') || f.endsWith('.jsonl') || f.endsWith('.txt'))
      .map((f) => fs.readFileSync(path.join(out, f), 'utf8'))
      .join('\n');
    const seen = new Set(bundle.match(/\b[0-9a-f]{64}\b/g) ?? []);
    // The headers still carry the approvals' digests...
    const shown = bundle.split('\n').filter((l) => l.includes('"args_digest"'));
    expect(shown.length).toBeGreaterThanOrEqual(2);
    // ...but no guess of the PIN, raw or redacted, unsalted, matches anything in the bundle.
    const sha = (v: unknown) => createHash('sha256').update(canonicalize(v)).digest('hex');
    for (let pin = 0; pin < 10_000; pin++) {
      const guess = String(pin).padStart(4, '0');
      expect(seen.has(sha({ ...args, password: guess }))).toBe(false);
    }
    expect(seen.has(sha(requests[0]!.data?.['arguments']))).toBe(false);
  });
});
