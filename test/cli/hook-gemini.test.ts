import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, artifactFile, readEvents, runBin, verifyFile } from '../helpers/ledger.js';
import { requireBuild } from '../helpers/gateway.js';
import { type HookRun, hookFixture, runHook, shellAndMcpRules, writeHookPolicy } from '../helpers/hook.js';
import { temporaryHome } from '../helpers/real-home.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness hook gemini` as Gemini CLI runs it: the documented payloads (test/fixtures/hooks/gemini)
 * on stdin of the real binary (bin/witness.js → dist/, so build first), the answer read as Gemini
 * reads it (exit code, stdout JSON with `decision` and `reason`), the ledger read after.
 */

requireBuild();
// hooks install keeps its backup in the state directory: a temporary one, never the real ~/.witness.
temporaryHome();
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'gemini');
const fixture = (name: string): string => hookFixture('gemini', name);
const SESSION = '0c4a7b1e-5f3d-4c2a-9b8e-2d6f1a9c3e71';
const dir = tempDir('witness-hook-gemini-');
const { policyFile, keyFile } = writeHookPolicy(dir, shellAndMcpRules('run_shell_command', { id: 'issues-need-review', server: 'github', tool: 'create_issue' }));

type Run = HookRun;

/** Runs the hook with `payload` on stdin; `onErr` sees stderr as it arrives (the approval request id is logged there). */
const hook = (payload: string, args: string[], onErr?: (text: string) => void): Promise<Run> =>
  runHook([process.execPath, BIN, 'hook', 'gemini', '--agent', 'dev-laptop', ...args], payload, { cwd: dir, onErr });

/** What Gemini reads from an exit-0 hook: its stdout as JSON. */
const answer = (r: Run): { decision?: string; reason?: string; systemMessage?: string } => JSON.parse(r.stdout) as { decision?: string; reason?: string };

describe('witness hook gemini', () => {
  it('[R-CODING-AGENT-HOOKS] records a session, the prompt, an allowed write_file call and its result and the final answer, each answered {} with exit 0', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`, '--policy', policyFile];
    for (const name of ['session-start', 'before-agent', 'before-tool-write-file', 'after-tool-write-file', 'after-agent', 'session-end']) {
      const r = await hook(fixture(name), store);
      expect({ name, code: r.code, stdout: r.stdout }).toEqual({ name, code: 0, stdout: '{}\n' });
    }
    const events = await readEvents(db);
    expect(new Set(events.map((e) => e.stream))).toEqual(new Set([`gemini:dev-laptop:${SESSION}`]));
    expect(events.map((e) => e.kind)).toEqual(['session.start', 'note', 'note', 'tool.call', 'policy.decision', 'tool.result', 'note', 'note', 'session.end']);
    for (const e of events) expect([e.agent.id, e.recorder?.kind]).toEqual(['dev-laptop', 'gateway']);
    const call = events.find((e) => e.kind === 'tool.call')!;
    expect(call.data).toMatchObject({
      tool: 'write_file',
      arguments: { file_path: '/home/user/my-project/src/factorial.ts' },
      client_claims: { hook_event: 'BeforeTool', cwd: '/home/user/my-project' },
    });
    expect(events.find((e) => e.kind === 'policy.decision')!.data).toMatchObject({ decision: 'allow' });
    expect(events.find((e) => e.kind === 'tool.result')!.data).toMatchObject({ tool: 'write_file', output: { returnDisplay: 'Wrote src/factorial.ts' } });
    const notes = events.filter((e) => e.kind === 'note').map((e) => (e.data as { text: string }).text);
    expect(notes).toEqual([
      'gemini session startup.',
      'Write a function that computes a factorial in src/factorial.ts',
      'I wrote src/factorial.ts with a recursive factorial function.',
      'gemini session ended: exit.',
    ]);
    expect((await verifyFile(db)).ok).toBe(true);
    const verified = await runBin(['verify', '--store', `sqlite:${db}`]);
    expect(verified.code).toBe(0);
  }, 60_000);

  it('answers every documented payload with {} and exit 0 when no policy objects, and records each (the notification as a note)', async () => {
    const db = tempDb(dir);
    const names = fs
      .readdirSync(FIX)
      .filter((f) => f.endsWith('.json') && !f.startsWith('settings-'))
      .map((f) => f.slice(0, -'.json'.length))
      // As a session runs: started first, ended last (an event after SessionEnd would open a new stream).
      .sort((a, b) => Number(b === 'session-start') - Number(a === 'session-start') || Number(a === 'session-end') - Number(b === 'session-end'));
    expect(names).toHaveLength(11);
    for (const name of names) {
      const r = await hook(fixture(name), ['--store', `sqlite:${db}`]);
      expect({ name, code: r.code, stdout: r.stdout }).toEqual({ name, code: 0, stdout: '{}\n' });
    }
    const events = await readEvents(db);
    expect(new Set(events.map((e) => e.stream))).toEqual(new Set([`gemini:dev-laptop:${SESSION}`, 'gemini:dev-laptop:test-123']));
    expect(events.filter((e) => e.kind === 'tool.call')).toHaveLength(5);
    expect(events.find((e) => e.kind === 'note' && e.action === 'Notification')?.data).toMatchObject({
      text: 'Tool Confirm Shell Command requires execution',
      client_claims: { notification_type: 'ToolPermission' },
    });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 90_000);

  it('records the agent identity of the installed command even when the payload claims another', async () => {
    const db = tempDb(dir);
    const claimed = { ...(JSON.parse(fixture('before-tool-shell')) as object), agent: { id: 'root-bot' }, agent_id: 'root-bot' };
    const r = await hook(JSON.stringify(claimed), ['--store', `sqlite:${db}`]);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '{}\n' });
    const events = await readEvents(db);
    expect(events.map((e) => e.agent.id)).toEqual(['dev-laptop', 'dev-laptop']);
    expect(events[0]!.stream).toBe(`gemini:dev-laptop:${SESSION}`);
  }, 30_000);

  it("[R-CODING-AGENT-HOOKS] denies a run_shell_command the policy denies with Gemini's deny answer naming the rule's reason, and records the refusal", async () => {
    const db = tempDb(dir);
    const r = await hook(fixture('before-tool-shell-rm'), ['--store', `sqlite:${db}`, '--policy', policyFile]);
    expect(r.code).toBe(0);
    expect(answer(r)).toEqual({ decision: 'deny', reason: 'Witness policy rule no-rm-rf denies this run_shell_command call: Recursive deletes are not allowed.' });
    const events = await readEvents(db);
    expect(events.map((e) => [e.kind, e.outcome])).toEqual([
      ['session.start', undefined],
      ['tool.call', 'pending'],
      ['policy.decision', 'denied'],
      ['tool.result', 'denied'],
    ]);
    expect(events[1]!.data).toMatchObject({ tool: 'run_shell_command', arguments: { command: 'rm -rf /home/user/my-project/build' } });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 30_000);

  it('[R-CODING-AGENT-HOOKS] holds an MCP call for review until a concurrent `witness approve`, then answers {} and records the release', async () => {
    const db = tempDb(dir);
    let approving: Promise<Run> | undefined;
    const r = await hook(fixture('before-tool-mcp'), ['--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', '25s'], (err) => {
      const m = /witness approve ([0-9a-f-]{36})/.exec(err);
      if (m !== null && approving === undefined) approving = runBin(['approve', m[1]!, '--key', keyFile, '--store', `sqlite:${db}`]);
    });
    expect(approving).toBeDefined();
    expect((await approving!).code).toBe(0);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '{}\n' });
    const events = await readEvents(db);
    expect(events.map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'policy.decision', 'approval.request', 'approval.decision', 'policy.decision']);
    expect(events.at(-1)!.data).toMatchObject({ decision: 'allow', approval: { approver: 'alice@corp' } });
    expect(events[1]!.data).toMatchObject({ tool: 'create_issue', server: 'github', requires_approval: true, client_claims: { mcp_context: { server_name: 'github' } } });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it('denies a review call nobody approves at the limit, and records the expiry', async () => {
    const db = tempDb(dir);
    const started = Date.now();
    const r = await hook(fixture('before-tool-mcp'), ['--store', `sqlite:${db}`, '--policy', policyFile, '--review-timeout', '1500ms']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(r.code).toBe(0);
    expect(answer(r).decision).toBe('deny');
    expect(answer(r).reason).toMatch(/^The create_issue call was not approved within 1\.5 s \(approval request [0-9a-f-]{36}\), so it was refused\.$/);
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

  it('refuses a payload that is not a Gemini CLI hook event with exit 2 and the reason on stderr when closed, and answers {} when open', async () => {
    const closed = await hook('{"hello":1}', ['--store', `sqlite:${tempDb(dir)}`]);
    expect({ code: closed.code, stdout: closed.stdout }).toEqual({ code: 2, stdout: '' });
    expect(closed.stderr).toMatch(/Witness could not record or check this action, so it was refused \(fail closed\): The hook payload is not a Gemini CLI hook event/);
    const open = await hook('not json', ['--store', `sqlite:${tempDb(dir)}`, '--fail', 'open']);
    expect({ code: open.code, stdout: open.stdout }).toEqual({ code: 0, stdout: '{}\n' });
  }, 30_000);

  it('answers {} when the ledger is unreachable with --fail open, and denies the call with --fail closed', async () => {
    fs.writeFileSync(path.join(dir, 'not-a-dir'), 'a file, so no directory can be made here');
    const store = ['--store', `sqlite:${path.join(dir, 'not-a-dir', 'sub', 'w.db')}`];
    const open = await hook(fixture('before-tool-shell'), [...store, '--fail', 'open']);
    expect({ code: open.code, stdout: open.stdout }).toEqual({ code: 0, stdout: '{}\n' });
    const closed = await hook(fixture('before-tool-shell'), [...store, '--fail', 'closed']);
    expect(closed.code).toBe(0);
    expect(answer(closed)).toMatchObject({ decision: 'deny', reason: expect.stringMatching(/^Witness could not record or check this action, so it was refused \(fail closed\): /) as unknown });
  }, 30_000);

  /** A run_shell_command BeforeTool or AfterTool of `command`, as the fixture's session (or `session`) sends it. */
  const shell = (event: 'BeforeTool' | 'AfterTool', command: string, session = SESSION): string =>
    JSON.stringify({
      ...(JSON.parse(fixture('before-tool-shell')) as object),
      session_id: session,
      hook_event_name: event,
      tool_input: { command, dir_path: '/home/user/my-project' },
      ...(event === 'AfterTool' ? { tool_response: { llmContent: `ran ${command}`, returnDisplay: `ran ${command}` } } : {}),
    });

  it('[R-CODING-AGENT-HOOKS] links each AfterTool to its own BeforeTool by tool and arguments (Gemini gives no call id): two calls answered in reverse order, and of two identical calls the newest unanswered first', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`];
    const order = [
      shell('BeforeTool', 'npm test'),
      shell('BeforeTool', 'npm run lint'),
      shell('AfterTool', 'npm run lint'),
      shell('AfterTool', 'npm test'),
      shell('BeforeTool', 'git status'),
      shell('BeforeTool', 'git status'),
      shell('AfterTool', 'git status'),
      shell('AfterTool', 'git status'),
    ];
    for (const p of order) expect((await hook(p, store)).code).toBe(0);
    const events = await readEvents(db);
    const calls = events.filter((e) => e.kind === 'tool.call');
    const results = events.filter((e) => e.kind === 'tool.result');
    expect(calls).toHaveLength(4);
    expect(results.map((e) => e.parent)).toEqual([calls[1]!.id, calls[0]!.id, calls[3]!.id, calls[2]!.id]);
    expect(results.map((e) => (e.data as { output: { llmContent: string } }).output.llmContent)).toEqual(['ran npm run lint', 'ran npm test', 'ran git status', 'ran git status']);
    for (const r of results) expect(r.data).toMatchObject({ call_link: { by: 'arguments' } });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it('records an AfterTool that no unanswered BeforeTool of the same session, tool and arguments precedes with no parent and the reason, never linking across sessions', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`];
    const other = '7d1e2f3a-0b4c-4d5e-8f6a-1b2c3d4e5f60';
    for (const p of [
      shell('BeforeTool', 'npm test', other),
      shell('AfterTool', 'npm test'),
      shell('BeforeTool', 'npm run build'),
      shell('AfterTool', 'npm run build'),
      shell('AfterTool', 'npm run build'),
    ]) {
      expect((await hook(p, store)).code).toBe(0);
    }
    const events = await readEvents(db);
    const mine = events.filter((e) => e.stream === `gemini:dev-laptop:${SESSION}`);
    const build = mine.find((e) => e.kind === 'tool.call')!;
    const results = mine.filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => e.parent)).toEqual([undefined, build.id, undefined]);
    const unlinked = {
      call_link: { by: 'none', reason: 'The agent gave this result no call id, and no tool.call in this session with the same tool, server and arguments is waiting for its result.' },
    };
    expect(results[0]!.data).toMatchObject(unlinked);
    expect(results[2]!.data).toMatchObject(unlinked);
    expect(events.filter((e) => e.stream !== `gemini:dev-laptop:${SESSION}`).map((e) => e.kind)).toEqual(['session.start', 'tool.call']);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it('stores an oversized argument and output as artifacts redacted as the ledger is (no secret in the store), and links the result to its call through them', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`];
    const secret = 'sk-proj-Zq8xT4mN2vB6cL1kR9wY3hJ5';
    const aws = 'AKIAQ7N3LP2XW5YT8RZK';
    const content = `OPENAI_API_KEY=${secret}\n${'const filler = 1;\n'.repeat(80_000)}aws_access_key_id = ${aws}\n`;
    const write = (event: 'BeforeTool' | 'AfterTool'): string =>
      JSON.stringify({
        ...(JSON.parse(fixture(event === 'BeforeTool' ? 'before-tool-write-file' : 'after-tool-write-file')) as object),
        tool_input: { file_path: '/home/user/my-project/.env.big', content },
        ...(event === 'AfterTool' ? { tool_response: { llmContent: content, returnDisplay: 'Wrote .env.big' } } : {}),
      });
    for (const p of [write('BeforeTool'), write('AfterTool')]) expect((await hook(p, store)).code).toBe(0);
    const events = await readEvents(db);
    const call = events.find((e) => e.kind === 'tool.call')!;
    const result = events.find((e) => e.kind === 'tool.result')!;
    const argsRef = (call.data as { arguments: { $artifact: string } }).arguments.$artifact;
    const outRef = (result.data as { output: { $artifact: string } }).output.$artifact;
    expect([argsRef, outRef]).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(result.parent).toBe(call.id);
    for (const sha of [argsRef, outRef]) {
      const stored = fs.readFileSync(artifactFile(db, sha), 'utf8');
      expect(stored.length).toBeGreaterThan(1_000_000);
      expect(stored).not.toContain(secret);
      expect(stored).not.toContain(aws);
      expect(stored).toContain('[REDACTED:');
    }
    const folder = path.dirname(path.dirname(artifactFile(db, argsRef)));
    for (const f of fs.readdirSync(folder, { recursive: true, encoding: 'utf8' })) {
      const file = path.join(folder, f);
      if (fs.statSync(file).isFile()) expect({ file: f, secret: fs.readFileSync(file, 'utf8').includes(secret) }).toEqual({ file: f, secret: false });
    }
    expect(JSON.stringify(events)).not.toContain(secret);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);
});

describe('witness hooks install / uninstall gemini', () => {
  it("adds Witness's hooks once beside the user's own in .gemini/settings.json, and uninstall restores the file byte for byte", async () => {
    const project = path.join(dir, 'proj');
    const settings = path.join(project, '.gemini', 'settings.json');
    fs.mkdirSync(path.dirname(settings), { recursive: true });
    const original = fs.readFileSync(path.join(FIX, 'settings-with-hooks.json'));
    fs.writeFileSync(settings, original);
    const args = ['hooks', 'install', 'gemini', '--project', '--agent', 'dev-laptop', '--policy', policyFile, '--store', `sqlite:${path.join(dir, 'w.db')}`];
    const first = await runBin(args, { cwd: project });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Added Witness's hook to SessionStart, BeforeAgent, BeforeTool, AfterTool, AfterAgent, SessionEnd in .*\.gemini\/settings\.json /);
    const installed = JSON.parse(fs.readFileSync(settings, 'utf8')) as {
      ui: unknown;
      hooks: Record<string, Array<{ matcher?: string; hooks: Array<{ name: string; command: string; timeout: number }> }>>;
    };
    expect(installed.ui).toEqual({ theme: 'GitHub' });
    expect(installed.hooks['BeforeTool']![0]!.hooks[0]!.name).toBe('security-check');
    const ours = installed.hooks['BeforeTool']![1]!;
    expect(ours.matcher).toBe('*');
    expect(ours.hooks[0]).toMatchObject({ name: 'witness', type: 'command', timeout: 55_000 });
    expect(ours.hooks[0]!.command).toBe(
      `witness hook gemini --agent dev-laptop --fail closed --review-timeout 45s --budget 50s --store sqlite:${path.join(dir, 'w.db')} --policy ${policyFile} --installed-by=witness-hooks-install`,
    );
    const afterFirst = fs.readFileSync(settings);
    const second = await runBin(args, { cwd: project });
    expect(second.stdout).toMatch(/already in .*; nothing changed\./);
    expect(fs.readFileSync(settings).equals(afterFirst)).toBe(true);
    const removed = await runBin(['hooks', 'uninstall', 'gemini', '--project'], { cwd: project });
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/^Restored .* exactly as it was/);
    expect(fs.readFileSync(settings).equals(original)).toBe(true);
    expect(fs.existsSync(`${settings}.witness-backup`)).toBe(false);
  }, 60_000);

  it("uninstall after the user edited the file removes only Witness's hooks, keeping the edit and the user's comments", async () => {
    const settings = path.join(dir, 'proj2', 'settings.json');
    fs.mkdirSync(path.dirname(settings), { recursive: true });
    const original = fs.readFileSync(path.join(FIX, 'settings-with-comments.json'), 'utf8');
    fs.writeFileSync(settings, original);
    expect((await runBin(['hooks', 'install', 'gemini', '--settings', settings])).code).toBe(0);
    fs.writeFileSync(settings, fs.readFileSync(settings, 'utf8').replace('"theme": "GitHub"', '"theme": "Dracula"'));
    const removed = await runBin(['hooks', 'uninstall', 'gemini', '--settings', settings]);
    expect(removed.stdout).toMatch(/^Removed Witness's hook from /);
    expect(fs.readFileSync(settings, 'utf8')).toBe(original.replace('"theme": "GitHub"', '"theme": "Dracula"'));
  }, 60_000);

  it('the installed command works as Gemini runs it: `bash -c` in the project, with only the environment Gemini passes on', async () => {
    const project = path.join(dir, 'proj-run');
    const settings = path.join(project, '.gemini', 'settings.json');
    const db = path.join(dir, 'space dir', 'w.db');
    fs.mkdirSync(path.dirname(db), { recursive: true });
    const command = `'${process.execPath}' '${BIN}'`;
    expect((await runBin(['hooks', 'install', 'gemini', '--settings', settings, '--agent', 'dev-laptop', '--policy', policyFile, '--store', `sqlite:${db}`, '--command', command])).code).toBe(0);
    const doc = JSON.parse(fs.readFileSync(settings, 'utf8')) as { hooks: Record<string, Array<{ hooks: Array<{ command: string }> }>> };
    const installed = doc.hooks['BeforeTool']![0]!.hooks[0]!.command;
    // hookRunner.ts: spawn(bash, ['-c', command]) with cwd = the payload's cwd and a sanitized environment (PATH, HOME and GEMINI_* kept).
    const r = await new Promise<Run>((resolve) => {
      const child = spawn('bash', ['-c', installed], { cwd: project, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, GEMINI_PROJECT_DIR: project, GEMINI_SESSION_ID: SESSION } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(fixture('before-tool-shell-rm'));
    });
    expect({ code: r.code, answer: answer(r) }).toEqual({
      code: 0,
      answer: { decision: 'deny', reason: 'Witness policy rule no-rm-rf denies this run_shell_command call: Recursive deletes are not allowed.' },
    });
    expect((await readEvents(db)).map((e) => e.kind)).toEqual(['session.start', 'tool.call', 'policy.decision', 'tool.result']);
  }, 60_000);

  it('a broken settings file gets one clear sentence and is left untouched', async () => {
    const settings = path.join(dir, 'proj3', '.gemini', 'settings.json');
    fs.mkdirSync(path.dirname(settings), { recursive: true });
    const broken = '{\n  "ui": { "theme": "GitHub" },\n}\n';
    fs.writeFileSync(settings, broken);
    const r = await runBin(['hooks', 'install', 'gemini', '--settings', settings]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe(`witness: ${settings} is not valid JSON (PropertyNameExpected at line 3); fix it or move it aside before installing the hooks.`);
    expect(fs.readFileSync(settings, 'utf8')).toBe(broken);
    expect(fs.existsSync(`${settings}.witness-backup`)).toBe(false);
  }, 30_000);

  it('install creates a missing settings file and uninstall removes it again', async () => {
    const settings = path.join(dir, 'proj4', '.gemini', 'settings.json');
    expect((await runBin(['hooks', 'install', 'gemini', '--settings', settings])).code).toBe(0);
    expect(Object.keys((JSON.parse(fs.readFileSync(settings, 'utf8')) as { hooks: object }).hooks)).toEqual(['SessionStart', 'BeforeAgent', 'BeforeTool', 'AfterTool', 'AfterAgent', 'SessionEnd']);
    expect((await runBin(['hooks', 'uninstall', 'gemini', '--settings', settings])).code).toBe(0);
    expect(fs.existsSync(settings)).toBe(false);
  }, 60_000);
});
