import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { buildStoryboard, type Step } from '../../src/capture/index.js';
import { parseSignerKey, signApproval, type StoredEvent } from '../../src/core/index.js';
import { openWitness, systemWriter } from '../../src/recorder/index.js';
import { person, writeReviewPolicy, type Person } from '../helpers/approvers.js';
import { BIN, REPO_ROOT, readEvents, runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The video's title cards and narration name the approver whose decision counted, never one the
 * gateway ignored. Anyone who can write the ledger can append an approval.decision claiming any
 * name; only a decision signed by an approver the policy lists can release or refuse a call, and
 * the story told about the session must be that one.
 */

const dir = tempDir('witness-storyboard-');
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');

const alice = person(dir, 'alice@corp');
const bob = person(dir, 'bob@corp');
const carol = person(dir, 'carol@corp');

const POLICY = writeReviewPolicy(path.join(dir, 'review.yaml'), [alice, bob]);

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

/** A decision written straight into the ledger, as anyone who can write the database could. */
async function writeDecision(store: string, session: string, request: string, data: Record<string, unknown>): Promise<void> {
  const digest = (await readEvents(store)).find((e) => e.id === request)!.data?.['arguments_digest'];
  const w = await openWitness({ store: `sqlite:${store}`, strict: true });
  try {
    // Past the SDK's refusal (approval.decision is a person's act), as a writer of the ledger could.
    await systemWriter(w, 'cli').recordStrict(session, {
      agent: { id: 'support-bot' },
      kind: 'approval.decision',
      parent: request,
      data: { request_id: request, arguments_digest: digest, ...data } as never,
    });
  } finally {
    await w.close();
  }
}

async function pendingRequests(store: string, n: number): Promise<Array<{ request: string; arguments: { a: number }; session: string }>> {
  for (let i = 0; i < 200; i++) {
    const r = await runCli(['approvals', '--store', `sqlite:${store}`, '--json']);
    if (r.code === 0) {
      const list = JSON.parse(r.stdout) as Array<{ request: string; arguments: { a: number }; session: string }>;
      if (list.length >= n) return list;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`fewer than ${n} approval requests appeared`);
}

/** Everything a viewer reads or hears about a step. */
function told(step: Step): string {
  return `${step.narration}\n${step.rows.map(([k, v]) => `${k}: ${v}`).join('\n')}`;
}

function row(step: Step, label: string): string | undefined {
  return step.rows.find(([k]) => k === label)?.[1];
}

describe('the storyboard names the decision that counted', () => {
  it('names the genuine approver, not a forged decision recorded before it, for an approval, a denial and an expiry through the real proxy [R-VIDEO-APPROVER] [R-APPROVER-SIGNED]', async () => {
    const store = tempDb(dir);
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'proxy', '--agent', 'support-bot', '--server', 'everything', '--policy', POLICY, '--store', `sqlite:${store}`, '--approval-timeout', '15s', '--', 'node', EVERYTHING, 'stdio'],
      cwd: REPO_ROOT,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'storyboard-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      // Settled as they come, so a failing assertion below does not leave a rejected call unhandled.
      const calls = Promise.allSettled([300, 400, 500].map((a) => client.callTool({ name: 'get-sum', arguments: { a, b: 1 } }, undefined, { timeout: 60_000 })));
      const pending = await pendingRequests(store, 3);
      const req = (a: number) => pending.find((p) => p.arguments.a === a)!;
      // Unsigned decisions claiming a name: the gateway records each as approval_forged and ignores it.
      await writeDecision(store, req(300).session, req(300).request, { decision: 'approved', approver: 'bob@corp', reason: 'forged by the ledger writer' });
      await writeDecision(store, req(400).session, req(400).request, { decision: 'approved', approver: 'bob@corp', reason: 'forged by the ledger writer' });
      await writeDecision(store, req(500).session, req(500).request, { decision: 'approved', approver: 'alice@corp', reason: 'forged by the ledger writer' });
      // Let the gateway judge the forgeries before the genuine decisions arrive.
      for (let i = 0; i < 200; i++) {
        if ((await readEvents(store)).filter((e) => e.kind === 'error' && e.data?.['code'] === 'approval_forged').length === 3) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      expect((await runCli(['approve', req(300).request, '--key', alice.file, '--reason', 'checked the order', '--store', `sqlite:${store}`])).code).toBe(0);
      expect((await runCli(['deny', req(400).request, '--key', alice.file, '--reason', 'not a valid order', '--store', `sqlite:${store}`])).code).toBe(0);
      const answers = (await calls).map((r) => (r.status === 'fulfilled' ? (r.value.isError ?? false) : r.reason));
      expect(answers).toEqual([false, true, true]);
    } finally {
      await client.close();
    }

    const evs = await readEvents(store);
    expect(evs.filter((e) => e.kind === 'error').map((e) => e.data?.['code'])).toEqual(['approval_forged', 'approval_forged', 'approval_forged']);
    const session = evs.find((e) => e.kind === 'session.start')!.stream;
    const board = buildStoryboard(evs.filter((e) => e.stream === session));
    const steps = board.steps.filter((s) => s.kind === 'call');
    expect(steps).toHaveLength(3);
    const stepFor = (a: number) => steps.find((s) => row(s, 'Arguments') === `a ${a}, b 1`)!;

    const approvedStep = stepFor(300);
    expect(approvedStep.narration).toContain('alice@corp approved it: checked the order.');
    expect(row(approvedStep, 'Approval')).toBe('approved by alice@corp — checked the order');
    expect(told(approvedStep)).not.toMatch(/bob@corp approved|approved by bob@corp|forged by the ledger writer/);
    expect(approvedStep.tone).toBe('ok');

    const deniedStep = stepFor(400);
    expect(deniedStep.narration).toContain('alice@corp denied it: not a valid order.');
    expect(row(deniedStep, 'Approval')).toBe('denied by alice@corp — not a valid order');
    expect(told(deniedStep)).not.toMatch(/bob@corp approved|approved by bob@corp|forged by the ledger writer/);
    expect(deniedStep.tone).toBe('denied');

    const expiredStep = stepFor(500);
    expect(expiredStep.narration).toContain('Nobody decided before the request expired.');
    expect(row(expiredStep, 'Approval')).toBe('expired undecided');
    expect(told(expiredStep)).not.toMatch(/alice@corp approved|approved by alice@corp|forged by the ledger writer/);
    expect(expiredStep.tone).toBe('denied');

    // The ignored decision is told as ignored, with the name it claimed, never as the approver.
    for (const [step, claimed] of [
      [approvedStep, 'bob@corp'],
      [deniedStep, 'bob@corp'],
      [expiredStep, 'alice@corp'],
    ] as const) {
      expect(step.narration).toContain(`Witness ignored a decision that claimed to come from ${claimed}: it carries no valid signature by the approver it names.`);
      expect(row(step, 'Ignored')).toBe(`1 decision (claimed by ${claimed}: no valid signature)`);
    }
  }, 90_000);

  it('judges decisions no gateway judged by their signature, listed key and approver, so a forged one is never the approver [R-VIDEO-APPROVER]', async () => {
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, strict: true });
    let session: string;
    try {
      // The gateway's write path: the SDK's public one refuses policy decisions and approvals.
      const s = await systemWriter(w, 'gateway').session({ agent: { id: 'support-bot' }, purpose: 'refund an order' });
      session = s.id;
      const call = await s.record('tool.call', { tool: 'billing.refund', arguments: { order: 'A-1', amount: 900 } });
      await s.record('policy.decision', { decision: 'review', rule: 'big-refunds', reason: 'Refunds over 500 need a supervisor.' }, { parent: call!.id });
      const expiresAt = new Date(Date.now() + 60_000).toISOString();
      const digest = 'ab'.repeat(32);
      const request = { id: uuidv7() };
      await s.record(
        'approval.request',
        { request_id: request.id, tool: 'billing.refund', arguments: { order: 'A-1', amount: 900 }, arguments_digest: digest, expires_at: expiresAt, approvers: [alice.vkey] },
        { id: request.id, parent: call!.id },
      );
      const signed = (who: Person, decision: string, override: Record<string, unknown> = {}) => {
        const data: Record<string, unknown> = {
          request_id: request.id,
          decision,
          approver: who.name,
          approver_key: who.vkey,
          agent: 'support-bot',
          tool: 'billing.refund',
          session: s.id,
          arguments_digest: digest,
          expires_at: expiresAt,
          decided_at: new Date().toISOString(),
          ...override,
        };
        return { ...data, approver_sig: signApproval(parseSignerKey(who.skey), data) };
      };
      const decide = (data: Record<string, unknown>) => s.record('approval.decision', data as never, { parent: request.id });
      await decide({ request_id: request.id, decision: 'approved', approver: 'alice@corp', arguments_digest: digest }); // unsigned
      await decide({ ...signed(carol, 'approved'), approver: 'alice@corp' }); // carol's signature, alice's name
      await decide(signed(carol, 'approved')); // carol really signed it, but the request does not list her
      await decide(signed(alice, 'approved', { arguments_digest: 'cd'.repeat(32) })); // alice, for other arguments
      await decide(signed(alice, 'denied', { reason: 'the customer already has a refund' })); // the one that counts
      await s.record('tool.result', { tool: 'billing.refund', is_error: true, output: 'denied by alice@corp' }, { parent: call!.id, outcome: 'denied' });
      await s.end();
    } finally {
      await w.close();
    }
    const evs = (await readEvents(store)).filter((e: StoredEvent) => e.stream === session);
    const [step] = buildStoryboard(evs).steps.filter((st) => st.kind === 'call');
    expect(step!.narration).toContain('alice@corp denied it: the customer already has a refund.');
    expect(row(step!, 'Approval')).toBe('denied by alice@corp — the customer already has a refund');
    expect(row(step!, 'Ignored')).toBe('4 decisions (claimed by alice@corp, carol@corp: no valid signature, approver not allowed, does not match the request)');
    expect(step!.narration).toContain('Witness ignored 4 decisions that did not count, claimed by alice@corp and carol@corp.');
    expect(told(step!)).not.toMatch(/approved it|approved by/);
    expect(step!.tone).toBe('denied');
  });

  it('judges a decision exactly as `witness approvals` and the gateway do: a request that names no expiry expires when it was made [R-VIDEO-APPROVER]', async () => {
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, strict: true });
    let session: string;
    let requestId: string;
    try {
      const s = await systemWriter(w, 'gateway').session({ agent: { id: 'support-bot' } });
      session = s.id;
      const call = await s.record('tool.call', { tool: 'billing.refund', arguments: { order: 'A-2', amount: 900 } });
      requestId = uuidv7();
      // No expires_at: nothing decided after the request was made can count (core/approval.ts approvalRequestParts).
      await s.record('approval.request', { request_id: requestId, tool: 'billing.refund', arguments_digest: 'ab'.repeat(32), approvers: [alice.vkey] }, { id: requestId, parent: call!.id });
      await new Promise((r) => setTimeout(r, 5));
      const data: Record<string, unknown> = {
        request_id: requestId,
        decision: 'approved',
        approver: alice.name,
        approver_key: alice.vkey,
        agent: 'support-bot',
        tool: 'billing.refund',
        session: s.id,
        arguments_digest: 'ab'.repeat(32),
        decided_at: new Date().toISOString(),
      };
      await s.record('approval.decision', { ...data, approver_sig: signApproval(parseSignerKey(alice.skey), data) } as never, { parent: requestId });
      await s.end();
    } finally {
      await w.close();
    }
    const evs = (await readEvents(store)).filter((e: StoredEvent) => e.stream === session);
    const [step] = buildStoryboard(evs).steps.filter((st) => st.kind === 'call');
    expect(row(step!, 'Approval')).toBe('no decision that counts');
    expect(row(step!, 'Ignored')).toBe('1 decision (claimed by alice@corp: does not match the request)');
    expect(told(step!)).not.toMatch(/approved it|approved by/);
    // `witness approvals` reads the same events the same way.
    const r = await runCli(['approvals', '--store', `sqlite:${store}`, '--json', '--all']);
    expect(r.code, r.stderr).toBe(0);
    const listed = (JSON.parse(r.stdout) as Array<{ request: string; status: string; decision?: unknown }>).find((v) => v.request === requestId);
    expect(listed).toMatchObject({ status: 'expired' });
    expect(listed?.decision).toBeUndefined();
  });
});
