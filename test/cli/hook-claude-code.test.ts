import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, readEvents, runBin, verifyFile } from '../helpers/ledger.js';
import { requireBuild } from '../helpers/gateway.js';
import { type HookRun, hookFixture, runHook, shellAndMcpRules, writeHookPolicy } from '../helpers/hook.js';
import { temporaryHome } from '../helpers/real-home.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness hook claude-code` as Claude Code runs it: the documented payloads
 * (test/fixtures/hooks/claude-code) on stdin of the real binary (bin/witness.js → dist/, so build
 * first), the answer read as Claude Code reads it (exit code, stdout JSON), the ledger read after.
 */

requireBuild();
// hooks install keeps its backup in the state directory: a temporary one, never the real ~/.witness.
temporaryHome();
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'claude-code');
const fixture = (name: string): string => hookFixture('claude-code', name);
const dir = tempDir('witness-hook-cc-');
const { policyFile, keyFile } = writeHookPolicy(dir, shellAndMcpRules('Bash', { id: 'issues-need-review', server: 'github', tool: 'create_issue' }));

type Run = HookRun;

/** Runs the hook with `payload` on stdin; `onErr` sees stderr as it arrives (the approval request id is logged there). */
const hook = (payload: string, args: string[], onErr?: (text: string) => void): Promise<Run> =>
  runHook([process.execPath, BIN, 'hook', 'claude-code', '--agent', 'dev-laptop', ...args], payload, { cwd: dir, onErr });

const denial = (r: Run): { permissionDecision?: string; permissionDecisionReason?: string } =>
  r.stdout === '' ? {} : (JSON.parse(r.stdout) as { hookSpecificOutput: { permissionDecision: string; permissionDecisionReason: string } }).hookSpecificOutput;

describe('witness hook claude-code', () => {
  it('[R-CODING-AGENT-HOOKS] records a session, a prompt, an allowed Bash call and its result, and answers allow with no output', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`, '--policy', policyFile];
    for (const name of ['session-start', 'user-prompt-submit', 'pre-tool-use-write', 'post-tool-use-write', 'session-end']) {
      const r = await hook(fixture(name), store);
      expect({ name, code: r.code, stdout: r.stdout }).toEqual({ name, code: 0, stdout: '' });
    }
    const events = await readEvents(db);
    expect(new Set(events.map((e) => e.stream)).size).toBe(1);
    expect(events[0]!.stream).toBe('claude-code:dev-laptop:abc123');
    expect(events.map((e) => e.kind)).toEqual(['session.start', 'note', 'note', 'tool.call', 'policy.decision', 'tool.result', 'note', 'session.end']);
    for (const e of events) expect(e.agent.id).toBe('dev-laptop');
    for (const e of events) expect(e.recorder?.kind).toBe('gateway');
    const call = events.find((e) => e.kind === 'tool.call')!;
    expect(call.data).toMatchObject({
      tool: 'Write',
      arguments: { file_path: '/home/user/my-project/src/factorial.ts' },
      client_claims: { tool_use_id: 'toolu_01WRITE01', cwd: '/home/user/my-project' },
    });
    expect(events.find((e) => e.kind === 'policy.decision')!.data).toMatchObject({ decision: 'allow' });
    const result = events.find((e) => e.kind === 'tool.result')!;
    expect(result.parent).toBe(call.id);
    expect(result.data).toMatchObject({ output: { success: true } });
    expect(events.find((e) => e.kind === 'note' && (e.data as { text: string }).text.startsWith('Write a function'))).toBeDefined();
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it("[R-CODING-AGENT-HOOKS] denies a call the policy denies with Claude Code's deny answer naming the rule's reason, and records the refusal", async () => {
    const db = tempDb(dir);
    const r = await hook(fixture('pre-tool-use-bash-rm'), ['--store', `sqlite:${db}`, '--policy', policyFile]);
    expect(r.code).toBe(0);
    expect(denial(r)).toEqual({
      hookEventName: 'PreToolUse',
      permissionDecision: 'deny',
      permissionDecisionReason: 'Witness policy rule no-rm-rf denies this Bash call: Recursive deletes are not allowed.',
    });
    const events = await readEvents(db);
    expect(events.map((e) => [e.kind, e.outcome])).toEqual([
      ['session.start', undefined],
      ['tool.call', 'pending'],
      ['policy.decision', 'denied'],
      ['tool.result', 'denied'],
    ]);
    expect(events[1]!.data).toMatchObject({ tool: 'Bash', arguments: { command: 'rm -rf /home/user/my-project/build' } });
  }, 30_000);

  it('[R-CODING-AGENT-HOOKS] holds a review call until a concurrent `witness approve`, then answers allow and records the release', async () => {
    const db = tempDb(dir);
    let approving: Promise<Run> | undefined;
    const r = await hook(fixture('pre-tool-use-mcp'), ['--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', '25s'], (err) => {
      const m = /witness approve ([0-9a-f-]{36})/.exec(err);
      if (m !== null && approving === undefined) approving = runBin(['approve', m[1]!, '--key', keyFile, '--store', `sqlite:${db}`]);
    });
    expect(approving).toBeDefined();
    const approved = await approving!;
    expect(approved.code).toBe(0);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '' });
    const events = await readEvents(db);
    const kinds = events.map((e) => e.kind);
    expect(kinds).toEqual(['session.start', 'tool.call', 'policy.decision', 'approval.request', 'approval.decision', 'policy.decision']);
    const release = events.at(-1)!;
    expect(release.data).toMatchObject({ decision: 'allow', approval: { approver: 'alice@corp' } });
    expect(events[1]!.data).toMatchObject({ tool: 'create_issue', server: 'github', requires_approval: true });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it('denies a review call nobody approves at the limit, and records the expiry', async () => {
    const db = tempDb(dir);
    const started = Date.now();
    const r = await hook(fixture('pre-tool-use-mcp'), ['--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', '1500ms']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(denial(r).permissionDecision).toBe('deny');
    expect(denial(r).permissionDecisionReason).toMatch(/^The create_issue call was not approved within 1\.5 s \(approval request [0-9a-f-]{36}\), so it was refused\.$/);
    const events = await readEvents(db);
    expect(events.map((e) => [e.kind, e.outcome])).toEqual([
      ['session.start', undefined],
      ['tool.call', 'pending'],
      ['policy.decision', 'pending'],
      ['approval.request', 'pending'],
      ['approval.decision', 'expired'],
      ['tool.result', 'expired'],
    ]);
  }, 30_000);

  it('refuses a --budget that would end the hook while a review is still being waited for (test/cli/hook-failures.test.ts: a budget spent by a hung ledger)', async () => {
    const r = await hook(fixture('pre-tool-use-mcp'), ['--store', `sqlite:${tempDb(dir)}`, '--policy', policyFile, '--review-timeout', '30s', '--budget', '2s']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^witness: --budget \(2s\) must be at least 2s longer than --review-timeout \(30s\)/);
  }, 40_000);

  it('answers allow when the ledger is unreachable with --fail open, and deny with --fail closed', async () => {
    const store = ['--store', `sqlite:${path.join(dir, 'no-such-dir', 'sub', 'w.db')}`];
    fs.writeFileSync(path.join(dir, 'no-such-dir'), 'a file, so no directory can be made here');
    const open = await hook(fixture('pre-tool-use-bash'), [...store, '--fail', 'open']);
    expect({ code: open.code, stdout: open.stdout }).toEqual({ code: 0, stdout: '' });
    expect(open.stderr).toMatch(/^witness hook: /);
    const closed = await hook(fixture('pre-tool-use-bash'), [...store, '--fail', 'closed']);
    expect(closed.code).toBe(0);
    expect(denial(closed).permissionDecision).toBe('deny');
    expect(denial(closed).permissionDecisionReason).toMatch(/^Witness could not record or check this action, so it was refused \(fail closed\): /);
  }, 30_000);

  it('records and then allows (open) or refuses (closed) a call when the policy file cannot be loaded', async () => {
    const db = tempDb(dir);
    const missing = ['--store', `sqlite:${db}`, '--policy', path.join(dir, 'missing.yaml')];
    const open = await hook(fixture('pre-tool-use-bash'), [...missing, '--fail', 'open']);
    expect({ code: open.code, stdout: open.stdout }).toEqual({ code: 0, stdout: '' });
    const closed = await hook(fixture('pre-tool-use-bash'), [...missing, '--fail', 'closed']);
    expect(denial(closed).permissionDecisionReason).toMatch(/policy could not be loaded \(fail closed\)/);
    const kinds = (await readEvents(db)).map((e) => e.kind);
    expect(kinds).toEqual(['session.start', 'tool.call', 'error', 'tool.call', 'error', 'tool.result']);
  }, 30_000);

  it('refuses a payload that is not a Claude Code hook event with exit 2 when closed, exit 0 when open', async () => {
    const closed = await hook('{"hello":1}', ['--store', `sqlite:${tempDb(dir)}`]);
    expect(closed.code).toBe(2);
    expect(closed.stderr).toMatch(/not a Claude Code hook event/);
    const open = await hook('not json', ['--store', `sqlite:${tempDb(dir)}`, '--fail', 'open']);
    expect(open.code).toBe(0);
  }, 30_000);
});

describe('witness hooks install / uninstall claude-code', () => {
  it("adds Witness's hooks once beside the user's own, and uninstall restores the file byte for byte", async () => {
    const settings = path.join(dir, 'proj', '.claude', 'settings.json');
    fs.mkdirSync(path.dirname(settings), { recursive: true });
    const original = fs.readFileSync(path.join(FIX, 'settings-with-hooks.json'));
    fs.writeFileSync(settings, original);
    const args = ['hooks', 'install', 'claude-code', '--settings', settings, '--agent', 'dev-laptop', '--policy', policyFile, '--store', `sqlite:${path.join(dir, 'w.db')}`];
    const first = await runBin(args);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Added Witness's hook to SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, Stop, SessionEnd in /);
    const installed = JSON.parse(fs.readFileSync(settings, 'utf8')) as { permissions: unknown; hooks: Record<string, Array<{ matcher?: string; hooks: Array<{ command: string; timeout: number }> }>> };
    expect(installed.permissions).toEqual({ allow: ['Bash(npm test)'] });
    expect(installed.hooks['PreToolUse']![0]!.hooks[0]!.command).toBe('$CLAUDE_PROJECT_DIR/.claude/hooks/validate-bash.sh');
    const ours = installed.hooks['PreToolUse']![1]!;
    expect(ours.matcher).toBe('*');
    expect(ours.hooks[0]!.command).toContain(
      `witness hook claude-code --agent dev-laptop --fail closed --review-timeout 45s --budget 50s --store sqlite:${path.join(dir, 'w.db')} --policy ${policyFile}`,
    );
    expect(ours.hooks[0]!.timeout).toBe(55);
    const afterFirst = fs.readFileSync(settings);
    const second = await runBin(args);
    expect(second.stdout).toMatch(/already in .*; nothing changed\./);
    expect(fs.readFileSync(settings).equals(afterFirst)).toBe(true);
    const removed = await runBin(['hooks', 'uninstall', 'claude-code', '--settings', settings]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/^Restored .* exactly as it was/);
    expect(fs.readFileSync(settings).equals(original)).toBe(true);
    expect(fs.existsSync(`${settings}.witness-backup`)).toBe(false);
  }, 60_000);

  it('uninstall after the user edited the file removes only the Witness hooks and keeps the edit', async () => {
    const settings = path.join(dir, 'proj2', 'settings.json');
    fs.mkdirSync(path.dirname(settings), { recursive: true });
    fs.copyFileSync(path.join(FIX, 'settings-with-hooks.json'), settings);
    expect((await runBin(['hooks', 'install', 'claude-code', '--settings', settings])).code).toBe(0);
    const doc = JSON.parse(fs.readFileSync(settings, 'utf8')) as Record<string, unknown>;
    doc['model'] = 'opus';
    fs.writeFileSync(settings, JSON.stringify(doc));
    const removed = await runBin(['hooks', 'uninstall', 'claude-code', '--settings', settings]);
    expect(removed.stdout).toMatch(/^Removed Witness's hook from /);
    const after = JSON.parse(fs.readFileSync(settings, 'utf8')) as Record<string, unknown>;
    expect(after).toEqual({ ...(JSON.parse(fs.readFileSync(path.join(FIX, 'settings-with-hooks.json'), 'utf8')) as object), model: 'opus' });
  }, 60_000);

  it('install creates a missing settings file and uninstall removes it again', async () => {
    const settings = path.join(dir, 'proj3', '.claude', 'settings.json');
    expect((await runBin(['hooks', 'install', 'claude-code', '--settings', settings])).code).toBe(0);
    expect(fs.existsSync(settings)).toBe(true);
    expect((await runBin(['hooks', 'uninstall', 'claude-code', '--settings', settings])).code).toBe(0);
    expect(fs.existsSync(settings)).toBe(false);
  }, 60_000);
});
