import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CODEX_EVENTS, CODEX_HOOK_MARKER, addCodexHooks, codexAnswer, codexTool, hookAdapter, parseCodex, removeCodexHooks } from '../../src/integrations/index.js';
import { REPO_ROOT } from '../helpers/ledger.js';

/** Codex's documented hook payloads (test/fixtures/hooks/codex) read into Witness's neutral events. */

const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'codex');
const fixture = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(FIX, `${name}.json`), 'utf8'));
const SESSION = '019a6c2e-6a4f-7c21-9d0b-3f5e2b8c1a47';
const COMMAND = "witness hook codex --agent dev-laptop --fail closed --review-timeout 45s --budget 50s --policy '/etc/witness/policy one.yaml' --installed-by=witness-hooks-install";

describe('parseCodex reads every documented payload', () => {
  it('SessionStart becomes session.start with its source and the session facts as claims', () => {
    expect(parseCodex(fixture('session-start'))).toEqual({
      type: 'session.start',
      agentSession: SESSION,
      event: 'SessionStart',
      source: 'startup',
      claims: {
        cwd: '/home/user/my-project',
        transcript_path: `/home/user/.codex/sessions/2026/09/12/rollout-2026-09-12T10-15-30-${SESSION}.jsonl`,
        model: 'gpt-5',
        permission_mode: 'default',
        source: 'startup',
      },
    });
  });

  it('UserPromptSubmit becomes a prompt', () => {
    const e = parseCodex(fixture('user-prompt-submit'));
    expect(e).toMatchObject({ type: 'prompt', event: 'UserPromptSubmit', prompt: 'Add a factorial function to src/math.ts and run the tests.' });
    expect(e.claims).toMatchObject({ turn_id: 'turn-1', model: 'gpt-5' });
  });

  it('a PreToolUse of Bash is tool Bash with the command as its arguments and the call id as callRef', () => {
    expect(parseCodex(fixture('pre-tool-use-bash'))).toMatchObject({
      type: 'tool.before',
      event: 'PreToolUse',
      tool: 'Bash',
      server: undefined,
      args: { command: 'npm test' },
      callRef: 'call_bash_01',
      claims: { tool_use_id: 'call_bash_01', turn_id: 'turn-1' },
    });
  });

  it('a file edit is tool apply_patch whose command is the patch text', () => {
    const e = parseCodex(fixture('pre-tool-use-apply-patch'));
    expect(e).toMatchObject({ type: 'tool.before', tool: 'apply_patch', callRef: 'call_patch_01' });
    expect((e as { args: { command: string } }).args.command).toMatch(/^\*\*\* Begin Patch\n\*\*\* Update File: src\/math\.ts\n/);
  });

  it('an MCP tool mcp__memory__create_entities is server memory, tool create_entities', () => {
    expect(parseCodex(fixture('pre-tool-use-mcp'))).toMatchObject({
      type: 'tool.before',
      tool: 'create_entities',
      server: 'memory',
      args: { entities: [{ name: 'my-project' }] },
    });
  });

  it('PostToolUse becomes tool.after with the tool response as output', () => {
    expect(parseCodex(fixture('post-tool-use-bash'))).toMatchObject({ type: 'tool.after', tool: 'Bash', callRef: 'call_bash_01', output: expect.stringMatching(/^Exit code: 0\n/) });
    expect(parseCodex(fixture('post-tool-use-apply-patch'))).toMatchObject({ type: 'tool.after', tool: 'apply_patch', callRef: 'call_patch_01' });
    expect(parseCodex(fixture('post-tool-use-mcp'))).toMatchObject({ type: 'tool.after', server: 'memory', tool: 'create_entities', output: { isError: false } });
  });

  it("Stop is a note carrying the agent's last message; Interrupt is a note; SessionEnd ends the session", () => {
    expect(parseCodex(fixture('stop'))).toMatchObject({ type: 'other', event: 'Stop', text: 'Added factorial to src/math.ts; all tests pass.' });
    expect(parseCodex(fixture('interrupt'))).toMatchObject({ type: 'other', event: 'Interrupt', text: undefined });
    expect(parseCodex(fixture('session-end'))).toMatchObject({ type: 'session.end', event: 'SessionEnd', reason: 'other' });
  });

  it("keeps a subagent's agent_id and agent_type as claims only (the identity is the hook command's)", () => {
    const e = parseCodex({ ...(fixture('pre-tool-use-bash') as object), agent_id: 'thread-child', agent_type: 'explorer' });
    expect(e.claims).toMatchObject({ agent_id: 'thread-child', agent_type: 'explorer' });
    expect(e).not.toHaveProperty('agent');
  });

  it('refuses what is not a Codex hook payload with one sentence naming the field', () => {
    expect(() => parseCodex({ hello: 1 })).toThrow(/^The hook payload is not a Codex hook event \(session_id: /);
    expect(() => parseCodex([])).toThrow(/not a Codex hook event/);
    const noTool = { ...(fixture('pre-tool-use-bash') as Record<string, unknown>) };
    delete noTool['tool_name'];
    expect(() => parseCodex(noTool)).toThrow('The Codex PreToolUse payload has no tool_name.');
  });
});

describe('codexTool', () => {
  it('splits only the mcp__<server>__<tool> names', () => {
    expect(codexTool('Bash')).toEqual({ tool: 'Bash' });
    expect(codexTool('apply_patch')).toEqual({ tool: 'apply_patch' });
    expect(codexTool('mcp__filesystem__read_file')).toEqual({ server: 'filesystem', tool: 'read_file' });
    expect(codexTool('mcp__fs__read__deep')).toEqual({ server: 'fs', tool: 'read__deep' });
  });
});

describe('codexAnswer', () => {
  const deny = { decision: 'deny', reason: 'No.' } as const;
  it('says nothing and exits 0 to allow, so Codex goes on as it would without the hook', () => {
    for (const type of ['tool.before', 'prompt', 'other'] as const) expect(codexAnswer({ type, event: 'X' }, { decision: 'allow' })).toEqual({ stdout: '', stderr: '', exitCode: 0 });
  });

  it('refuses a tool call with the documented PreToolUse deny shape and exit 0', () => {
    const a = codexAnswer({ type: 'tool.before', event: 'PreToolUse' }, deny);
    expect(a.exitCode).toBe(0);
    expect(JSON.parse(a.stdout)).toEqual({ hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: 'No.' } });
  });

  it('blocks a prompt with decision block', () => {
    expect(JSON.parse(codexAnswer({ type: 'prompt', event: 'UserPromptSubmit' }, deny).stdout)).toEqual({ decision: 'block', reason: 'No.' });
  });

  it('answers an unreadable payload with the PreToolUse deny shape (exit 2 would make a Stop hook continue the turn)', () => {
    const a = codexAnswer(undefined, deny);
    expect(a.exitCode).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({ hookSpecificOutput: { permissionDecision: 'deny' } });
  });

  it('only warns (systemMessage) on events nothing can refuse', () => {
    for (const type of ['session.start', 'session.end', 'tool.after', 'other'] as const) {
      const a = codexAnswer({ type, event: 'Stop' }, deny);
      expect({ type, exitCode: a.exitCode, out: JSON.parse(a.stdout) as unknown }).toEqual({ type, exitCode: 0, out: { systemMessage: 'No.' } });
    }
  });
});

describe('addCodexHooks / removeCodexHooks over .codex/hooks.json', () => {
  const original = fs.readFileSync(path.join(FIX, 'hooks-with-other-hooks.json'), 'utf8');

  it("adds one group per recorded event after the user's own, with no matcher, and keeps everything else", () => {
    const change = addCodexHooks(original, COMMAND, 55, '.codex/hooks.json');
    expect(change.events).toEqual(CODEX_EVENTS.map((e) => e.event));
    expect(change.events).toEqual(['SessionStart', 'UserPromptSubmit', 'PreToolUse', 'PostToolUse', 'Stop', 'SessionEnd']);
    const doc = JSON.parse(change.text) as { description: string; hooks: Record<string, Array<Record<string, unknown> & { hooks: Array<Record<string, unknown>> }>> };
    expect(Object.keys(doc)).toEqual(['description', 'hooks']);
    const before = JSON.parse(original) as { hooks: Record<string, unknown[]> };
    expect(doc.hooks['PreToolUse']![0]).toEqual(before.hooks['PreToolUse']![0]);
    const ours = doc.hooks['PreToolUse']![1]!;
    expect(ours).not.toHaveProperty('matcher');
    expect(ours.hooks).toEqual([{ type: 'command', command: COMMAND, timeout: 55, statusMessage: 'Witness: recording and checking this tool call' }]);
    expect(doc.hooks['SessionEnd']![0]!.hooks[0]).toEqual({ type: 'command', command: COMMAND, timeout: 3 });
    expect(doc.hooks['Stop']).toHaveLength(2);
    expect(COMMAND).toContain(CODEX_HOOK_MARKER);
  });

  it('is idempotent: a second install changes nothing', () => {
    const once = addCodexHooks(original, COMMAND, 55, 'hooks.json');
    const twice = addCodexHooks(once.text, COMMAND, 55, 'hooks.json');
    expect(twice).toEqual({ text: once.text, events: [] });
  });

  it("installing again with other options replaces Witness's entry in every event, keeping the user's groups and a hook the user put into Witness's group", () => {
    const first = JSON.parse(addCodexHooks(original, COMMAND, 55, 'hooks.json').text) as { hooks: Record<string, Array<{ hooks: Array<{ command: string }> }>> };
    first.hooks['PreToolUse']![1]!.hooks.push({ command: './scripts/guard.sh' });
    const other = COMMAND.replace('--fail closed', '--fail open');
    const again = addCodexHooks(JSON.stringify(first, null, 2), other, 65, 'hooks.json');
    expect(again.events).toEqual(CODEX_EVENTS.map((e) => e.event));
    const doc = JSON.parse(again.text) as typeof first;
    for (const { event } of CODEX_EVENTS) expect(doc.hooks[event]!.flatMap((g) => g.hooks.map((h) => h.command)).filter((c) => c.includes(' hook codex '))).toEqual([other]);
    const before = JSON.parse(original) as typeof first;
    expect(doc.hooks['PreToolUse']).toEqual([
      before.hooks['PreToolUse']![0],
      { hooks: [{ command: './scripts/guard.sh' }] },
      { hooks: [{ type: 'command', command: other, timeout: 65, statusMessage: 'Witness: recording and checking this tool call' }] },
    ]);
    expect(doc.hooks['Stop']![0]).toEqual(before.hooks['Stop']![0]);
    expect(addCodexHooks(again.text, other, 65, 'hooks.json')).toEqual({ text: again.text, events: [] });
    expect(addCodexHooks(again.text, other, 70, 'hooks.json').events).toEqual(CODEX_EVENTS.filter((e) => e.maxTimeoutSeconds === undefined).map((e) => e.event));
  });

  it("removes only Witness's groups, and what they leave empty", () => {
    const installed = addCodexHooks(original, COMMAND, 55, 'hooks.json').text;
    const removed = removeCodexHooks(installed, 'hooks.json');
    expect(removed.events.sort()).toEqual(['PostToolUse', 'PreToolUse', 'SessionEnd', 'SessionStart', 'Stop', 'UserPromptSubmit']);
    expect(JSON.parse(removed.text)).toEqual(JSON.parse(original));
    expect(removeCodexHooks(original, 'hooks.json')).toEqual({ text: original, events: [] });
  });

  it('creates the file from nothing with only the hooks key Codex accepts at the top', () => {
    const change = addCodexHooks(undefined, COMMAND, 55, 'hooks.json');
    expect(Object.keys(JSON.parse(change.text) as object)).toEqual(['hooks']);
    expect(JSON.parse(removeCodexHooks(change.text, 'hooks.json').text)).toEqual({});
  });

  it('refuses a file that is not JSON, or not shaped as hooks.json, with one sentence', () => {
    expect(() => addCodexHooks('{ "hooks": ', COMMAND, 55, '/p/.codex/hooks.json')).toThrow(
      /^\/p\/\.codex\/hooks\.json is not valid JSON \(.*\); fix it or move it aside before installing the hooks\.$/,
    );
    expect(() => addCodexHooks('[]', COMMAND, 55, 'h.json')).toThrow('h.json does not hold a JSON object; fix it before installing the hooks.');
    expect(() => addCodexHooks('{"hooks":[]}', COMMAND, 55, 'h.json')).toThrow('"hooks" in h.json is not an object; fix it before installing the hooks.');
    expect(() => addCodexHooks('{"hooks":{"Stop":{}}}', COMMAND, 55, 'h.json')).toThrow('"hooks.Stop" in h.json is not a list; fix it before installing the hooks.');
  });

  it('is the codex adapter, writing .codex/hooks.json in the project and in the home directory', () => {
    const a = hookAdapter('codex');
    expect(a.kind).toBe('codex');
    expect(a.settingsFile).toEqual({ project: '.codex/hooks.json', user: '.codex/hooks.json' });
    expect(a.parse(fixture('stop'))).toMatchObject({ type: 'other' });
  });
});
