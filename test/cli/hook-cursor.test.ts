import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, readEvents, runBin, verifyFile } from '../helpers/ledger.js';
import { requireBuild } from '../helpers/gateway.js';
import { type HookRun, hookFixture, runHook, shellAndMcpRules, writeHookPolicy } from '../helpers/hook.js';
import { temporaryHome } from '../helpers/real-home.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness hook cursor` as Cursor runs it: the documented payloads (test/fixtures/hooks/cursor)
 * on stdin of the real binary (bin/witness.js → dist/, so build first), the answer read as Cursor
 * reads it (exit code, stdout JSON with `permission` / `continue`), the ledger read after.
 */

requireBuild();
// hooks install keeps its backup in the state directory: a temporary one, never the real ~/.witness.
temporaryHome();
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'cursor');
const fixture = (name: string): string => hookFixture('cursor', name);
const SESSION = '668320d2-2fd8-4888-b33c-2a466fec86e7';
const dir = tempDir('witness-hook-cursor-');
const { policyFile, keyFile } = writeHookPolicy(dir, shellAndMcpRules('Shell', { id: 'issues-need-review', server: 'github', tool: 'create_issue' }));

type Run = HookRun;

/** Runs the hook with `payload` on stdin; `onErr` sees stderr as it arrives (the approval request id is logged there). */
const hook = (payload: string, args: string[], onErr?: (text: string) => void): Promise<Run> =>
  runHook([process.execPath, BIN, 'hook', 'cursor', '--agent', 'dev-laptop', ...args], payload, { cwd: dir, onErr });

/** What Cursor reads from a hook that exited 0: its stdout as JSON. */
const answer = (r: Run): Record<string, unknown> => JSON.parse(r.stdout) as Record<string, unknown>;

describe('witness hook cursor', () => {
  it('[R-CODING-AGENT-HOOKS] records a session, a prompt, an allowed Shell call and its result, an MCP call and its result, a failure and the stop, under --agent, and answers each with no decision', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`, '--policy', policyFile];
    // Cursor sends the user's email, and a payload may claim anything else: neither is the identity.
    const claiming = (name: string): string => JSON.stringify({ ...(JSON.parse(fixture(name)) as object), agent: 'root', agent_id: 'someone-else' });
    const steps = [
      'session-start',
      'before-submit-prompt',
      'pre-tool-use-shell',
      'post-tool-use-shell',
      'pre-tool-use-mcp',
      'before-mcp-execution-stdio',
      'after-mcp-execution',
      'post-tool-use-failure',
      'stop',
      'session-end',
    ];
    for (const name of steps) {
      const r = await hook(claiming(name), store);
      expect({ name, code: r.code, answer: answer(r) }).toEqual({ name, code: 0, answer: name === 'before-submit-prompt' ? { continue: true } : {} });
    }
    const events = await readEvents(db);
    expect(new Set(events.map((e) => e.stream))).toEqual(new Set([`cursor:dev-laptop:${SESSION}`]));
    expect(events.map((e) => e.kind)).toEqual([
      'session.start',
      'note', // sessionStart
      'note', // the prompt
      'tool.call', // Shell
      'policy.decision',
      'tool.result',
      'note', // preToolUse of the MCP tool: recorded at beforeMCPExecution
      'tool.call', // postgres query
      'policy.decision',
      'tool.result', // github create_issue
      'note', // postToolUseFailure
      'note', // stop
      'note', // sessionEnd's reason
      'session.end',
    ]);
    for (const e of events) expect(e.agent.id).toBe('dev-laptop');
    for (const e of events) expect(e.recorder?.kind).toBe('gateway');
    expect(JSON.stringify(events)).not.toContain('dev@example.com');
    const [shell, mcp] = events.filter((e) => e.kind === 'tool.call');
    expect(shell!.data).toMatchObject({
      tool: 'Shell',
      arguments: { command: 'npm install', working_directory: '/project' },
      client_claims: { tool_use_id: 'abc123', cwd: '/project', hook_event: 'preToolUse' },
    });
    expect(shell!.resource).toBe('Shell');
    expect(mcp!.data).toMatchObject({ tool: 'query', server: 'postgres', arguments: { sql: 'SELECT id FROM orders LIMIT 5' } });
    expect(mcp!.resource).toBe('postgres');
    const results = events.filter((e) => e.kind === 'tool.result');
    expect(results[0]!.parent).toBe(shell!.id);
    expect(results[0]!.data).toMatchObject({ output: { exitCode: 0, stdout: 'added 212 packages' } });
    expect(results[1]!.data).toMatchObject({ tool: 'create_issue', server: 'github', output: { content: [{ type: 'text', text: 'Created issue #42' }] } });
    // afterMCPExecution carries no call id, and the one MCP call before it was postgres's query: nothing to link it to.
    expect([results[0]!.data, results[1]!.parent, results[1]!.data]).toMatchObject([{ call_link: { by: 'tool_use_id' } }, undefined, { call_link: { by: 'none' } }]);
    const notes = events.filter((e) => e.kind === 'note').map((e) => (e.data as { text: string }).text);
    expect(notes).toContain('Install the dependencies and run the tests');
    expect(notes).toContain('The Shell call ghi789 failed (timeout): Command timed out after 30s');
    expect((await verifyFile(db)).ok).toBe(true);
  }, 90_000);

  it("[R-CODING-AGENT-HOOKS] denies a Shell call the policy denies with Cursor's deny answer naming the rule's reason, and records the refusal", async () => {
    const db = tempDb(dir);
    const r = await hook(fixture('pre-tool-use-shell-rm'), ['--store', `sqlite:${db}`, '--policy', policyFile]);
    expect(r.code).toBe(0);
    const reason = 'Witness policy rule no-rm-rf denies this Shell call: Recursive deletes are not allowed.';
    expect(answer(r)).toEqual({ permission: 'deny', user_message: reason, agent_message: reason });
    const events = await readEvents(db);
    expect(events.map((e) => [e.kind, e.outcome])).toEqual([
      ['session.start', undefined],
      ['tool.call', 'pending'],
      ['policy.decision', 'denied'],
      ['tool.result', 'denied'],
    ]);
    expect(events[1]!.data).toMatchObject({ tool: 'Shell', arguments: { command: 'rm -rf /project/build' } });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 30_000);

  it('[R-CODING-AGENT-HOOKS] holds an MCP call of a review rule (matched by server and tool) until a concurrent `witness approve`, then answers with no decision and records the release', async () => {
    const db = tempDb(dir);
    let approving: Promise<Run> | undefined;
    const r = await hook(fixture('before-mcp-execution'), ['--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', '25s'], (err) => {
      const m = /witness approve ([0-9a-f-]{36})/.exec(err);
      if (m !== null && approving === undefined) approving = runBin(['approve', m[1]!, '--key', keyFile, '--store', `sqlite:${db}`]);
    });
    expect(approving).toBeDefined();
    expect((await approving!).code).toBe(0);
    expect({ code: r.code, answer: answer(r) }).toEqual({ code: 0, answer: {} });
    const events = await readEvents(db);
    expect(events.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'policy.decision', 'approval.request', 'approval.decision', 'policy.decision']);
    expect(events.at(-1)!.data).toMatchObject({ decision: 'allow', approval: { approver: 'alice@corp' } });
    expect(events[1]!.data).toMatchObject({ tool: 'create_issue', server: 'github', requires_approval: true, arguments: { owner: 'acme', repo: 'app', title: 'Factorial overflows' } });
    // The decision is the approver's record; everything the hook wrote is under --agent.
    for (const e of events.filter((e) => e.kind !== 'approval.decision')) expect(e.agent.id).toBe('dev-laptop');
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it('denies a review call nobody approves at the limit, naming the request, and records the expiry', async () => {
    const db = tempDb(dir);
    const started = Date.now();
    const r = await hook(fixture('before-mcp-execution'), ['--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', '1500ms']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(r.code).toBe(0);
    const a = answer(r);
    expect(a['permission']).toBe('deny');
    expect(a['agent_message']).toMatch(/^The create_issue call was not approved within 1\.5 s \(approval request [0-9a-f-]{36}\), so it was refused\.$/);
    expect(a['user_message']).toBe(a['agent_message']);
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

  it('answers with no decision when the ledger is unreachable with --fail open, and denies with --fail closed', async () => {
    const store = ['--store', `sqlite:${path.join(dir, 'not-a-dir', 'sub', 'w.db')}`];
    fs.writeFileSync(path.join(dir, 'not-a-dir'), 'a file, so no directory can be made here');
    const open = await hook(fixture('pre-tool-use-shell'), [...store, '--fail', 'open']);
    expect({ code: open.code, answer: answer(open) }).toEqual({ code: 0, answer: {} });
    expect(open.stderr).toMatch(/^witness hook: /);
    const closed = await hook(fixture('pre-tool-use-shell'), [...store, '--fail', 'closed']);
    expect(closed.code).toBe(0);
    expect(answer(closed)['permission']).toBe('deny');
    expect(answer(closed)['agent_message']).toMatch(/^Witness could not record or check this action, so it was refused \(fail closed\): /);
    const prompt = await hook(fixture('before-submit-prompt'), [...store, '--fail', 'closed']);
    expect(answer(prompt)).toMatchObject({ continue: false });
  }, 30_000);

  it('blocks a payload that is not a Cursor hook event with exit 2 when closed, and lets it go on with exit 0 when open', async () => {
    const closed = await hook('{"hello":1}', ['--store', `sqlite:${tempDb(dir)}`]);
    expect(closed.code).toBe(2);
    expect(closed.stderr).toMatch(/not a Cursor hook event/);
    expect(answer(closed)['permission']).toBe('deny');
    const open = await hook('not json', ['--store', `sqlite:${tempDb(dir)}`, '--fail', 'open']);
    expect({ code: open.code, answer: answer(open) }).toEqual({ code: 0, answer: {} });
  }, 30_000);

  /** A github create_issue beforeMCPExecution or afterMCPExecution titled `title` (on `server`), as the fixtures send it: tool_input a JSON string. */
  const issue = (event: 'beforeMCPExecution' | 'afterMCPExecution', title: string, server = 'github'): string =>
    JSON.stringify({
      ...(JSON.parse(fixture(event === 'beforeMCPExecution' ? 'before-mcp-execution' : 'after-mcp-execution')) as object),
      mcp_server_name: server,
      tool_input: JSON.stringify({ owner: 'acme', repo: 'app', title }),
      ...(event === 'afterMCPExecution' ? { result_json: JSON.stringify({ content: [{ type: 'text', text: `Created ${title}` }] }) } : {}),
    });

  it('[R-CODING-AGENT-HOOKS] links each afterMCPExecution (no call id) to its own beforeMCPExecution by server, tool and arguments, two calls answered in reverse order', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`];
    for (const p of [issue('beforeMCPExecution', 'First'), issue('beforeMCPExecution', 'Second'), issue('afterMCPExecution', 'Second'), issue('afterMCPExecution', 'First')]) {
      expect({ code: (await hook(p, store)).code }).toEqual({ code: 0 });
    }
    const events = await readEvents(db);
    const calls = events.filter((e) => e.kind === 'tool.call');
    const results = events.filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => [e.parent, (e.data as { output: { content: Array<{ text: string }> } }).output.content[0]!.text])).toEqual([
      [calls[1]!.id, 'Created Second'],
      [calls[0]!.id, 'Created First'],
    ]);
    for (const r of results) expect(r.data).toMatchObject({ call_link: { by: 'arguments' } });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it("records a result no call matches with no parent and the reason: another server's call with the same tool and arguments, and a postToolUse whose tool_use_id no call has", async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`];
    const stray = JSON.stringify({ ...(JSON.parse(fixture('post-tool-use-shell')) as object), tool_use_id: 'never-called' });
    for (const p of [issue('beforeMCPExecution', 'Same', 'gitlab'), issue('afterMCPExecution', 'Same'), fixture('pre-tool-use-shell'), stray]) {
      expect({ code: (await hook(p, store)).code }).toEqual({ code: 0 });
    }
    const results = (await readEvents(db)).filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => [e.parent, e.data])).toEqual([
      [
        undefined,
        expect.objectContaining({
          server: 'github',
          call_link: { by: 'none', reason: 'The agent gave this result no call id, and no tool.call in this session with the same tool, server and arguments is waiting for its result.' },
        }),
      ],
      [undefined, expect.objectContaining({ tool: 'Shell', call_link: { by: 'none', reason: 'No tool.call in this session has the tool call id never-called.' } })],
    ]);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);
});

describe('witness hooks install / uninstall cursor', () => {
  it("adds Witness's hooks once beside the user's own, and uninstall restores the file byte for byte", async () => {
    const file = path.join(dir, 'proj', '.cursor', 'hooks.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const original = fs.readFileSync(path.join(FIX, 'hooks-with-other-hooks.json'));
    fs.writeFileSync(file, original);
    const args = ['hooks', 'install', 'cursor', '--settings', file, '--agent', 'dev-laptop', '--policy', policyFile, '--store', `sqlite:${path.join(dir, 'w.db')}`];
    const first = await runBin(args);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Added Witness's hook to sessionStart, beforeSubmitPrompt, preToolUse, postToolUse, postToolUseFailure, beforeMCPExecution, afterMCPExecution, stop, sessionEnd in /);
    const installed = JSON.parse(fs.readFileSync(file, 'utf8')) as { version: number; hooks: Record<string, Array<{ command: string; timeout?: number; failClosed?: boolean; matcher?: string }>> };
    expect(installed.version).toBe(1);
    expect(installed.hooks['preToolUse']![0]).toEqual({ command: '.cursor/hooks/validate-tool.sh', matcher: 'Shell|Read|Write' });
    const ours = installed.hooks['preToolUse']![1]!;
    expect(ours.command).toMatch(/^witness hook cursor /);
    expect(ours.command).toContain(`--agent dev-laptop --fail closed --review-timeout 45s --budget 50s --store sqlite:${path.join(dir, 'w.db')} --policy ${policyFile}`);
    expect(ours).toMatchObject({ timeout: 55, failClosed: true });
    expect(installed.hooks['postToolUse']![0]).toEqual({ command: ours.command, timeout: 55 });
    const afterFirst = fs.readFileSync(file);
    const second = await runBin(args);
    expect(second.stdout).toMatch(/already in .*; nothing changed\./);
    expect(fs.readFileSync(file).equals(afterFirst)).toBe(true);
    const removed = await runBin(['hooks', 'uninstall', 'cursor', '--settings', file]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/^Restored .* exactly as it was/);
    expect(fs.readFileSync(file).equals(original)).toBe(true);
    expect(fs.existsSync(`${file}.witness-backup`)).toBe(false);
  }, 60_000);

  it('uninstall after the user edited the file removes only the Witness entries and keeps the edit', async () => {
    const file = path.join(dir, 'proj2', 'hooks.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.copyFileSync(path.join(FIX, 'hooks-with-other-hooks.json'), file);
    expect((await runBin(['hooks', 'install', 'cursor', '--settings', file, '--fail', 'open'])).code).toBe(0);
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { hooks: Record<string, unknown[]> };
    expect(JSON.stringify(doc)).not.toContain('failClosed');
    doc.hooks['afterFileEdit']!.push({ command: '.cursor/hooks/lint.sh' });
    fs.writeFileSync(file, JSON.stringify(doc));
    const removed = await runBin(['hooks', 'uninstall', 'cursor', '--settings', file]);
    expect(removed.stdout).toMatch(/^Removed Witness's hook from /);
    const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'hooks-with-other-hooks.json'), 'utf8')) as { hooks: Record<string, unknown[]> };
    expected.hooks['afterFileEdit']!.push({ command: '.cursor/hooks/lint.sh' });
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(expected);
  }, 60_000);

  it('install creates a missing hooks file and uninstall removes it again', async () => {
    const file = path.join(dir, 'proj3', '.cursor', 'hooks.json');
    expect((await runBin(['hooks', 'install', 'cursor', '--settings', file])).code).toBe(0);
    expect((JSON.parse(fs.readFileSync(file, 'utf8')) as { version: number }).version).toBe(1);
    expect((await runBin(['hooks', 'uninstall', 'cursor', '--settings', file])).code).toBe(0);
    expect(fs.existsSync(file)).toBe(false);
  }, 60_000);

  it('refuses a hooks file that is not JSON with one sentence and leaves it untouched', async () => {
    const file = path.join(dir, 'proj4', '.cursor', 'hooks.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const broken = '{ "version": 1, "hooks": { "stop": [ { "command": "./audit.sh" } ] ,, }\n';
    fs.writeFileSync(file, broken);
    const r = await runBin(['hooks', 'install', 'cursor', '--settings', file]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/hooks\.json is not valid JSON \(.*\); fix it or move it aside before installing the hooks\./);
    expect(fs.readFileSync(file, 'utf8')).toBe(broken);
    expect(fs.existsSync(`${file}.witness-backup`)).toBe(false);
  }, 30_000);
});
