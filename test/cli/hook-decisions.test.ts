import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSignerKey, signApproval, type StoredEvent } from '../../src/core/index.js';
import { openWitness, systemWriter, type SystemRecorderKind } from '../../src/recorder/index.js';
import { person } from '../helpers/approvers.js';
import { requireBuild } from '../helpers/gateway.js';
import { BIN, REPO_ROOT, readEvents, runBin, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Which decisions a `witness hook claude-code` call held for review acts on. The hook runs as
 * Claude Code runs it (the real bin/witness.js → dist/, so build first; the documented PreToolUse
 * payload of test/fixtures/hooks/claude-code on stdin, the answer read from stdout). While it
 * holds the call, decisions are written straight into the ledger, as anyone who can write the
 * database could (test/gateway/approval.test.ts does the same to the MCP gateway), and the hook
 * must judge each before it reads it (core's decisionProblem, as the gateway's approval desk
 * does): an unsigned expiry counts only from the gateway in the request's own session, a denial
 * only when signed by an approver the policy lists. Those that do not count are recorded as
 * ignored (an error event with their code) and change nothing.
 */

requireBuild();
const dir = tempDir('witness-hook-decisions-');
const alice = person(dir, 'alice@corp');
/** Holds a real key, but the policy does not list her. */
const carol = person(dir, 'carol@corp');
const AGENT = 'dev-laptop';
const payload = fs.readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'claude-code', 'pre-tool-use-mcp.json'), 'utf8');
const policyFile = path.join(dir, 'policy.yaml');
fs.writeFileSync(
  policyFile,
  [
    'version: 1',
    'default: allow',
    'approvers:',
    `  - { id: alice@corp, key: "${alice.vkey}" }`,
    'rules:',
    '  - id: issues-need-review',
    '    match: { server: github, tool: create_issue }',
    '    effect: review',
    '    reason: New issues are public.',
    '',
  ].join('\n'),
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Held {
  /** The approval request's id, once the hook has logged it. */
  request: Promise<string>;
  /** The hook's exit and answer. */
  done: Promise<Run>;
}

/** Starts the hook on the review call; it logs `witness approve <id>` on stderr once the call is held. */
function holdCall(db: string, reviewTimeout: string): Held {
  let found: (id: string) => void = () => undefined;
  const request = new Promise<string>((resolve) => (found = resolve));
  const done = new Promise<Run>((resolve) => {
    const child = spawn(process.execPath, [BIN, 'hook', 'claude-code', '--agent', AGENT, '--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', reviewTimeout], {
      cwd: dir,
      env: { ...process.env, WITNESS_STORE: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /witness approve ([0-9a-f-]{36})/.exec(stderr);
      if (m !== null) found(m[1]!);
    });
    child.on('close', (code) => {
      found('');
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(payload);
  });
  return { request, done };
}

/** Claude Code's PreToolUse answer: permissionDecision and its reason, or {} for no output (allowed). */
const answer = (r: Run): { permissionDecision?: string; permissionDecisionReason?: string } =>
  r.stdout === '' ? {} : (JSON.parse(r.stdout) as { hookSpecificOutput: { permissionDecision: string; permissionDecisionReason: string } }).hookSpecificOutput;

async function requestEvent(db: string, id: string): Promise<StoredEvent> {
  const e = (await readEvents(db)).find((x) => x.id === id);
  if (e === undefined) throw new Error(`approval request ${id} is not in the ledger`);
  return e;
}

/** A decision appended past every refusal, stamped as `as` (the recorder a writer of the database claims), into `stream`. */
async function writeDecision(db: string, as: SystemRecorderKind, stream: string, requestId: string, data: Record<string, unknown>): Promise<string> {
  const w = await openWitness({ store: `sqlite:${db}`, strict: true });
  try {
    const receipt = await systemWriter(w, as).recordStrict(stream, { agent: { id: AGENT }, kind: 'approval.decision', parent: requestId, data: { request_id: requestId, ...data } as never });
    return receipt.id;
  } finally {
    await w.close();
  }
}

/** A decision `signer` really signed, binding everything the request says (and the ledger's origin), as `witness deny` would write it. */
async function signedBy(db: string, signer: { name: string; vkey: string; skey: string }, request: StoredEvent, decision: 'approved' | 'denied', reason: string): Promise<Record<string, unknown>> {
  const w = await openWitness({ store: `sqlite:${db}` });
  const origin = w.reader.info.origin;
  await w.close();
  const rd = request.data ?? {};
  const data: Record<string, unknown> = {
    request_id: request.id,
    decision,
    approver: signer.name,
    approver_key: signer.vkey,
    reason,
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
  };
  data['approver_sig'] = signApproval(parseSignerKey(signer.skey), data);
  return data;
}

/** Waits until the ledger holds `n` error events recording ignored decisions (the hook has judged them); fails at once if the hook answers first. */
async function ignoredDecisions(db: string, n: number, held: Held): Promise<StoredEvent[]> {
  let answered: Run | undefined;
  void held.done.then((r) => (answered = r));
  for (let i = 0; i < 300; i++) {
    const errors = (await readEvents(db)).filter((e) => e.kind === 'error' && typeof e.data?.['decision_id'] === 'string');
    if (errors.length >= n) return errors;
    if (answered !== undefined) throw new Error(`the hook answered ${JSON.stringify(answered.stdout)} before it recorded ${n} ignored decisions (it recorded ${errors.length})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the hook did not record ${n} ignored decisions within 30 s`);
}

describe('witness hook claude-code judges every decision before acting on it', () => {
  it('[R-CODING-AGENT-HOOKS] [R-APPROVER-SIGNED] ignores an expiry the gateway did not record in the request’s session, and then allows the call on a real `witness approve`', async () => {
    const db = tempDb(dir);
    const held = holdCall(db, '40s');
    const id = await held.request;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const request = await requestEvent(db, id);
    const expiry = { decision: 'expired', approver: 'witness-gateway', arguments_digest: request.data?.['arguments_digest'] };
    // In the request's own session, but stamped as the CLI; stamped as the gateway, but in another session.
    const inSession = await writeDecision(db, 'cli', request.stream, id, expiry);
    const elsewhere = await writeDecision(db, 'gateway', `claude-code:${AGENT}:another-session`, id, expiry);
    const ignored = await ignoredDecisions(db, 2, held);
    expect(ignored.map((e) => [e.data?.['decision_id'], e.data?.['code'], e.data?.['request_id']])).toEqual([
      [inSession, 'approval_forged', id],
      [elsewhere, 'approval_forged', id],
    ]);
    expect(String(ignored[0]!.data?.['message'])).toMatch(/unsigned expiry that the gateway did not record in the request's session/);
    const approved = await runBin(['approve', id, '--key', alice.file, '--store', `sqlite:${db}`]);
    expect(approved.code, approved.stderr).toBe(0);
    const r = await held.done;
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '' });
    const events = await readEvents(db);
    const release = events.filter((e) => e.kind === 'policy.decision' && e.data?.['decision'] === 'allow');
    expect(release).toHaveLength(1);
    expect(release[0]!.data).toMatchObject({ approval: { request_id: id, approver: 'alice@corp' } });
    expect(events.some((e) => e.kind === 'tool.result')).toBe(false);
    expect(events.filter((e) => e.kind === 'error')).toHaveLength(2);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 90_000);

  it('[R-CODING-AGENT-HOOKS] [R-APPROVER-ALLOWED] ignores a denial signed by a key the policy does not list; the call then expires and is refused with the expiry’s reason', async () => {
    const db = tempDb(dir);
    const held = holdCall(db, '6s');
    const id = await held.request;
    const request = await requestEvent(db, id);
    const denial = await writeDecision(db, 'cli', request.stream, id, await signedBy(db, carol, request, 'denied', 'I do not like it.'));
    const [ignored] = await ignoredDecisions(db, 1, held);
    expect(ignored!.data).toMatchObject({ decision_id: denial, code: 'approver_not_allowed', request_id: id });
    expect(String(ignored!.data?.['message'])).toMatch(/carol@corp \(key carol@corp\+[0-9a-f]{8}\) is not among the approvers the policy allows/);
    const r = await held.done;
    expect(r.code).toBe(0);
    expect(answer(r)).toEqual({
      hookEventName: 'PreToolUse',
      permissionDecision: 'deny',
      permissionDecisionReason: `The create_issue call was not approved within 6 s (approval request ${id}), so it was refused.`,
    });
    const events = await readEvents(db);
    expect(events.filter((e) => e.kind === 'approval.decision').map((e) => [e.data?.['approver'], e.data?.['decision'], e.recorder?.kind])).toEqual([
      ['carol@corp', 'denied', 'cli'],
      ['witness-gateway', 'expired', 'gateway'],
    ]);
    expect(events.find((e) => e.kind === 'tool.result')).toMatchObject({ outcome: 'expired' });
    // The hook's own expiry is not reported as ignored.
    expect(events.filter((e) => e.kind === 'error')).toHaveLength(1);
  }, 90_000);

  it('[R-CODING-AGENT-HOOKS] refuses the call on a real `witness deny`, with the approver’s reason', async () => {
    const db = tempDb(dir);
    const held = holdCall(db, '40s');
    const id = await held.request;
    const denied = await runBin(['deny', id, '--key', alice.file, '--reason', 'Not during the release freeze.', '--store', `sqlite:${db}`]);
    expect(denied.code, denied.stderr).toBe(0);
    const r = await held.done;
    expect(r.code).toBe(0);
    expect(answer(r)).toEqual({
      hookEventName: 'PreToolUse',
      permissionDecision: 'deny',
      permissionDecisionReason: `The create_issue call was denied by alice@corp: Not during the release freeze. (approval request ${id}).`,
    });
    const events = await readEvents(db);
    expect(events.find((e) => e.kind === 'tool.result')).toMatchObject({ outcome: 'denied' });
    expect(events.some((e) => e.kind === 'error')).toBe(false);
  }, 90_000);
});
