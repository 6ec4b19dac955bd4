import { describe, expect, it } from 'vitest';
import { CLAUDE_CODE_EVENTS, HOOK_MARK, addClaudeCodeHooks, claudeCodeAnswer, isWitnessHookCommand, removeClaudeCodeHooks } from '../../src/integrations/index.js';

/** Claude Code's settings file as Witness edits it, and the answers it gives (issue 16 review: M2, M4 U1 and U5). */

const COMMAND = `witness hook claude-code --agent dev-laptop --fail closed --review-timeout 45s --budget 50s ${HOOK_MARK}`;
const OTHER_TOOL = 'npx agent-audit hook claude-code --log';
type Settings = { hooks: Record<string, Array<{ matcher?: string; hooks: Array<{ type: string; command: string; timeout?: number }> }>> };
const parse = (text: string): Settings => JSON.parse(text) as Settings;

describe("Witness's own hook entries are recognised exactly", () => {
  it('a command is Witness\'s only with " hook <kind> " and the install mark at its end', () => {
    expect(isWitnessHookCommand(COMMAND, 'claude-code')).toBe(true);
    expect(isWitnessHookCommand(COMMAND, 'codex')).toBe(false);
    expect(isWitnessHookCommand(OTHER_TOOL, 'claude-code')).toBe(false);
    expect(isWitnessHookCommand(`${COMMAND} && curl x`, 'claude-code')).toBe(false);
    expect(isWitnessHookCommand(undefined, 'claude-code')).toBe(false);
  });

  it('another tool\'s hook whose command contains " hook claude-code" does not stop install from adding PreToolUse, and uninstall keeps it', () => {
    const before = JSON.stringify({ hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: OTHER_TOOL }] }] } });
    const installed = addClaudeCodeHooks(before, COMMAND, 55);
    expect(installed.events).toEqual(CLAUDE_CODE_EVENTS.map((e) => e.event));
    expect(parse(installed.text).hooks['PreToolUse']!.map((g) => g.hooks[0]!.command)).toEqual([OTHER_TOOL, COMMAND]);
    const removed = removeClaudeCodeHooks(installed.text);
    expect(parse(removed.text)).toEqual(JSON.parse(before));
  });

  it("uninstall removes only Witness's entry from a group the user added a hook of their own to", () => {
    const installed = parse(addClaudeCodeHooks(undefined, COMMAND, 55).text);
    installed.hooks['PreToolUse']![0]!.hooks.push({ type: 'command', command: './scripts/guard.sh' });
    const removed = removeClaudeCodeHooks(JSON.stringify(installed));
    expect(removed.events).toContain('PreToolUse');
    expect(parse(removed.text).hooks).toEqual({ PreToolUse: [{ matcher: '*', hooks: [{ type: 'command', command: './scripts/guard.sh' }] }] });
  });

  it('a second install with the same command changes nothing; with other options it replaces the Witness entries in place', () => {
    const first = addClaudeCodeHooks(undefined, COMMAND, 55).text;
    expect(addClaudeCodeHooks(first, COMMAND, 55)).toEqual({ text: first, events: [] });
    const other = COMMAND.replace('--fail closed', '--fail open');
    const second = addClaudeCodeHooks(first, other, 55);
    expect(second.events).toEqual(CLAUDE_CODE_EVENTS.map((e) => e.event));
    const hooks = parse(second.text).hooks;
    for (const { event } of CLAUDE_CODE_EVENTS) expect(hooks[event]!.flatMap((g) => g.hooks.map((h) => h.command))).toEqual([other]);
  });
});

describe('claudeCodeAnswer', () => {
  it('never blocks an event that cannot be refused (Stop, SubagentStop, PreCompact, SessionEnd): exit 0 and only a systemMessage for the user', () => {
    for (const event of ['Stop', 'SubagentStop', 'PreCompact', 'Notification']) {
      expect(claudeCodeAnswer({ type: 'other', event }, { decision: 'deny', reason: 'no' })).toEqual({ stdout: '{"systemMessage":"no"}\n', stderr: '', exitCode: 0 });
    }
    expect(claudeCodeAnswer({ type: 'session.end', event: 'SessionEnd' }, { decision: 'deny', reason: 'no' }).exitCode).toBe(0);
    expect(claudeCodeAnswer({ type: 'tool.after', event: 'PostToolUse' }, { decision: 'deny', reason: 'no' }).exitCode).toBe(0);
    expect(claudeCodeAnswer({ type: 'tool.before', event: 'PreToolUse' }, { decision: 'deny', reason: 'no' }).stdout).toContain('"permissionDecision":"deny"');
    expect(claudeCodeAnswer(undefined, { decision: 'deny', reason: 'no' }).exitCode).toBe(2);
  });
});
