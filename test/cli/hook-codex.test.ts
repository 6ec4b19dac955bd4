import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, readEvents, runBin, verifyFile } from '../helpers/ledger.js';
import { requireBuild } from '../helpers/gateway.js';
import { type HookRun, hookFixture, runHook, shellAndMcpRules, writeHookPolicy } from '../helpers/hook.js';
import { temporaryHome } from '../helpers/real-home.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness hook codex` as Codex runs it: the documented payloads (test/fixtures/hooks/codex) on
 * stdin of the real binary (bin/witness.js → dist/, so build first), the answer read as Codex reads
 * it (exit code, stdout JSON; https://learn.chatgpt.com/docs/hooks), the ledger read after. The
 * installed command is also run the way Codex runs a hook command: `$SHELL -lc "<command>"`.
 */

requireBuild();
// hooks install keeps its backup in the state directory: a temporary one, never the real ~/.witness.
temporaryHome();
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'codex');
const fixture = (name: string): string => hookFixture('codex', name);
const SESSION = '019a6c2e-6a4f-7c21-9d0b-3f5e2b8c1a47';
const dir = tempDir('witness-hook-codex-');
const { policyFile, keyFile } = writeHookPolicy(dir, [
  ...shellAndMcpRules('Bash', { id: 'memory-needs-review', server: 'memory', tool: 'create_entities' }),
  '  - id: no-env-edits',
  '    match: { tool: apply_patch }',
  `    when: 'args.command contains "File: .env"'`,
  '    effect: deny',
]);

type Run = HookRun;

/** Runs `argv` with `payload` on stdin; `onErr` sees stderr as it arrives (the approval request id is logged there). */
const run = (argv: string[], payload: string, onErr?: (text: string) => void): Promise<Run> => runHook(argv, payload, { cwd: dir, onErr });

const hook = (payload: string, args: string[], onErr?: (text: string) => void): Promise<Run> => run([process.execPath, BIN, 'hook', 'codex', '--agent', 'dev-laptop', ...args], payload, onErr);

/** What Codex reads from a PreToolUse answer: exit 0 with the deny shape, or nothing. */
const denial = (r: Run): { hookEventName?: string; permissionDecision?: string; permissionDecisionReason?: string } =>
  r.stdout === '' ? {} : (JSON.parse(r.stdout) as { hookSpecificOutput: { permissionDecision: string; permissionDecisionReason: string } }).hookSpecificOutput;

/** A documented payload with fields changed (a claimed identity, another call id). */
const withFields = (name: string, fields: Record<string, unknown>): string => JSON.stringify({ ...(JSON.parse(fixture(name)) as object), ...fields });

describe('witness hook codex', () => {
  it('[R-CODING-AGENT-HOOKS] records a session, a prompt, an allowed Bash call, a file edit and their results, the turn end, and answers allow with no output', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`, '--policy', policyFile];
    const names = ['session-start', 'user-prompt-submit', 'pre-tool-use-bash', 'post-tool-use-bash', 'pre-tool-use-apply-patch', 'post-tool-use-apply-patch', 'stop', 'session-end'];
    for (const name of names) {
      const r = await hook(fixture(name), store);
      expect({ name, code: r.code, stdout: r.stdout }).toEqual({ name, code: 0, stdout: '' });
    }
    const events = await readEvents(db);
    expect(new Set(events.map((e) => e.stream))).toEqual(new Set([`codex:dev-laptop:${SESSION}`]));
    expect(events.map((e) => e.kind)).toEqual([
      'session.start',
      'note',
      'note',
      'tool.call',
      'policy.decision',
      'tool.result',
      'tool.call',
      'policy.decision',
      'tool.result',
      'note',
      'note',
      'session.end',
    ]);
    for (const e of events) expect({ agent: e.agent.id, recorder: e.recorder?.kind }).toEqual({ agent: 'dev-laptop', recorder: 'gateway' });
    const calls = events.filter((e) => e.kind === 'tool.call');
    expect(calls[0]!.data).toMatchObject({ tool: 'Bash', arguments: { command: 'npm test' }, client_claims: { tool_use_id: 'call_bash_01', turn_id: 'turn-1', model: 'gpt-5' } });
    expect(calls[1]!.data).toMatchObject({ tool: 'apply_patch', arguments: { command: expect.stringContaining('*** Update File: src/math.ts') } });
    const results = events.filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => e.parent)).toEqual(calls.map((e) => e.id));
    expect(results[0]!.data).toMatchObject({ output: expect.stringMatching(/^Exit code: 0\n/) });
    expect(events.find((e) => e.kind === 'note' && (e.data as { text: string }).text.startsWith('Add a factorial'))).toBeDefined();
    expect(events.find((e) => e.kind === 'note' && (e.data as { text: string }).text === 'codex session ended: other.')).toBeDefined();
    expect(events.find((e) => e.kind === 'note' && e.action === 'Stop')!.data).toMatchObject({ text: 'Added factorial to src/math.ts; all tests pass.' });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 90_000);

  it("[R-CODING-AGENT-HOOKS] denies a call the policy denies with Codex's PreToolUse deny answer naming the rule's reason, and records the refusal", async () => {
    const db = tempDb(dir);
    const r = await hook(fixture('pre-tool-use-bash-rm'), ['--store', `sqlite:${db}`, '--policy', policyFile]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
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
    expect(events[2]!.policy).toMatchObject({ decision: 'deny', rule: 'no-rm-rf' });
  }, 30_000);

  it('denies a file edit by what its patch touches (tool apply_patch, args.command)', async () => {
    const db = tempDb(dir);
    const patch = '*** Begin Patch\n*** Add File: .env\n+OPENAI_API_KEY=sk-test\n*** End Patch\n';
    const r = await hook(withFields('pre-tool-use-apply-patch', { tool_input: { command: patch } }), ['--store', `sqlite:${db}`, '--policy', policyFile]);
    expect(denial(r)).toMatchObject({ permissionDecision: 'deny', permissionDecisionReason: 'Witness policy rule no-env-edits denies this apply_patch call.' });
  }, 30_000);

  it('[R-CODING-AGENT-HOOKS] holds an MCP call for review until a concurrent `witness approve`, then answers allow, under --agent whatever the payload claims', async () => {
    const db = tempDb(dir);
    let approving: Promise<Run> | undefined;
    const payload = withFields('pre-tool-use-mcp', { agent_id: 'intruder', agent_type: 'explorer' });
    const r = await hook(payload, ['--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', '25s'], (err) => {
      const m = /witness approve ([0-9a-f-]{36})/.exec(err);
      if (m !== null && approving === undefined) approving = runBin(['approve', m[1]!, '--key', keyFile, '--store', `sqlite:${db}`]);
    });
    expect(approving).toBeDefined();
    expect((await approving!).code).toBe(0);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '' });
    const events = await readEvents(db);
    expect(events.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'policy.decision', 'approval.request', 'approval.decision', 'policy.decision']);
    expect(events.at(-1)!.data).toMatchObject({ decision: 'allow', approval: { approver: 'alice@corp' } });
    expect(events[1]!.data).toMatchObject({ tool: 'create_entities', server: 'memory', requires_approval: true, client_claims: { agent_id: 'intruder', agent_type: 'explorer' } });
    for (const e of events.filter((x) => x.recorder?.kind === 'gateway')) expect(e.agent.id).toBe('dev-laptop');
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it('denies a review call nobody approves at the limit, and records the expiry', async () => {
    const db = tempDb(dir);
    const started = Date.now();
    const r = await hook(fixture('pre-tool-use-mcp'), ['--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', '1500ms']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(r.code).toBe(0);
    expect(denial(r).permissionDecision).toBe('deny');
    expect(denial(r).permissionDecisionReason).toMatch(/^The create_entities call was not approved within 1\.5 s \(approval request [0-9a-f-]{36}\), so it was refused\.$/);
    const events = await readEvents(db);
    expect(events.map((e) => [e.kind, e.outcome])).toEqual([
      ['session.start', undefined],
      ['tool.call', 'pending'],
      ['policy.decision', 'pending'],
      ['approval.request', 'pending'],
      ['approval.decision', 'expired'],
      ['tool.result', 'expired'],
    ]);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 30_000);

  it('refuses a payload it cannot read with the deny answer when closed, and lets it through when open', async () => {
    const closed = await hook('{"hook_event_name":"PreToolUse","tool_name":"Bash"}', ['--store', `sqlite:${tempDb(dir)}`]);
    expect(closed.code).toBe(0);
    expect(denial(closed).permissionDecision).toBe('deny');
    expect(denial(closed).permissionDecisionReason).toMatch(
      /^Witness could not record or check this action, so it was refused \(fail closed\): The hook payload is not a Codex hook event \(session_id: /,
    );
    const open = await hook('not json', ['--store', `sqlite:${tempDb(dir)}`, '--fail', 'open']);
    expect({ code: open.code, stdout: open.stdout }).toEqual({ code: 0, stdout: '' });
    expect(open.stderr).toMatch(/^witness hook: The hook payload on standard input is not JSON\./);
  }, 30_000);

  it('answers allow when the ledger is unreachable with --fail open, deny with --fail closed, and only warns on a prompt-less event', async () => {
    const blocker = path.join(dir, 'not-a-dir');
    fs.writeFileSync(blocker, 'a file, so no directory can be made here');
    const store = ['--store', `sqlite:${path.join(blocker, 'sub', 'w.db')}`];
    const open = await hook(fixture('pre-tool-use-bash'), [...store, '--fail', 'open']);
    expect({ code: open.code, stdout: open.stdout }).toEqual({ code: 0, stdout: '' });
    const closed = await hook(fixture('pre-tool-use-bash'), [...store, '--fail', 'closed']);
    expect(denial(closed).permissionDecisionReason).toMatch(/^Witness could not record or check this action, so it was refused \(fail closed\): /);
    const stop = await hook(fixture('stop'), [...store, '--fail', 'closed']);
    expect(stop.code).toBe(0);
    expect(Object.keys(JSON.parse(stop.stdout) as object)).toEqual(['systemMessage']);
  }, 30_000);
});

describe('witness hooks install / uninstall codex', () => {
  const original = fs.readFileSync(path.join(FIX, 'hooks-with-other-hooks.json'));

  it("adds Witness's hooks once beside the user's own, runs as Codex runs the command, and uninstall restores the file byte for byte", async () => {
    const project = path.join(dir, 'proj');
    const file = path.join(project, '.codex', 'hooks.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, original);
    const db = path.join(dir, 'installed.db');
    const args = ['hooks', 'install', 'codex', '--project', '--agent', 'dev-laptop', '--policy', policyFile, '--store', `sqlite:${db}`, '--command', `${process.execPath} ${BIN}`];
    const first = await runBin(args, { cwd: project });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Added Witness's hook to SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, Stop, SessionEnd in .*\.codex\/hooks\.json /);
    const installed = JSON.parse(fs.readFileSync(file, 'utf8')) as { description: string; hooks: Record<string, Array<{ matcher?: string; hooks: Array<{ command: string; timeout: number }> }>> };
    expect(installed.description).toBe('Team hooks for this repository.');
    expect(installed.hooks['PreToolUse']![0]!.matcher).toBe('Bash');
    const ours = installed.hooks['PreToolUse']![1]!;
    expect(ours.matcher).toBeUndefined();
    expect(ours.hooks[0]!.command).toBe(
      `${process.execPath} ${BIN} hook codex --agent dev-laptop --fail closed --review-timeout 45s --budget 50s --store sqlite:${db} --policy ${policyFile} --installed-by=witness-hooks-install`,
    );
    expect(ours.hooks[0]!.timeout).toBe(55);
    expect(installed.hooks['SessionEnd']![0]!.hooks[0]!.timeout).toBe(3);

    // Codex runs a command hook as `$SHELL -lc "<command>"` in the session's cwd, the payload on stdin.
    const refused = await run(['/bin/sh', '-lc', ours.hooks[0]!.command], fixture('pre-tool-use-bash-rm'));
    expect(denial(refused)).toMatchObject({ permissionDecision: 'deny', permissionDecisionReason: expect.stringContaining('no-rm-rf') });
    expect((await readEvents(db)).map((e) => e.kind)).toContain('policy.decision');

    const afterFirst = fs.readFileSync(file);
    const second = await runBin(args, { cwd: project });
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    expect(second.stdout).toMatch(/already in .*; nothing changed\./);
    expect(fs.readFileSync(file).equals(afterFirst)).toBe(true);
    const removed = await runBin(['hooks', 'uninstall', 'codex', '--project'], { cwd: project });
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/^Restored .* exactly as it was/);
    expect(fs.readFileSync(file).equals(original)).toBe(true);
    expect(fs.existsSync(`${file}.witness-backup`)).toBe(false);
  }, 60_000);

  it("--user writes ~/.codex/hooks.json, and uninstall after the user's own edit keeps the edit", async () => {
    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    const file = path.join(home, '.codex', 'hooks.json');
    expect((await runBin(['hooks', 'install', 'codex', '--user'], { env: { HOME: home } })).code).toBe(0);
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { description?: string; hooks: object };
    expect(Object.keys(doc)).toEqual(['hooks']);
    doc.description = 'mine';
    fs.writeFileSync(file, JSON.stringify(doc));
    const removed = await runBin(['hooks', 'uninstall', 'codex', '--user'], { env: { HOME: home } });
    expect(removed.stdout).toMatch(/^Removed Witness's hook from /);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ description: 'mine' });
  }, 60_000);

  it('leaves a broken hooks file untouched and says so in one sentence', async () => {
    const file = path.join(dir, 'broken', 'hooks.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{ "hooks": { "Stop": [ ');
    const r = await runBin(['hooks', 'install', 'codex', '--settings', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^witness: .*hooks\.json is not valid JSON \(.*\); fix it or move it aside before installing the hooks\.\n$/);
    expect(fs.readFileSync(file, 'utf8')).toBe('{ "hooks": { "Stop": [ ');
    expect(fs.existsSync(`${file}.witness-backup`)).toBe(false);
  }, 30_000);
});
