import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readEvents, verifyFile } from '../helpers/ledger.js';
import { BIN } from '../helpers/ledger.js';
import { requireBuild } from '../helpers/gateway.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { serverFixture } from '../server/fixture.js';

/**
 * `witness hook claude-code` when recording fails, the session was ended before, the input does
 * not fit, or the ledger hangs (issue 16 review: H3, H4, M2, M3, M5, M6 and the `mcp__a__b__c`
 * name), through the real binary as Claude Code runs it. The policy's deny and review are applied
 * whatever recording does; `--fail` governs only what the policy allows.
 */

requireBuild();
const dir = tempDir('witness-hook-fail-');
const policyFile = path.join(dir, 'policy.yaml');
fs.writeFileSync(
  policyFile,
  [
    'version: 1',
    'default: allow',
    'rules:',
    '  - id: no-rm-rf',
    '    match: { tool: Bash }',
    '    when: args.command contains "rm -rf"',
    '    effect: deny',
    '    reason: Recursive deletes are not allowed.',
    '  - id: eu-transfers',
    '    match: { server: bank__eu, tool: transfer }',
    '    effect: deny',
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

function hook(payload: unknown, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'hook', 'claude-code', '--agent', 'dev-laptop', '--policy', policyFile, ...args], { cwd: dir, env: { ...process.env, WITNESS_STORE: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
  });
}

const base = { session_id: 'sess1', transcript_path: '/x.jsonl', cwd: '/p', permission_mode: 'default' };
const bash = (command: string, extra: Record<string, unknown> = {}) => ({
  ...base,
  hook_event_name: 'PreToolUse',
  tool_name: 'Bash',
  tool_input: { command, ...extra },
  tool_use_id: `t-${command.length}`,
});
const denial = (r: Run): string | undefined =>
  r.stdout === '' ? undefined : (JSON.parse(r.stdout) as { hookSpecificOutput: { permissionDecision: string; permissionDecisionReason: string } }).hookSpecificOutput.permissionDecisionReason;
const POLICY_DENY = 'Witness policy rule no-rm-rf denies this Bash call: Recursive deletes are not allowed.';
/** A ledger location that cannot be opened: a file where its directory should be. */
function unreachable(): string[] {
  const blocker = path.join(dir, `blocker-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(blocker, 'not a directory');
  return ['--store', `sqlite:${path.join(blocker, 'w.db')}`];
}

describe('a session seen again after its session.end (a resumed Claude Code session)', () => {
  it('goes on in a new stream segment <stream>#2 whose session.start names the ended one; nothing is dropped and a deny still denies', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`];
    expect((await hook({ ...base, hook_event_name: 'SessionStart', source: 'startup' }, store)).code).toBe(0);
    expect((await hook({ ...base, hook_event_name: 'SessionEnd', reason: 'prompt_input_exit' }, store)).code).toBe(0);
    expect((await hook({ ...base, hook_event_name: 'SessionStart', source: 'resume' }, [...store, '--fail', 'closed'])).code).toBe(0);
    const ls = await hook(bash('ls'), [...store, '--fail', 'closed']);
    expect({ code: ls.code, stdout: ls.stdout }).toEqual({ code: 0, stdout: '' });
    const rm = await hook(bash('rm -rf /x'), [...store, '--fail', 'open']);
    expect(denial(rm)).toBe(POLICY_DENY);
    const events = await readEvents(db);
    const first = events.filter((e) => e.stream === 'claude-code:dev-laptop:sess1');
    const second = events.filter((e) => e.stream === 'claude-code:dev-laptop:sess1#2');
    expect(first.map((e) => e.kind)).toEqual(['session.start', 'note', 'note', 'session.end']);
    expect(second.map((e) => `${e.kind}:${e.outcome ?? ''}`)).toEqual([
      'session.start:',
      'note:',
      'tool.call:pending',
      'policy.decision:success',
      'tool.call:pending',
      'policy.decision:denied',
      'tool.result:denied',
    ]);
    expect(second[0]!.data).toMatchObject({ continues: { stream: 'claude-code:dev-laptop:sess1', session_end: first.at(-1)!.id } });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);
});

describe('a policy deny or review is applied whatever recording does', () => {
  it('denies under --fail open when the arguments hold a number the ledger cannot take, and records them in a form it can', async () => {
    const db = tempDb(dir);
    // As JSON text: 1e400 parses as Infinity, 1e20 as an integer beyond 2^53.
    const payload = JSON.stringify(bash('rm -rf /important', { timeout: 'T', huge: 'H' }))
      .replace('"T"', '1e20')
      .replace('"H"', '1e400');
    const r = await hook(payload, ['--store', `sqlite:${db}`, '--fail', 'open']);
    expect(denial(r)).toBe(POLICY_DENY);
    const events = await readEvents(db);
    expect(events.map((e) => `${e.kind}:${e.outcome ?? ''}`)).toEqual(['session.start:', 'tool.call:pending', 'policy.decision:denied', 'tool.result:denied']);
    expect(events[1]!.data).toMatchObject({ arguments: { command: 'rm -rf /important', timeout: { $number: '100000000000000000000' }, huge: { $number: 'Infinity' } } });
    expect((events[2]!.data as { arguments_digest?: string }).arguments_digest).toMatch(/^[0-9a-f]{64}$/);
  }, 30_000);

  it('denies (policy deny, and a review nobody can hold) under --fail open when the ledger cannot be opened, and lets an allowed call run', async () => {
    const store = unreachable();
    expect(denial(await hook(bash('rm -rf /x'), [...store, '--fail', 'open']))).toBe(POLICY_DENY);
    expect(denial(await hook(bash('./deploy prod'), [...store, '--fail', 'open']))).toMatch(/^The Bash call needs a person's approval \(policy rule review-deploy\)/);
    const ok = await hook(bash('ls'), [...store, '--fail', 'open']);
    expect({ code: ok.code, stdout: ok.stdout }).toEqual({ code: 0, stdout: '' });
  }, 30_000);

  it('refuses a held call when the budget runs out under --fail open (a review nobody answered is not consent), with a ledger that never answers', async () => {
    // A PostgreSQL that accepts connections and never says a word: opening the ledger hangs.
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => void sockets.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    afterAll(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    const port = (server.address() as net.AddressInfo).port;
    const store = ['--store', `postgres://w:w@127.0.0.1:${port}/w`, '--fail', 'open', '--review-timeout', '1s', '--budget', '3s'];
    const started = Date.now();
    const [held, denied, allowed] = await Promise.all([hook(bash('./deploy prod'), store), hook(bash('rm -rf /x'), store), hook(bash('ls'), store)]);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(denial(held)).toMatch(/^The Bash call needs a person's approval \(policy rule review-deploy\)/);
    expect(denial(denied)).toBe(POLICY_DENY);
    expect({ code: allowed.code, stdout: allowed.stdout }).toEqual({ code: 0, stdout: '' });
  }, 40_000);

  it('applies a rule on an MCP server whose name contains "__" (mcp__bank__eu__transfer is refused by the bank__eu rule)', async () => {
    const r = await hook({ ...base, hook_event_name: 'PreToolUse', tool_name: 'mcp__bank__eu__transfer', tool_input: { amount: 5 }, tool_use_id: 'm1' }, ['--store', `sqlite:${tempDb(dir)}`]);
    expect(denial(r)).toMatch(/^Witness policy rule eu-transfers denies this /);
  }, 30_000);
});

describe('inputs and outputs over the ledger limits', () => {
  it('records a tool input and a tool output over 1 MiB through artifacts instead of refusing the call', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`, '--fail', 'closed'];
    const write = await hook({ ...base, hook_event_name: 'PreToolUse', tool_name: 'Write', tool_input: { file_path: '/p/big.json', content: 'x'.repeat(1_200_000) }, tool_use_id: 'W1' }, store);
    expect({ code: write.code, stdout: write.stdout }).toEqual({ code: 0, stdout: '' });
    const after = await hook(
      { ...base, hook_event_name: 'PostToolUse', tool_name: 'Bash', tool_input: { command: 'cat big.log' }, tool_response: { stdout: 'y'.repeat(1_200_000), stderr: '' }, tool_use_id: 'B1' },
      store,
    );
    expect(after.code).toBe(0);
    const events = await readEvents(db);
    const call = events.find((e) => e.kind === 'tool.call')!;
    expect(call.data).toMatchObject({ tool: 'Write', arguments: { $artifact: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(call.artifacts?.[0]?.sha256).toBe((call.data as { arguments: { $artifact: string } }).arguments.$artifact);
    const result = events.find((e) => e.kind === 'tool.result')!;
    expect(result.data).toMatchObject({ output: { $artifact: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);

  it('records a prompt over 1 MiB as its head and an artifact instead of refusing it under --fail closed', async () => {
    const db = tempDb(dir);
    const prompt = `Summarise this log:\n${'line of log\n'.repeat(100_000)}`;
    const r = await hook({ ...base, hook_event_name: 'UserPromptSubmit', prompt }, ['--store', `sqlite:${db}`, '--fail', 'closed']);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '' });
    const note = (await readEvents(db)).find((e) => e.kind === 'note')!;
    const data = note.data as { text: string; text_artifact: { $artifact: string; bytes: number } };
    expect(data.text.startsWith('Summarise this log:\nline of log\n')).toBe(true);
    expect(data.text.length).toBeLessThan(5000);
    expect(data.text_artifact.bytes).toBe(Buffer.byteLength(prompt));
    expect(note.artifacts?.[0]?.sha256).toBe(data.text_artifact.$artifact);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 30_000);

  it('answers a payload over 16 MiB as --fail says (exit 0 open, exit 2 closed) and records the fault', async () => {
    const db = tempDb(dir);
    const big = JSON.stringify({ ...base, hook_event_name: 'PostToolUse', tool_name: 'Bash', tool_input: {}, tool_response: 'z'.repeat(17 * 1024 * 1024) });
    const open = await hook(big, ['--store', `sqlite:${db}`, '--fail', 'open']);
    expect({ code: open.code, stdout: open.stdout }).toEqual({ code: 0, stdout: '' });
    const closed = await hook(big, ['--store', `sqlite:${db}`, '--fail', 'closed']);
    expect(closed.code).toBe(2);
    const errors = (await readEvents(db)).filter((e) => e.kind === 'error');
    expect(errors).toHaveLength(2);
    expect(errors[0]!.stream).toBe('witness.gateway');
    expect(errors[0]!.agent.id).toBe('dev-laptop');
    expect(errors[0]!.data).toMatchObject({ code: 'hook_failed', source: 'gateway', message: expect.stringMatching(/larger than 16 MiB/) });
  }, 60_000);
});

describe('what can and cannot be refused, and faults on the record', () => {
  it('lets Stop, SubagentStop, PreCompact and SessionEnd go on under --fail closed when the ledger is unreachable', async () => {
    const store = unreachable();
    for (const event of ['Stop', 'SubagentStop', 'PreCompact', 'SessionEnd', 'PostToolUse']) {
      const r = await hook({ ...base, hook_event_name: event, tool_name: 'Bash', tool_input: {}, tool_response: {} }, [...store, '--fail', 'closed']);
      // Exit 0, and at most a notice for the user: no `decision`, no `continue: false`, nothing that blocks.
      expect({ event, code: r.code, stdout: r.stdout }).toEqual({
        event,
        code: 0,
        // The notice says what happened, which is no refusal (review 2, L-G).
        stdout: expect.stringMatching(
          new RegExp(`^\\{"systemMessage":"Witness could not record this ${event} event, which goes on as usual \\(fail closed holds back only tool calls and prompts\\): .*"\\}\\n$`),
        ),
      });
    }
  }, 60_000);

  it('records an error event for a payload it cannot read, when the ledger is reachable', async () => {
    const db = tempDb(dir);
    const store = ['--store', `sqlite:${db}`, '--fail', 'open'];
    expect((await hook({ ...base, hook_event_name: 'PreToolUse', tool_name: 'x'.repeat(2000), tool_input: {} }, store)).code).toBe(0);
    const events = await readEvents(db);
    const errors = events.filter((e) => e.kind === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.data).toMatchObject({ code: 'hook_failed', source: 'gateway', message: expect.stringMatching(/not a Claude Code hook event/) });
  }, 30_000);
});

describe('hook streams on a shared ledger', () => {
  it("refuses another agent key's /v1/events into a hook stream (claude-code:, codex:, cursor:, gemini:)", async () => {
    const f = await serverFixture(tempDir('witness-hook-squat-'));
    try {
      for (const stream of ['claude-code:dev-laptop:s1', 'codex:dev-laptop:s1', 'cursor:x:s', 'gemini:y:s']) {
        const r = await f.call('POST', '/v1/events', { key: f.keys.agent, body: { events: [{ stream, kind: 'session.end', data: { reason: 'completed' } }] } });
        expect({ stream, status: r.status }).toEqual({ stream, status: 403 });
      }
      const own = await f.call('POST', '/v1/events', { key: f.keys.agent, body: { events: [{ stream: 'claude-code-notes', kind: 'note', data: { text: 'fine' } }] } });
      expect(own.status).toBe(201);
    } finally {
      await f.close();
    }
  }, 30_000);
});
