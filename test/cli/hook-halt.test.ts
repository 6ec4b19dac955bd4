import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { person } from '../helpers/approvers.js';
import { requireBuild } from '../helpers/gateway.js';
import { BIN, readEvents, runBin, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness halt` stops an agent governed by `witness hook` as it stops one behind a gateway (issue
 * 16 review 2, M-B): the hook records as the gateway, so a halted agent's tool call is refused with
 * the halt's reason whatever `--fail` or the policy says, and recorded as the gateway records it (the
 * `tool.call`, a `policy.decision` deny for reason `halted` naming the halt, a `denied`
 * `tool.result`). Run through the real bin/witness.js (build first), as Claude Code runs it.
 */

requireBuild();
const dir = tempDir('witness-hook-halt-');
const alice = person(dir, 'alice@corp');
const AGENT = 'dev-laptop';
const policyFile = path.join(dir, 'policy.yaml');
fs.writeFileSync(
  policyFile,
  [
    'version: 1',
    'default: allow',
    'approvers:',
    `  - { id: alice@corp, key: "${alice.vkey}" }`,
    'rules:',
    '  - id: no-rm-rf',
    '    match: { tool: Bash }',
    '    when: args.command contains "rm -rf"',
    '    effect: deny',
    '    reason: Recursive deletes are not allowed.',
    '  - id: review-deploy',
    '    match: { tool: Bash }',
    '    when: args.command contains "deploy"',
    '    effect: review',
    '',
  ].join('\n'),
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts `witness hook claude-code` on `payload`; `onStderr` sees what it logs as it logs it. */
function hook(payload: unknown, args: string[], onStderr: (text: string) => void = () => undefined): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'hook', 'claude-code', '--policy', policyFile, ...args], { cwd: dir, env: { ...process.env, WITNESS_STORE: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      onStderr(stderr);
    });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(JSON.stringify(payload));
  });
}

const base = { session_id: 'sess-halt', transcript_path: '/x.jsonl', cwd: '/p', permission_mode: 'default' };
const bash = (command: string, id: string) => ({ ...base, hook_event_name: 'PreToolUse', tool_name: 'Bash', tool_input: { command }, tool_use_id: id });
/** Claude Code's PreToolUse refusal reason, or undefined for no output (the call goes ahead). */
const denial = (r: Run): string | undefined =>
  r.stdout === '' ? undefined : (JSON.parse(r.stdout) as { hookSpecificOutput: { permissionDecision: string; permissionDecisionReason: string } }).hookSpecificOutput.permissionDecisionReason;
const HALTED = (tool: string) =>
  new RegExp(
    `^Agent ${AGENT} was halted by \\S+ at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(refunding every order\\), so this ${tool} call was refused; a person lifts the halt with \`witness resume --agent ${AGENT}\`\\.$`,
  );

describe('witness hook obeys witness halt', () => {
  it('[R-HALT] [R-CODING-AGENT-HOOKS] refuses a halted agent’s tool call with the halt’s reason under --fail open and over the policy, records it as the gateway does, lets prompts and other agents through, and allows the call again after witness resume', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`];
    const as = (agent: string) => ['--agent', agent, ...store];
    const before = await hook(bash('ls', 't1'), as(AGENT));
    expect({ code: before.code, stdout: before.stdout }).toEqual({ code: 0, stdout: '' });

    const halted = await runBin(['halt', '--agent', AGENT, '--reason', 'refunding every order', ...store, '--json']);
    expect(halted.code, halted.stderr).toBe(0);
    const haltId = (JSON.parse(halted.stdout) as { event: string }).event;

    const refused = await hook(bash('ls', 't2'), as(AGENT));
    expect(refused.code).toBe(0);
    expect(denial(refused)).toMatch(HALTED('Bash'));
    // A halt is a person's decision, not a fault: --fail open does not let the call through.
    const open = await hook(bash('ls', 't3'), [...as(AGENT), '--fail', 'open']);
    expect(denial(open)).toMatch(HALTED('Bash'));
    // The stop button outranks the policy: the refusal names the halt, not the rule.
    const denied = await hook(bash('rm -rf /tmp/x', 't4'), as(AGENT));
    expect(denial(denied)).toMatch(HALTED('Bash'));
    // The person at the console may still talk to the agent (the gateway, too, lets a halted client connect and show the halt).
    const prompt = await hook({ ...base, hook_event_name: 'UserPromptSubmit', prompt: 'What did you refund?' }, as(AGENT));
    expect({ code: prompt.code, stdout: prompt.stdout }).toEqual({ code: 0, stdout: '' });
    // Only the halted agent is stopped.
    const other = await hook(bash('ls', 't5'), as('other-laptop'));
    expect({ code: other.code, stdout: other.stdout }).toEqual({ code: 0, stdout: '' });

    const resumed = await runBin(['resume', '--agent', AGENT, ...store]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = await hook(bash('ls', 't6'), as(AGENT));
    expect({ code: after.code, stdout: after.stdout }).toEqual({ code: 0, stdout: '' });

    const events = await readEvents(db);
    const mine = events.filter((e) => e.stream === `claude-code:${AGENT}:sess-halt`);
    const call = (id: string) => mine.find((e) => e.kind === 'tool.call' && (e.data?.['client_claims'] as { tool_use_id?: string } | undefined)?.tool_use_id === id)!;
    for (const id of ['t2', 't3', 't4']) {
      const c = call(id);
      expect(c).toMatchObject({ recorder: { kind: 'gateway' }, agent: { id: AGENT }, resource: 'Bash', action: 'Bash', outcome: 'pending' });
      const decisions = mine.filter((e) => e.kind === 'policy.decision' && e.parent === c.id);
      expect(decisions).toHaveLength(1);
      expect(decisions[0]).toMatchObject({
        outcome: 'denied',
        policy: { decision: 'deny', reason_code: 'halted', mode: 'enforce' },
        data: { decision: 'deny', reason: 'halted', tool: 'Bash', halt: { id: haltId, reason: 'refunding every order' } },
      });
      expect(typeof decisions[0]!.data?.['arguments_digest']).toBe('string');
      const results = mine.filter((e) => e.kind === 'tool.result' && e.parent === c.id);
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ outcome: 'denied', data: { is_error: true, error: { code: 'halted', message: expect.stringMatching(HALTED('Bash')) as unknown } } });
    }
    // Allowed calls, before the halt and after the resume, are recorded as any other.
    for (const id of ['t1', 't6']) {
      expect(mine.some((e) => e.kind === 'tool.result' && e.parent === call(id).id)).toBe(false);
      expect(mine.find((e) => e.kind === 'policy.decision' && e.parent === call(id).id)).toMatchObject({ outcome: 'success', data: { decision: 'allow' } });
    }
    expect(mine.some((e) => e.kind === 'note' && e.action === 'user_prompt')).toBe(true);
    expect(events.some((e) => e.kind === 'error')).toBe(false);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 90_000);

  it('[R-HALT] [R-CODING-AGENT-HOOKS] refuses a call held for review when its agent is halted while it waits, even once approved, and leaves the approval unused', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`];
    let found: (id: string) => void = () => undefined;
    const request = new Promise<string>((resolve) => (found = resolve));
    const done = hook(bash('./deploy.sh', 'd1'), ['--agent', AGENT, ...store, '--review-timeout', '40s'], (text) => {
      const m = /witness approve ([0-9a-f-]{36})/.exec(text);
      if (m !== null) found(m[1]!);
    });
    void done.then(() => found(''));
    const id = await request;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const halted = await runBin(['halt', '--agent', AGENT, '--reason', 'refunding every order', ...store]);
    expect(halted.code, halted.stderr).toBe(0);
    const approved = await runBin(['approve', id, '--key', alice.file, ...store]);
    expect(approved.code, approved.stderr).toBe(0);
    const r = await done;
    expect(r.code).toBe(0);
    expect(denial(r)).toMatch(HALTED('Bash'));
    const events = await readEvents(db);
    // No release: the grant is left unused, as the gateway leaves it.
    expect(events.filter((e) => e.kind === 'policy.decision' && e.data?.['approval'] !== undefined)).toHaveLength(0);
    expect(events.find((e) => e.kind === 'tool.result')).toMatchObject({ outcome: 'denied', data: { error: { code: 'halted' } } });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 90_000);
});
